#include "deform_roi_pool_plugin_v2.h"

namespace siamattn {
namespace trt {

using nvinfer1::DataType;

namespace {
constexpr uint32_t kTag = 0x32505244u;  // "DRP2" in little-endian memory
constexpr uint32_t kFormat = 1;
// output_height, output_width, sampling_ratio, mode, inputs (int32) + spatial_scale, gamma (float)
constexpr size_t kBytes = 2 * sizeof(uint32_t) + 5 * sizeof(int32_t) + 2 * sizeof(float);
constexpr nvinfer1::IPluginV2* kNoPluginV2 = nullptr;
}  // namespace

size_t DeformRoIPoolPluginV2::getSerializationSize() const noexcept { return kBytes; }

void DeformRoIPoolPluginV2::serialize(void* buffer) const noexcept {
    ByteWriter w(buffer);
    w.put(kTag);
    w.put(kFormat);
    for (int32_t v : {attrs_.output_height, attrs_.output_width, attrs_.sampling_ratio, attrs_.mode, nb_inputs_})
        w.put(v);
    w.put(attrs_.spatial_scale);
    w.put(attrs_.gamma);
}

bool DeformRoIPoolPluginV2::read(const void* data, size_t length, DeformRoIPoolAttrs& a, int32_t& nb_inputs) {
    ByteReader r(data, length);
    uint32_t tag = 0, format = 0;
    const bool ok = r.get(tag) && r.get(format) && tag == kTag && format == kFormat && r.get(a.output_height) &&
                    r.get(a.output_width) && r.get(a.sampling_ratio) && r.get(a.mode) && r.get(nb_inputs) &&
                    r.get(a.spatial_scale) && r.get(a.gamma) && r.left() == 0;
    if (!ok)
        log_error("DeformRoIPool: the serialised plugin data (" + std::to_string(length) +
                  " bytes) is not a DeformRoIPool plugin of this library's format; rebuild the engine");
    return ok;
}

void DeformRoIPoolPluginV2::setPluginNamespace(const char* ns) noexcept {
    guarded("DeformRoIPoolPluginV2::setPluginNamespace", 0, [&]() {
        namespace_ = ns != nullptr ? ns : "";
        return 0;
    });
}

DataType DeformRoIPoolPluginV2::getOutputDataType(int32_t, const DataType* inputTypes, int32_t nbInputs) const noexcept {
    return nbInputs > 0 ? inputTypes[0] : DataType::kFLOAT;
}

nvinfer1::IPluginV2DynamicExt* DeformRoIPoolPluginV2::clone() const noexcept {
    return guarded("DeformRoIPoolPluginV2::clone", static_cast<nvinfer1::IPluginV2DynamicExt*>(nullptr),
                   [&]() -> nvinfer1::IPluginV2DynamicExt* {
                       return new DeformRoIPoolPluginV2(attrs_, namespace_, nb_inputs_);
                   });
}

nvinfer1::DimsExprs DeformRoIPoolPluginV2::getOutputDimensions(int32_t outputIndex, const nvinfer1::DimsExprs* inputs,
                                                               int32_t nbInputs, nvinfer1::IExprBuilder& eb) noexcept {
    nvinfer1::DimsExprs failed{};
    failed.nbDims = -1;
    return guarded("DeformRoIPoolPluginV2::getOutputDimensions", failed, [&]() -> nvinfer1::DimsExprs {
        nvinfer1::DimsExprs out{};
        if (outputIndex != 0 || !deform_roi_pool_output_dims(attrs_, inputs, nbInputs, eb, out)) return failed;
        return out;
    });
}

bool DeformRoIPoolPluginV2::supportsFormatCombination(int32_t pos, const nvinfer1::PluginTensorDesc* inOut,
                                                      int32_t nbInputs, int32_t nbOutputs) noexcept {
    return guarded("DeformRoIPoolPluginV2::supportsFormatCombination", false, [&]() -> bool {
        if (pos < 0 || pos >= nbInputs + nbOutputs) return false;
        return deform_roi_pool_format_ok(pos, inOut[pos].type, inOut[pos].format, inOut[0].type);
    });
}

void DeformRoIPoolPluginV2::configurePlugin(const nvinfer1::DynamicPluginTensorDesc* in, int32_t nbInputs,
                                            const nvinfer1::DynamicPluginTensorDesc*, int32_t) noexcept {
    guarded("DeformRoIPoolPluginV2::configurePlugin", 0, [&]() {
        if (nbInputs < 2 || nbInputs > 3) {
            log_error("DeformRoIPool: expects inputs feat, rois[, offset], got " + std::to_string(nbInputs));
            return 0;
        }
        nb_inputs_ = nbInputs;
        nvinfer1::Dims dims[3];
        for (int32_t i = 0; i < nbInputs; ++i) dims[i] = in[i].max;
        siamattn_deform_roi_pool_params p;
        deform_roi_pool_params(attrs_, dims, nbInputs, p);  // logs what is inconsistent; enqueue refuses it
        return 0;
    });
}

int32_t DeformRoIPoolPluginV2::enqueue(const nvinfer1::PluginTensorDesc* inputDesc, const nvinfer1::PluginTensorDesc*,
                                       const void* const* inputs, void* const* outputs, void*,
                                       cudaStream_t stream) noexcept {
    return guarded("DeformRoIPoolPluginV2::enqueue", int32_t{-1}, [&]() -> int32_t {
        if (nb_inputs_ < 2 || nb_inputs_ > 3) {
            log_error("DeformRoIPool enqueue: called on a plugin that configurePlugin never saw");
            return -1;
        }
        nvinfer1::Dims dims[3];
        for (int32_t i = 0; i < nb_inputs_; ++i) dims[i] = inputDesc[i].dims;
        siamattn_deform_roi_pool_params p;
        if (!deform_roi_pool_params(attrs_, dims, nb_inputs_, p)) return -1;
        return deform_roi_pool_launch(p, inputDesc[0].type, inputDesc[1].type, inputs, outputs[0], stream);
    });
}

DeformRoIPoolCreatorV2::DeformRoIPoolCreatorV2() { deform_roi_pool_field_names(names_); }

nvinfer1::IPluginV2* DeformRoIPoolCreatorV2::createPlugin(const char*, const nvinfer1::PluginFieldCollection* fc) noexcept {
    return guarded("DeformRoIPoolCreatorV2::createPlugin", kNoPluginV2, [&]() -> nvinfer1::IPluginV2* {
        DeformRoIPoolAttrs a;
        if (!parse_deform_roi_pool_fields(fc, a)) return nullptr;
        return new DeformRoIPoolPluginV2(a, namespace_);
    });
}

nvinfer1::IPluginV2* DeformRoIPoolCreatorV2::deserializePlugin(const char*, const void* data, size_t length) noexcept {
    return guarded("DeformRoIPoolCreatorV2::deserializePlugin", kNoPluginV2, [&]() -> nvinfer1::IPluginV2* {
        DeformRoIPoolAttrs a;
        int32_t nb_inputs = 0;
        if (!DeformRoIPoolPluginV2::read(data, length, a, nb_inputs)) return nullptr;
        return new DeformRoIPoolPluginV2(a, namespace_, nb_inputs);
    });
}

void DeformRoIPoolCreatorV2::setPluginNamespace(const char* ns) noexcept {
    guarded("DeformRoIPoolCreatorV2::setPluginNamespace", 0, [&]() {
        namespace_ = ns != nullptr ? ns : "";
        return 0;
    });
}

}  // namespace trt
}  // namespace siamattn
