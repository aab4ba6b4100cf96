// Helpers shared by the TensorRT plugins: logging through the logger TensorRT hands us, attribute parsing
// that accepts the integer/float widths different ONNX parsers use, the field lists of both glues, and the
// byte format of the IPluginV2 glue's serialisation.
#pragma once

#include <NvInferRuntime.h>
#include <NvInferVersion.h>

// Which TensorRT plugin interface this build implements, from the headers' version: IPluginV3 for TensorRT >= 10
// (deform_conv_plugin.*, deform_roi_pool_plugin.*, plugin_entry.cpp), IPluginV2DynamicExt + IPluginCreator for
// 8.5 / 8.6 / 9.x (the *_v2.* files, plugin_entry_v2.cpp). Both drive the same *_core.* logic and kernels.
#define SIAMATTN_TRT_V3 (NV_TENSORRT_MAJOR >= 10)
// ILoggerFinder / setLoggerFinder came with TensorRT 8.6 (8.5 headers have neither).
#define SIAMATTN_TRT_HAS_LOGGER_FINDER (NV_TENSORRT_MAJOR * 100 + NV_TENSORRT_MINOR >= 806)

#include <cstdint>
#include <cstring>
#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "siamattn_deform.h"
#include "siamattn_plugin_names.h"

namespace siamattn {
namespace trt {

// Logs through TensorRT's logger (set by setLoggerFinder) or stderr when none was provided.
void log_error(const std::string& msg) noexcept;
#if SIAMATTN_TRT_HAS_LOGGER_FINDER
void set_logger_finder(nvinfer1::ILoggerFinder* finder) noexcept;
#endif
// "<where>: exception: <what>" through log_error; falls back to plain stderr if even that fails (out of memory).
void log_exception(const char* where, const char* what) noexcept;

// The catch-and-report path of every noexcept entry point TensorRT calls: runs `body`, and if it throws,
// logs "<where>: <what>" through TensorRT's logger and returns `on_error` (the entry point's error value:
// -1, nullptr, false or 0), so an exception inside a plugin never terminates the user's process.
#if SIAMATTN_TRT_V3
constexpr nvinfer1::IPluginV3* kNoPlugin = nullptr;
#endif
constexpr const nvinfer1::PluginFieldCollection* kNoFields = nullptr;

template <typename R, typename Body>
R guarded(const char* where, R on_error, Body&& body) noexcept {
    try {
        return std::forward<Body>(body)();
    } catch (const std::exception& e) {
        log_exception(where, e.what());
    } catch (...) {
        log_exception(where, "unknown exception");
    }
    return on_error;
}

inline bool is_float_type(nvinfer1::DataType t) {
    return t == nvinfer1::DataType::kFLOAT || t == nvinfer1::DataType::kHALF;
}

inline int32_t to_siamattn_dtype(nvinfer1::DataType t) {
    return t == nvinfer1::DataType::kHALF ? SIAMATTN_FLOAT16 : SIAMATTN_FLOAT32;
}

// "[1,256,7,7]" for error messages.
inline std::string dims_str(const nvinfer1::Dims& d) {
    std::string s = "[";
    for (int32_t i = 0; i < d.nbDims; ++i) s += (i ? "," : "") + std::to_string(d.d[i]);
    return s + "]";
}

#if SIAMATTN_TRT_V3
// getCapabilityInterface for a plugin class that implements all three IPluginV3One capabilities itself.
template <typename Plugin>
nvinfer1::IPluginCapability* capability_of(Plugin* plugin, nvinfer1::PluginCapabilityType type) noexcept {
    switch (type) {
        case nvinfer1::PluginCapabilityType::kCORE: return static_cast<nvinfer1::IPluginV3OneCore*>(plugin);
        case nvinfer1::PluginCapabilityType::kBUILD: return static_cast<nvinfer1::IPluginV3OneBuild*>(plugin);
        case nvinfer1::PluginCapabilityType::kRUNTIME: return static_cast<nvinfer1::IPluginV3OneRuntime*>(plugin);
    }
    return nullptr;
}
#endif

// Integers of a field as int64 (ONNX parsers pass INT32 or INT64); false if the type is not an integer.
bool read_ints(const nvinfer1::PluginField& f, std::vector<int64_t>& out);
// A float field (FLOAT32/FLOAT64, or an integer given where a float is expected).
bool read_float(const nvinfer1::PluginField& f, float& out);

// Keeps a PluginFieldCollection and the storage its fields point to.
class FieldList {
public:
    void clear() {
        fields_.clear();
        ints_.clear();
        floats_.clear();
    }
    void add_ints(const char* name, const std::vector<int32_t>& v) {
        ints_.push_back(v);
        fields_.emplace_back(name, nullptr, nvinfer1::PluginFieldType::kINT32, static_cast<int32_t>(v.size()));
    }
    void add_float(const char* name, float v) {
        floats_.push_back(v);
        fields_.emplace_back(name, nullptr, nvinfer1::PluginFieldType::kFLOAT32, 1);
    }
    // Field data pointers are bound only here, after all adds, so vector growth cannot leave them dangling.
    const nvinfer1::PluginFieldCollection* collection() {
        size_t ii = 0, fi = 0;
        for (auto& f : fields_) {
            if (f.type == nvinfer1::PluginFieldType::kINT32)
                f.data = ints_[ii++].data();
            else
                f.data = &floats_[fi++];
        }
        pfc_.nbFields = static_cast<int32_t>(fields_.size());
        pfc_.fields = fields_.data();
        return &pfc_;
    }

private:
    std::vector<nvinfer1::PluginField> fields_;
    std::vector<std::vector<int32_t>> ints_;
    std::vector<float> floats_;
    nvinfer1::PluginFieldCollection pfc_{};
};

// Field-name list for a creator's getFieldNames().
class FieldNames {
public:
    void add(const char* name, nvinfer1::PluginFieldType type, int32_t length) {
        fields_.emplace_back(name, nullptr, type, length);
        pfc_.nbFields = static_cast<int32_t>(fields_.size());
        pfc_.fields = fields_.data();
    }
    const nvinfer1::PluginFieldCollection* collection() const { return &pfc_; }

private:
    std::vector<nvinfer1::PluginField> fields_;
    nvinfer1::PluginFieldCollection pfc_{};
};

// The IPluginV2 glue serialises its attributes itself: a 4-byte tag naming the plugin, a format version, then the
// values in a fixed order (native byte order: an engine is tied to its device anyway). Reading checks the tag, the
// version and the length, so a blob of another plugin or a truncated one is refused with a reason.
class ByteWriter {
public:
    explicit ByteWriter(void* buffer) : p_(static_cast<char*>(buffer)) {}
    template <typename T>
    void put(T v) {
        std::memcpy(p_, &v, sizeof(T));
        p_ += sizeof(T);
    }

private:
    char* p_;
};

class ByteReader {
public:
    ByteReader(const void* data, size_t length) : p_(static_cast<const char*>(data)), left_(data ? length : 0) {}
    template <typename T>
    bool get(T& v) {
        if (left_ < sizeof(T)) return false;
        std::memcpy(&v, p_, sizeof(T));
        p_ += sizeof(T);
        left_ -= sizeof(T);
        return true;
    }
    size_t left() const { return left_; }

private:
    const char* p_;
    size_t left_;
};

}  // namespace trt
}  // namespace siamattn
