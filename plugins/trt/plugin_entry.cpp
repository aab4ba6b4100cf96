// Entry points TensorRT looks up in a plugin library (IPluginRegistry::loadLibrary, trtexec --dynamicPlugins /
// --staticPlugins): getCreators and setLoggerFinder. Written by hand instead of REGISTER_TENSORRT_PLUGIN,
// which needs a TensorRT library at link time; this library links only cudart.
#include <cstdio>
#include <string>

#include "deform_conv_plugin.h"
#include "deform_roi_pool_plugin.h"
#include "plugin_common.h"

namespace {
nvinfer1::ILoggerFinder* g_logger_finder = nullptr;
}  // namespace

namespace siamattn {
namespace trt {

void set_logger_finder(nvinfer1::ILoggerFinder* finder) noexcept { g_logger_finder = finder; }

void log_error(const std::string& msg) noexcept {
    try {
        const std::string line = "[siamattn plugins] " + msg;
        nvinfer1::ILogger* logger = g_logger_finder != nullptr ? g_logger_finder->findLogger() : nullptr;
        if (logger != nullptr)
            logger->log(nvinfer1::ILogger::Severity::kERROR, line.c_str());
        else
            std::fprintf(stderr, "%s\n", line.c_str());
    } catch (...) {  // no memory for the line: say it without allocating
        std::fprintf(stderr, "[siamattn plugins] %s\n", msg.c_str());
    }
}

void log_exception(const char* where, const char* what) noexcept {
    try {
        log_error(std::string(where) + ": exception: " + what);
    } catch (...) {
        std::fprintf(stderr, "[siamattn plugins] %s: exception: %s\n", where, what);
    }
}

bool read_ints(const nvinfer1::PluginField& f, std::vector<int64_t>& out) {
    out.clear();
    if (f.data == nullptr || f.length < 0) return false;
    for (int32_t i = 0; i < f.length; ++i) {
        switch (f.type) {
            case nvinfer1::PluginFieldType::kINT32: out.push_back(static_cast<const int32_t*>(f.data)[i]); break;
            case nvinfer1::PluginFieldType::kINT64: out.push_back(static_cast<const int64_t*>(f.data)[i]); break;
            case nvinfer1::PluginFieldType::kINT16: out.push_back(static_cast<const int16_t*>(f.data)[i]); break;
            case nvinfer1::PluginFieldType::kINT8: out.push_back(static_cast<const int8_t*>(f.data)[i]); break;
            default: return false;
        }
    }
    return true;
}

bool read_float(const nvinfer1::PluginField& f, float& out) {
    if (f.data == nullptr || f.length != 1) return false;
    switch (f.type) {
        case nvinfer1::PluginFieldType::kFLOAT32: out = *static_cast<const float*>(f.data); return true;
        case nvinfer1::PluginFieldType::kFLOAT64: out = static_cast<float>(*static_cast<const double*>(f.data)); return true;
        default: {
            std::vector<int64_t> v;
            if (!read_ints(f, v) || v.size() != 1) return false;
            out = static_cast<float>(v[0]);
            return true;
        }
    }
}

}  // namespace trt
}  // namespace siamattn

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
    return "plugins=DeformConv/1/,SiamAttnDeformConv/1/,DeformRoIPool/1/ " SIAMATTN_BUILD_INFO;
}

}  // extern "C"
