// siamattn_deform_selftest: runs the CUDA kernels on random inputs and compares them with the CPU
// implementation of the same library. Needs only a GPU and the driver (no torch, no TensorRT), so it runs on a
// Jetson as is, and it is small enough to run under compute-sanitizer (memcheck, racecheck, initcheck).
// Exit status 0 = all cases agree.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
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

}  // namespace

int main(int argc, char** argv) {
    const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;  // for the slow sanitizer runs
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
