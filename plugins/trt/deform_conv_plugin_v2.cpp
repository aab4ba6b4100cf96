#include "deform_conv_plugin_v2.h"

#include <vector>

namespace siamattn {
namespace trt {

using nvinfer1::DataType;

namespace {
constexpr uint32_t kTag = 0x32434453u;  // "SDC2" in little-endian memory
constexpr uint32_t kFormat = 1;
constexpr size_t kValues = 13;  // dilations 2, group, kernel_shape 2, offset_group, pads 4, strides 2, inputs
constexpr nvinfer1::IPluginV2* kNoPluginV2 = nullptr;
}  // namespace

size_t DeformConvPluginV2::getSerializationSize() const noexcept { return 2 * sizeof(uint32_t) + kValues * sizeof(int32_t); }

void DeformConvPluginV2::serialize(void* buffer) const noexcept {
    ByteWriter w(buffer);
    w.put(kTag);
    w.put(kFormat);
    for (int32_t v : {attrs_.dilations[0], attrs_.dilations[1], attrs_.group, attrs_.kernel_shape[0],
                      attrs_.kernel_shape[1], attrs_.offset_group, attrs_.pads[0], attrs_.pads[1], attrs_.pads[2],
                      attrs_.pads[3], attrs_.strides[0], attrs_.strides[1], nb_inputs_})
        w.put(v);
}

bool DeformConvPluginV2::read(const std::string& name, const void* data, size_t length, DeformConvAttrs& a,
                              int32_t& nb_inputs) {
    ByteReader r(data, length);
    uint32_t tag = 0, format = 0;
    int32_t v[kValues];
    bool ok = r.get(tag) && r.get(format) && tag == kTag && format == kFormat;
    for (size_t i = 0; ok && i < kValues; ++i) ok = r.get(v[i]);
    if (!ok || r.left() != 0) {
        log_error(name + ": the serialised plugin data (" + std::to_string(length) +
                  " bytes) is not a DeformConv plugin of this library's format; rebuild the engine");
        return false;
    }
    a.dilations = {v[0], v[1]};
    a.group = v[2];
    a.kernel_shape = {v[3], v[4]};
    a.offset_group = v[5];
    a.pads = {v[6], v[7], v[8], v[9]};
    a.strides = {v[10], v[11]};
    nb_inputs = v[12];
    return true;
}

void DeformConvPluginV2::setPluginNamespace(const char* ns) noexcept {
    guarded("DeformConvPluginV2::setPluginNamespace", 0, [&]() {
        namespace_ = ns != nullptr ? ns : "";
        return 0;
    });
}

DataType DeformConvPluginV2::getOutputDataType(int32_t, const DataType* inputTypes, int32_t nbInputs) const noexcept {
    return nbInputs > 0 ? inputTypes[0] : DataType::kFLOAT;
}

nvinfer1::IPluginV2DynamicExt* DeformConvPluginV2::clone() const noexcept {
    return guarded("DeformConvPluginV2::clone", static_cast<nvinfer1::IPluginV2DynamicExt*>(nullptr),
                   [&]() -> nvinfer1::IPluginV2DynamicExt* {
                       return new DeformConvPluginV2(name_, version_, attrs_, namespace_, nb_inputs_);
                   });
}

nvinfer1::DimsExprs DeformConvPluginV2::getOutputDimensions(int32_t outputIndex, const nvinfer1::DimsExprs* inputs,
                                                            int32_t nbInputs, nvinfer1::IExprBuilder& eb) noexcept {
    nvinfer1::DimsExprs out{};
    out.nbDims = -1;  // what TensorRT treats as a failure
    return guarded("DeformConvPluginV2::getOutputDimensions", out, [&]() -> nvinfer1::DimsExprs {
        if (outputIndex != 0 || nbInputs < kDeformConvMinInputs || nbInputs > kDeformConvMaxInputs ||
            inputs[0].nbDims != 4 || inputs[1].nbDims != 4) {
            log_error(name_ + ": expects X and W 4-D, 3 to 5 inputs and 1 output");
            return out;
        }
        nvinfer1::DimsExprs result{};
        deform_conv_output_dims(attrs_, inputs, eb, result);
        return result;
    });
}

bool DeformConvPluginV2::supportsFormatCombination(int32_t pos, const nvinfer1::PluginTensorDesc* inOut,
                                                   int32_t nbInputs, int32_t nbOutputs) noexcept {
    return guarded("DeformConvPluginV2::supportsFormatCombination", false, [&]() -> bool {
        if (pos < 0 || pos >= nbInputs + nbOutputs) return false;
        return deform_conv_format_ok(pos, inOut[pos].type, inOut[pos].format, inOut[0].type);
    });
}

// V2 has no way to refuse here (void): an inconsistent network is reported now and refused at getWorkspaceSize /
// enqueue, which re-check the shapes.
void DeformConvPluginV2::configurePlugin(const nvinfer1::DynamicPluginTensorDesc* in, int32_t nbInputs,
                                         const nvinfer1::DynamicPluginTensorDesc*, int32_t) noexcept {
    guarded("DeformConvPluginV2::configurePlugin", 0, [&]() {
        if (nbInputs < kDeformConvMinInputs || nbInputs > kDeformConvMaxInputs) {
            log_error(name_ + ": expects inputs X, W, offset[, B][, mask], got " + std::to_string(nbInputs));
            return 0;
        }
        nb_inputs_ = nbInputs;
        nvinfer1::Dims dims[kDeformConvMaxInputs];
        for (int32_t i = 0; i < nbInputs; ++i) dims[i] = in[i].max;
        siamattn_deform_conv_params p;
        int32_t bi, mi;
        deform_conv_params(name_, attrs_, dims, nbInputs, p, &bi, &mi);
        return 0;
    });
}

// Called with the profile's largest shapes: the bound holds for every smaller one (deform_conv_core.cpp).
size_t DeformConvPluginV2::getWorkspaceSize(const nvinfer1::PluginTensorDesc* inputs, int32_t nbInputs,
                                            const nvinfer1::PluginTensorDesc*, int32_t) const noexcept {
    return guarded("DeformConvPluginV2::getWorkspaceSize", size_t{0}, [&]() -> size_t {
        std::vector<nvinfer1::Dims> dims(nbInputs);
        for (int32_t i = 0; i < nbInputs; ++i) dims[i] = inputs[i].dims;
        return deform_conv_workspace_bound(name_, attrs_, dims.data(), nbInputs, inputs[0].type);
    });
}

// V2 has no onShapeChange: the concrete shapes arrive with every enqueue, so the parameters are derived here (a
// few integer checks, negligible next to the kernels).
int32_t DeformConvPluginV2::enqueue(const nvinfer1::PluginTensorDesc* inputDesc, const nvinfer1::PluginTensorDesc*,
                                    const void* const* inputs, void* const* outputs, void* workspace,
                                    cudaStream_t stream) noexcept {
    return guarded("DeformConvPluginV2::enqueue", int32_t{-1}, [&]() -> int32_t {
        if (nb_inputs_ < kDeformConvMinInputs || nb_inputs_ > kDeformConvMaxInputs) {
            log_error(name_ + " enqueue: called on a plugin that configurePlugin never saw");
            return -1;
        }
        nvinfer1::Dims dims[kDeformConvMaxInputs];
        for (int32_t i = 0; i < nb_inputs_; ++i) dims[i] = inputDesc[i].dims;
        siamattn_deform_conv_params p;
        int32_t bi, mi;
        if (!deform_conv_params(name_, attrs_, dims, nb_inputs_, p, &bi, &mi)) return -1;
        return deform_conv_launch(name_, p, bi, mi, inputDesc[0].type, inputs, outputs[0], workspace, stream);
    });
}

DeformConvCreatorV2::DeformConvCreatorV2(const char* name, const char* version) : name_(name), version_(version) {
    deform_conv_field_names(names_);
}

nvinfer1::IPluginV2* DeformConvCreatorV2::createPlugin(const char*, const nvinfer1::PluginFieldCollection* fc) noexcept {
    return guarded("DeformConvCreatorV2::createPlugin", kNoPluginV2, [&]() -> nvinfer1::IPluginV2* {
        DeformConvAttrs a;
        if (!parse_deform_conv_fields(name_, fc, a)) return nullptr;
        return new DeformConvPluginV2(name_, version_, a, namespace_);
    });
}

nvinfer1::IPluginV2* DeformConvCreatorV2::deserializePlugin(const char*, const void* data, size_t length) noexcept {
    return guarded("DeformConvCreatorV2::deserializePlugin", kNoPluginV2, [&]() -> nvinfer1::IPluginV2* {
        DeformConvAttrs a;
        int32_t nb_inputs = 0;
        if (!DeformConvPluginV2::read(name_, data, length, a, nb_inputs)) return nullptr;
        return new DeformConvPluginV2(name_, version_, a, namespace_, nb_inputs);
    });
}

void DeformConvCreatorV2::setPluginNamespace(const char* ns) noexcept {
    guarded("DeformConvCreatorV2::setPluginNamespace", 0, [&]() {
        namespace_ = ns != nullptr ? ns : "";
        return 0;
    });
}

}  // namespace trt
}  // namespace siamattn
