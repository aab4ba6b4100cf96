// Helpers shared by the TensorRT plugins: logging through the logger TensorRT hands us, attribute parsing
// that accepts the integer/float widths different ONNX parsers use, and a base class for the IPluginV3 glue.
#pragma once

#include <NvInferRuntime.h>

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
void set_logger_finder(nvinfer1::ILoggerFinder* finder) noexcept;
// "<where>: exception: <what>" through log_error; falls back to plain stderr if even that fails (out of memory).
void log_exception(const char* where, const char* what) noexcept;

// The catch-and-report path of every noexcept entry point TensorRT calls: runs `body`, and if it throws,
// logs "<where>: <what>" through TensorRT's logger and returns `on_error` (the entry point's error value:
// -1, nullptr, false or 0), so an exception inside a plugin never terminates the user's process.
constexpr nvinfer1::IPluginV3* kNoPlugin = nullptr;
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

}  // namespace trt
}  // namespace siamattn
