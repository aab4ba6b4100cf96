// DeformConv plugin logic shared by both TensorRT glues (IPluginV3 for TensorRT >= 10 in deform_conv_plugin.*,
// IPluginV2DynamicExt for TensorRT 8.5 / 8.6 in deform_conv_plugin_v2.*): attributes, their parsing and
// serialisation, shape checks, the output-shape expression, formats, workspace bound and the kernel launch.
// Only types that both interface generations share (Dims, DimsExprs, IExprBuilder, PluginField, DataType).
#pragma once

#include <array>
#include <string>

#include "plugin_common.h"

namespace siamattn {
namespace trt {

struct DeformConvAttrs {
    std::array<int32_t, 2> dilations{1, 1};
    int32_t group = 1;
    std::array<int32_t, 2> kernel_shape{0, 0};  // 0 = not given (taken from W)
    int32_t offset_group = 1;
    std::array<int32_t, 4> pads{0, 0, 0, 0};  // h_begin, w_begin, h_end, w_end
    std::array<int32_t, 2> strides{1, 1};
};

constexpr int32_t kDeformConvMinInputs = 3, kDeformConvMaxInputs = 5;

// ONNX attributes (or serialised fields) -> attrs; false with a logged reason naming the attribute. `name` is the
// plugin name the messages start with (DeformConv or SiamAttnDeformConv).
bool parse_deform_conv_fields(const std::string& name, const nvinfer1::PluginFieldCollection* fc, DeformConvAttrs& a);
// The creator's getFieldNames() list, and the fields a plugin serialises (V3) / reads back.
void deform_conv_field_names(FieldNames& names);
void deform_conv_fields(const DeformConvAttrs& a, FieldList& out);
// Parameters of the C API for concrete dims; false (with a logged reason) if they are inconsistent. Inputs 0..2 are
// X, W, offset; the optional ones are told apart by rank (B 1-D, mask 4-D).
bool deform_conv_params(const std::string& name, const DeformConvAttrs& a, const nvinfer1::Dims* dims,
                        int32_t nbInputs, siamattn_deform_conv_params& p, int32_t* bias_index, int32_t* mask_index);
// Output [N, M, oH, oW] as shape expressions of the inputs.
void deform_conv_output_dims(const DeformConvAttrs& a, const nvinfer1::DimsExprs* inputs, nvinfer1::IExprBuilder& eb,
                             nvinfer1::DimsExprs& out);
// Linear NCHW; FP32 or FP16, the same for every tensor (bias and mask included). `types[i]`/`formats[i]` of inOut.
bool deform_conv_format_ok(int32_t pos, nvinfer1::DataType type, nvinfer1::TensorFormat format,
                           nvinfer1::DataType first_type);
// Workspace bound for every shape up to the given (profile max) dims; 0 when they are inconsistent.
size_t deform_conv_workspace_bound(const std::string& name, const DeformConvAttrs& a, const nvinfer1::Dims* dims,
                                   int32_t nbInputs, nvinfer1::DataType type);
// The CUDA forward on validated parameters; 0 or -1 with a logged reason.
int32_t deform_conv_launch(const std::string& name, const siamattn_deform_conv_params& p, int32_t bias_index,
                           int32_t mask_index, nvinfer1::DataType type, const void* const* inputs, void* output,
                           void* workspace, cudaStream_t stream);

}  // namespace trt
}  // namespace siamattn
