// CUDA implementation of the C API (no TensorRT dependency; the TensorRT plugins call into it).
//
// DeformConv2d = deformable im2col into a column buffer of the tensor dtype, then a grouped GEMM with FP32
// accumulation whose epilogue adds the bias and scatters into NCHW. FP16 uses tensor cores (WMMA, half
// inputs, float accumulators: products are exact and sums stay FP32); FP32 uses a tiled SIMT GEMM, so no
// cuBLAS is needed (Jetson images do not always ship it, and a plugin that links only cudart is simpler to
// deploy). Sampling positions and weights come from deform_math.h in FP32 for both dtypes.
// DeformRoIPool = one thread per output element evaluating deform_roi_pool_bin from deform_math.h.
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <mma.h>

#include "deform_common.h"
#include "deform_math.h"

// Every launch goes through this macro so that plugins/emu (the CPU-thread emulation the CPU-only CI runs these
// kernels under, with AddressSanitizer and ThreadSanitizer) can substitute its own launcher.
#ifndef SIAMATTN_LAUNCH
#define SIAMATTN_LAUNCH(grid, block, stream, ...) __VA_ARGS__<<<(grid), (block), 0, (stream)>>>
#endif

namespace {

using siamattn::fail;

__device__ __forceinline__ float load_f(const float* p, size_t i) { return __ldg(p + i); }
__device__ __forceinline__ float load_f(const __half* p, size_t i) { return __half2float(__ldg(p + i)); }

template <typename T>
__device__ __forceinline__ T store_cvt(float v);
template <>
__device__ __forceinline__ float store_cvt<float>(float v) {
    return v;
}
template <>
__device__ __forceinline__ __half store_cvt<__half>(float v) {
    return __float2half_rn(v);
}

template <typename T>
struct DevPlane {
    const T* base;
    int width;
    __device__ __forceinline__ float operator()(int y, int x) const { return load_f(base, (size_t)y * width + x); }
};

// Column buffer: row c*taps + tap, column nl*P + pix (nl = image within the current batch chunk), so the
// rows of one convolution group are contiguous and the GEMM's B operand is a plain row-major matrix.
template <typename T>
__global__ void deform_im2col_kernel(const T* __restrict__ x, const T* __restrict__ offset,
                                     const T* __restrict__ mask, T* __restrict__ col, siamattn::ConvGeom g, int n0,
                                     int nb) {
    const int plane_pixels = g.out_h * g.out_w;
    const size_t cols = (size_t)nb * plane_pixels;
    const size_t total = (size_t)g.channels * cols;
    for (size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
         idx += (size_t)gridDim.x * blockDim.x) {
        const int pix = (int)(idx % plane_pixels);
        const size_t rest = idx / plane_pixels;
        const int nl = (int)(rest % nb);
        const int c = (int)(rest / nb);
        const int n = n0 + nl;
        const int og = c / g.channels_per_offset_group;
        const int oy = pix / g.out_w, ox = pix % g.out_w;
        const DevPlane<T> plane{x + ((size_t)n * g.channels + c) * g.height * g.width, g.width};
        T* dst = col + (size_t)c * g.taps * cols + (size_t)nl * plane_pixels + pix;
        for (int i = 0; i < g.kernel_h; ++i) {
            for (int j = 0; j < g.kernel_w; ++j) {
                const int tap = i * g.kernel_w + j;
                const size_t oi = siamattn::conv_offset_index(g, n, og, tap, pix);
                const float dy = load_f(offset, oi);
                const float dx = load_f(offset, oi + plane_pixels);
                const float m = g.has_mask ? load_f(mask, siamattn::conv_mask_index(g, n, og, tap, pix)) : 1.0f;
                dst[(size_t)tap * cols] =
                    store_cvt<T>(siamattn::deform_conv_column_value(plane, g, i, j, oy, ox, dy, dx, m));
            }
        }
    }
}

// Y[img, grp*Mg + m, pix] = sum_k W[grp*Mg + m, k] * col[grp*Kg + k, nl*P + pix] + bias;
// blockIdx.z = grp * splits + split, where split picks the K range [split*k_chunk, (split+1)*k_chunk).
template <typename T>
struct GemmArgs {
    const T* a;  // weights [groups*Mg, Kg]
    const T* b;  // column buffer [groups*Kg, N]
    const T* bias;
    T* y;  // output of the first image of the chunk
    int m, n, k;  // per-group GEMM sizes: Mg, N = nb*P, Kg
    int plane_pixels;
    size_t y_image_stride;  // out_channels * P
    int splits, k_chunk;  // split-K (deform_math.h); splits == 1: one K range, epilogue writes y
    float* partial;  // splits > 1: FP32 partial sums [splits, groups*Mg, N], reduced by splitk_reduce_kernel
};

struct GemmBlock {
    int grp, split, k_begin, k_end;
};

template <typename T>
__device__ __forceinline__ GemmBlock gemm_block(const GemmArgs<T>& args) {
    GemmBlock blk;
    blk.grp = (int)blockIdx.z / args.splits;
    blk.split = (int)blockIdx.z % args.splits;
    blk.k_begin = blk.split * args.k_chunk;
    blk.k_end = blk.k_begin + args.k_chunk < args.k ? blk.k_begin + args.k_chunk : args.k;
    return blk;
}

template <typename T>
__device__ __forceinline__ void gemm_store(const GemmArgs<T>& args, int grp, int gm, int gn, float v) {
    const int ch = grp * args.m + gm;
    if (args.bias != nullptr) v += load_f(args.bias, (size_t)ch);
    const int img = gn / args.plane_pixels, pix = gn % args.plane_pixels;
    args.y[(size_t)img * args.y_image_stride + (size_t)ch * args.plane_pixels + pix] = store_cvt<T>(v);
}

// Block epilogue: the finished value, or with split-K this block's partial sum (bias added by the reduction).
template <typename T>
__device__ __forceinline__ void gemm_emit(const GemmArgs<T>& args, const GemmBlock& blk, int gm, int gn, float v) {
    if (args.splits == 1) {
        gemm_store(args, blk.grp, gm, gn, v);
    } else {
        const size_t row = (size_t)blk.split * args.m * (gridDim.z / args.splits) + (size_t)blk.grp * args.m + gm;
        args.partial[row * args.n + gn] = v;
    }
}

// Split-K reduction: one thread per output element adds the splits' partials in a fixed order (deterministic).
template <typename T>
__global__ void splitk_reduce_kernel(GemmArgs<T> args, int groups) {
    const size_t rows = (size_t)groups * args.m;
    const size_t total = rows * args.n;
    for (size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
         idx += (size_t)gridDim.x * blockDim.x) {
        const size_t row = idx / args.n;
        const int gn = (int)(idx % args.n);
        float v = 0.0f;
        for (int s = 0; s < args.splits; ++s) v += args.partial[((size_t)s * rows + row) * args.n + gn];
        gemm_store(args, (int)(row / args.m), (int)(row % args.m), gn, v);
    }
}

constexpr int kWmmaBM = 64, kWmmaBN = 64, kWmmaBK = 32, kWmmaThreads = 128;
// Static shared memory per block is capped at 48 KiB on every target GPU.
static_assert((kWmmaBM * (kWmmaBK + 8) + kWmmaBK * (kWmmaBN + 8)) * 2 + kWmmaBM * (kWmmaBN + 4) * 4 <= 48 * 1024,
              "WMMA GEMM tiles exceed 48 KiB of static shared memory");

// 64x64 output tile per block, four warps of 32x32 (2x2 WMMA 16x16x16 fragments). Tiles are staged through
// shared memory with zero fill, so any M, N, K works; padded rows keep WMMA's 32-byte alignment rules.
__global__ void __launch_bounds__(kWmmaThreads) gemm_f16_wmma_kernel(GemmArgs<__half> args) {
    using namespace nvcuda;
    __shared__ __align__(32) __half a_tile[kWmmaBM][kWmmaBK + 8];
    __shared__ __align__(32) __half b_tile[kWmmaBK][kWmmaBN + 8];
    __shared__ __align__(32) float c_tile[kWmmaBM][kWmmaBN + 4];

    const GemmBlock blk = gemm_block(args);
    const __half* a = args.a + (size_t)blk.grp * args.m * args.k;
    const __half* b = args.b + (size_t)blk.grp * args.k * args.n;
    const int m0 = blockIdx.y * kWmmaBM, n0 = blockIdx.x * kWmmaBN;
    const int warp = threadIdx.x / 32, wm = warp / 2, wn = warp % 2;
    const __half zero = __ushort_as_half(0);

    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
    for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.0f);

    for (int k0 = blk.k_begin; k0 < blk.k_end; k0 += kWmmaBK) {
        for (int e = threadIdx.x; e < kWmmaBM * kWmmaBK; e += kWmmaThreads) {
            const int r = e / kWmmaBK, c = e % kWmmaBK, gm = m0 + r, gk = k0 + c;
            a_tile[r][c] = (gm < args.m && gk < blk.k_end) ? a[(size_t)gm * args.k + gk] : zero;
        }
        for (int e = threadIdx.x; e < kWmmaBK * kWmmaBN; e += kWmmaThreads) {
            const int r = e / kWmmaBN, c = e % kWmmaBN, gk = k0 + r, gn = n0 + c;
            b_tile[r][c] = (gk < blk.k_end && gn < args.n) ? b[(size_t)gk * args.n + gn] : zero;
        }
        __syncthreads();
        for (int kk = 0; kk < kWmmaBK; kk += 16) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> fa[2];
            wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::row_major> fb[2];
            for (int i = 0; i < 2; ++i) wmma::load_matrix_sync(fa[i], &a_tile[wm * 32 + i * 16][kk], kWmmaBK + 8);
            for (int j = 0; j < 2; ++j) wmma::load_matrix_sync(fb[j], &b_tile[kk][wn * 32 + j * 16], kWmmaBN + 8);
            for (int i = 0; i < 2; ++i)
                for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
        }
        __syncthreads();
    }
    for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 2; ++j)
            wmma::store_matrix_sync(&c_tile[wm * 32 + i * 16][wn * 32 + j * 16], acc[i][j], kWmmaBN + 4,
                                    wmma::mem_row_major);
    __syncthreads();
    for (int e = threadIdx.x; e < kWmmaBM * kWmmaBN; e += kWmmaThreads) {
        const int r = e / kWmmaBN, c = e % kWmmaBN, gm = m0 + r, gn = n0 + c;
        if (gm < args.m && gn < args.n) gemm_emit(args, blk, gm, gn, c_tile[r][c]);
    }
}

constexpr int kSimtBM = 64, kSimtBN = 64, kSimtBK = 16, kSimtThreads = 256;
static_assert(kSimtBK * (kSimtBM + 4 + kSimtBN + 4) * 4 <= 48 * 1024, "SIMT GEMM tiles exceed 48 KiB of shared memory");
static_assert(kSimtThreads == 16 * 16 && kSimtBM == 16 * 4 && kSimtBN == 16 * 4, "SIMT GEMM: 16x16 threads, 4x4 each");
static_assert(kWmmaThreads == 4 * 32 && kWmmaBM == 2 * 32 && kWmmaBN == 2 * 32, "WMMA GEMM: 2x2 warps of 32x32");

// FP32: 64x64 tile, 256 threads with a 4x4 register tile each (rows ty+16i, columns tx+16j, so shared-memory
// reads are broadcasts or conflict-free and global stores are coalesced).
__global__ void __launch_bounds__(kSimtThreads) gemm_f32_simt_kernel(GemmArgs<float> args) {
    __shared__ float a_tile[kSimtBK][kSimtBM + 4];  // transposed: [k][m]
    __shared__ float b_tile[kSimtBK][kSimtBN + 4];

    const GemmBlock blk = gemm_block(args);
    const float* a = args.a + (size_t)blk.grp * args.m * args.k;
    const float* b = args.b + (size_t)blk.grp * args.k * args.n;
    const int m0 = blockIdx.y * kSimtBM, n0 = blockIdx.x * kSimtBN;
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    float acc[4][4] = {};

    for (int k0 = blk.k_begin; k0 < blk.k_end; k0 += kSimtBK) {
        for (int e = threadIdx.x; e < kSimtBM * kSimtBK; e += kSimtThreads) {
            const int r = e / kSimtBK, c = e % kSimtBK, gm = m0 + r, gk = k0 + c;
            a_tile[c][r] = (gm < args.m && gk < blk.k_end) ? a[(size_t)gm * args.k + gk] : 0.0f;
        }
        for (int e = threadIdx.x; e < kSimtBK * kSimtBN; e += kSimtThreads) {
            const int r = e / kSimtBN, c = e % kSimtBN, gk = k0 + r, gn = n0 + c;
            b_tile[r][c] = (gk < blk.k_end && gn < args.n) ? b[(size_t)gk * args.n + gn] : 0.0f;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < kSimtBK; ++kk) {
            float av[4], bv[4];
#pragma unroll
            for (int i = 0; i < 4; ++i) av[i] = a_tile[kk][ty + 16 * i];
#pragma unroll
            for (int j = 0; j < 4; ++j) bv[j] = b_tile[kk][tx + 16 * j];
#pragma unroll
            for (int i = 0; i < 4; ++i)
#pragma unroll
                for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) {
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const int gm = m0 + ty + 16 * i, gn = n0 + tx + 16 * j;
            if (gm < args.m && gn < args.n) gemm_emit(args, blk, gm, gn, acc[i][j]);
        }
    }
}

unsigned grid_for(size_t total, unsigned threads) {
    const size_t blocks = (total + threads - 1) / threads;
    return (unsigned)(blocks < ((size_t)1 << 20) ? (blocks == 0 ? 1 : blocks) : ((size_t)1 << 20));
}

static_assert(kWmmaBM == siamattn::kGemmTile && kWmmaBN == siamattn::kGemmTile && kSimtBM == siamattn::kGemmTile &&
                  kSimtBN == siamattn::kGemmTile, "split-K heuristics assume 64x64 tiles");
static_assert(siamattn::kSplitKStep % kWmmaBK == 0 && siamattn::kSplitKStep % kSimtBK == 0,
              "split-K ranges must start on K-tile boundaries");

void launch_gemm(const GemmArgs<__half>& args, int groups, cudaStream_t stream) {
    const dim3 grid((args.n + kWmmaBN - 1) / kWmmaBN, (args.m + kWmmaBM - 1) / kWmmaBM, groups * args.splits);
    SIAMATTN_LAUNCH(grid, kWmmaThreads, stream, gemm_f16_wmma_kernel)(args);
}

void launch_gemm(const GemmArgs<float>& args, int groups, cudaStream_t stream) {
    const dim3 grid((args.n + kSimtBN - 1) / kSimtBN, (args.m + kSimtBM - 1) / kSimtBM, groups * args.splits);
    SIAMATTN_LAUNCH(grid, kSimtThreads, stream, gemm_f32_simt_kernel)(args);
}

template <typename T>
void launch_splitk_reduce(const GemmArgs<T>& args, int groups, cudaStream_t stream) {
    SIAMATTN_LAUNCH(grid_for((size_t)groups * args.m * args.n, 256), 256, stream, splitk_reduce_kernel<T>)(args, groups);
}

int32_t check_launch(const char* what) {
    const cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) return fail(SIAMATTN_ERR_CUDA, "%s: %s", what, cudaGetErrorString(err));
    return SIAMATTN_OK;
}

template <typename T>
int32_t conv_forward(const siamattn_deform_conv_params& p, const T* x, const T* w, const T* bias, const T* offset,
                     const T* mask, T* y, void* workspace, cudaStream_t stream) {
    const siamattn::ConvGeom g = siamattn::make_conv_geom(p);
    const int plane_pixels = p.out_h * p.out_w;
    const int chunk = siamattn::conv_batch_chunk(p, sizeof(T));
    // Workspace (sized by siamattn_deform_conv_workspace_size): column buffer, then the split-K partials.
    const uintptr_t col_addr = (reinterpret_cast<uintptr_t>(workspace) + 255) & ~(uintptr_t)255;
    T* col = reinterpret_cast<T*>(col_addr);
    const size_t col_bytes = (size_t)p.in_channels * g.taps * chunk * plane_pixels * sizeof(T);
    float* partial = reinterpret_cast<float*>((col_addr + col_bytes + 255) & ~(uintptr_t)255);
    const int splits = siamattn::conv_split_k(p, chunk * plane_pixels);  // the last, smaller chunk fits too
    for (int n0 = 0; n0 < p.batch; n0 += chunk) {
        const int nb = p.batch - n0 < chunk ? p.batch - n0 : chunk;
        const size_t total = (size_t)p.in_channels * nb * plane_pixels;
        SIAMATTN_LAUNCH(grid_for(total, 256), 256, stream, deform_im2col_kernel<T>)(
            x, offset, p.has_mask ? mask : nullptr, col, g, n0, nb);
        GemmArgs<T> args;
        args.a = w;
        args.b = col;
        args.bias = p.has_bias ? bias : nullptr;
        args.y = y + (size_t)n0 * p.out_channels * plane_pixels;
        args.m = p.out_channels / p.groups;
        args.n = nb * plane_pixels;
        args.k = p.in_channels / p.groups * g.taps;
        args.plane_pixels = plane_pixels;
        args.y_image_stride = (size_t)p.out_channels * plane_pixels;
        args.splits = splits;
        args.k_chunk = siamattn::conv_split_k_chunk(args.k, splits);
        args.partial = splits > 1 ? partial : nullptr;
        launch_gemm(args, p.groups, stream);
        if (splits > 1) launch_splitk_reduce(args, p.groups, stream);
        const int32_t status = check_launch("deform_conv_cuda");
        if (status != SIAMATTN_OK) return status;
    }
    return SIAMATTN_OK;
}

template <typename T, typename R>
__global__ void deform_roi_pool_kernel(const T* __restrict__ feat, const R* __restrict__ rois,
                                       const T* __restrict__ offset, T* __restrict__ out,
                                       siamattn_deform_roi_pool_params p) {
    const size_t bins = (size_t)p.pooled_h * p.pooled_w;
    const size_t total = (size_t)p.num_rois * p.channels * bins;
    for (size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
         idx += (size_t)gridDim.x * blockDim.x) {
        const int pw = (int)(idx % p.pooled_w);
        const int ph = (int)((idx / p.pooled_w) % p.pooled_h);
        const int c = (int)((idx / bins) % p.channels);
        const int k = (int)(idx / bins / p.channels);
        const size_t r = (size_t)k * 5;
        const float batch_f = load_f(rois, r);
        if (!(batch_f >= 0.0f && batch_f < (float)p.batch)) {
            out[idx] = store_cvt<T>(0.0f);
            continue;
        }
        const int b = (int)batch_f;
        const siamattn::RoiBox box{load_f(rois, r + 1), load_f(rois, r + 2), load_f(rois, r + 3),
                                   load_f(rois, r + 4)};
        float ox = 0.0f, oy = 0.0f;
        if (p.has_offset) {
            const size_t base = (size_t)k * 2 * bins + (size_t)ph * p.pooled_w + pw;
            ox = load_f(offset, base);
            oy = load_f(offset, base + bins);
        }
        const DevPlane<T> plane{feat + ((size_t)b * p.channels + c) * p.in_h * p.in_w, p.in_w};
        out[idx] = store_cvt<T>(siamattn::deform_roi_pool_bin(plane, p, box, ph, pw, ox, oy));
    }
}

template <typename T>
void roi_pool_launch(const siamattn_deform_roi_pool_params& p, int32_t rois_dtype, const void* feat,
                     const void* rois, const void* offset, void* out, cudaStream_t stream) {
    const size_t total = (size_t)p.num_rois * p.channels * p.pooled_h * p.pooled_w;
    const unsigned blocks = grid_for(total, 256);
    const T* off = p.has_offset ? static_cast<const T*>(offset) : nullptr;
    if (rois_dtype == SIAMATTN_FLOAT32)
        SIAMATTN_LAUNCH(blocks, 256, stream, deform_roi_pool_kernel<T, float>)(
            static_cast<const T*>(feat), static_cast<const float*>(rois), off, static_cast<T*>(out), p);
    else
        SIAMATTN_LAUNCH(blocks, 256, stream, deform_roi_pool_kernel<T, __half>)(
            static_cast<const T*>(feat), static_cast<const __half*>(rois), off, static_cast<T*>(out), p);
}

bool valid_dtype(int32_t d) { return d == SIAMATTN_FLOAT32 || d == SIAMATTN_FLOAT16; }

}  // namespace

extern "C" {

int32_t siamattn_deform_conv_forward_cuda(const siamattn_deform_conv_params* params, int32_t dtype, const void* x,
                                          const void* weight, const void* bias, const void* offset,
                                          const void* mask, void* y, void* workspace, size_t workspace_bytes,
                                          void* stream) {
    if (params == nullptr) return fail(SIAMATTN_ERR_NULL_POINTER, "deform_conv_cuda: params is NULL");
    siamattn_deform_conv_params p = *params;
    const int32_t status = siamattn_deform_conv_validate(&p);
    if (status != SIAMATTN_OK) return status;
    if (!valid_dtype(dtype)) return fail(SIAMATTN_ERR_UNSUPPORTED_DTYPE, "deform_conv_cuda: dtype %d", dtype);
    if (!x || !weight || !offset || !y || (p.has_bias && !bias) || (p.has_mask && !mask))
        return fail(SIAMATTN_ERR_NULL_POINTER, "deform_conv_cuda: a required tensor pointer is NULL");
    const size_t needed = siamattn_deform_conv_workspace_size(&p, dtype);
    if (workspace == nullptr || workspace_bytes < needed)
        return fail(SIAMATTN_ERR_WORKSPACE, "deform_conv_cuda: workspace of %zu bytes given, %zu needed",
                    workspace == nullptr ? (size_t)0 : workspace_bytes, needed);
    const cudaStream_t s = static_cast<cudaStream_t>(stream);
    if (dtype == SIAMATTN_FLOAT32)
        return conv_forward<float>(p, (const float*)x, (const float*)weight, (const float*)bias,
                                   (const float*)offset, (const float*)mask, (float*)y, workspace, s);
    return conv_forward<__half>(p, (const __half*)x, (const __half*)weight, (const __half*)bias,
                                (const __half*)offset, (const __half*)mask, (__half*)y, workspace, s);
}

int32_t siamattn_deform_roi_pool_forward_cuda(const siamattn_deform_roi_pool_params* p, int32_t feat_dtype,
                                              int32_t rois_dtype, const void* feat, const void* rois,
                                              const void* offset, void* out, void* stream) {
    const int32_t status = siamattn_deform_roi_pool_validate(p);
    if (status != SIAMATTN_OK) return status;
    if (!valid_dtype(feat_dtype) || !valid_dtype(rois_dtype))
        return fail(SIAMATTN_ERR_UNSUPPORTED_DTYPE, "deform_roi_pool_cuda: dtypes %d/%d", feat_dtype, rois_dtype);
    if (p->num_rois == 0) return SIAMATTN_OK;
    if (!feat || !rois || !out || (p->has_offset && !offset))
        return fail(SIAMATTN_ERR_NULL_POINTER, "deform_roi_pool_cuda: a required tensor pointer is NULL");
    const cudaStream_t s = static_cast<cudaStream_t>(stream);
    if (feat_dtype == SIAMATTN_FLOAT32)
        roi_pool_launch<float>(*p, rois_dtype, feat, rois, offset, out, s);
    else
        roi_pool_launch<__half>(*p, rois_dtype, feat, rois, offset, out, s);
    return check_launch("deform_roi_pool_cuda");
}

}  // extern "C"
