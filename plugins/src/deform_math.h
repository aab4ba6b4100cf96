// Per-element arithmetic of DeformConv2d and DeformRoIPool, shared verbatim by the CPU library and the CUDA
// kernels (host/device inline functions), so the CPU-only tests exercise the arithmetic the GPU runs.
// Everything here is FP32: callers convert loaded FP16 values to float before they reach these functions.
#pragma once

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "siamattn_deform.h"

#if defined(__CUDACC__)
#define SA_HD __host__ __device__ __forceinline__
#else
#define SA_HD inline
#endif

namespace siamattn {

// Output-independent geometry of one DeformConv2d call, precomputed once per launch.
struct ConvGeom {
    int channels, height, width;
    int kernel_h, kernel_w, taps;  // taps = kernel_h * kernel_w
    int stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w;  // pad_* = begin pads
    int out_h, out_w;
    int offset_groups, channels_per_offset_group;
    int has_mask;
};

inline ConvGeom make_conv_geom(const siamattn_deform_conv_params& p) {
    ConvGeom g;
    g.channels = p.in_channels;
    g.height = p.in_h;
    g.width = p.in_w;
    g.kernel_h = p.kernel_h;
    g.kernel_w = p.kernel_w;
    g.taps = p.kernel_h * p.kernel_w;
    g.stride_h = p.stride_h;
    g.stride_w = p.stride_w;
    g.pad_h = p.pad_h_begin;
    g.pad_w = p.pad_w_begin;
    g.dilation_h = p.dilation_h;
    g.dilation_w = p.dilation_w;
    g.out_h = p.out_h;
    g.out_w = p.out_w;
    g.offset_groups = p.offset_groups;
    g.channels_per_offset_group = p.in_channels / p.offset_groups;
    g.has_mask = p.has_mask;
    return g;
}

// Bilinear sample with the DeformConv border rule: 0 when y <= -1, y >= H, x <= -1 or x >= W (NaN too);
// otherwise each of the four corners contributes only if it lies inside the image.
// `at(row, col)` returns the float value of an in-image pixel.
template <typename Fetch>
SA_HD float deform_conv_bilinear(const Fetch& at, int height, int width, float y, float x) {
    if (!(y > -1.0f && y < (float)height && x > -1.0f && x < (float)width)) return 0.0f;
    const float yf = floorf(y), xf = floorf(x);
    const int y0 = (int)yf, x0 = (int)xf, y1 = y0 + 1, x1 = x0 + 1;
    const float ly = y - yf, lx = x - xf, hy = 1.0f - ly, hx = 1.0f - lx;
    const float v00 = (y0 >= 0 && x0 >= 0) ? at(y0, x0) : 0.0f;
    const float v01 = (y0 >= 0 && x1 < width) ? at(y0, x1) : 0.0f;
    const float v10 = (y1 < height && x0 >= 0) ? at(y1, x0) : 0.0f;
    const float v11 = (y1 < height && x1 < width) ? at(y1, x1) : 0.0f;
    return hy * hx * v00 + hy * lx * v01 + ly * hx * v10 + ly * lx * v11;
}

// Index of the dy value of (image n, offset group og, tap, output pixel pix) in the offset tensor;
// dx follows one channel (out_h*out_w elements) later.
SA_HD size_t conv_offset_index(const ConvGeom& g, int n, int og, int tap, int pix) {
    const size_t plane = (size_t)g.out_h * g.out_w;
    const size_t ch = ((size_t)n * g.offset_groups + og) * 2 * g.taps + 2 * (size_t)tap;
    return ch * plane + (size_t)pix;
}

SA_HD size_t conv_mask_index(const ConvGeom& g, int n, int og, int tap, int pix) {
    const size_t plane = (size_t)g.out_h * g.out_w;
    return (((size_t)n * g.offset_groups + og) * g.taps + (size_t)tap) * plane + (size_t)pix;
}

// One im2col entry: input channel plane sampled at tap (i, j) of output pixel (oy, ox), moved by (dy, dx)
// and scaled by the DCNv2 modulation `m` (1 for DCNv1).
template <typename Fetch>
SA_HD float deform_conv_column_value(const Fetch& plane, const ConvGeom& g, int i, int j, int oy, int ox,
                                     float dy, float dx, float m) {
    const float y = (float)(oy * g.stride_h - g.pad_h + i * g.dilation_h) + dy;
    const float x = (float)(ox * g.stride_w - g.pad_w + j * g.dilation_w) + dx;
    return m * deform_conv_bilinear(plane, g.height, g.width, y, x);
}

// Bilinear sample with the RoIAlign rule used by mmcv's DeformRoIPool: 0 outside [-1, H] x [-1, W];
// negative coordinates clamp to 0 and coordinates past the last row/column clamp to it.
template <typename Fetch>
SA_HD float roi_align_bilinear(const Fetch& at, int height, int width, float y, float x) {
    if (!(y >= -1.0f && y <= (float)height && x >= -1.0f && x <= (float)width)) return 0.0f;
    if (y <= 0.0f) y = 0.0f;
    if (x <= 0.0f) x = 0.0f;
    int y0 = (int)y, x0 = (int)x, y1, x1;
    if (y0 >= height - 1) {
        y0 = y1 = height - 1;
        y = (float)y0;
    } else {
        y1 = y0 + 1;
    }
    if (x0 >= width - 1) {
        x0 = x1 = width - 1;
        x = (float)x0;
    } else {
        x1 = x0 + 1;
    }
    const float ly = y - (float)y0, lx = x - (float)x0, hy = 1.0f - ly, hx = 1.0f - lx;
    return hy * hx * at(y0, x0) + hy * lx * at(y0, x1) + ly * hx * at(y1, x0) + ly * lx * at(y1, x1);
}

// Largest per-bin sampling grid side; only absurd RoIs (thousands of bins' worth of pixels per bin) reach it.
// It keeps a garbage RoI from turning into an effectively endless loop inside a kernel.
constexpr int kMaxRoiGrid = 1024;

struct RoiBox {
    float x1, y1, x2, y2;
};

// FP32 product and sum rounded separately: nvcc would contract a*b + c into one FMA, which rounds once and
// can move a sample that the reference op puts exactly on a border (-0.5, size-0.5) across it.
SA_HD float mul_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
    return __fmul_rn(a, b);
#else
    return a * b;
#endif
}

SA_HD float add_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
    return __fadd_rn(a, b);
#else
    return a + b;
#endif
}

// Bilinear value at a point already clamped to [0, H-1] x [0, W-1] (the high tap stays on the edge there,
// where its weight is 0).
template <typename Fetch>
SA_HD float clamped_bilinear(const Fetch& at, int height, int width, float y, float x) {
    const int y0 = (int)y, x0 = (int)x;  // y, x >= 0: truncation is floor
    const int y1 = y0 + 1 < height ? y0 + 1 : y0;
    const int x1 = x0 + 1 < width ? x0 + 1 : x0;
    const float ly = y - (float)y0, lx = x - (float)x0, hy = 1.0f - ly, hx = 1.0f - lx;
    return hy * hx * at(y0, x0) + hy * lx * at(y0, x1) + ly * hx * at(y1, x0) + ly * lx * at(y1, x1);
}

// Bin (ph, pw) in mode mmdet_v1 (docs/DESIGN.md §4.3): corners C-rounded (roundf: halves away from zero),
// far corner + 1, min size 0.1, g x g samples from the bin corner (no half step), samples outside
// [-0.5, size-0.5] skipped (NaN too), the rest clamped to the map; the mean over the valid samples, 0 if none.
// Float operations in the reference op's order, each rounded (mul_rn/add_rn), so border decisions agree.
template <typename Fetch>
SA_HD float deform_roi_pool_bin_mmdet_v1(const Fetch& plane, const siamattn_deform_roi_pool_params& p, RoiBox box,
                                         int ph, int pw, float off_x, float off_y) {
    const float s = p.spatial_scale;
    const float start_x = add_rn(mul_rn(roundf(box.x1), s), -0.5f);
    const float start_y = add_rn(mul_rn(roundf(box.y1), s), -0.5f);
    const float end_x = add_rn(mul_rn(roundf(box.x2) + 1.0f, s), -0.5f);
    const float end_y = add_rn(mul_rn(roundf(box.y2) + 1.0f, s), -0.5f);
    const float dw = end_x - start_x, dh = end_y - start_y;
    const float roi_w = dw > 0.1f ? dw : 0.1f;
    const float roi_h = dh > 0.1f ? dh : 0.1f;
    const float bin_w = roi_w / (float)p.pooled_w, bin_h = roi_h / (float)p.pooled_h;
    const int g = p.sampling_ratio;
    const float step_w = bin_w / (float)g, step_h = bin_h / (float)g;
    float x0 = add_rn(mul_rn((float)pw, bin_w), start_x);
    float y0 = add_rn(mul_rn((float)ph, bin_h), start_y);
    if (p.has_offset) {
        x0 = add_rn(x0, mul_rn(mul_rn(off_x, p.gamma), roi_w));
        y0 = add_rn(y0, mul_rn(mul_rn(off_y, p.gamma), roi_h));
    }
    const float max_y = (float)p.in_h - 0.5f, max_x = (float)p.in_w - 0.5f;
    float acc = 0.0f;
    int count = 0;
    for (int iy = 0; iy < g; ++iy) {
        float y = add_rn(y0, mul_rn((float)iy, step_h));
        if (!(y >= -0.5f && y <= max_y)) continue;
        y = y < 0.0f ? 0.0f : (y > (float)(p.in_h - 1) ? (float)(p.in_h - 1) : y);
        for (int ix = 0; ix < g; ++ix) {
            float x = add_rn(x0, mul_rn((float)ix, step_w));
            if (!(x >= -0.5f && x <= max_x)) continue;
            x = x < 0.0f ? 0.0f : (x > (float)(p.in_w - 1) ? (float)(p.in_w - 1) : x);
            acc += clamped_bilinear(plane, p.in_h, p.in_w, y, x);
            ++count;
        }
    }
    return count > 0 ? acc / (float)count : 0.0f;
}

// Output value of bin (ph, pw) of one RoI and one channel plane: the mean of grid_h x grid_w bilinear
// samples. `off_x`, `off_y` are the raw (dx, dy) offsets of the bin (ignored unless has_offset).
template <typename Fetch>
SA_HD float deform_roi_pool_bin(const Fetch& plane, const siamattn_deform_roi_pool_params& p, RoiBox box,
                                int ph, int pw, float off_x, float off_y) {
    if (p.mode == SIAMATTN_ROI_POOL_MMDET_V1) return deform_roi_pool_bin_mmdet_v1(plane, p, box, ph, pw, off_x, off_y);
    float start_x = box.x1 * p.spatial_scale - 0.5f;
    float start_y = box.y1 * p.spatial_scale - 0.5f;
    const float roi_w = box.x2 * p.spatial_scale - 0.5f - start_x;
    const float roi_h = box.y2 * p.spatial_scale - 0.5f - start_y;
    const float bin_w = roi_w / (float)p.pooled_w;
    const float bin_h = roi_h / (float)p.pooled_h;
    if (!(isfinite(bin_w) && isfinite(bin_h))) return 0.0f;
    int grid_h = p.sampling_ratio;
    int grid_w = p.sampling_ratio;
    if (p.sampling_ratio <= 0) {
        // Adaptive grid; a negative-size RoI gives a grid of 0 samples and so an output of 0, as in mmcv.
        const float ch = ceilf(bin_h), cw = ceilf(bin_w);
        grid_h = ch <= 0.0f ? 0 : (ch >= (float)kMaxRoiGrid ? kMaxRoiGrid : (int)ch);
        grid_w = cw <= 0.0f ? 0 : (cw >= (float)kMaxRoiGrid ? kMaxRoiGrid : (int)cw);
    }
    if (p.has_offset) {
        start_x += p.gamma * roi_w * off_x;
        start_y += p.gamma * roi_h * off_y;
    }
    const int count = grid_h * grid_w > 1 ? grid_h * grid_w : 1;
    float acc = 0.0f;
    for (int iy = 0; iy < grid_h; ++iy) {
        const float y = start_y + (float)ph * bin_h + ((float)iy + 0.5f) * bin_h / (float)grid_h;
        for (int ix = 0; ix < grid_w; ++ix) {
            const float x = start_x + (float)pw * bin_w + ((float)ix + 0.5f) * bin_w / (float)grid_w;
            acc += roi_align_bilinear(plane, p.in_h, p.in_w, y, x);
        }
    }
    return acc / (float)count;
}

// Batch images whose im2col columns the CUDA path materialises at once: as many as fit in the column budget,
// at least 1.
// Shared by the workspace query and the launcher, so the two always agree.
inline int conv_batch_chunk(const siamattn_deform_conv_params& p, size_t elem_bytes) {
    const size_t per_image =
        (size_t)p.in_channels * p.kernel_h * p.kernel_w * (size_t)p.out_h * p.out_w * elem_bytes;
    size_t chunk = per_image == 0 ? 1 : SIAMATTN_DEFORM_CONV_COLUMN_BUDGET / per_image;
    if (chunk < 1) chunk = 1;
    if (chunk > (size_t)p.batch) chunk = (size_t)p.batch;
    return (int)chunk;
}

// Split-K for GEMMs with too few 64x64 output tiles to fill a GPU (the 7x7 template map: M=256, N=49 gives 4
// tiles against 2304-long dot products). K is cut into `splits` ranges of whole 32-wide steps (at least 4 steps
// each); each block writes an FP32 partial tile and a reduction kernel adds the partials and the bias. Only for
// GEMMs with N <= 1024 columns, so the partial buffer stays small. SIAMATTN_DEFORM_SPLIT_K=1 turns it off and
// =S asks for S splits (clamped), for A/B benchmarks. Shared by the workspace query and the launcher.
constexpr int kGemmTile = 64, kSplitKTargetBlocks = 128, kSplitKStep = 32, kSplitKMinSteps = 4, kSplitKMaxN = 1024;

inline int conv_max_split_k(const siamattn_deform_conv_params& p) {
    const int k = p.in_channels / p.groups * p.kernel_h * p.kernel_w;
    const int max_splits = k / (kSplitKStep * kSplitKMinSteps);
    return max_splits < 1 ? 1 : max_splits;
}

inline int conv_split_k(const siamattn_deform_conv_params& p, int n_cols) {
    const int max_splits = conv_max_split_k(p);
    if (n_cols > kSplitKMaxN || max_splits < 2) return 1;
    const char* env = getenv("SIAMATTN_DEFORM_SPLIT_K");
    int splits;
    if (env != nullptr && *env != '\0') {
        splits = atoi(env);
    } else {
        const int m = p.out_channels / p.groups;
        const int tiles = ((m + kGemmTile - 1) / kGemmTile) * ((n_cols + kGemmTile - 1) / kGemmTile) * p.groups;
        splits = tiles >= kSplitKTargetBlocks ? 1 : (kSplitKTargetBlocks + tiles - 1) / tiles;
    }
    return splits < 1 ? 1 : (splits > max_splits ? max_splits : splits);
}

// K elements per split: whole 32-wide steps, so every split starts on a tile boundary of both GEMM kernels.
inline int conv_split_k_chunk(int k, int splits) {
    const int steps = (k + kSplitKStep - 1) / kSplitKStep;
    return (steps + splits - 1) / splits * kSplitKStep;
}

inline size_t conv_partial_bytes(const siamattn_deform_conv_params& p, int n_cols, int splits) {
    return splits > 1 ? (size_t)splits * p.out_channels * (size_t)n_cols * sizeof(float) : 0;
}

// Bound on conv_partial_bytes over every shape up to p's (the TensorRT plugin sizes its workspace with it).
inline size_t conv_partial_bytes_bound(const siamattn_deform_conv_params& p) {
    const size_t cols = (size_t)p.batch * p.out_h * p.out_w;
    const size_t n = cols < (size_t)kSplitKMaxN ? cols : (size_t)kSplitKMaxN;
    const int max_splits = conv_max_split_k(p);
    return max_splits > 1 ? (size_t)max_splits * p.out_channels * n * sizeof(float) : 0;
}

}  // namespace siamattn
