#include "deform_conv_plugin.h"

#include <exception>
#include <vector>

#include "deform_math.h"

namespace siamattn {
namespace trt {

using nvinfer1::DataType;
using nvinfer1::DimensionOperation;
using nvinfer1::PluginFieldType;

namespace {

constexpr int32_t kMinInputs = 3, kMaxInputs = 5;

}  // namespace

nvinfer1::IPluginCapability* DeformConvPlugin::getCapabilityInterface(nvinfer1::PluginCapabilityType type) noexcept {
    return capability_of(this, type);
}

nvinfer1::IPluginV3* DeformConvPlugin::clone() noexcept {
    return guarded("DeformConvPlugin::clone", kNoPlugin, [&]() -> nvinfer1::IPluginV3* {
        return new DeformConvPlugin(name_, version_, attrs_);
    });
}

// Inputs 0..2 are X, W, offset. Optional inputs follow ONNX order (B, then mask), but a parser may drop an
// absent B and pass mask 4th, so the role of each optional input is told by its rank (B 1-D, mask 4-D).
bool DeformConvPlugin::make_params(const nvinfer1::Dims* dims, int32_t nbInputs, siamattn_deform_conv_params& p,
                                   int32_t* bias_index, int32_t* mask_index) const {
    *bias_index = -1;
    *mask_index = -1;
    if (nbInputs < kMinInputs || nbInputs > kMaxInputs) {
        log_error(name_ + ": expects inputs X, W, offset[, B][, mask], got " + std::to_string(nbInputs));
        return false;
    }
    const nvinfer1::Dims& x = dims[0];
    const nvinfer1::Dims& w = dims[1];
    const nvinfer1::Dims& off = dims[2];
    if (x.nbDims != 4 || w.nbDims != 4 || off.nbDims != 4) {
        log_error(name_ + ": X, W and offset must be 4-D, got " + dims_str(x) + " " + dims_str(w) + " " + dims_str(off));
        return false;
    }
    for (int32_t i = kMinInputs; i < nbInputs; ++i) {
        if (dims[i].nbDims == 1 && *bias_index < 0 && *mask_index < 0) {
            *bias_index = i;
        } else if (dims[i].nbDims == 4 && *mask_index < 0) {
            *mask_index = i;
        } else {
            log_error(name_ + ": optional input " + std::to_string(i) + " " + dims_str(dims[i]) +
                      " is neither B [M] nor mask [N, offset_group*kh*kw, oH, oW]");
            return false;
        }
    }
    p = siamattn_deform_conv_params{};
    p.batch = static_cast<int32_t>(x.d[0]);
    p.in_channels = static_cast<int32_t>(x.d[1]);
    p.in_h = static_cast<int32_t>(x.d[2]);
    p.in_w = static_cast<int32_t>(x.d[3]);
    p.out_channels = static_cast<int32_t>(w.d[0]);
    p.kernel_h = static_cast<int32_t>(w.d[2]);
    p.kernel_w = static_cast<int32_t>(w.d[3]);
    p.stride_h = attrs_.strides[0];
    p.stride_w = attrs_.strides[1];
    p.pad_h_begin = attrs_.pads[0];
    p.pad_w_begin = attrs_.pads[1];
    p.pad_h_end = attrs_.pads[2];
    p.pad_w_end = attrs_.pads[3];
    p.dilation_h = attrs_.dilations[0];
    p.dilation_w = attrs_.dilations[1];
    p.groups = attrs_.group;
    p.offset_groups = attrs_.offset_group;
    p.has_bias = *bias_index >= 0;
    p.has_mask = *mask_index >= 0;
    if (attrs_.kernel_shape[0] > 0 && (attrs_.kernel_shape[0] != p.kernel_h || attrs_.kernel_shape[1] != p.kernel_w)) {
        log_error(name_ + ": attribute kernel_shape=[" + std::to_string(attrs_.kernel_shape[0]) + "," +
                  std::to_string(attrs_.kernel_shape[1]) + "] does not match W " + dims_str(w));
        return false;
    }
    if (w.d[1] * p.groups != p.in_channels) {
        log_error(name_ + ": W " + dims_str(w) + " with group=" + std::to_string(p.groups) + " does not fit X " +
                  dims_str(x));
        return false;
    }
    if (siamattn_deform_conv_validate(&p) != SIAMATTN_OK) {
        log_error(name_ + ": " + siamattn_last_error());
        return false;
    }
    const int64_t taps = static_cast<int64_t>(p.kernel_h) * p.kernel_w;
    if (off.d[0] != p.batch || off.d[1] != 2 * taps * p.offset_groups || off.d[2] != p.out_h || off.d[3] != p.out_w) {
        log_error(name_ + ": offset " + dims_str(off) + " must be [" + std::to_string(p.batch) + "," +
                  std::to_string(2 * taps * p.offset_groups) + "," + std::to_string(p.out_h) + "," +
                  std::to_string(p.out_w) + "] for offset_group=" + std::to_string(p.offset_groups));
        return false;
    }
    if (*bias_index >= 0 && dims[*bias_index].d[0] != p.out_channels) {
        log_error(name_ + ": B " + dims_str(dims[*bias_index]) + " must have M=" + std::to_string(p.out_channels) +
                  " elements");
        return false;
    }
    if (*mask_index >= 0) {
        const nvinfer1::Dims& m = dims[*mask_index];
        if (m.d[0] != p.batch || m.d[1] != taps * p.offset_groups || m.d[2] != p.out_h || m.d[3] != p.out_w) {
            log_error(name_ + ": mask " + dims_str(m) + " must be [" + std::to_string(p.batch) + "," +
                      std::to_string(taps * p.offset_groups) + "," + std::to_string(p.out_h) + "," +
                      std::to_string(p.out_w) + "]");
            return false;
        }
    }
    return true;
}

int32_t DeformConvPlugin::configurePlugin(const nvinfer1::DynamicPluginTensorDesc* in, int32_t nbInputs,
                                          const nvinfer1::DynamicPluginTensorDesc*, int32_t nbOutputs) noexcept {
    return guarded("DeformConvPlugin::configurePlugin", int32_t{-1}, [&]() -> int32_t {
        if (nbOutputs != 1 || nbInputs < kMinInputs || nbInputs > kMaxInputs) return -1;
        // Check what is known at build time: the optimisation profile's max dims are concrete.
        std::vector<nvinfer1::Dims> dims(nbInputs);
        for (int32_t i = 0; i < nbInputs; ++i) dims[i] = in[i].max;
        siamattn_deform_conv_params p;
        int32_t bi, mi;
        return make_params(dims.data(), nbInputs, p, &bi, &mi) ? 0 : -1;
    });
}

int32_t DeformConvPlugin::getOutputDataTypes(DataType* outputTypes, int32_t nbOutputs, const DataType* inputTypes,
                                             int32_t nbInputs) const noexcept {
    return guarded("DeformConvPlugin::getOutputDataTypes", int32_t{-1}, [&]() -> int32_t {
        if (nbOutputs != 1 || nbInputs < 1) return -1;
        outputTypes[0] = inputTypes[0];
        return 0;
    });
}

int32_t DeformConvPlugin::getOutputShapes(const nvinfer1::DimsExprs* inputs, int32_t nbInputs,
                                          const nvinfer1::DimsExprs*, int32_t, nvinfer1::DimsExprs* outputs,
                                          int32_t nbOutputs, nvinfer1::IExprBuilder& eb) noexcept {
    return guarded("DeformConvPlugin::getOutputShapes", int32_t{-1}, [&]() -> int32_t {
        if (nbOutputs != 1 || nbInputs < kMinInputs || nbInputs > kMaxInputs) {
            log_error(name_ + ": expects 3 to 5 inputs and 1 output");
            return -1;
        }
        if (inputs[0].nbDims != 4 || inputs[1].nbDims != 4) {
            log_error(name_ + ": X and W must be 4-D");
            return -1;
        }
        // out = floor((in + pad_begin + pad_end - (dilation*(k-1)+1)) / stride) + 1, per spatial axis.
        auto axis = [&](const nvinfer1::IDimensionExpr* in, const nvinfer1::IDimensionExpr* k, int32_t pads,
                        int32_t dilation, int32_t stride) {
            const auto* one = eb.constant(1);
            const auto* span = eb.operation(DimensionOperation::kPROD, *eb.constant(dilation),
                                            *eb.operation(DimensionOperation::kSUB, *k, *one));
            const auto* padded = eb.operation(DimensionOperation::kSUM, *in, *eb.constant(pads));
            const auto* rest = eb.operation(DimensionOperation::kSUB, *padded, *eb.operation(DimensionOperation::kSUM, *span, *one));
            return eb.operation(DimensionOperation::kSUM,
                                *eb.operation(DimensionOperation::kFLOOR_DIV, *rest, *eb.constant(stride)), *one);
        };
        outputs[0].nbDims = 4;
        outputs[0].d[0] = inputs[0].d[0];
        outputs[0].d[1] = inputs[1].d[0];
        outputs[0].d[2] = axis(inputs[0].d[2], inputs[1].d[2], attrs_.pads[0] + attrs_.pads[2], attrs_.dilations[0],
                               attrs_.strides[0]);
        outputs[0].d[3] = axis(inputs[0].d[3], inputs[1].d[3], attrs_.pads[1] + attrs_.pads[3], attrs_.dilations[1],
                               attrs_.strides[1]);
        return 0;
    });
}

// Linear NCHW; FP32 or FP16, the same for every tensor (bias and mask included).
bool DeformConvPlugin::supportsFormatCombination(int32_t pos, const nvinfer1::DynamicPluginTensorDesc* inOut,
                                                 int32_t nbInputs, int32_t nbOutputs) noexcept {
    return guarded("DeformConvPlugin::supportsFormatCombination", false, [&]() -> bool {
        if (pos < 0 || pos >= nbInputs + nbOutputs) return false;
        const nvinfer1::PluginTensorDesc& d = inOut[pos].desc;
        if (d.format != nvinfer1::TensorFormat::kLINEAR || !is_float_type(d.type)) return false;
        return pos == 0 || d.type == inOut[0].desc.type;
    });
}

size_t DeformConvPlugin::getWorkspaceSize(const nvinfer1::DynamicPluginTensorDesc* inputs, int32_t nbInputs,
                                          const nvinfer1::DynamicPluginTensorDesc*, int32_t) const noexcept {
    return guarded("DeformConvPlugin::getWorkspaceSize", size_t{0}, [&]() -> size_t {
        std::vector<nvinfer1::Dims> dims(nbInputs);
        for (int32_t i = 0; i < nbInputs; ++i) dims[i] = inputs[i].max;
        siamattn_deform_conv_params p;
        int32_t bi, mi;
        if (!make_params(dims.data(), nbInputs, p, &bi, &mi)) return 0;
        // The column buffer holds min(batch, budget / image) images, which is not monotonic in the image size, so
        // bound it for every shape up to the profile's max: at most batch*image, and at most max(budget, image).
        const size_t elem = inputs[0].desc.type == DataType::kHALF ? 2 : 4;
        const size_t image = static_cast<size_t>(p.in_channels) * p.kernel_h * p.kernel_w * p.out_h * p.out_w * elem;
        const size_t cap = image > SIAMATTN_DEFORM_CONV_COLUMN_BUDGET ? image : SIAMATTN_DEFORM_CONV_COLUMN_BUDGET;
        const size_t all = image * static_cast<size_t>(p.batch);
        return (all < cap ? all : cap) + siamattn::conv_partial_bytes_bound(p) + 512;
    });
}

// Runtime: called with concrete shapes before enqueue (which gets no input count), so the validated
// parameters and the roles of the optional inputs are kept for it.
int32_t DeformConvPlugin::onShapeChange(const nvinfer1::PluginTensorDesc* in, int32_t nbInputs,
                                        const nvinfer1::PluginTensorDesc*, int32_t nbOutputs) noexcept {
    return guarded("DeformConvPlugin::onShapeChange", int32_t{-1}, [&]() -> int32_t {
        shapes_ok_ = false;
        if (nbOutputs != 1 || nbInputs < kMinInputs || nbInputs > kMaxInputs) return -1;
        nvinfer1::Dims dims[kMaxInputs];
        for (int32_t i = 0; i < nbInputs; ++i) dims[i] = in[i].dims;
        if (!make_params(dims, nbInputs, params_, &bias_index_, &mask_index_)) return -1;
        shapes_ok_ = true;
        return 0;
    });
}

int32_t DeformConvPlugin::enqueue(const nvinfer1::PluginTensorDesc* inputDesc, const nvinfer1::PluginTensorDesc*,
                                  const void* const* inputs, void* const* outputs, void* workspace,
                                  cudaStream_t stream) noexcept {
    return guarded("DeformConvPlugin::enqueue", int32_t{-1}, [&]() -> int32_t {
        if (!shapes_ok_) {
            log_error(name_ + " enqueue: called without a successful onShapeChange");
            return -1;
        }
        const int32_t dtype = to_siamattn_dtype(inputDesc[0].type);
        const size_t ws = siamattn_deform_conv_workspace_size(&params_, dtype);
        const void* bias = bias_index_ >= 0 ? inputs[bias_index_] : nullptr;
        const void* mask = mask_index_ >= 0 ? inputs[mask_index_] : nullptr;
        const int32_t status = siamattn_deform_conv_forward_cuda(&params_, dtype, inputs[0], inputs[1], bias, inputs[2],
                                                                 mask, outputs[0], workspace, ws, stream);
        if (status != SIAMATTN_OK) {
            log_error(name_ + " enqueue: " + siamattn_last_error());
            return -1;
        }
        return 0;
    });
}

nvinfer1::IPluginV3* DeformConvPlugin::attachToContext(nvinfer1::IPluginResourceContext*) noexcept {
    return clone();  // guarded itself
}

const nvinfer1::PluginFieldCollection* DeformConvPlugin::getFieldsToSerialize() noexcept {
    return guarded("DeformConvPlugin::getFieldsToSerialize", kNoFields, [&]() -> const nvinfer1::PluginFieldCollection* {
        serialized_.clear();
        serialized_.add_ints("dilations", {attrs_.dilations[0], attrs_.dilations[1]});
        serialized_.add_ints("group", {attrs_.group});
        serialized_.add_ints("kernel_shape", {attrs_.kernel_shape[0], attrs_.kernel_shape[1]});
        serialized_.add_ints("offset_group", {attrs_.offset_group});
        serialized_.add_ints("pads", {attrs_.pads[0], attrs_.pads[1], attrs_.pads[2], attrs_.pads[3]});
        serialized_.add_ints("strides", {attrs_.strides[0], attrs_.strides[1]});
        return serialized_.collection();
    });
}

DeformConvCreator::DeformConvCreator(const char* name, const char* version) : name_(name), version_(version) {
    names_.add("dilations", PluginFieldType::kINT32, 2);
    names_.add("group", PluginFieldType::kINT32, 1);
    names_.add("kernel_shape", PluginFieldType::kINT32, 2);
    names_.add("offset_group", PluginFieldType::kINT32, 1);
    names_.add("pads", PluginFieldType::kINT32, 4);
    names_.add("strides", PluginFieldType::kINT32, 2);
}

nvinfer1::IPluginV3* DeformConvCreator::createPlugin(const char*, const nvinfer1::PluginFieldCollection* fc,
                                                     nvinfer1::TensorRTPhase) noexcept {
    return guarded("DeformConvCreator::createPlugin", kNoPlugin, [&]() -> nvinfer1::IPluginV3* {
        DeformConvAttrs a;
        std::vector<int64_t> v;
        for (int32_t i = 0; fc != nullptr && i < fc->nbFields; ++i) {
            const nvinfer1::PluginField& f = fc->fields[i];
            const std::string field = f.name != nullptr ? f.name : "";
            auto fail_field = [&](const char* expect) {
                log_error(name_ + ": attribute '" + field + "' must be " + expect);
                return nullptr;
            };
            if (field == "dilations" || field == "strides" || field == "kernel_shape") {
                if (!read_ints(f, v) || v.size() != 2) return fail_field("2 integers");
                auto& dst = field == "dilations" ? a.dilations : field == "strides" ? a.strides : a.kernel_shape;
                for (int k = 0; k < 2; ++k) {
                    if (v[k] < 1) return fail_field("positive");
                    dst[k] = static_cast<int32_t>(v[k]);
                }
            } else if (field == "pads") {
                if (!read_ints(f, v) || v.size() != 4) return fail_field("4 integers (h_begin, w_begin, h_end, w_end)");
                for (int k = 0; k < 4; ++k) {
                    if (v[k] < 0) return fail_field("non-negative");
                    a.pads[k] = static_cast<int32_t>(v[k]);
                }
            } else if (field == "group" || field == "offset_group") {
                if (!read_ints(f, v) || v.size() != 1 || v[0] < 1) return fail_field("one positive integer");
                (field == "group" ? a.group : a.offset_group) = static_cast<int32_t>(v[0]);
            } else if (field == "plugin_version" || field == "plugin_namespace") {
                // Parser bookkeeping for custom-domain nodes; nothing to configure.
            } else {
                log_error(name_ + ": unknown attribute '" + field + "'");
                return nullptr;
            }
        }
        return new DeformConvPlugin(name_, version_, a);
    });
}

}  // namespace trt
}  // namespace siamattn
