// CPU implementation of the C API. It mirrors the CUDA path step by step (im2col with the shared sampling
// functions, FP16 column values rounded to half like the GPU's FP16 column buffer, FP32 accumulation, bias
// added after accumulation) so CPU-only tests cover the GPU's arithmetic; only the summation order differs.
#include <algorithm>
#include <new>
#include <vector>

#include "deform_common.h"
#include "deform_math.h"

namespace {

using siamattn::fail;

inline float to_float(float v) { return v; }
inline float to_float(uint16_t v) { return siamattn_half_to_float(v); }

template <typename T>
inline T from_float(float v);
template <>
inline float from_float<float>(float v) {
    return v;
}
template <>
inline uint16_t from_float<uint16_t>(float v) {
    return siamattn_float_to_half(v);
}

// Value as stored in a buffer of type T (the GPU keeps FP16 columns in half).
template <typename T>
inline float round_to(float v) {
    return to_float(from_float<T>(v));
}

template <typename T>
struct Plane {
    const T* base;
    int width;
    float operator()(int y, int x) const { return to_float(base[(size_t)y * width + x]); }
};

template <typename T>
int32_t conv_forward(const siamattn_deform_conv_params& p, const T* x, const T* w, const T* bias, const T* offset,
                     const T* mask, T* y) {
    const siamattn::ConvGeom g = siamattn::make_conv_geom(p);
    const int taps = g.taps;
    const size_t pix_count = (size_t)p.out_h * p.out_w;
    const size_t k_total = (size_t)p.in_channels * taps;
    const int m_per_group = p.out_channels / p.groups;
    const size_t k_per_group = k_total / p.groups;
    std::vector<float> col, acc;
    try {
        col.resize(k_total * pix_count);
        acc.resize(pix_count);
    } catch (const std::bad_alloc&) {
        return fail(SIAMATTN_ERR_OUT_OF_MEMORY, "deform_conv_cpu: cannot allocate %zu column values",
                    k_total * pix_count);
    }
    for (int n = 0; n < p.batch; ++n) {
        for (int c = 0; c < p.in_channels; ++c) {
            const int og = c / g.channels_per_offset_group;
            const Plane<T> plane{x + ((size_t)n * p.in_channels + c) * p.in_h * p.in_w, p.in_w};
            for (int i = 0; i < p.kernel_h; ++i) {
                for (int j = 0; j < p.kernel_w; ++j) {
                    const int tap = i * p.kernel_w + j;
                    float* dst = col.data() + ((size_t)c * taps + tap) * pix_count;
                    for (size_t pix = 0; pix < pix_count; ++pix) {
                        const size_t oi = siamattn::conv_offset_index(g, n, og, tap, (int)pix);
                        const float dy = to_float(offset[oi]);
                        const float dx = to_float(offset[oi + pix_count]);
                        const float m =
                            g.has_mask ? to_float(mask[siamattn::conv_mask_index(g, n, og, tap, (int)pix)]) : 1.0f;
                        const int oy = (int)(pix / p.out_w), ox = (int)(pix % p.out_w);
                        dst[pix] = round_to<T>(siamattn::deform_conv_column_value(plane, g, i, j, oy, ox, dy, dx, m));
                    }
                }
            }
        }
        for (int grp = 0; grp < p.groups; ++grp) {
            for (int mo = 0; mo < m_per_group; ++mo) {
                const int out_ch = grp * m_per_group + mo;
                const T* w_row = w + (size_t)out_ch * k_per_group;
                std::fill(acc.begin(), acc.end(), 0.0f);
                for (size_t k = 0; k < k_per_group; ++k) {
                    const float wk = to_float(w_row[k]);
                    const float* src = col.data() + (grp * k_per_group + k) * pix_count;
                    for (size_t pix = 0; pix < pix_count; ++pix) acc[pix] += wk * src[pix];
                }
                const float b = p.has_bias ? to_float(bias[out_ch]) : 0.0f;
                T* dst = y + ((size_t)n * p.out_channels + out_ch) * pix_count;
                for (size_t pix = 0; pix < pix_count; ++pix) dst[pix] = from_float<T>(acc[pix] + b);
            }
        }
    }
    return SIAMATTN_OK;
}

template <typename T, typename R>
void roi_pool_forward(const siamattn_deform_roi_pool_params& p, const T* feat, const R* rois, const T* offset,
                      T* out) {
    const size_t bins = (size_t)p.pooled_h * p.pooled_w;
    for (int k = 0; k < p.num_rois; ++k) {
        const R* r = rois + (size_t)k * 5;
        const float batch_f = to_float(r[0]);
        T* out_roi = out + (size_t)k * p.channels * bins;
        if (!(batch_f >= 0.0f && batch_f < (float)p.batch)) {
            // No image to pool from: defined as zeros rather than reading out of bounds.
            for (size_t e = 0; e < (size_t)p.channels * bins; ++e) out_roi[e] = from_float<T>(0.0f);
            continue;
        }
        const int b = (int)batch_f;
        const siamattn::RoiBox box{to_float(r[1]), to_float(r[2]), to_float(r[3]), to_float(r[4])};
        for (int c = 0; c < p.channels; ++c) {
            const Plane<T> plane{feat + ((size_t)b * p.channels + c) * p.in_h * p.in_w, p.in_w};
            for (int ph = 0; ph < p.pooled_h; ++ph) {
                for (int pw = 0; pw < p.pooled_w; ++pw) {
                    float ox = 0.0f, oy = 0.0f;
                    if (p.has_offset) {
                        const size_t base = (size_t)k * 2 * bins + (size_t)ph * p.pooled_w + pw;
                        ox = to_float(offset[base]);
                        oy = to_float(offset[base + bins]);
                    }
                    out_roi[(size_t)c * bins + (size_t)ph * p.pooled_w + pw] =
                        from_float<T>(siamattn::deform_roi_pool_bin(plane, p, box, ph, pw, ox, oy));
                }
            }
        }
    }
}

template <typename T>
void roi_pool_dispatch_rois(const siamattn_deform_roi_pool_params& p, int32_t rois_dtype, const void* feat,
                            const void* rois, const void* offset, void* out) {
    if (rois_dtype == SIAMATTN_FLOAT32)
        roi_pool_forward<T, float>(p, (const T*)feat, (const float*)rois, (const T*)offset, (T*)out);
    else
        roi_pool_forward<T, uint16_t>(p, (const T*)feat, (const uint16_t*)rois, (const T*)offset, (T*)out);
}

bool valid_dtype(int32_t d) { return d == SIAMATTN_FLOAT32 || d == SIAMATTN_FLOAT16; }

}  // namespace

extern "C" {

int32_t siamattn_deform_conv_forward_cpu(const siamattn_deform_conv_params* params, int32_t dtype, const void* x,
                                         const void* weight, const void* bias, const void* offset,
                                         const void* mask, void* y) {
    if (params == nullptr) return fail(SIAMATTN_ERR_NULL_POINTER, "deform_conv_cpu: params is NULL");
    siamattn_deform_conv_params p = *params;
    const int32_t status = siamattn_deform_conv_validate(&p);
    if (status != SIAMATTN_OK) return status;
    if (!valid_dtype(dtype)) return fail(SIAMATTN_ERR_UNSUPPORTED_DTYPE, "deform_conv_cpu: dtype %d", dtype);
    if (!x || !weight || !offset || !y || (p.has_bias && !bias) || (p.has_mask && !mask))
        return fail(SIAMATTN_ERR_NULL_POINTER, "deform_conv_cpu: a required tensor pointer is NULL");
    if (dtype == SIAMATTN_FLOAT32)
        return conv_forward<float>(p, (const float*)x, (const float*)weight, (const float*)bias,
                                   (const float*)offset, (const float*)mask, (float*)y);
    return conv_forward<uint16_t>(p, (const uint16_t*)x, (const uint16_t*)weight, (const uint16_t*)bias,
                                  (const uint16_t*)offset, (const uint16_t*)mask, (uint16_t*)y);
}

int32_t siamattn_deform_roi_pool_forward_cpu(const siamattn_deform_roi_pool_params* p, int32_t feat_dtype,
                                             int32_t rois_dtype, const void* feat, const void* rois,
                                             const void* offset, void* out) {
    const int32_t status = siamattn_deform_roi_pool_validate(p);
    if (status != SIAMATTN_OK) return status;
    if (!valid_dtype(feat_dtype) || !valid_dtype(rois_dtype))
        return fail(SIAMATTN_ERR_UNSUPPORTED_DTYPE, "deform_roi_pool_cpu: dtypes %d/%d", feat_dtype, rois_dtype);
    if (p->num_rois == 0) return SIAMATTN_OK;
    if (!feat || !rois || !out || (p->has_offset && !offset))
        return fail(SIAMATTN_ERR_NULL_POINTER, "deform_roi_pool_cpu: a required tensor pointer is NULL");
    if (feat_dtype == SIAMATTN_FLOAT32)
        roi_pool_dispatch_rois<float>(*p, rois_dtype, feat, rois, offset, out);
    else
        roi_pool_dispatch_rois<uint16_t>(*p, rois_dtype, feat, rois, offset, out);
    return SIAMATTN_OK;
}

// The CPU library has no CUDA path; these stubs keep the C API complete so callers get a clear status.
#ifndef SIAMATTN_WITH_CUDA
int32_t siamattn_deform_conv_forward_cuda(const siamattn_deform_conv_params*, int32_t, const void*, const void*,
                                          const void*, const void*, const void*, void*, void*, size_t, void*) {
    return fail(SIAMATTN_ERR_CUDA, "this is the CPU library (libsiamattn_deform_cpu); load libsiamattn_deform_cuda");
}
int32_t siamattn_deform_roi_pool_forward_cuda(const siamattn_deform_roi_pool_params*, int32_t, int32_t,
                                              const void*, const void*, const void*, void*, void*) {
    return fail(SIAMATTN_ERR_CUDA, "this is the CPU library (libsiamattn_deform_cpu); load libsiamattn_deform_cuda");
}
#endif

}  // extern "C"
