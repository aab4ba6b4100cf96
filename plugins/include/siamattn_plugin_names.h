// Names, versions and namespace of the siamattn TensorRT plugins: the one definition that the C++ plugins
// (plugins/trt/) and the Python side (siamattn/plugins/names.py parses this file at import; the exporter
// writes ONNX nodes with these op types) both use. Keep one plain `#define NAME "value"` per line.
#pragma once

// Namespace every creator registers under ("" = the global one, where TensorRT's ONNX parser looks).
#define SIAMATTN_PLUGIN_NAMESPACE ""
// ONNX domain of our custom nodes (Python side only: TensorRT's parser looks plugins up by op type).
#define SIAMATTN_PLUGIN_ONNX_DOMAIN "siamattn"

// DeformConv2d under the standard ONNX op name: TensorRT-RTX's parser falls back to a plugin of this name.
#define SIAMATTN_DEFORM_CONV_NAME "DeformConv"
#define SIAMATTN_DEFORM_CONV_VERSION "1"
// The same plugin under a name no parser imports natively (full TensorRT has its own DeformConv).
#define SIAMATTN_CUSTOM_DEFORM_CONV_NAME "SiamAttnDeformConv"
#define SIAMATTN_CUSTOM_DEFORM_CONV_VERSION "1"
// Deformable RoI pooling (mmcv semantics).
#define SIAMATTN_DEFORM_ROI_POOL_NAME "DeformRoIPool"
#define SIAMATTN_DEFORM_ROI_POOL_VERSION "1"
