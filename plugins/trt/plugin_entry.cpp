// Entry points of IPluginV3 builds (TensorRT >= 10 headers; 8.x builds use plugin_entry_v2.cpp), which
// TensorRT looks up in a plugin library (IPluginRegistry::loadLibrary, trtexec --dynamicPlugins /
// --staticPlugins): getCreators and setLoggerFinder. Written by hand instead of REGISTER_TENSORRT_PLUGIN,
// which needs a TensorRT library at link time; this library links only cudart.
#include "deform_conv_plugin.h"
#include "deform_roi_pool_plugin.h"
#include "plugin_common.h"

namespace {
// DeformConv: the name TensorRT-RTX's ONNX parser falls back to for a standard ONNX DeformConv node.
// SiamAttnDeformConv: the same plugin under a name no parser imports natively, for full TensorRT, which
// otherwise maps standard DeformConv to its own plugin (symmetric pads only, FP16 coordinates).
siamattn::trt::DeformConvCreator g_deform_conv(SIAMATTN_DEFORM_CONV_NAME, SIAMATTN_DEFORM_CONV_VERSION);
siamattn::trt::DeformConvCreator g_siamattn_deform_conv(SIAMATTN_CUSTOM_DEFORM_CONV_NAME,
                                                      SIAMATTN_CUSTOM_DEFORM_CONV_VERSION);
siamattn::trt::DeformRoIPoolCreator g_deform_roi_pool;
nvinfer1::IPluginCreatorInterface* g_creators[] = {&g_deform_conv, &g_siamattn_deform_conv, &g_deform_roi_pool};
}  // namespace

#ifndef SIAMATTN_BUILD_INFO
#define SIAMATTN_BUILD_INFO "impl=tensorrt"
#endif

extern "C" {

__attribute__((visibility("default"))) void setLoggerFinder(nvinfer1::ILoggerFinder* finder) {
    siamattn::trt::set_logger_finder(finder);
}

__attribute__((visibility("default"))) nvinfer1::IPluginCreatorInterface* const* getCreators(int32_t& nbCreators) {
    nbCreators = static_cast<int32_t>(sizeof(g_creators) / sizeof(g_creators[0]));
    return g_creators;
}

// For 'siamattn plugins info' (ctypes cannot call the C++ creators): name/version/namespace list + build info.
__attribute__((visibility("default"))) const char* siamattn_trt_plugins_info(void) {
    return "plugins=DeformConv/1/,SiamAttnDeformConv/1/,DeformRoIPool/1/ interface=IPluginV3 " SIAMATTN_BUILD_INFO;
}

}  // extern "C"
