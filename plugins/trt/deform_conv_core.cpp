#include "deform_conv_core.h"

#include <vector>

#include "deform_math.h"

namespace siamattn {
namespace trt {

using nvinfer1::DataType;
using nvinfer1::DimensionOperation;
using nvinfer1::PluginFieldType;

bool parse_deform_conv_fields(const std::string& name, const nvinfer1::PluginFieldCollection* fc, DeformConvAttrs& a) {
    std::vector<int64_t> v;
    for (int32_t i = 0; fc != nullptr && i < fc->nbFields; ++i) {
        const nvinfer1::PluginField& f = fc->fields[i];
        const std::string field = f.name != nullptr ? f.name : "";
        auto fail_field = [&](const char* expect) {
            log_error(name + ": attribute '" + field + "' must be " + expect);
            return false;
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
            log_error(name + ": unknown attribute '" + field + "'");
            return false;
        }
    }
    return true;
}

void deform_conv_field_names(FieldNames& names) {
    names.add("dilations", PluginFieldType::kINT32, 2);
    names.add("group", PluginFieldType::kINT32, 1);
    names.add("kernel_shape", PluginFieldType::kINT32, 2);
    names.add("offset_group", PluginFieldType::kINT32, 1);
    names.add("pads", PluginFieldType::kINT32, 4);
    names.add("strides", PluginFieldType::kINT32, 2);
}

void deform_conv_fields(const DeformConvAttrs& a, FieldList& out) {
    out.clear();
    out.add_ints("dilations", {a.dilations[0], a.dilations[1]});
    out.add_ints("group", {a.group});
    out.add_ints("kernel_shape", {a.kernel_shape[0], a.kernel_shape[1]});
    out.add_ints("offset_group", {a.offset_group});
    out.add_ints("pads", {a.pads[0], a.pads[1], a.pads[2], a.pads[3]});
    out.add_ints("strides", {a.strides[0], a.strides[1]});
}

bool deform_conv_params(const std::string& name, const DeformConvAttrs& a, const nvinfer1::Dims* dims,
                        int32_t nbInputs, siamattn_deform_conv_params& p, int32_t* bias_index, int32_t* mask_index) {
    constexpr int32_t kMinInputs = kDeformConvMinInputs, kMaxInputs = kDeformConvMaxInputs;
    *bias_index = -1;
    *mask_index = -1;
    if (nbInputs < kMinInputs || nbInputs > kMaxInputs) {
        log_error(name + ": expects inputs X, W, offset[, B][, mask], got " + std::to_string(nbInputs));
        return false;
    }
    const nvinfer1::Dims& x = dims[0];
    const nvinfer1::Dims& w = dims[1];
    const nvinfer1::Dims& off = dims[2];
    if (x.nbDims != 4 || w.nbDims != 4 || off.nbDims != 4) {
        log_error(name + ": X, W and offset must be 4-D, got " + dims_str(x) + " " + dims_str(w) + " " + dims_str(off));
        return false;
    }
    for (int32_t i = kMinInputs; i < nbInputs; ++i) {
        if (dims[i].nbDims == 1 && *bias_index < 0 && *mask_index < 0) {
            *bias_index = i;
        } else if (dims[i].nbDims == 4 && *mask_index < 0) {
            *mask_index = i;
        } else {
            log_error(name + ": optional input " + std::to_string(i) + " " + dims_str(dims[i]) +
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
    p.stride_h = a.strides[0];
    p.stride_w = a.strides[1];
    p.pad_h_begin = a.pads[0];
    p.pad_w_begin = a.pads[1];
    p.pad_h_end = a.pads[2];
    p.pad_w_end = a.pads[3];
    p.dilation_h = a.dilations[0];
    p.dilation_w = a.dilations[1];
    p.groups = a.group;
    p.offset_groups = a.offset_group;
    p.has_bias = *bias_index >= 0;
    p.has_mask = *mask_index >= 0;
    if (a.kernel_shape[0] > 0 && (a.kernel_shape[0] != p.kernel_h || a.kernel_shape[1] != p.kernel_w)) {
        log_error(name + ": attribute kernel_shape=[" + std::to_string(a.kernel_shape[0]) + "," +
                  std::to_string(a.kernel_shape[1]) + "] does not match W " + dims_str(w));
        return false;
    }
    if (w.d[1] * p.groups != p.in_channels) {
        log_error(name + ": W " + dims_str(w) + " with group=" + std::to_string(p.groups) + " does not fit X " +
                  dims_str(x));
        return false;
    }
    if (siamattn_deform_conv_validate(&p) != SIAMATTN_OK) {
        log_error(name + ": " + siamattn_last_error());
        return false;
    }
    const int64_t taps = static_cast<int64_t>(p.kernel_h) * p.kernel_w;
    if (off.d[0] != p.batch || off.d[1] != 2 * taps * p.offset_groups || off.d[2] != p.out_h || off.d[3] != p.out_w) {
        log_error(name + ": offset " + dims_str(off) + " must be [" + std::to_string(p.batch) + "," +
                  std::to_string(2 * taps * p.offset_groups) + "," + std::to_string(p.out_h) + "," +
                  std::to_string(p.out_w) + "] for offset_group=" + std::to_string(p.offset_groups));
        return false;
    }
    if (*bias_index >= 0 && dims[*bias_index].d[0] != p.out_channels) {
        log_error(name + ": B " + dims_str(dims[*bias_index]) + " must have M=" + std::to_string(p.out_channels) +
                  " elements");
        return false;
    }
    if (*mask_index >= 0) {
        const nvinfer1::Dims& m = dims[*mask_index];
        if (m.d[0] != p.batch || m.d[1] != taps * p.offset_groups || m.d[2] != p.out_h || m.d[3] != p.out_w) {
            log_error(name + ": mask " + dims_str(m) + " must be [" + std::to_string(p.batch) + "," +
                      std::to_string(taps * p.offset_groups) + "," + std::to_string(p.out_h) + "," +
                      std::to_string(p.out_w) + "]");
            return false;
        }
    }
    return true;
}

void deform_conv_output_dims(const DeformConvAttrs& a, const nvinfer1::DimsExprs* inputs, nvinfer1::IExprBuilder& eb,
                             nvinfer1::DimsExprs& out) {
    nvinfer1::DimsExprs* outputs = &out;
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
    outputs[0].d[2] = axis(inputs[0].d[2], inputs[1].d[2], a.pads[0] + a.pads[2], a.dilations[0],
                           a.strides[0]);
    outputs[0].d[3] = axis(inputs[0].d[3], inputs[1].d[3], a.pads[1] + a.pads[3], a.dilations[1],
                           a.strides[1]);
}

bool deform_conv_format_ok(int32_t pos, DataType type, nvinfer1::TensorFormat format, DataType first_type) {
    if (format != nvinfer1::TensorFormat::kLINEAR || !is_float_type(type)) return false;
    return pos == 0 || type == first_type;
}

size_t deform_conv_workspace_bound(const std::string& name, const DeformConvAttrs& a, const nvinfer1::Dims* dims,
                                   int32_t nbInputs, DataType type) {
    siamattn_deform_conv_params p;
    int32_t bi, mi;
    if (!deform_conv_params(name, a, dims, nbInputs, p, &bi, &mi)) return 0;
    // The column buffer holds min(batch, budget / image) images, which is not monotonic in the image size, so
    // bound it for every shape up to the profile's max: at most batch*image, and at most max(budget, image).
    const size_t elem = type == DataType::kHALF ? 2 : 4;
    const size_t image = static_cast<size_t>(p.in_channels) * p.kernel_h * p.kernel_w * p.out_h * p.out_w * elem;
    const size_t cap = image > SIAMATTN_DEFORM_CONV_COLUMN_BUDGET ? image : SIAMATTN_DEFORM_CONV_COLUMN_BUDGET;
    const size_t all = image * static_cast<size_t>(p.batch);
    return (all < cap ? all : cap) + siamattn::conv_partial_bytes_bound(p) + 512;
}

int32_t deform_conv_launch(const std::string& name, const siamattn_deform_conv_params& p, int32_t bias_index,
                           int32_t mask_index, DataType type, const void* const* inputs, void* output,
                           void* workspace, cudaStream_t stream) {
    const int32_t dtype = to_siamattn_dtype(type);
    const size_t ws = siamattn_deform_conv_workspace_size(&p, dtype);
    const void* bias = bias_index >= 0 ? inputs[bias_index] : nullptr;
    const void* mask = mask_index >= 0 ? inputs[mask_index] : nullptr;
    const int32_t status = siamattn_deform_conv_forward_cuda(&p, dtype, inputs[0], inputs[1], bias, inputs[2], mask,
                                                             output, workspace, ws, stream);
    if (status != SIAMATTN_OK) {
        log_error(name + " enqueue: " + siamattn_last_error());
        return -1;
    }
    return 0;
}

}  // namespace trt
}  // namespace siamattn
