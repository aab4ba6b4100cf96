// siamattn_deform_selftest: runs the CUDA kernels on random inputs and compares them with the CPU
// implementation of the same library. Needs only a GPU and the driver (no torch, no TensorRT), so it runs on a
// Jetson as is, and it is small enough to run under compute-sanitizer (memcheck, racecheck, initcheck).
// Batch cases (each item of a batch, and each RoI, equals that item run alone): in the full run and with --batch.
// Exit status 0 = all cases agree.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "deform_math.h"
#include "host_tensor.h"
#include "siamattn_deform.h"

namespace {

std::mt19937 rng(1234);

std::vector<float> random_vec(size_t n, float scale, float shift = 0.0f) {
    std::normal_distribution<float> d(0.0f, 1.0f);
    std::vector<float> v(n);
    for (auto& x : v) x = shift + scale * d(rng);
    return v;
}

// Host buffer in the tensor dtype (FP16 as bit patterns) and its device copy.
struct Tensor {
    std::vector<unsigned char> host;
    void* dev = nullptr;
    Tensor(const std::vector<float>& v, int dtype) : host(siamattn::encode(v, dtype)) {
        if (!host.empty()) {
            cudaMalloc(&dev, host.size());
            cudaMemcpy(dev, host.data(), host.size(), cudaMemcpyHostToDevice);
        }
    }
    Tensor(const Tensor&) = delete;
    Tensor& operator=(const Tensor&) = delete;
    ~Tensor() { cudaFree(dev); }
};

bool compare(const char* what, const std::vector<unsigned char>& cpu, void* dev, size_t n, int dtype) {
    std::vector<unsigned char> gpu(cpu.size());
    if (cudaMemcpy(gpu.data(), dev, gpu.size(), cudaMemcpyDeviceToHost) != cudaSuccess) {
        std::printf("FAIL %s: copy back failed: %s\n", what, cudaGetErrorString(cudaGetLastError()));
        return false;
    }
    const siamattn::Agreement a = siamattn::agreement(cpu, gpu, n, dtype);
    std::printf("%s %-46s max|err| %.3g (%s%.3g; tol %.3g, max|ref| %.3g)\n", a.ok ? "ok  " : "FAIL", what, a.max_err,
                dtype == SIAMATTN_FLOAT16 ? "beyond one FP16 output step: " : "", a.max_excess, a.tol, a.max_ref);
    return a.ok;
}

// Runs `forward(y_dev)` (a CUDA entry point writing into a fresh output buffer) and compares with the CPU result.
template <typename Forward>
bool run_cuda(const char* name, const std::vector<unsigned char>& y_cpu, size_t n_out, int dtype, Forward forward) {
    void* y_dev = nullptr;
    cudaMalloc(&y_dev, y_cpu.size());
    const int32_t st = forward(y_dev);
    const cudaError_t sync = cudaDeviceSynchronize();
    bool ok = st == 0 && sync == cudaSuccess;
    if (!ok)
        std::printf("FAIL %s (cuda): %s %s\n", name, siamattn_last_error(), cudaGetErrorString(sync));
    else
        ok = compare(name, y_cpu, y_dev, n_out, dtype);
    cudaFree(y_dev);
    return ok;
}

// Runs `forward(y_dev)` into a fresh device buffer of `bytes` and copies the result back (empty on failure).
template <typename Forward>
std::vector<unsigned char> cuda_result(const char* name, size_t bytes, Forward forward) {
    void* y_dev = nullptr;
    cudaMalloc(&y_dev, bytes);
    const int32_t st = forward(y_dev);
    const cudaError_t sync = cudaDeviceSynchronize();
    std::vector<unsigned char> out(bytes);
    if (st != 0 || sync != cudaSuccess || cudaMemcpy(out.data(), y_dev, bytes, cudaMemcpyDeviceToHost) != cudaSuccess) {
        std::printf("FAIL %s (cuda): %s %s\n", name, siamattn_last_error(), cudaGetErrorString(sync));
        out.clear();
    }
    cudaFree(y_dev);
    return out;
}

// Items [first, first + count) of a float vector holding `items` equal-sized items.
std::vector<float> slice(const std::vector<float>& v, size_t items, size_t first, size_t count) {
    const size_t per = v.size() / items;
    return std::vector<float>(v.begin() + first * per, v.begin() + (first + count) * per);
}

// One line per comparison of a batch's item with the same item run alone: "bit-identical", or (where the two
// launches sum in another order, e.g. a different split-K) the agreement rule of the CPU comparison.
bool same_as_alone(const char* what, const std::vector<unsigned char>& batch, size_t offset_bytes,
                   const std::vector<unsigned char>& alone, int dtype, bool must_be_identical) {
    if (alone.empty() || batch.size() < offset_bytes + alone.size()) return false;
    const std::vector<unsigned char> part(batch.begin() + offset_bytes, batch.begin() + offset_bytes + alone.size());
    const bool identical = part == alone;
    const size_t elem = dtype == SIAMATTN_FLOAT16 ? 2 : 4;
    const siamattn::Agreement a = siamattn::agreement(alone, part, alone.size() / elem, dtype);
    const bool ok = identical || (!must_be_identical && a.ok);
    std::printf("%s %-58s %s\n", ok ? "ok  " : "FAIL", what,
                identical ? "bit-identical" : (std::string("max|err| ") + std::to_string(a.max_err) + " (tol " +
                                               std::to_string(a.tol) + ")").c_str());
    return ok;
}

// DeformConv on a batch: the CUDA result matches the CPU library, and each item equals that item run alone
// (bit for bit when both launches use the same split-K, which decides the summation order).
bool conv_batch_case(const char* label, siamattn_deform_conv_params p, int dtype) {
    char name[128];
    std::snprintf(name, sizeof(name), "batch conv %s x%d %s", label, p.batch, dtype == SIAMATTN_FLOAT16 ? "fp16" : "fp32");
    if (siamattn_deform_conv_validate(&p) != SIAMATTN_OK) {
        std::printf("FAIL %s: %s\n", name, siamattn_last_error());
        return false;
    }
    const size_t n = (size_t)p.batch, taps = (size_t)p.kernel_h * p.kernel_w, plane = (size_t)p.out_h * p.out_w;
    const size_t cg = (size_t)p.in_channels / p.groups, elem = dtype == SIAMATTN_FLOAT16 ? 2 : 4;
    const std::vector<float> xv = random_vec(n * p.in_channels * p.in_h * p.in_w, 1.0f);
    const std::vector<float> wv = random_vec((size_t)p.out_channels * cg * taps, 1.0f / std::sqrt((float)(cg * taps)));
    const std::vector<float> bv = random_vec(p.has_bias ? p.out_channels : 0, 1.0f);
    const std::vector<float> ov = random_vec(n * p.offset_groups * 2 * taps * plane, 2.0f);
    const std::vector<float> mv = random_vec(p.has_mask ? n * p.offset_groups * taps * plane : 0, 0.3f, 0.5f);
    const size_t out_item = (size_t)p.out_channels * plane * elem;
    // Runs items [first, first + count) on the CUDA path (or, cpu=true, the CPU library).
    auto run = [&](size_t first, size_t count, bool cpu) {
        siamattn_deform_conv_params q = p;
        q.batch = (int32_t)count;
        siamattn_deform_conv_validate(&q);
        Tensor x(slice(xv, n, first, count), dtype), w(wv, dtype), b(bv, dtype), off(slice(ov, n, first, count), dtype);
        Tensor m(p.has_mask ? slice(mv, n, first, count) : std::vector<float>{}, dtype);
        if (cpu) {
            std::vector<unsigned char> y(count * out_item);
            if (siamattn_deform_conv_forward_cpu(&q, dtype, x.host.data(), w.host.data(), p.has_bias ? b.host.data() : nullptr,
                                                 off.host.data(), p.has_mask ? m.host.data() : nullptr, y.data()) != 0) {
                std::printf("FAIL %s (cpu): %s\n", name, siamattn_last_error());
                y.clear();
            }
            return y;
        }
        void* ws = nullptr;
        const size_t ws_bytes = siamattn_deform_conv_workspace_size(&q, dtype);
        cudaMalloc(&ws, ws_bytes);
        std::vector<unsigned char> y = cuda_result(name, count * out_item, [&](void* y_dev) {
            return siamattn_deform_conv_forward_cuda(&q, dtype, x.dev, w.dev, b.dev, off.dev, m.dev, y_dev, ws, ws_bytes,
                                                     nullptr);
        });
        cudaFree(ws);
        return y;
    };
    const std::vector<unsigned char> cpu = run(0, n, true), gpu = run(0, n, false);
    if (cpu.empty() || gpu.empty()) return false;
    const siamattn::Agreement a = siamattn::agreement(cpu, gpu, cpu.size() / elem, dtype);
    std::printf("%s %-58s max|err| %.3g (tol %.3g)\n", a.ok ? "ok  " : "FAIL", (std::string(name) + " vs cpu").c_str(),
                a.max_err, a.tol);
    bool ok = a.ok;
    siamattn_deform_conv_params one = p;
    one.batch = 1;
    siamattn_deform_conv_validate(&one);
    const int splits_batch = siamattn::conv_split_k(p, siamattn::conv_batch_chunk(p, elem) * (int)plane);
    const int splits_one = siamattn::conv_split_k(one, (int)plane);
    for (size_t i = 0; i < n; ++i) {
        char what[160];
        std::snprintf(what, sizeof(what), "%s item %zu alone (k-splits %d/%d)", name, i, splits_batch, splits_one);
        ok = same_as_alone(what, gpu, i * out_item, run(i, 1, false), dtype, splits_batch == splits_one) && ok;
    }
    return ok;
}

// DeformRoIPool on a batch with several RoIs per item, interleaved (RoI k pools item k % batch, its first value):
// the CUDA result matches the CPU library, and each item's RoIs (batch index 0 on that item alone) and each RoI
// alone give bit-identical outputs (every output value is one independent sum: no order can change).
bool pool_batch_case(const char* label, siamattn_deform_roi_pool_params p, int dtype, int rois_per_item) {
    char name[128];
    std::snprintf(name, sizeof(name), "batch roi_pool %s x%d %d rois/item %s", label, p.batch, rois_per_item,
                  dtype == SIAMATTN_FLOAT16 ? "fp16" : "fp32");
    const size_t n = (size_t)p.batch, elem = dtype == SIAMATTN_FLOAT16 ? 2 : 4;
    p.num_rois = p.batch * rois_per_item;
    std::uniform_real_distribution<float> u(-0.2f * 255.0f, 1.1f * 255.0f), s(0.0f, 0.7f * 255.0f);
    std::vector<std::vector<float>> rois(p.num_rois);
    for (int k = 0; k < p.num_rois; ++k) {
        const float x1 = u(rng), y1 = u(rng);
        rois[k] = {(float)(k % p.batch), x1, y1, x1 + s(rng), y1 + s(rng)};
    }
    const std::vector<float> feat = random_vec(n * p.channels * p.in_h * p.in_w, 1.0f);
    const size_t bins = (size_t)p.pooled_h * p.pooled_w;
    const std::vector<float> off = random_vec(p.has_offset ? (size_t)p.num_rois * 2 * bins : 0, 1.0f);
    const size_t out_roi = (size_t)p.channels * bins * elem;
    // Pools RoIs `ks` (re-indexed to item 0 when `item` >= 0: that item's features alone).
    auto run = [&](const std::vector<int>& ks, int item, bool cpu) {
        siamattn_deform_roi_pool_params q = p;
        q.num_rois = (int32_t)ks.size();
        std::vector<float> r, o;
        for (int k : ks) {
            r.insert(r.end(), rois[k].begin(), rois[k].end());
            if (item >= 0) r[r.size() - 5] = 0.0f;
            if (p.has_offset) o.insert(o.end(), off.begin() + (size_t)k * 2 * bins, off.begin() + (size_t)(k + 1) * 2 * bins);
        }
        if (item >= 0) q.batch = 1;
        Tensor f(item >= 0 ? slice(feat, n, (size_t)item, 1) : feat, dtype), rt(r, SIAMATTN_FLOAT32), ot(o, dtype);
        if (cpu) {
            std::vector<unsigned char> y(ks.size() * out_roi);
            if (siamattn_deform_roi_pool_forward_cpu(&q, dtype, SIAMATTN_FLOAT32, f.host.data(), rt.host.data(),
                                                     p.has_offset ? ot.host.data() : nullptr, y.data()) != 0) {
                std::printf("FAIL %s (cpu): %s\n", name, siamattn_last_error());
                y.clear();
            }
            return y;
        }
        return cuda_result(name, ks.size() * out_roi, [&](void* y_dev) {
            return siamattn_deform_roi_pool_forward_cuda(&q, dtype, SIAMATTN_FLOAT32, f.dev, rt.dev, ot.dev, y_dev, nullptr);
        });
    };
    std::vector<int> all(p.num_rois);
    for (int k = 0; k < p.num_rois; ++k) all[k] = k;
    const std::vector<unsigned char> cpu = run(all, -1, true), gpu = run(all, -1, false);
    if (cpu.empty() || gpu.empty()) return false;
    const siamattn::Agreement a = siamattn::agreement(cpu, gpu, cpu.size() / elem, dtype);
    std::printf("%s %-58s max|err| %.3g (tol %.3g)\n", a.ok ? "ok  " : "FAIL", (std::string(name) + " vs cpu").c_str(),
                a.max_err, a.tol);
    bool ok = a.ok;
    for (int i = 0; i < p.batch; ++i) {
        std::vector<int> own;
        for (int k = i; k < p.num_rois; k += p.batch) own.push_back(k);
        const std::vector<unsigned char> alone = run(own, i, false);
        std::vector<unsigned char> mine;  // the batch output's rows of this item's RoIs
        for (int k : own) mine.insert(mine.end(), gpu.begin() + (size_t)k * out_roi, gpu.begin() + (size_t)(k + 1) * out_roi);
        char what[160];
        std::snprintf(what, sizeof(what), "%s item %d alone (its %zu rois)", name, i, own.size());
        ok = same_as_alone(what, mine, 0, alone, dtype, true) && ok;
    }
    bool each = true;
    for (int k = 0; k < p.num_rois; ++k) {
        const std::vector<unsigned char> alone = run({k}, k % p.batch, false);
        each = !alone.empty() && std::equal(alone.begin(), alone.end(), gpu.begin() + (size_t)k * out_roi) && each;
    }
    std::printf("%s %-58s %s\n", each ? "ok  " : "FAIL", (std::string(name) + " each roi alone").c_str(),
                each ? "bit-identical" : "differs");
    return ok && each;
}

bool conv_case(const char* name, siamattn_deform_conv_params p, int dtype) {
    if (siamattn_deform_conv_validate(&p) != SIAMATTN_OK) {
        std::printf("FAIL %s: %s\n", name, siamattn_last_error());
        return false;
    }
    const size_t taps = (size_t)p.kernel_h * p.kernel_w, plane = (size_t)p.out_h * p.out_w;
    const size_t cg = (size_t)p.in_channels / p.groups;
    Tensor x(random_vec((size_t)p.batch * p.in_channels * p.in_h * p.in_w, 1.0f), dtype);
    Tensor w(random_vec((size_t)p.out_channels * cg * taps, 1.0f / std::sqrt((float)(cg * taps))), dtype);
    Tensor b(random_vec(p.has_bias ? p.out_channels : 0, 1.0f), dtype);
    Tensor off(random_vec((size_t)p.batch * p.offset_groups * 2 * taps * plane, 2.0f), dtype);
    Tensor m(random_vec(p.has_mask ? (size_t)p.batch * p.offset_groups * taps * plane : 0, 0.3f, 0.5f), dtype);
    const size_t n_out = (size_t)p.batch * p.out_channels * plane;
    std::vector<unsigned char> y_cpu(n_out * (dtype == SIAMATTN_FLOAT16 ? 2 : 4));
    if (siamattn_deform_conv_forward_cpu(&p, dtype, x.host.data(), w.host.data(), p.has_bias ? b.host.data() : nullptr,
                                         off.host.data(), p.has_mask ? m.host.data() : nullptr, y_cpu.data()) != 0) {
        std::printf("FAIL %s (cpu): %s\n", name, siamattn_last_error());
        return false;
    }
    void* ws = nullptr;
    const size_t ws_bytes = siamattn_deform_conv_workspace_size(&p, dtype);
    cudaMalloc(&ws, ws_bytes);
    const bool ok = run_cuda(name, y_cpu, n_out, dtype, [&](void* y_dev) {
        return siamattn_deform_conv_forward_cuda(&p, dtype, x.dev, w.dev, b.dev, off.dev, m.dev, y_dev, ws, ws_bytes,
                                                 nullptr);
    });
    cudaFree(ws);
    return ok;
}

bool pool_case(const char* name, siamattn_deform_roi_pool_params p, int dtype, int rois_dtype, float img) {
    std::uniform_real_distribution<float> u(-0.2f * img, 1.1f * img), s(0.0f, 0.7f * img);
    std::vector<float> rois;
    for (int k = 0; k < p.num_rois; ++k) {
        float x1 = u(rng), y1 = u(rng), x2 = x1 + s(rng), y2 = y1 + s(rng);
        if (p.mode == SIAMATTN_ROI_POOL_MMDET_V1 && k % 3 == 0) {
            // Half-integer corners (negative ones too): decided by the C rounding, halves away from zero.
            x1 = floorf(x1) + 0.5f, y1 = floorf(y1) - 0.5f, x2 = floorf(x2) + 0.5f, y2 = floorf(y2) + 0.5f;
        }
        rois.insert(rois.end(), {(float)(k % p.batch), x1, y1, x2, y2});
    }
    Tensor feat(random_vec((size_t)p.batch * p.channels * p.in_h * p.in_w, 1.0f), dtype);
    Tensor r(rois, rois_dtype);
    Tensor off(random_vec(p.has_offset ? (size_t)p.num_rois * 2 * p.pooled_h * p.pooled_w : 0, 1.0f), dtype);
    const size_t n_out = (size_t)p.num_rois * p.channels * p.pooled_h * p.pooled_w;
    std::vector<unsigned char> y_cpu(n_out * (dtype == SIAMATTN_FLOAT16 ? 2 : 4));
    if (siamattn_deform_roi_pool_forward_cpu(&p, dtype, rois_dtype, feat.host.data(), r.host.data(),
                                             p.has_offset ? off.host.data() : nullptr, y_cpu.data()) != 0) {
        std::printf("FAIL %s (cpu): %s\n", name, siamattn_last_error());
        return false;
    }
    return run_cuda(name, y_cpu, n_out, dtype, [&](void* y_dev) {
        return siamattn_deform_roi_pool_forward_cuda(&p, dtype, rois_dtype, feat.dev, r.dev, off.dev, y_dev, nullptr);
    });
}

siamattn_deform_conv_params conv(int n, int c, int h, int w, int m, int k, int stride, int pad_b, int pad_e, int dil,
                                 int groups, int og, int bias, int mask) {
    siamattn_deform_conv_params p{};
    p.batch = n, p.in_channels = c, p.in_h = h, p.in_w = w, p.out_channels = m, p.kernel_h = k, p.kernel_w = k;
    p.stride_h = p.stride_w = stride;
    p.pad_h_begin = p.pad_w_begin = pad_b;
    p.pad_h_end = p.pad_w_end = pad_e;
    p.dilation_h = p.dilation_w = dil;
    p.groups = groups, p.offset_groups = og, p.has_bias = bias, p.has_mask = mask;
    return p;
}

// The batch graphs of several targets (docs/DESIGN.md "Many targets"): 3 targets, 4 RoIs on each.
bool batch_cases(int dtype) {
    bool ok = conv_batch_case("9x9 16->16 mask", conv(3, 16, 9, 9, 16, 3, 1, 1, 1, 1, 1, 1, 1, 1), dtype);
    ok = conv_batch_case("7x7 64->64 split-K", conv(3, 64, 7, 7, 64, 3, 1, 1, 1, 1, 1, 1, 1, 0), dtype) && ok;
    for (int mode : {SIAMATTN_ROI_POOL_MMCV, SIAMATTN_ROI_POOL_MMDET_V1}) {
        siamattn_deform_roi_pool_params p{};
        p.batch = 3, p.channels = 8, p.in_h = p.in_w = 25, p.pooled_h = p.pooled_w = 4;
        p.spatial_scale = 25.0f / 255.0f, p.sampling_ratio = 2 + 2 * mode, p.gamma = 0.1f, p.has_offset = 1;
        p.mode = mode;
        ok = pool_batch_case(mode == SIAMATTN_ROI_POOL_MMCV ? "box 4x4 mmcv" : "box 4x4 mmdet_v1", p, dtype, 4) && ok;
    }
    return ok;
}

}  // namespace

int main(int argc, char** argv) {
    const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;  // for the slow sanitizer runs
    // --batch: only the batch cases (each item of a batch equals that item run alone); --quick leaves them out
    const bool batch_only = argc > 1 && std::strcmp(argv[1], "--batch") == 0;
    int device_count = 0;
    if (cudaGetDeviceCount(&device_count) != cudaSuccess || device_count == 0) {
        std::printf("no CUDA device: %s\n", cudaGetErrorString(cudaGetLastError()));
        return 2;
    }
    cudaDeviceProp prop{};
    cudaGetDeviceProperties(&prop, 0);
    std::printf("device: %s (sm_%d%d); %s\n", prop.name, prop.major, prop.minor, siamattn_build_info());
    bool ok = true;
    for (int dtype : {SIAMATTN_FLOAT32, SIAMATTN_FLOAT16}) {
        if (!quick) ok = batch_cases(dtype) && ok;
        if (batch_only) continue;
        const char* t = dtype == SIAMATTN_FLOAT16 ? "fp16" : "fp32";
        char name[96];
        auto run = [&](const char* label, siamattn_deform_conv_params p) {
            siamattn_deform_conv_validate(&p);
            const int cols = siamattn::conv_batch_chunk(p, dtype == SIAMATTN_FLOAT16 ? 2 : 4) * p.out_h * p.out_w;
            std::snprintf(name, sizeof(name), "conv %s %s k-splits=%d", label, t, siamattn::conv_split_k(p, cols));
            ok = conv_case(name, p, dtype) && ok;
        };
        run("odd sizes g2 og3 mask s2 asym-pad", [] {
            auto p = conv(2, 6, 13, 11, 10, 3, 2, 1, 2, 1, 2, 3, 1, 1);
            p.pad_w_begin = 0;
            return p;
        }());
        run("1x1 g4 dil1 no-bias", conv(1, 8, 5, 7, 12, 1, 1, 0, 0, 1, 4, 2, 0, 0));
        run("5x5 dil2", conv(1, 3, 17, 9, 7, 5, 1, 4, 4, 2, 1, 1, 1, 0));
        run("tracker 7x7 256->256", conv(1, 256, 7, 7, 256, 3, 1, 1, 1, 1, 1, 1, 1, 0));
        run("g2 9x9 64->64", conv(1, 64, 9, 9, 64, 3, 1, 1, 1, 1, 2, 1, 1, 0));
        if (!quick) {
            run("tracker 31x31 256->256", conv(1, 256, 31, 31, 256, 3, 1, 1, 1, 1, 1, 1, 1, 0));
            run("64x64 batch 8 (batch chunks)", conv(8, 256, 64, 64, 256, 3, 1, 1, 1, 1, 1, 1, 1, 1));
        }
        for (int rois_dtype : {SIAMATTN_FLOAT32, SIAMATTN_FLOAT16}) {
            siamattn_deform_roi_pool_params p{};
            p.batch = 2, p.channels = quick ? 8 : 256, p.in_h = 25, p.in_w = 25, p.num_rois = 16;
            p.pooled_h = p.pooled_w = 4, p.spatial_scale = 25.0f / 255.0f, p.gamma = 0.1f, p.has_offset = 1;
            std::snprintf(name, sizeof(name), "roi_pool box 4x4 %s rois %s", t,
                          rois_dtype == SIAMATTN_FLOAT16 ? "fp16" : "fp32");
            ok = pool_case(name, p, dtype, rois_dtype, 255.0f) && ok;
            p.in_h = p.in_w = 63, p.pooled_h = p.pooled_w = 16, p.spatial_scale = 63.0f / 255.0f, p.sampling_ratio = 2;
            p.has_offset = 0;
            std::snprintf(name, sizeof(name), "roi_pool mask 16x16 sr2 %s rois %s", t,
                          rois_dtype == SIAMATTN_FLOAT16 ? "fp16" : "fp32");
            ok = pool_case(name, p, dtype, rois_dtype, 255.0f) && ok;
            // Mode mmdet_v1 (the authors' pooling): both deformable, 4 x 4 samples per bin.
            p.mode = SIAMATTN_ROI_POOL_MMDET_V1, p.sampling_ratio = 4, p.has_offset = 1;
            std::snprintf(name, sizeof(name), "roi_pool mask 16x16 mmdet_v1 %s rois %s", t,
                          rois_dtype == SIAMATTN_FLOAT16 ? "fp16" : "fp32");
            ok = pool_case(name, p, dtype, rois_dtype, 255.0f) && ok;
            p.in_h = p.in_w = 25, p.pooled_h = p.pooled_w = 4, p.spatial_scale = 25.0f / 255.0f;
            std::snprintf(name, sizeof(name), "roi_pool box 4x4 mmdet_v1 %s rois %s", t,
                          rois_dtype == SIAMATTN_FLOAT16 ? "fp16" : "fp32");
            ok = pool_case(name, p, dtype, rois_dtype, 255.0f) && ok;
        }
    }
    std::printf("%s\n", ok ? "ALL OK" : "SOME CASES FAILED");
    return ok ? 0 : 1;
}
