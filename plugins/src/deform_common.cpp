// Parameter validation, error reporting and the software FP16 conversion. Compiled into every library
// (CPU, CUDA, TensorRT plugins) so each is self-contained.
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "deform_common.h"
#include "deform_math.h"

#ifndef SIAMATTN_BUILD_INFO
#define SIAMATTN_BUILD_INFO "impl=unknown"
#endif

namespace {
thread_local char g_last_error[512] = "";
}  // namespace

namespace siamattn {

int32_t fail(int32_t status, const char* fmt, ...) {
    va_list args;
    va_start(args, fmt);
    vsnprintf(g_last_error, sizeof(g_last_error), fmt, args);
    va_end(args);
    return status;
}

void clear_error() { g_last_error[0] = '\0'; }

}  // namespace siamattn

using siamattn::fail;

extern "C" {

int32_t siamattn_api_version(void) { return SIAMATTN_DEFORM_API_VERSION; }

const char* siamattn_build_info(void) { return SIAMATTN_BUILD_INFO; }

const char* siamattn_last_error(void) { return g_last_error; }

const char* siamattn_status_string(int32_t status) {
    switch (status) {
        case SIAMATTN_OK: return "ok";
        case SIAMATTN_ERR_INVALID_ARGUMENT: return "invalid argument";
        case SIAMATTN_ERR_UNSUPPORTED_DTYPE: return "unsupported dtype";
        case SIAMATTN_ERR_NULL_POINTER: return "null pointer";
        case SIAMATTN_ERR_WORKSPACE: return "workspace too small";
        case SIAMATTN_ERR_CUDA: return "CUDA error";
        case SIAMATTN_ERR_OUT_OF_MEMORY: return "out of memory";
        default: return "unknown status";
    }
}

int32_t siamattn_deform_conv_validate(siamattn_deform_conv_params* p) {
    siamattn::clear_error();
    if (p == nullptr) return fail(SIAMATTN_ERR_NULL_POINTER, "deform_conv: params is NULL");
    if (p->batch < 1 || p->in_channels < 1 || p->in_h < 1 || p->in_w < 1 || p->out_channels < 1)
        return fail(SIAMATTN_ERR_INVALID_ARGUMENT,
                    "deform_conv: batch, channels and spatial sizes must be >= 1 (got N=%d C=%d H=%d W=%d M=%d)",
                    p->batch, p->in_channels, p->in_h, p->in_w, p->out_channels);
    if (p->kernel_h < 1 || p->kernel_w < 1)
        return fail(SIAMATTN_ERR_INVALID_ARGUMENT, "deform_conv: kernel_shape must be >= 1 (got %dx%d)",
                    p->kernel_h, p->kernel_w);
    if (p->stride_h < 1 || p->stride_w < 1 || p->dilation_h < 1 || p->dilation_w < 1)
        return fail(SIAMATTN_ERR_INVALID_ARGUMENT,
                    "deform_conv: strides and dilations must be >= 1 (got strides %d,%d dilations %d,%d)",
                    p->stride_h, p->stride_w, p->dilation_h, p->dilation_w);
    if (p->pad_h_begin < 0 || p->pad_w_begin < 0 || p->pad_h_end < 0 || p->pad_w_end < 0)
        return fail(SIAMATTN_ERR_INVALID_ARGUMENT, "deform_conv: pads must be >= 0");
    if (p->groups < 1 || p->in_channels % p->groups != 0 || p->out_channels % p->groups != 0)
        return fail(SIAMATTN_ERR_INVALID_ARGUMENT,
                    "deform_conv: group=%d must divide both in_channels=%d and out_channels=%d", p->groups,
                    p->in_channels, p->out_channels);
    if (p->offset_groups < 1 || p->in_channels % p->offset_groups != 0)
        return fail(SIAMATTN_ERR_INVALID_ARGUMENT,
                    "deform_conv: offset_group=%d must divide in_channels=%d", p->offset_groups, p->in_channels);
    const long long eff_h = (long long)p->dilation_h * (p->kernel_h - 1) + 1;
    const long long eff_w = (long long)p->dilation_w * (p->kernel_w - 1) + 1;
    const long long span_h = (long long)p->in_h + p->pad_h_begin + p->pad_h_end - eff_h;
    const long long span_w = (long long)p->in_w + p->pad_w_begin + p->pad_w_end - eff_w;
    if (span_h < 0 || span_w < 0)
        return fail(SIAMATTN_ERR_INVALID_ARGUMENT,
                    "deform_conv: dilated kernel (%lldx%lld) is larger than the padded input (%dx%d)", eff_h,
                    eff_w, p->in_h + p->pad_h_begin + p->pad_h_end, p->in_w + p->pad_w_begin + p->pad_w_end);
    p->out_h = (int32_t)(span_h / p->stride_h + 1);
    p->out_w = (int32_t)(span_w / p->stride_w + 1);
    // Every index the kernels form must fit in int32 per plane and size_t overall; planes beyond 2^31 are
    // not a use case of this tracker.
    if ((long long)p->in_h * p->in_w >= (1LL << 31) || (long long)p->out_h * p->out_w >= (1LL << 31))
        return fail(SIAMATTN_ERR_INVALID_ARGUMENT, "deform_conv: spatial planes above 2^31 elements");
    return SIAMATTN_OK;
}

size_t siamattn_deform_conv_workspace_size(const siamattn_deform_conv_params* p, int32_t dtype) {
    if (p == nullptr) return 0;
    siamattn_deform_conv_params q = *p;
    if (siamattn_deform_conv_validate(&q) != SIAMATTN_OK) return 0;
    const size_t elem = dtype == SIAMATTN_FLOAT16 ? 2 : 4;
    const size_t chunk = (size_t)siamattn::conv_batch_chunk(q, elem);
    const size_t cols = (size_t)q.in_channels * q.kernel_h * q.kernel_w * chunk * q.out_h * q.out_w * elem;
    const int n_cols = (int)(chunk * q.out_h * q.out_w);
    const size_t partial = siamattn::conv_partial_bytes(q, n_cols, siamattn::conv_split_k(q, n_cols));
    return cols + partial + 512;  // slack so both buffers can start on 256-byte boundaries
}

int32_t siamattn_deform_roi_pool_validate(const siamattn_deform_roi_pool_params* p) {
    siamattn::clear_error();
    if (p == nullptr) return fail(SIAMATTN_ERR_NULL_POINTER, "deform_roi_pool: params is NULL");
    if (p->batch < 1 || p->channels < 1 || p->in_h < 1 || p->in_w < 1)
        return fail(SIAMATTN_ERR_INVALID_ARGUMENT,
                    "deform_roi_pool: feature map sizes must be >= 1 (got N=%d C=%d H=%d W=%d)", p->batch,
                    p->channels, p->in_h, p->in_w);
    if (p->num_rois < 0)
        return fail(SIAMATTN_ERR_INVALID_ARGUMENT, "deform_roi_pool: num_rois must be >= 0 (got %d)",
                    p->num_rois);
    if (p->pooled_h < 1 || p->pooled_w < 1)
        return fail(SIAMATTN_ERR_INVALID_ARGUMENT, "deform_roi_pool: output size must be >= 1 (got %dx%d)",
                    p->pooled_h, p->pooled_w);
    if (p->sampling_ratio < 0)
        return fail(SIAMATTN_ERR_INVALID_ARGUMENT,
                    "deform_roi_pool: sampling_ratio must be >= 0 (0 = adaptive), got %d", p->sampling_ratio);
    if (!(isfinite(p->spatial_scale) && p->spatial_scale > 0.0f))
        return fail(SIAMATTN_ERR_INVALID_ARGUMENT, "deform_roi_pool: spatial_scale must be > 0 (got %g)",
                    (double)p->spatial_scale);
    if (!isfinite(p->gamma))
        return fail(SIAMATTN_ERR_INVALID_ARGUMENT, "deform_roi_pool: gamma must be finite");
    if (p->mode != SIAMATTN_ROI_POOL_MMCV && p->mode != SIAMATTN_ROI_POOL_MMDET_V1)
        return fail(SIAMATTN_ERR_INVALID_ARGUMENT, "deform_roi_pool: mode must be 0 (mmcv) or 1 (mmdet_v1), got %d",
                    p->mode);
    if (p->mode == SIAMATTN_ROI_POOL_MMDET_V1 && p->sampling_ratio < 1)
        return fail(SIAMATTN_ERR_INVALID_ARGUMENT,
                    "deform_roi_pool: mode 1 (mmdet_v1) needs a fixed sampling_ratio >= 1, got %d",
                    p->sampling_ratio);
    return SIAMATTN_OK;
}

size_t siamattn_deform_roi_pool_workspace_size(const siamattn_deform_roi_pool_params* p) {
    (void)p;
    return 0;
}

uint16_t siamattn_float_to_half(float value) {
    uint32_t bits;
    memcpy(&bits, &value, sizeof(bits));
    const uint16_t sign = (uint16_t)((bits >> 16) & 0x8000u);
    const uint32_t mag = bits & 0x7fffffffu;
    if (mag > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((mag >> 13) & 0x3ffu));  // NaN stays NaN
    if (mag < 0x38800000u) {
        // Below the smallest normal half: scaling by 2^24 is exact in float, rintf rounds to nearest even,
        // and a result of 1024 is exactly the encoding of the smallest normal.
        float scaled;
        memcpy(&scaled, &mag, sizeof(scaled));
        return (uint16_t)(sign | (uint16_t)rintf(scaled * 16777216.0f));
    }
    const int32_t exponent = (int32_t)(mag >> 23) - 127 + 15;
    if (exponent >= 31) return (uint16_t)(sign | 0x7c00u);
    const uint32_t mantissa = mag & 0x7fffffu;
    uint32_t half = ((uint32_t)exponent << 10) | (mantissa >> 13);
    const uint32_t rest = mantissa & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (half & 1u))) ++half;  // carries into the exponent, up to inf
    return (uint16_t)(sign | half);
}

float siamattn_half_to_float(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t exponent = (h >> 10) & 0x1fu;
    const uint32_t mantissa = h & 0x3ffu;
    uint32_t bits;
    if (exponent == 0) {
        const float sub = ldexpf((float)mantissa, -24);  // subnormal (or zero), exact in float
        memcpy(&bits, &sub, sizeof(bits));
        bits |= sign;
    } else if (exponent == 31) {
        bits = sign | 0x7f800000u | (mantissa << 13);
    } else {
        bits = sign | ((exponent - 15 + 127) << 23) | (mantissa << 13);
    }
    float out;
    memcpy(&out, &bits, sizeof(out));
    return out;
}

}  // extern "C"
