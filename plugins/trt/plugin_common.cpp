// Logging and attribute reading shared by both plugin glues (IPluginV3 and IPluginV2DynamicExt).
#include <cstdio>
#include <string>

#include "plugin_common.h"

namespace {
#if SIAMATTN_TRT_HAS_LOGGER_FINDER
nvinfer1::ILoggerFinder* g_logger_finder = nullptr;
#endif
}  // namespace

namespace siamattn {
namespace trt {

#if SIAMATTN_TRT_HAS_LOGGER_FINDER
void set_logger_finder(nvinfer1::ILoggerFinder* finder) noexcept { g_logger_finder = finder; }
#endif

void log_error(const std::string& msg) noexcept {
    try {
        const std::string line = "[siamattn plugins] " + msg;
#if SIAMATTN_TRT_HAS_LOGGER_FINDER
        nvinfer1::ILogger* logger = g_logger_finder != nullptr ? g_logger_finder->findLogger() : nullptr;
#else  // TensorRT 8.5 hands a plugin library no logger: stderr, which trtexec and Python show
        nvinfer1::ILogger* logger = nullptr;
#endif
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
#if NV_TENSORRT_MAJOR >= 10  // INT64 fields came with TensorRT 10 (8.x parsers pass INT32)
            case nvinfer1::PluginFieldType::kINT64: out.push_back(static_cast<const int64_t*>(f.data)[i]); break;
#endif
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
