#include "deform_roi_pool_core.h"

#include <cmath>
#include <string>
#include <vector>

namespace siamattn {
namespace trt {

using nvinfer1::DataType;
using nvinfer1::PluginFieldType;

bool parse_deform_roi_pool_fields(const nvinfer1::PluginFieldCollection* fc, DeformRoIPoolAttrs& a) {
    std::vector<int64_t> v;
    for (int32_t i = 0; fc != nullptr && i < fc->nbFields; ++i) {
        const nvinfer1::PluginField& f = fc->fields[i];
        const std::string field = f.name != nullptr ? f.name : "";
        auto fail_field = [&](const char* expect) {
            log_error("DeformRoIPool: attribute '" + field + "' must be " + expect);
            return false;
        };
        if (field == "output_height" || field == "output_width") {
            if (!read_ints(f, v) || v.size() != 1 || v[0] < 1) return fail_field("one positive integer");
            (field == "output_height" ? a.output_height : a.output_width) = static_cast<int32_t>(v[0]);
        } else if (field == "sampling_ratio") {
            if (!read_ints(f, v) || v.size() != 1 || v[0] < 0) return fail_field("one integer >= 0 (0 = adaptive)");
            a.sampling_ratio = static_cast<int32_t>(v[0]);
        } else if (field == "spatial_scale") {
            if (!read_float(f, a.spatial_scale) || !(std::isfinite(a.spatial_scale) && a.spatial_scale > 0.0f))
                return fail_field("one finite float > 0");
        } else if (field == "gamma") {
            if (!read_float(f, a.gamma) || !std::isfinite(a.gamma)) return fail_field("one finite float");
        } else if (field == "mode") {
            if (!read_ints(f, v) || v.size() != 1 || (v[0] != SIAMATTN_ROI_POOL_MMCV && v[0] != SIAMATTN_ROI_POOL_MMDET_V1))
                return fail_field("0 (mmcv) or 1 (mmdet_v1)");
            a.mode = static_cast<int32_t>(v[0]);
        } else if (field == "plugin_version" || field == "plugin_namespace") {
            // Parser bookkeeping for custom-domain nodes.
        } else {
            log_error("DeformRoIPool: unknown attribute '" + field + "'");
            return false;
        }
    }
    return true;
}

void deform_roi_pool_field_names(FieldNames& names) {
    names.add("output_height", PluginFieldType::kINT32, 1);
    names.add("output_width", PluginFieldType::kINT32, 1);
    names.add("spatial_scale", PluginFieldType::kFLOAT32, 1);
    names.add("sampling_ratio", PluginFieldType::kINT32, 1);
    names.add("gamma", PluginFieldType::kFLOAT32, 1);
    names.add("mode", PluginFieldType::kINT32, 1);
}

void deform_roi_pool_fields(const DeformRoIPoolAttrs& a, FieldList& out) {
    out.clear();
    out.add_ints("output_height", {a.output_height});
    out.add_ints("output_width", {a.output_width});
    out.add_float("spatial_scale", a.spatial_scale);
    out.add_ints("sampling_ratio", {a.sampling_ratio});
    out.add_float("gamma", a.gamma);
    out.add_ints("mode", {a.mode});
}

bool deform_roi_pool_params(const DeformRoIPoolAttrs& a, const nvinfer1::Dims* dims, int32_t nbInputs,
                            siamattn_deform_roi_pool_params& p) {
    if (nbInputs != 2 && nbInputs != 3) {
        log_error("DeformRoIPool: expects inputs feat, rois[, offset], got " + std::to_string(nbInputs));
        return false;
    }
    const nvinfer1::Dims& feat = dims[0];
    const nvinfer1::Dims& rois = dims[1];
    if (feat.nbDims != 4 || rois.nbDims != 2 || rois.d[1] != 5) {
        log_error("DeformRoIPool: feat must be [N,C,H,W] and rois [K,5], got " + dims_str(feat) + " " + dims_str(rois));
        return false;
    }
    p = siamattn_deform_roi_pool_params{};
    p.batch = static_cast<int32_t>(feat.d[0]);
    p.channels = static_cast<int32_t>(feat.d[1]);
    p.in_h = static_cast<int32_t>(feat.d[2]);
    p.in_w = static_cast<int32_t>(feat.d[3]);
    p.num_rois = static_cast<int32_t>(rois.d[0]);
    p.pooled_h = a.output_height;
    p.pooled_w = a.output_width;
    p.sampling_ratio = a.sampling_ratio;
    p.spatial_scale = a.spatial_scale;
    p.gamma = a.gamma;
    p.mode = a.mode;
    p.has_offset = nbInputs == 3;
    if (p.has_offset) {
        const nvinfer1::Dims& off = dims[2];
        if (off.nbDims != 4 || off.d[0] != rois.d[0] || off.d[1] != 2 || off.d[2] != p.pooled_h ||
            off.d[3] != p.pooled_w) {
            log_error("DeformRoIPool: offset " + dims_str(off) + " must be [K=" + std::to_string(rois.d[0]) + ",2," +
                      std::to_string(p.pooled_h) + "," + std::to_string(p.pooled_w) + "]");
            return false;
        }
    }
    if (siamattn_deform_roi_pool_validate(&p) != SIAMATTN_OK) {
        log_error(std::string("DeformRoIPool: ") + siamattn_last_error());
        return false;
    }
    return true;
}

bool deform_roi_pool_output_dims(const DeformRoIPoolAttrs& a, const nvinfer1::DimsExprs* inputs, int32_t nbInputs,
                                 nvinfer1::IExprBuilder& eb, nvinfer1::DimsExprs& out) {
    if (nbInputs < 2 || nbInputs > 3 || inputs[0].nbDims != 4 || inputs[1].nbDims != 2) {
        log_error("DeformRoIPool: expects feat [N,C,H,W], rois [K,5][, offset [K,2,PH,PW]] and one output");
        return false;
    }
    out.nbDims = 4;
    out.d[0] = inputs[1].d[0];
    out.d[1] = inputs[0].d[1];
    out.d[2] = eb.constant(a.output_height);
    out.d[3] = eb.constant(a.output_width);
    return true;
}

bool deform_roi_pool_format_ok(int32_t pos, DataType type, nvinfer1::TensorFormat format, DataType first_type) {
    if (format != nvinfer1::TensorFormat::kLINEAR || !is_float_type(type)) return false;
    if (pos == 0 || pos == 1) return true;
    return type == first_type;
}

int32_t deform_roi_pool_launch(const siamattn_deform_roi_pool_params& p, DataType feat_type, DataType rois_type,
                               const void* const* inputs, void* output, cudaStream_t stream) {
    const int32_t status = siamattn_deform_roi_pool_forward_cuda(&p, to_siamattn_dtype(feat_type),
                                                                 to_siamattn_dtype(rois_type), inputs[0], inputs[1],
                                                                 p.has_offset ? inputs[2] : nullptr, output, stream);
    if (status != SIAMATTN_OK) {
        log_error(std::string("DeformRoIPool enqueue: ") + siamattn_last_error());
        return -1;
    }
    return 0;
}

}  // namespace trt
}  // namespace siamattn
