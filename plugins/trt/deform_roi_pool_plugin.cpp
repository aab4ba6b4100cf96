#include "deform_roi_pool_plugin.h"

#include <cmath>
#include <exception>
#include <vector>

namespace siamattn {
namespace trt {

using nvinfer1::DataType;
using nvinfer1::PluginFieldType;

nvinfer1::IPluginCapability* DeformRoIPoolPlugin::getCapabilityInterface(nvinfer1::PluginCapabilityType type) noexcept {
    return capability_of(this, type);
}

nvinfer1::IPluginV3* DeformRoIPoolPlugin::clone() noexcept {
    return guarded("DeformRoIPoolPlugin::clone", kNoPlugin, [&]() -> nvinfer1::IPluginV3* {
        return new DeformRoIPoolPlugin(attrs_);
    });
}

bool DeformRoIPoolPlugin::make_params(const nvinfer1::Dims* dims, int32_t nbInputs,
                                      siamattn_deform_roi_pool_params& p) const {
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
    p.pooled_h = attrs_.output_height;
    p.pooled_w = attrs_.output_width;
    p.sampling_ratio = attrs_.sampling_ratio;
    p.spatial_scale = attrs_.spatial_scale;
    p.gamma = attrs_.gamma;
    p.mode = attrs_.mode;
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

int32_t DeformRoIPoolPlugin::configurePlugin(const nvinfer1::DynamicPluginTensorDesc* in, int32_t nbInputs,
                                             const nvinfer1::DynamicPluginTensorDesc*, int32_t nbOutputs) noexcept {
    return guarded("DeformRoIPoolPlugin::configurePlugin", int32_t{-1}, [&]() -> int32_t {
        if (nbOutputs != 1 || nbInputs < 2 || nbInputs > 3) return -1;
        nvinfer1::Dims dims[3];
        for (int32_t i = 0; i < nbInputs; ++i) dims[i] = in[i].max;
        siamattn_deform_roi_pool_params p;
        return make_params(dims, nbInputs, p) ? 0 : -1;
    });
}

int32_t DeformRoIPoolPlugin::getOutputDataTypes(DataType* outputTypes, int32_t nbOutputs, const DataType* inputTypes,
                                                int32_t nbInputs) const noexcept {
    return guarded("DeformRoIPoolPlugin::getOutputDataTypes", int32_t{-1}, [&]() -> int32_t {
        if (nbOutputs != 1 || nbInputs < 1) return -1;
        outputTypes[0] = inputTypes[0];
        return 0;
    });
}

int32_t DeformRoIPoolPlugin::getOutputShapes(const nvinfer1::DimsExprs* inputs, int32_t nbInputs,
                                             const nvinfer1::DimsExprs*, int32_t, nvinfer1::DimsExprs* outputs,
                                             int32_t nbOutputs, nvinfer1::IExprBuilder& eb) noexcept {
    return guarded("DeformRoIPoolPlugin::getOutputShapes", int32_t{-1}, [&]() -> int32_t {
        if (nbOutputs != 1 || nbInputs < 2 || nbInputs > 3 || inputs[0].nbDims != 4 || inputs[1].nbDims != 2) {
            log_error("DeformRoIPool: expects feat [N,C,H,W], rois [K,5][, offset [K,2,PH,PW]] and one output");
            return -1;
        }
        outputs[0].nbDims = 4;
        outputs[0].d[0] = inputs[1].d[0];
        outputs[0].d[1] = inputs[0].d[1];
        outputs[0].d[2] = eb.constant(attrs_.output_height);
        outputs[0].d[3] = eb.constant(attrs_.output_width);
        return 0;
    });
}

// Linear layout. feat, offset and the output share one type (FP32 or FP16); rois may be FP32 with FP16
// features: RoI corners are pixel coordinates, and FP16 has only 1/8 px steps at 128..255 px.
bool DeformRoIPoolPlugin::supportsFormatCombination(int32_t pos, const nvinfer1::DynamicPluginTensorDesc* inOut,
                                                    int32_t nbInputs, int32_t nbOutputs) noexcept {
    return guarded("DeformRoIPoolPlugin::supportsFormatCombination", false, [&]() -> bool {
        if (pos < 0 || pos >= nbInputs + nbOutputs) return false;
        const nvinfer1::PluginTensorDesc& d = inOut[pos].desc;
        if (d.format != nvinfer1::TensorFormat::kLINEAR || !is_float_type(d.type)) return false;
        if (pos == 0 || pos == 1) return true;
        return d.type == inOut[0].desc.type;
    });
}

int32_t DeformRoIPoolPlugin::onShapeChange(const nvinfer1::PluginTensorDesc* in, int32_t nbInputs,
                                           const nvinfer1::PluginTensorDesc*, int32_t nbOutputs) noexcept {
    return guarded("DeformRoIPoolPlugin::onShapeChange", int32_t{-1}, [&]() -> int32_t {
        shapes_ok_ = false;
        if (nbOutputs != 1 || nbInputs < 2 || nbInputs > 3) return -1;
        nvinfer1::Dims dims[3];
        for (int32_t i = 0; i < nbInputs; ++i) dims[i] = in[i].dims;
        if (!make_params(dims, nbInputs, params_)) return -1;
        shapes_ok_ = true;
        return 0;
    });
}

int32_t DeformRoIPoolPlugin::enqueue(const nvinfer1::PluginTensorDesc* inputDesc, const nvinfer1::PluginTensorDesc*,
                                     const void* const* inputs, void* const* outputs, void*,
                                     cudaStream_t stream) noexcept {
    return guarded("DeformRoIPoolPlugin::enqueue", int32_t{-1}, [&]() -> int32_t {
        if (!shapes_ok_) {
            log_error("DeformRoIPool enqueue: called without a successful onShapeChange");
            return -1;
        }
        const int32_t status = siamattn_deform_roi_pool_forward_cuda(
            &params_, to_siamattn_dtype(inputDesc[0].type), to_siamattn_dtype(inputDesc[1].type), inputs[0], inputs[1],
            params_.has_offset ? inputs[2] : nullptr, outputs[0], stream);
        if (status != SIAMATTN_OK) {
            log_error(std::string("DeformRoIPool enqueue: ") + siamattn_last_error());
            return -1;
        }
        return 0;
    });
}

nvinfer1::IPluginV3* DeformRoIPoolPlugin::attachToContext(nvinfer1::IPluginResourceContext*) noexcept {
    return clone();  // guarded itself
}

const nvinfer1::PluginFieldCollection* DeformRoIPoolPlugin::getFieldsToSerialize() noexcept {
    return guarded("DeformRoIPoolPlugin::getFieldsToSerialize", kNoFields, [&]() -> const nvinfer1::PluginFieldCollection* {
        serialized_.clear();
        serialized_.add_ints("output_height", {attrs_.output_height});
        serialized_.add_ints("output_width", {attrs_.output_width});
        serialized_.add_float("spatial_scale", attrs_.spatial_scale);
        serialized_.add_ints("sampling_ratio", {attrs_.sampling_ratio});
        serialized_.add_float("gamma", attrs_.gamma);
        serialized_.add_ints("mode", {attrs_.mode});
        return serialized_.collection();
    });
}

DeformRoIPoolCreator::DeformRoIPoolCreator() {
    names_.add("output_height", PluginFieldType::kINT32, 1);
    names_.add("output_width", PluginFieldType::kINT32, 1);
    names_.add("spatial_scale", PluginFieldType::kFLOAT32, 1);
    names_.add("sampling_ratio", PluginFieldType::kINT32, 1);
    names_.add("gamma", PluginFieldType::kFLOAT32, 1);
    names_.add("mode", PluginFieldType::kINT32, 1);
}

nvinfer1::IPluginV3* DeformRoIPoolCreator::createPlugin(const char*, const nvinfer1::PluginFieldCollection* fc,
                                                        nvinfer1::TensorRTPhase) noexcept {
    return guarded("DeformRoIPoolCreator::createPlugin", kNoPlugin, [&]() -> nvinfer1::IPluginV3* {
        DeformRoIPoolAttrs a;
        std::vector<int64_t> v;
        for (int32_t i = 0; fc != nullptr && i < fc->nbFields; ++i) {
            const nvinfer1::PluginField& f = fc->fields[i];
            const std::string field = f.name != nullptr ? f.name : "";
            auto fail_field = [&](const char* expect) {
                log_error("DeformRoIPool: attribute '" + field + "' must be " + expect);
                return nullptr;
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
                return nullptr;
            }
        }
        return new DeformRoIPoolPlugin(a);
    });
}

}  // namespace trt
}  // namespace siamattn
