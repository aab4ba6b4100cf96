/*
 * C API of the SiamAttn deformable-op kernels (DeformConv2d, DeformRoIPool).
 *
 * Two implementations sit behind the same parameter structs:
 *   - *_cpu  : libsiamattn_deform_cpu.so, host compiler only (what CPU-only CI tests);
 *   - *_cuda : libsiamattn_deform_cuda.so and, statically, the TensorRT plugin library.
 * Both evaluate every sampled value with the same host/device inline functions (src/deform_math.h).
 *
 * Layouts are dense NCHW. Tensors of one call share one dtype, except DeformRoIPool's rois, which may
 * stay FP32 while the features are FP16 (RoI corners are pixel coordinates; FP16 has 1/8 px steps at 128+).
 * Coordinates, interpolation weights and accumulation are FP32 for every dtype.
 * Every function returns a siamattn_status; siamattn_last_error() then describes the failure.
 */
#ifndef SIAMATTN_DEFORM_H
#define SIAMATTN_DEFORM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The TensorRT plugin library defines SIAMATTN_API empty to keep these symbols internal. */
#ifndef SIAMATTN_API
#if defined(_WIN32)
#define SIAMATTN_API
#else
#define SIAMATTN_API __attribute__((visibility("default")))
#endif
#endif

#define SIAMATTN_DEFORM_API_VERSION 2 /* 2: siamattn_deform_roi_pool_params.mode */

/* The CUDA DeformConv materialises im2col columns for as many batch images as fit in this many bytes (at
 * least one image), so the workspace stays bounded for large batches. */
#ifndef SIAMATTN_DEFORM_CONV_COLUMN_BUDGET /* overridable: the emulation tests force batch chunking on small shapes */
#define SIAMATTN_DEFORM_CONV_COLUMN_BUDGET ((size_t)64 << 20)
#endif

typedef enum siamattn_dtype {
    SIAMATTN_FLOAT32 = 0,
    SIAMATTN_FLOAT16 = 1
} siamattn_dtype;

typedef enum siamattn_status {
    SIAMATTN_OK = 0,
    SIAMATTN_ERR_INVALID_ARGUMENT = 1, /* shapes or attributes are inconsistent */
    SIAMATTN_ERR_UNSUPPORTED_DTYPE = 2,
    SIAMATTN_ERR_NULL_POINTER = 3,     /* a required tensor pointer is NULL */
    SIAMATTN_ERR_WORKSPACE = 4,        /* workspace smaller than *_workspace_size() */
    SIAMATTN_ERR_CUDA = 5,             /* a CUDA launch failed; see siamattn_last_error() */
    SIAMATTN_ERR_OUT_OF_MEMORY = 6
} siamattn_status;

/* DeformConv2d == ONNX DeformConv == torchvision.ops.deform_conv2d.
 * x [N, C, H, W]; weight [M, C/groups, kh, kw]; bias [M] (optional);
 * offset [N, offset_groups*2*kh*kw, oH, oW] with (dy, dx) pairs per tap k = i*kw + j;
 * mask [N, offset_groups*kh*kw, oH, oW] (optional, DCNv2); y [N, M, oH, oW].
 * Pads follow ONNX order: h_begin, w_begin, h_end, w_end. */
typedef struct siamattn_deform_conv_params {
    int32_t batch, in_channels, in_h, in_w;
    int32_t out_channels, kernel_h, kernel_w;
    int32_t stride_h, stride_w;
    int32_t pad_h_begin, pad_w_begin, pad_h_end, pad_w_end;
    int32_t dilation_h, dilation_w;
    int32_t groups, offset_groups;
    int32_t has_bias, has_mask;
    int32_t out_h, out_w; /* outputs of siamattn_deform_conv_validate */
} siamattn_deform_conv_params;

/* DeformRoIPool pooling semantics (docs/DESIGN.md §4.2 / §4.3); the ONNX/TensorRT attribute `mode`. */
typedef enum siamattn_roi_pool_mode {
    SIAMATTN_ROI_POOL_MMCV = 0,    /* RoIAlign-style bins, samples at bin centres, 0 outside [-1, size] */
    SIAMATTN_ROI_POOL_MMDET_V1 = 1 /* C-rounded corners (+1 far), min size 0.1, grid from the bin corner,
                                      samples outside [-0.5, size-0.5] skipped, mean over valid ones */
} siamattn_roi_pool_mode;

/* DeformRoIPool. feat [N, C, H, W]; rois [K, 5] = (batch, x1, y1, x2, y2) in input
 * pixels; offset [K, 2, PH, PW] with (dx, dy) order (optional); out [K, C, PH, PW].
 * sampling_ratio 0 = adaptive ceil(roi_size / bins) (mode mmcv only; mmdet_v1 needs >= 1).
 * RoIs whose batch index is outside [0, N) give 0. */
typedef struct siamattn_deform_roi_pool_params {
    int32_t batch, channels, in_h, in_w;
    int32_t num_rois, pooled_h, pooled_w;
    int32_t sampling_ratio;
    float spatial_scale, gamma;
    int32_t has_offset;
    int32_t mode; /* siamattn_roi_pool_mode */
} siamattn_deform_roi_pool_params;

SIAMATTN_API int32_t siamattn_api_version(void);
/* "key=value;..." description of how this library was built (implementation, CUDA version, archs). */
SIAMATTN_API const char* siamattn_build_info(void);
SIAMATTN_API const char* siamattn_status_string(int32_t status);
/* Message of the last failed call on this thread ("" if none). */
SIAMATTN_API const char* siamattn_last_error(void);

/* Checks the parameters and fills out_h/out_w. */
SIAMATTN_API int32_t siamattn_deform_conv_validate(siamattn_deform_conv_params* p);
/* Bytes of scratch the CUDA forward needs (0 on invalid parameters). */
SIAMATTN_API size_t siamattn_deform_conv_workspace_size(const siamattn_deform_conv_params* p, int32_t dtype);
SIAMATTN_API int32_t siamattn_deform_roi_pool_validate(const siamattn_deform_roi_pool_params* p);
SIAMATTN_API size_t siamattn_deform_roi_pool_workspace_size(const siamattn_deform_roi_pool_params* p);

/* CPU forward passes (host pointers). FP16 tensors are IEEE binary16 bit patterns (uint16). */
SIAMATTN_API int32_t siamattn_deform_conv_forward_cpu(const siamattn_deform_conv_params* p, int32_t dtype,
    const void* x, const void* weight, const void* bias, const void* offset, const void* mask, void* y);
SIAMATTN_API int32_t siamattn_deform_roi_pool_forward_cpu(const siamattn_deform_roi_pool_params* p,
    int32_t feat_dtype, int32_t rois_dtype, const void* feat, const void* rois, const void* offset, void* out);

/* CUDA forward passes (device pointers, asynchronous on `stream`, a cudaStream_t; NULL = default stream). */
SIAMATTN_API int32_t siamattn_deform_conv_forward_cuda(const siamattn_deform_conv_params* p, int32_t dtype,
    const void* x, const void* weight, const void* bias, const void* offset, const void* mask, void* y,
    void* workspace, size_t workspace_bytes, void* stream);
SIAMATTN_API int32_t siamattn_deform_roi_pool_forward_cuda(const siamattn_deform_roi_pool_params* p,
    int32_t feat_dtype, int32_t rois_dtype, const void* feat, const void* rois, const void* offset, void* out,
    void* stream);

/* Software binary16 conversion used by the CPU path (round to nearest even), exported for tests. */
SIAMATTN_API uint16_t siamattn_float_to_half(float value);
SIAMATTN_API float siamattn_half_to_float(uint16_t bits);

#ifdef __cplusplus
}
#endif

#endif /* SIAMATTN_DEFORM_H */
