// DeformRoIPool plugin logic shared by both TensorRT glues (IPluginV3 in deform_roi_pool_plugin.*, IPluginV2DynamicExt
// for TensorRT 8.5 / 8.6 in deform_roi_pool_plugin_v2.*): attributes, parsing, serialised fields, shape checks,
// output shape, formats and the kernel launch.
#pragma once

#include "plugin_common.h"

namespace siamattn {
namespace trt {

struct DeformRoIPoolAttrs {
    int32_t output_height = 7;
    int32_t output_width = 7;
    float spatial_scale = 1.0f;
    int32_t sampling_ratio = 0;
    float gamma = 0.1f;
    int32_t mode = SIAMATTN_ROI_POOL_MMCV;
};

bool parse_deform_roi_pool_fields(const nvinfer1::PluginFieldCollection* fc, DeformRoIPoolAttrs& a);
void deform_roi_pool_field_names(FieldNames& names);
void deform_roi_pool_fields(const DeformRoIPoolAttrs& a, FieldList& out);
bool deform_roi_pool_params(const DeformRoIPoolAttrs& a, const nvinfer1::Dims* dims, int32_t nbInputs,
                            siamattn_deform_roi_pool_params& p);
// false (logged) when the inputs are not feat [N,C,H,W], rois [K,5][, offset]; else out = [K, C, PH, PW].
bool deform_roi_pool_output_dims(const DeformRoIPoolAttrs& a, const nvinfer1::DimsExprs* inputs, int32_t nbInputs,
                                 nvinfer1::IExprBuilder& eb, nvinfer1::DimsExprs& out);
// Linear layout. feat, offset and the output share one type (FP32 or FP16); rois may be FP32 with FP16
// features: RoI corners are pixel coordinates, and FP16 has only 1/8 px steps at 128..255 px.
bool deform_roi_pool_format_ok(int32_t pos, nvinfer1::DataType type, nvinfer1::TensorFormat format,
                               nvinfer1::DataType first_type);
int32_t deform_roi_pool_launch(const siamattn_deform_roi_pool_params& p, nvinfer1::DataType feat_type,
                               nvinfer1::DataType rois_type, const void* const* inputs, void* output,
                               cudaStream_t stream);

}  // namespace trt
}  // namespace siamattn
