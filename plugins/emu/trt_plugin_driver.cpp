// Plays TensorRT's part for our plugin library, on the CUDA-on-CPU emulation: finds the creators through
// getCreators(), creates each plugin from ONNX-style attributes (build phase), asks for output types, formats and
// the workspace size, serialises the fields and re-creates the plugin from them (what deserialising an engine
// does), attaches it to a context, calls onShapeChange and enqueue with a workspace of exactly the size the
// build phase asked for, and compares the output with the CPU library run on parameters written out here by
// hand from the same attributes. This is the plugin glue between TensorRT and the kernels, which TensorRT-RTX's
// CPU-only engine builds never execute. Exit status 0 = every case agrees.
#include <NvInferRuntime.h>
#include <NvInferVersion.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "host_tensor.h"
#include "siamattn_deform.h"
#include "siamattn_plugin_names.h"

// Which glue the headers selected (plugins/trt/plugin_common.h): IPluginV3 for TensorRT >= 10, else
// IPluginV2DynamicExt (8.6 / 9.x headers; 8.5 has no ILoggerFinder to count the plugins' logged errors with).
#define DRIVER_V3 (NV_TENSORRT_MAJOR >= 10)
#if DRIVER_V3
extern "C" nvinfer1::IPluginCreatorInterface* const* getCreators(int32_t& nbCreators);
#else
extern "C" nvinfer1::IPluginCreator* const* getPluginCreators(int32_t& nbCreators);
#endif
extern "C" void setLoggerFinder(nvinfer1::ILoggerFinder* finder);
extern "C" const char* siamattn_trt_plugins_info(void);

namespace {

using nvinfer1::DataType;
using nvinfer1::PluginField;
using nvinfer1::PluginFieldType;

std::mt19937 rng(4321);

// Stands in for TensorRT's logger, handed to the library through setLoggerFinder as TensorRT does.
class Logger : public nvinfer1::ILogger {
public:
    void log(Severity severity, const char* msg) noexcept override {
        last = msg;
        if (severity <= Severity::kERROR) ++errors;
    }
    std::string last;
    int errors = 0;
};

class LoggerFinder : public nvinfer1::ILoggerFinder {
public:
    nvinfer1::ILogger* findLogger() override { return &logger; }
    Logger logger;
};

LoggerFinder g_finder;

struct HostTensor {
    std::vector<int64_t> shape;
    std::vector<float> values;  // FP32 values; FP16 tensors hold values already rounded to half
    size_t size() const { return values.size(); }
};

HostTensor random_tensor(std::vector<int64_t> shape, float scale, float shift, DataType type) {
    size_t n = 1;
    for (int64_t d : shape) n *= static_cast<size_t>(d);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    HostTensor t{std::move(shape), std::vector<float>(n)};
    for (float& v : t.values) {
        v = shift + scale * dist(rng);
        if (type == DataType::kHALF) v = siamattn_half_to_float(siamattn_float_to_half(v));
    }
    return t;
}

int32_t dtype_of(DataType type) { return type == DataType::kHALF ? SIAMATTN_FLOAT16 : SIAMATTN_FLOAT32; }

std::vector<unsigned char> encode(const std::vector<float>& v, DataType type) {
    return siamattn::encode(v, dtype_of(type));
}

nvinfer1::Dims dims_of(const std::vector<int64_t>& shape) {
    nvinfer1::Dims d{};
    d.nbDims = static_cast<int32_t>(shape.size());
    for (size_t i = 0; i < shape.size(); ++i) d.d[i] = shape[i];
    return d;
}

// Attribute storage for a PluginFieldCollection (ints as INT64 or INT32, as different ONNX parsers pass them).
class Fields {
public:
    void ints(const char* name, std::vector<int64_t> v, bool as_int32) {
        if (as_int32 || !DRIVER_V3) {  // TensorRT 8.x has no INT64 fields
            i32_.emplace_back(v.begin(), v.end());
            fields_.emplace_back(name, nullptr, PluginFieldType::kINT32, static_cast<int32_t>(v.size()));
        } else {
            i64_.push_back(std::move(v));
#if DRIVER_V3
            fields_.emplace_back(name, nullptr, PluginFieldType::kINT64, static_cast<int32_t>(i64_.back().size()));
#endif
        }
    }
    void real(const char* name, float v) {
        f32_.push_back(v);
        fields_.emplace_back(name, nullptr, PluginFieldType::kFLOAT32, 1);
    }
    const nvinfer1::PluginFieldCollection* collection() {
        size_t a = 0, b = 0, c = 0;
        for (PluginField& f : fields_) {
            if (f.type == PluginFieldType::kINT32) f.data = i32_[a++].data();
            else if (f.type != PluginFieldType::kFLOAT32) f.data = i64_[b++].data();  // INT64 (TensorRT >= 10)
            else f.data = &f32_[c++];
        }
        pfc_.nbFields = static_cast<int32_t>(fields_.size());
        pfc_.fields = fields_.data();
        return &pfc_;
    }

private:
    std::vector<PluginField> fields_;
    std::vector<std::vector<int32_t>> i32_;
    std::vector<std::vector<int64_t>> i64_;
    std::vector<float> f32_;
    nvinfer1::PluginFieldCollection pfc_{};
};

struct Result {
    bool ok;
    std::string why;
};

#if DRIVER_V3
nvinfer1::IPluginCreatorV3One* find_creator(const char* name) {
    int32_t n = 0;
    nvinfer1::IPluginCreatorInterface* const* creators = getCreators(n);
    for (int32_t i = 0; i < n; ++i) {
        if (std::strcmp(creators[i]->getInterfaceInfo().kind, "PLUGIN CREATOR_V3ONE") != 0) continue;
        auto* c = static_cast<nvinfer1::IPluginCreatorV3One*>(creators[i]);
        if (std::strcmp(c->getPluginName(), name) == 0 && std::strcmp(c->getPluginNamespace(), SIAMATTN_PLUGIN_NAMESPACE) == 0)
            return c;
    }
    return nullptr;
}

template <typename Cap>
Cap* capability(nvinfer1::IPluginV3* plugin, nvinfer1::PluginCapabilityType type) {
    return plugin ? static_cast<Cap*>(plugin->getCapabilityInterface(type)) : nullptr;
}

// What TensorRT holds of one plugin node after building and loading an engine: the plugin attached to an
// execution context and the workspace size its build phase asked for.
struct ContextPlugin {
    nvinfer1::IPluginV3* ctx = nullptr;  // owned by the caller
    nvinfer1::IPluginV3OneRuntime* rt = nullptr;
    size_t ws_bytes = 0;
};

// The build phase TensorRT runs on `din` (the inputs, then the one output: shapes with their profile ranges),
// then engine serialisation and deserialisation (the plugin re-created from its serialised fields alone) and
// attachToContext.
Result build_and_attach(const char* plugin_name, Fields& onnx_fields, std::vector<nvinfer1::DynamicPluginTensorDesc>& din,
                        DataType type, ContextPlugin& out) {
    using nvinfer1::PluginCapabilityType;
    nvinfer1::IPluginCreatorV3One* creator = find_creator(plugin_name);
    if (creator == nullptr) return {false, "no creator"};
    nvinfer1::IPluginV3* built = creator->createPlugin("node", onnx_fields.collection(), nvinfer1::TensorRTPhase::kBUILD);
    auto* build = capability<nvinfer1::IPluginV3OneBuild>(built, PluginCapabilityType::kBUILD);
    auto* build_rt = capability<nvinfer1::IPluginV3OneRuntime>(built, PluginCapabilityType::kRUNTIME);
    if (build == nullptr || build_rt == nullptr) return {false, "createPlugin(kBUILD) failed"};
    const int32_t nb = static_cast<int32_t>(din.size()) - 1;
    std::vector<DataType> in_types(nb, type);
    DataType out_type{};
    if (build->getOutputDataTypes(&out_type, 1, in_types.data(), nb) != 0 || out_type != type)
        return {false, "getOutputDataTypes"};
    for (int32_t pos = 0; pos <= nb; ++pos)
        if (!build->supportsFormatCombination(pos, din.data(), nb, 1)) return {false, "format rejected at pos " + std::to_string(pos)};
    if (build->configurePlugin(din.data(), nb, &din[nb], 1) != 0) return {false, "configurePlugin"};
    out.ws_bytes = build->getWorkspaceSize(din.data(), nb, &din[nb], 1);

    const nvinfer1::PluginFieldCollection* saved = build_rt->getFieldsToSerialize();
    if (saved == nullptr) return {false, "getFieldsToSerialize"};
    nvinfer1::IPluginV3* loaded = creator->createPlugin("node", saved, nvinfer1::TensorRTPhase::kRUNTIME);
    delete built;
    auto* loaded_rt = capability<nvinfer1::IPluginV3OneRuntime>(loaded, PluginCapabilityType::kRUNTIME);
    if (loaded_rt == nullptr) return {false, "createPlugin(kRUNTIME) from the serialised fields failed"};
    out.ctx = loaded_rt->attachToContext(nullptr);
    delete loaded;
    out.rt = capability<nvinfer1::IPluginV3OneRuntime>(out.ctx, PluginCapabilityType::kRUNTIME);
    if (out.rt == nullptr) return {false, "attachToContext"};
    return {true, ""};
}

// Everything TensorRT would do with one plugin node, then enqueue; `out` receives the output's bytes.
Result run_plugin(const char* plugin_name, Fields& onnx_fields, const std::vector<HostTensor>& inputs, DataType type,
                  const std::vector<int64_t>& expect_shape, std::vector<unsigned char>& out) {
    const int32_t nb = static_cast<int32_t>(inputs.size());
    std::vector<nvinfer1::DynamicPluginTensorDesc> din(nb + 1);
    for (int32_t i = 0; i <= nb; ++i) {
        const std::vector<int64_t>& shape = i < nb ? inputs[i].shape : expect_shape;
        din[i].desc = {dims_of(shape), type, nvinfer1::TensorFormat::kLINEAR, 1.0f};
        din[i].min = din[i].max = din[i].opt = din[i].desc.dims;
    }
    ContextPlugin plugin;
    if (Result made = build_and_attach(plugin_name, onnx_fields, din, type, plugin); !made.ok) return made;
    nvinfer1::IPluginV3* ctx = plugin.ctx;
    nvinfer1::IPluginV3OneRuntime* rt = plugin.rt;
    const size_t ws_bytes = plugin.ws_bytes;

    std::vector<nvinfer1::PluginTensorDesc> desc(nb + 1);
    for (int32_t i = 0; i <= nb; ++i) desc[i] = din[i].desc;
    Result result{true, ""};
    std::vector<void*> dev(nb, nullptr);
    void* dev_out = nullptr;
    void* workspace = nullptr;
    size_t out_elems = 1;
    for (int64_t d : expect_shape) out_elems *= static_cast<size_t>(d);
    out.assign(out_elems * (type == DataType::kHALF ? 2 : 4), 0);
    const int errors_before = g_finder.logger.errors;
    if (rt->enqueue(desc.data(), &desc[nb], nullptr, nullptr, nullptr, nullptr) == 0 ||
        g_finder.logger.errors != errors_before + 1 ||
        g_finder.logger.last.find("without a successful onShapeChange") == std::string::npos) {
        result = {false, "enqueue before onShapeChange did not fail with a logged reason"};
    } else if (rt->onShapeChange(desc.data(), nb, &desc[nb], 1) != 0) {
        result = {false, "onShapeChange"};
    } else {
        for (int32_t i = 0; i < nb; ++i) {
            const std::vector<unsigned char> bytes = encode(inputs[i].values, type);
            cudaMalloc(&dev[i], bytes.size());
            cudaMemcpy(dev[i], bytes.data(), bytes.size(), cudaMemcpyHostToDevice);
        }
        cudaMalloc(&dev_out, out.size());
        cudaMalloc(&workspace, ws_bytes);  // exactly what the build phase asked for: AddressSanitizer guards the end
        const int32_t st = rt->enqueue(desc.data(), &desc[nb], dev.data(), &dev_out, workspace, nullptr);
        if (st != 0) result = {false, "enqueue returned " + std::to_string(st)};
        cudaMemcpy(out.data(), dev_out, out.size(), cudaMemcpyDeviceToHost);
    }
    for (void* p : dev) cudaFree(p);
    cudaFree(dev_out);
    cudaFree(workspace);
    delete ctx;
    return result;
}

// One plugin node of a batch graph (docs/DESIGN.md "Many targets"): built for a range of shapes (the target axis
// is -1 at build time, with the optimisation profile's min and max), then run on one execution context at several
// shapes, each with onShapeChange and enqueue and the one workspace the build phase asked for (sized for the max).
struct ShapeRun {
    std::vector<HostTensor> inputs;
    std::vector<int64_t> out_shape;
    std::vector<unsigned char> out;
};

Result run_plugin_ranges(const char* plugin_name, Fields& onnx_fields, const std::vector<std::vector<int64_t>>& min,
                         const std::vector<std::vector<int64_t>>& max, DataType type, std::vector<ShapeRun>& runs) {
    const int32_t nb = static_cast<int32_t>(min.size()) - 1;
    std::vector<nvinfer1::DynamicPluginTensorDesc> din(nb + 1);
    for (int32_t i = 0; i <= nb; ++i) {
        std::vector<int64_t> symbolic = min[i];
        for (size_t k = 0; k < symbolic.size(); ++k)
            if (min[i][k] != max[i][k]) symbolic[k] = -1;
        din[i].desc = {dims_of(symbolic), type, nvinfer1::TensorFormat::kLINEAR, 1.0f};
        din[i].min = dims_of(min[i]);
        din[i].max = din[i].opt = dims_of(max[i]);
    }
    ContextPlugin plugin;
    if (Result made = build_and_attach(plugin_name, onnx_fields, din, type, plugin); !made.ok) return made;
    nvinfer1::IPluginV3* ctx = plugin.ctx;
    nvinfer1::IPluginV3OneRuntime* rt = plugin.rt;
    const size_t ws_bytes = plugin.ws_bytes;
    void* workspace = nullptr;
    cudaMalloc(&workspace, ws_bytes);  // exactly what the build phase asked for: AddressSanitizer guards the end
    Result result{true, ""};
    for (ShapeRun& run : runs) {
        std::vector<nvinfer1::PluginTensorDesc> desc(nb + 1);
        for (int32_t i = 0; i <= nb; ++i)
            desc[i] = {dims_of(i < nb ? run.inputs[i].shape : run.out_shape), type, nvinfer1::TensorFormat::kLINEAR, 1.0f};
        if (rt->onShapeChange(desc.data(), nb, &desc[nb], 1) != 0) {
            result = {false, "onShapeChange"};
            break;
        }
        std::vector<void*> dev(nb, nullptr);
        for (int32_t i = 0; i < nb; ++i) {
            const std::vector<unsigned char> bytes = encode(run.inputs[i].values, type);
            cudaMalloc(&dev[i], bytes.size());
            cudaMemcpy(dev[i], bytes.data(), bytes.size(), cudaMemcpyHostToDevice);
        }
        size_t out_elems = 1;
        for (int64_t d : run.out_shape) out_elems *= static_cast<size_t>(d);
        run.out.assign(out_elems * (type == DataType::kHALF ? 2 : 4), 0);
        void* dev_out = nullptr;
        cudaMalloc(&dev_out, run.out.size());
        const int32_t st = rt->enqueue(desc.data(), &desc[nb], dev.data(), &dev_out, workspace, nullptr);
        cudaMemcpy(run.out.data(), dev_out, run.out.size(), cudaMemcpyDeviceToHost);
        for (void* q : dev) cudaFree(q);
        cudaFree(dev_out);
        if (st != 0) {
            result = {false, "enqueue returned " + std::to_string(st)};
            break;
        }
    }
    cudaFree(workspace);
    delete ctx;
    return result;
}

#else
#include "trt_plugin_driver_v2.inc"
#endif

bool compare(const char* name, const std::vector<unsigned char>& got, const std::vector<unsigned char>& want,
             DataType type) {
    const int32_t dtype = dtype_of(type);
    const siamattn::Agreement a = siamattn::agreement(want, got, want.size() / (dtype == SIAMATTN_FLOAT16 ? 2 : 4), dtype);
    std::printf("%s %-52s max|err| %.3g (%s%.3g; tol %.3g)\n", a.ok ? "ok  " : "FAIL", name, a.max_err,
                dtype == SIAMATTN_FLOAT16 ? "beyond one FP16 output step: " : "", a.max_excess, a.tol);
    return a.ok;
}

struct ConvCase {
    const char* label;
    const char* plugin;
    int64_t n, c, h, w, m, k;
    int64_t stride, dil, group, og;
    std::vector<int64_t> pads;  // ONNX order: h_begin, w_begin, h_end, w_end
    bool bias, mask, int32_fields;
};

bool conv_case(const ConvCase& cc, DataType type) {
    // The C API parameters, written out from the case (not through the plugin's own mapping).
    siamattn_deform_conv_params p{};
    p.batch = (int32_t)cc.n, p.in_channels = (int32_t)cc.c, p.in_h = (int32_t)cc.h, p.in_w = (int32_t)cc.w;
    p.out_channels = (int32_t)cc.m, p.kernel_h = p.kernel_w = (int32_t)cc.k;
    p.stride_h = p.stride_w = (int32_t)cc.stride, p.dilation_h = p.dilation_w = (int32_t)cc.dil;
    p.pad_h_begin = (int32_t)cc.pads[0], p.pad_w_begin = (int32_t)cc.pads[1];
    p.pad_h_end = (int32_t)cc.pads[2], p.pad_w_end = (int32_t)cc.pads[3];
    p.groups = (int32_t)cc.group, p.offset_groups = (int32_t)cc.og, p.has_bias = cc.bias, p.has_mask = cc.mask;
    if (siamattn_deform_conv_validate(&p) != SIAMATTN_OK) {
        std::printf("FAIL %s: bad case: %s\n", cc.label, siamattn_last_error());
        return false;
    }
    const int64_t taps = cc.k * cc.k;
    std::vector<HostTensor> in;
    in.push_back(random_tensor({cc.n, cc.c, cc.h, cc.w}, 1.0f, 0.0f, type));
    in.push_back(random_tensor({cc.m, cc.c / cc.group, cc.k, cc.k}, 1.0f / std::sqrt((float)(cc.c / cc.group * taps)), 0.0f, type));
    in.push_back(random_tensor({cc.n, 2 * cc.og * taps, p.out_h, p.out_w}, 2.0f, 0.0f, type));
    if (cc.bias) in.push_back(random_tensor({cc.m}, 1.0f, 0.0f, type));
    if (cc.mask) in.push_back(random_tensor({cc.n, cc.og * taps, p.out_h, p.out_w}, 0.3f, 0.5f, type));
    const std::vector<int64_t> out_shape{cc.n, cc.m, p.out_h, p.out_w};

    Fields f;
    f.ints("dilations", {cc.dil, cc.dil}, cc.int32_fields);
    f.ints("group", {cc.group}, cc.int32_fields);
    f.ints("kernel_shape", {cc.k, cc.k}, cc.int32_fields);
    f.ints("offset_group", {cc.og}, cc.int32_fields);
    f.ints("pads", cc.pads, cc.int32_fields);
    f.ints("strides", {cc.stride, cc.stride}, cc.int32_fields);

    const auto bytes = [&](size_t i) { return encode(in[i].values, type); };
    const int32_t dtype = dtype_of(type);
    std::vector<unsigned char> want(out_shape[0] * out_shape[1] * out_shape[2] * out_shape[3] * (dtype ? 2 : 4));
    const auto x = bytes(0), w = bytes(1), off = bytes(2);
    const auto b = cc.bias ? bytes(3) : std::vector<unsigned char>{};
    const auto m = cc.mask ? bytes(in.size() - 1) : std::vector<unsigned char>{};
    if (siamattn_deform_conv_forward_cpu(&p, dtype, x.data(), w.data(), cc.bias ? b.data() : nullptr, off.data(),
                                         cc.mask ? m.data() : nullptr, want.data()) != SIAMATTN_OK) {
        std::printf("FAIL %s (cpu): %s\n", cc.label, siamattn_last_error());
        return false;
    }
    std::vector<unsigned char> got;
    const Result r = run_plugin(cc.plugin, f, in, type, out_shape, got);
    char name[128];
    std::snprintf(name, sizeof(name), "%s %s %s", cc.plugin, cc.label, type == DataType::kHALF ? "fp16" : "fp32");
    if (!r.ok) {
        std::printf("FAIL %s: %s\n", name, r.why.c_str());
        return false;
    }
    return compare(name, got, want, type);
}

// `mode` < 0: no mode attribute (the plugin's default, mmcv); else the attribute, written as INT64 for mode 0 and
// INT32 for mode 1. The expected output comes from the CPU library with p.mode set here, and the plugin that
// enqueues is the one re-created from its serialised fields, so a mode lost on the way gives mmcv's numbers.
bool pool_case(const char* label, bool offset, int sampling_ratio, DataType type, int mode = -1) {
    siamattn_deform_roi_pool_params p{};
    p.batch = 2, p.channels = 16, p.in_h = 25, p.in_w = 25, p.num_rois = 8;
    p.pooled_h = p.pooled_w = offset ? 4 : 6;
    p.spatial_scale = 25.0f / 255.0f, p.sampling_ratio = sampling_ratio, p.gamma = 0.1f, p.has_offset = offset;
    p.mode = mode < 0 ? SIAMATTN_ROI_POOL_MMCV : mode;
    std::vector<HostTensor> in;
    in.push_back(random_tensor({p.batch, p.channels, p.in_h, p.in_w}, 1.0f, 0.0f, type));
    std::uniform_real_distribution<float> u(-20.0f, 260.0f), s(1.0f, 150.0f);
    HostTensor rois{{p.num_rois, 5}, {}};
    for (int k = 0; k < p.num_rois; ++k) {
        float x1 = u(rng), y1 = u(rng), x2 = x1 + s(rng), y2 = y1 + s(rng);
        if (mode == SIAMATTN_ROI_POOL_MMDET_V1 && k % 2 == 0) {
            // Half-integer corners: C rounding (halves away from zero) decides them.
            x1 = std::floor(x1) + 0.5f, y1 = std::floor(y1) - 0.5f, x2 = std::floor(x2) + 0.5f, y2 = std::floor(y2) + 0.5f;
        }
        for (float v : {(float)(k % p.batch), x1, y1, x2, y2})
            rois.values.push_back(type == DataType::kHALF ? siamattn_half_to_float(siamattn_float_to_half(v)) : v);
    }
    in.push_back(rois);
    if (offset) in.push_back(random_tensor({p.num_rois, 2, p.pooled_h, p.pooled_w}, 1.0f, 0.0f, type));
    Fields f;
    f.ints("output_height", {p.pooled_h}, true);
    f.ints("output_width", {p.pooled_w}, false);
    f.real("spatial_scale", p.spatial_scale);
    f.ints("sampling_ratio", {p.sampling_ratio}, false);
    f.real("gamma", p.gamma);
    if (mode >= 0) f.ints("mode", {mode}, mode == SIAMATTN_ROI_POOL_MMDET_V1);
    const int32_t dtype = dtype_of(type);
    const auto feat = encode(in[0].values, type), r = encode(in[1].values, type);
    const auto off = offset ? encode(in[2].values, type) : std::vector<unsigned char>{};
    const std::vector<int64_t> out_shape{p.num_rois, p.channels, p.pooled_h, p.pooled_w};
    std::vector<unsigned char> want((size_t)p.num_rois * p.channels * p.pooled_h * p.pooled_w * (dtype ? 2 : 4));
    if (siamattn_deform_roi_pool_forward_cpu(&p, dtype, dtype, feat.data(), r.data(), offset ? off.data() : nullptr,
                                             want.data()) != SIAMATTN_OK) {
        std::printf("FAIL %s (cpu): %s\n", label, siamattn_last_error());
        return false;
    }
    std::vector<unsigned char> got;
    const Result res = run_plugin(SIAMATTN_DEFORM_ROI_POOL_NAME, f, in, type, out_shape, got);
    char name[128];
    std::snprintf(name, sizeof(name), "%s %s %s", SIAMATTN_DEFORM_ROI_POOL_NAME, label, type == DataType::kHALF ? "fp16" : "fp32");
    if (!res.ok) {
        std::printf("FAIL %s: %s\n", name, res.why.c_str());
        return false;
    }
    return compare(name, got, want, type);
}

#if DRIVER_V3
// An exception inside an entry point must come back as the entry point's error value with a logged reason (the
// catch-and-report path of plugin_common.h), never terminate the process: a negative input count makes
// DeformConv's getWorkspaceSize size a std::vector with it, which throws std::length_error.
bool exception_case() {
    nvinfer1::IPluginCreatorV3One* creator = find_creator(SIAMATTN_DEFORM_CONV_NAME);
    Fields none;
    nvinfer1::IPluginV3* plugin = creator ? creator->createPlugin("node", none.collection(), nvinfer1::TensorRTPhase::kBUILD)
                                          : nullptr;
    auto* build = capability<nvinfer1::IPluginV3OneBuild>(plugin, nvinfer1::PluginCapabilityType::kBUILD);
    if (build == nullptr) {
        std::printf("FAIL guarded entry point: no DeformConv plugin\n");
        return false;
    }
    nvinfer1::DynamicPluginTensorDesc d{};
    const int errors_before = g_finder.logger.errors;
    const size_t ws = build->getWorkspaceSize(&d, -1, &d, 1);
    delete plugin;
    const bool ok = ws == 0 && g_finder.logger.errors == errors_before + 1 &&
                    g_finder.logger.last.find("getWorkspaceSize: exception: ") != std::string::npos;
    std::printf("%s guarded entry point: a throwing getWorkspaceSize returned %zu and logged: %s\n", ok ? "ok  " : "FAIL",
                ws, g_finder.logger.last.c_str());
    return ok;
}

// An unknown mode is refused by createPlugin with a logged reason, as is mode 1 with adaptive sampling (at
// configurePlugin, through the C API's validation).
bool bad_mode_case() {
    nvinfer1::IPluginCreatorV3One* creator = find_creator(SIAMATTN_DEFORM_ROI_POOL_NAME);
    if (creator == nullptr) return false;
    Fields bad;
    bad.ints("mode", {2}, true);
    const int errors_before = g_finder.logger.errors;
    nvinfer1::IPluginV3* plugin = creator->createPlugin("node", bad.collection(), nvinfer1::TensorRTPhase::kBUILD);
    const bool refused = plugin == nullptr && g_finder.logger.errors == errors_before + 1 &&
                         g_finder.logger.last.find("'mode' must be 0 (mmcv) or 1 (mmdet_v1)") != std::string::npos;
    delete plugin;
    Fields adaptive;
    adaptive.ints("mode", {1}, false);
    adaptive.ints("sampling_ratio", {0}, false);
    nvinfer1::IPluginV3* p2 = creator->createPlugin("node", adaptive.collection(), nvinfer1::TensorRTPhase::kBUILD);
    auto* build = capability<nvinfer1::IPluginV3OneBuild>(p2, nvinfer1::PluginCapabilityType::kBUILD);
    bool refused2 = false;
    if (build != nullptr) {
        std::vector<nvinfer1::DynamicPluginTensorDesc> d(3);
        const std::vector<std::vector<int64_t>> shapes{{1, 4, 9, 9}, {2, 5}, {2, 4, 7, 7}};
        for (int i = 0; i < 3; ++i) {
            d[i].desc = {dims_of(shapes[i]), DataType::kFLOAT, nvinfer1::TensorFormat::kLINEAR, 1.0f};
            d[i].min = d[i].max = d[i].opt = d[i].desc.dims;
        }
        refused2 = build->configurePlugin(d.data(), 2, &d[2], 1) != 0 &&
                   g_finder.logger.last.find("needs a fixed sampling_ratio >= 1") != std::string::npos;
    }
    delete p2;
    const bool ok = refused && refused2;
    std::printf("%s DeformRoIPool's mode attribute: mode 2 refused (%s), mode 1 + sampling_ratio 0 refused (%s)\n",
                ok ? "ok  " : "FAIL", refused ? "yes" : "no", refused2 ? "yes" : "no");
    return ok;
}


// Items [first, first + count) of a tensor along its first axis.
HostTensor items(const HostTensor& t, int64_t first, int64_t count) {
    const size_t per = t.values.size() / static_cast<size_t>(t.shape[0]);
    HostTensor out{t.shape, std::vector<float>(t.values.begin() + first * per, t.values.begin() + (first + count) * per)};
    out.shape[0] = count;
    return out;
}

bool report(const std::string& what, bool ok, const std::string& detail) {
    std::printf("%s %-62s %s\n", ok ? "ok  " : "FAIL", what.c_str(), detail.c_str());
    return ok;
}

// The batch graphs' plugin nodes on 3 targets: one plugin built for the range 1..3 targets (4 RoIs per target
// for DeformRoIPool, RoI k on target k % 3, its first value), run at 3 targets and at each target alone on the
// same context. The batch run matches the CPU library; each target's outputs equal those of its own run, bit for
// bit (the kernels' summation order does not depend on the batch here: split-K is 1 at K = 72).
bool batch_case(DataType type) {
    const char* t = type == DataType::kHALF ? "fp16" : "fp32";
    const int64_t n = 3, c = 8, h = 9, w = 9, m = 8, taps = 9, per = 4;
    bool ok = true;
    {
        siamattn_deform_conv_params p{};
        p.batch = (int32_t)n, p.in_channels = (int32_t)c, p.in_h = (int32_t)h, p.in_w = (int32_t)w;
        p.out_channels = (int32_t)m, p.kernel_h = p.kernel_w = 3, p.stride_h = p.stride_w = 1;
        p.dilation_h = p.dilation_w = 1, p.pad_h_begin = p.pad_w_begin = p.pad_h_end = p.pad_w_end = 1;
        p.groups = p.offset_groups = 1, p.has_bias = 1, p.has_mask = 1;
        siamattn_deform_conv_validate(&p);
        const std::vector<HostTensor> in = {random_tensor({n, c, h, w}, 1.0f, 0.0f, type),
                                            random_tensor({m, c, 3, 3}, 1.0f / std::sqrt((float)(c * taps)), 0.0f, type),
                                            random_tensor({n, 2 * taps, h, w}, 2.0f, 0.0f, type),
                                            random_tensor({m}, 1.0f, 0.0f, type),
                                            random_tensor({n, taps, h, w}, 0.3f, 0.5f, type)};
        std::vector<std::vector<int64_t>> lo, hi;
        for (const HostTensor& x : in) {
            hi.push_back(x.shape);
            lo.push_back(x.shape);
            if (x.shape.size() == 4 && &x != &in[1]) lo.back()[0] = 1;  // the target axis of X, offset, mask
        }
        hi.push_back({n, m, h, w});
        lo.push_back({1, m, h, w});
        std::vector<ShapeRun> runs(n + 1);
        runs[0] = {in, {n, m, h, w}, {}};
        for (int64_t i = 0; i < n; ++i)
            runs[i + 1] = {{items(in[0], i, 1), in[1], items(in[2], i, 1), in[3], items(in[4], i, 1)}, {1, m, h, w}, {}};
        Fields f;
        f.ints("kernel_shape", {3, 3}, false);
        f.ints("pads", {1, 1, 1, 1}, false);
        const std::string name = std::string("batch ") + SIAMATTN_DEFORM_CONV_NAME + " 1..3 targets " + t;
        const Result r = run_plugin_ranges(SIAMATTN_DEFORM_CONV_NAME, f, lo, hi, type, runs);
        if (!r.ok) return report(name, false, r.why);
        const int32_t dtype = dtype_of(type);
        std::vector<unsigned char> want(runs[0].out.size());
        const auto x = encode(in[0].values, type), wt = encode(in[1].values, type), off = encode(in[2].values, type);
        const auto b = encode(in[3].values, type), mk = encode(in[4].values, type);
        siamattn_deform_conv_forward_cpu(&p, dtype, x.data(), wt.data(), b.data(), off.data(), mk.data(), want.data());
        ok = compare((name + " x3 vs cpu").c_str(), runs[0].out, want, type) && ok;
        const size_t item_bytes = runs[1].out.size();
        for (int64_t i = 0; i < n; ++i) {
            const bool same = std::equal(runs[i + 1].out.begin(), runs[i + 1].out.end(), runs[0].out.begin() + i * item_bytes);
            ok = report(name + " target " + std::to_string(i) + " alone", same, same ? "bit-identical" : "differs") && ok;
        }
    }
    for (int mode : {SIAMATTN_ROI_POOL_MMCV, SIAMATTN_ROI_POOL_MMDET_V1}) {
        siamattn_deform_roi_pool_params p{};
        p.batch = (int32_t)n, p.channels = 16, p.in_h = p.in_w = 25, p.num_rois = (int32_t)(n * per);
        p.pooled_h = p.pooled_w = 4, p.spatial_scale = 25.0f / 255.0f, p.sampling_ratio = 2 + 2 * mode;
        p.gamma = 0.1f, p.has_offset = 1, p.mode = mode;
        const HostTensor feat = random_tensor({n, p.channels, p.in_h, p.in_w}, 1.0f, 0.0f, type);
        std::uniform_real_distribution<float> u(-20.0f, 260.0f), s(1.0f, 150.0f);
        HostTensor rois{{n * per, 5}, {}};
        for (int64_t k = 0; k < n * per; ++k) {
            const float x1 = u(rng), y1 = u(rng);
            for (float v : {(float)(k % n), x1, y1, x1 + s(rng), y1 + s(rng)})
                rois.values.push_back(type == DataType::kHALF ? siamattn_half_to_float(siamattn_float_to_half(v)) : v);
        }
        const HostTensor off = random_tensor({n * per, 2, 4, 4}, 1.0f, 0.0f, type);
        const std::vector<std::vector<int64_t>> lo = {{1, p.channels, 25, 25}, {1, 5}, {1, 2, 4, 4}, {1, p.channels, 4, 4}};
        const std::vector<std::vector<int64_t>> hi = {feat.shape, rois.shape, off.shape, {n * per, p.channels, 4, 4}};
        std::vector<ShapeRun> runs(n + 1);
        runs[0] = {{feat, rois, off}, hi[3], {}};
        for (int64_t i = 0; i < n; ++i) {  // target i alone: its features, its RoIs (batch index 0) and their offsets
            HostTensor r{{per, 5}, {}}, o{{per, 2, 4, 4}, {}};
            for (int64_t k = i; k < n * per; k += n) {
                r.values.push_back(0.0f);
                r.values.insert(r.values.end(), rois.values.begin() + k * 5 + 1, rois.values.begin() + k * 5 + 5);
                const HostTensor one = items(off, k, 1);
                o.values.insert(o.values.end(), one.values.begin(), one.values.end());
            }
            runs[i + 1] = {{items(feat, i, 1), r, o}, {per, p.channels, 4, 4}, {}};
        }
        Fields f;
        f.ints("output_height", {4}, true);
        f.ints("output_width", {4}, true);
        f.real("spatial_scale", p.spatial_scale);
        f.ints("sampling_ratio", {p.sampling_ratio}, true);
        f.real("gamma", p.gamma);
        f.ints("mode", {mode}, true);
        const std::string name = std::string("batch ") + SIAMATTN_DEFORM_ROI_POOL_NAME + " mode=" + std::to_string(mode) +
                                 " 1..3 targets x4 rois " + t;
        const Result r = run_plugin_ranges(SIAMATTN_DEFORM_ROI_POOL_NAME, f, lo, hi, type, runs);
        if (!r.ok) {
            ok = report(name, false, r.why) && ok;
            continue;
        }
        const int32_t dtype = dtype_of(type);
        std::vector<unsigned char> want(runs[0].out.size());
        const auto fb = encode(feat.values, type), rb = encode(rois.values, type), ob = encode(off.values, type);
        siamattn_deform_roi_pool_forward_cpu(&p, dtype, dtype, fb.data(), rb.data(), ob.data(), want.data());
        ok = compare((name + " vs cpu").c_str(), runs[0].out, want, type) && ok;
        const size_t roi_bytes = runs[0].out.size() / (size_t)(n * per);
        for (int64_t i = 0; i < n; ++i) {
            bool same = true;
            for (int64_t j = 0; j < per; ++j)
                same = same && std::equal(runs[i + 1].out.begin() + j * roi_bytes, runs[i + 1].out.begin() + (j + 1) * roi_bytes,
                                          runs[0].out.begin() + (i + j * n) * roi_bytes);
            ok = report(name + " target " + std::to_string(i) + " alone", same, same ? "bit-identical" : "differs") && ok;
        }
    }
    return ok;
}

#endif

}  // namespace

int main(int argc, char** argv) {
    setLoggerFinder(&g_finder);
#if DRIVER_V3
    if (argc > 1 && std::strcmp(argv[1], "--batch") == 0) {  // only the batch cases (the tests ask for them alone)
        bool ok = true;
        for (DataType type : {DataType::kFLOAT, DataType::kHALF}) ok = batch_case(type) && ok;
        std::printf("%s\n", ok ? "ALL OK" : "SOME CASES FAILED");
        return ok ? 0 : 1;
    }
#else
    (void)argc, (void)argv;
#endif
    const std::vector<ConvCase> convs = {
        {"g2 og3 s2 asym-pads bias+mask", SIAMATTN_DEFORM_CONV_NAME, 2, 6, 13, 11, 10, 3, 2, 1, 2, 3, {1, 0, 2, 1}, true, true, false},
        {"dil2 mask-only (mask 4th input)", SIAMATTN_DEFORM_CONV_NAME, 1, 8, 9, 9, 8, 3, 1, 2, 1, 1, {2, 2, 2, 2}, false, true, true},
        {"tracker 7x7 256->256 bias", SIAMATTN_CUSTOM_DEFORM_CONV_NAME, 1, 256, 7, 7, 256, 3, 1, 1, 1, 1, {1, 1, 1, 1}, true, false, true},
    };
    bool ok = true;
#if !DRIVER_V3
    ok = entry_points_case() && ok;  // first: the cases below call getPluginCreators, which takes the creators back
#endif
    for (DataType type : {DataType::kFLOAT, DataType::kHALF}) {
        for (const ConvCase& cc : convs) ok = conv_case(cc, type) && ok;
        ok = pool_case("box 4x4 offset sr0", true, 0, type) && ok;
        ok = pool_case("mask 6x6 no-offset sr2", false, 2, type) && ok;
        ok = pool_case("box 4x4 offset sr2 mode=0", true, 2, type, SIAMATTN_ROI_POOL_MMCV) && ok;
        ok = pool_case("box 4x4 offset sr4 mode=1", true, 4, type, SIAMATTN_ROI_POOL_MMDET_V1) && ok;
        ok = pool_case("mask 6x6 no-offset sr4 mode=1", false, 4, type, SIAMATTN_ROI_POOL_MMDET_V1) && ok;
    }
    std::printf("plugin errors logged through TensorRT's logger: %d (one expected per case: enqueue before "
                "%s)\n", g_finder.logger.errors, DRIVER_V3 ? "onShapeChange" : "configurePlugin");
    ok = exception_case() && ok;
    ok = bad_mode_case() && ok;
#if DRIVER_V3  // the batch engines' path on TensorRT >= 10 and TensorRT-RTX (no batch graphs for 8.5's glue here)
    for (DataType type : {DataType::kFLOAT, DataType::kHALF}) ok = batch_case(type) && ok;
#endif
    std::printf("glue: %s\n", siamattn_trt_plugins_info());
    std::printf("%s\n", ok ? "ALL OK" : "SOME CASES FAILED");
    return ok ? 0 : 1;
}

#if !DRIVER_V3
// libnvinfer's registry accessor, played by this executable (exported: ENABLE_EXPORTS in CMakeLists.txt).
extern "C" __attribute__((visibility("default"))) nvinfer1::IPluginRegistry* getPluginRegistry() noexcept {
    return &fake_registry();
}
#endif
