"""The C API of the native deformable-op libraries through ctypes, with NumPy (CPU) and torch (CUDA) wrappers.

Finding and building the libraries: siamattn/plugins/build.py. The C API: plugins/include/siamattn_deform.h.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from siamattn.errors import InputError
from siamattn.plugins.build import find_library

F32, F16 = 0, 1  # siamattn_dtype
# siamattn_roi_pool_mode, by index; the same names as siamattn.ops.deform_roi_pool.MODES (torch-free here).
ROI_POOL_MODES = ("mmcv", "mmdet_v1")
API_VERSION = 2  # SIAMATTN_DEFORM_API_VERSION of the header these bindings mirror


@contextlib.contextmanager
def split_k_override(splits: int | None) -> Iterator[None]:
    """Within the block, the CUDA DeformConv uses ``splits`` K ranges (1 = split-K off; None = the heuristic).
    The library reads SIAMATTN_DEFORM_SPLIT_K on every call; the previous value comes back afterwards."""
    saved = os.environ.get("SIAMATTN_DEFORM_SPLIT_K")
    if splits is None:
        os.environ.pop("SIAMATTN_DEFORM_SPLIT_K", None)
    else:
        os.environ["SIAMATTN_DEFORM_SPLIT_K"] = str(int(splits))
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("SIAMATTN_DEFORM_SPLIT_K", None)
        else:
            os.environ["SIAMATTN_DEFORM_SPLIT_K"] = saved


# -------------------------------------------------------------------------------------------- C binding


class ConvParams(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_int32)
        for name in (
            "batch", "in_channels", "in_h", "in_w", "out_channels", "kernel_h", "kernel_w",
            "stride_h", "stride_w", "pad_h_begin", "pad_w_begin", "pad_h_end", "pad_w_end",
            "dilation_h", "dilation_w", "groups", "offset_groups", "has_bias", "has_mask", "out_h", "out_w",
        )
    ]


class RoiPoolParams(ctypes.Structure):
    _fields_ = [
        ("batch", ctypes.c_int32),
        ("channels", ctypes.c_int32),
        ("in_h", ctypes.c_int32),
        ("in_w", ctypes.c_int32),
        ("num_rois", ctypes.c_int32),
        ("pooled_h", ctypes.c_int32),
        ("pooled_w", ctypes.c_int32),
        ("sampling_ratio", ctypes.c_int32),
        ("spatial_scale", ctypes.c_float),
        ("gamma", ctypes.c_float),
        ("has_offset", ctypes.c_int32),
        ("mode", ctypes.c_int32),
    ]


def _pair(v: int | Sequence[int], name: str) -> tuple[int, int]:
    t = (v, v) if isinstance(v, int) else tuple(int(x) for x in v)
    if len(t) != 2:
        raise InputError(f"{name} must be an int or a pair, got {v!r}")
    return t  # type: ignore[return-value]


def _pads(v: int | Sequence[int]) -> tuple[int, int, int, int]:
    """Padding as ONNX (h_begin, w_begin, h_end, w_end); an int or (h, w) pair means symmetric."""
    if isinstance(v, int):
        return (v, v, v, v)
    t = tuple(int(x) for x in v)
    if len(t) == 2:
        return (t[0], t[1], t[0], t[1])
    if len(t) == 4:
        return t  # type: ignore[return-value]
    raise InputError(f"padding must be an int, (pad_h, pad_w) or ONNX (h_begin, w_begin, h_end, w_end); got {v!r}")


def conv_params(
    x_shape: Sequence[int],
    w_shape: Sequence[int],
    offset_shape: Sequence[int],
    *,
    has_bias: bool,
    mask_shape: Sequence[int] | None,
    stride: int | Sequence[int],
    padding: int | Sequence[int],
    dilation: int | Sequence[int],
    groups: int,
) -> ConvParams:
    """Checks the tensor shapes against each other and returns the C parameter struct (out_h/out_w unset)."""
    if len(x_shape) != 4 or len(w_shape) != 4 or len(offset_shape) != 4:
        raise InputError(
            "deform_conv2d needs 4-D x, weight and offset, "
            f"got {tuple(x_shape)}, {tuple(w_shape)}, {tuple(offset_shape)}"
        )
    n, c, h, w = x_shape
    m, cg, kh, kw = w_shape
    if cg * groups != c:
        raise InputError(f"weight has {cg} input channels per group; x has {c} channels and groups={groups}")
    taps = kh * kw
    if offset_shape[1] % (2 * taps) != 0 or offset_shape[0] != n:
        raise InputError(
            f"offset {tuple(offset_shape)} must be [N={n}, offset_groups*2*{taps}, oH, oW] for a {kh}x{kw} kernel"
        )
    sh, sw = _pair(stride, "stride")
    dh, dw = _pair(dilation, "dilation")
    pads = _pads(padding)
    p = ConvParams(n, c, h, w, m, kh, kw, sh, sw, *pads, dh, dw, groups, offset_shape[1] // (2 * taps),
                   int(has_bias), int(mask_shape is not None), 0, 0)
    if mask_shape is not None and (
        len(mask_shape) != 4 or mask_shape[0] != n or mask_shape[1] != p.offset_groups * taps
        or tuple(mask_shape[2:]) != tuple(offset_shape[2:])
    ):
        raise InputError(
            f"mask {tuple(mask_shape)} must be [N={n}, {p.offset_groups * taps}, {offset_shape[2]}, {offset_shape[3]}]"
        )
    return p


class DeformLibrary:
    """ctypes binding of the C API in ``plugins/include/siamattn_deform.h``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            self._lib = ctypes.CDLL(str(self.path))
            lib = self._lib
            lib.siamattn_api_version  # noqa: B018  (a shared library, but not ours: AttributeError)
        except (OSError, AttributeError) as exc:
            raise InputError(f"'{self.path}' is not a loadable siamattn plugin library ({exc}); rebuild it with "
                             "'siamattn plugins build'") from exc
        vp, i32, sz = ctypes.c_void_p, ctypes.c_int32, ctypes.c_size_t
        lib.siamattn_api_version.restype = i32
        if lib.siamattn_api_version() != API_VERSION:
            # Parameter structs differ between versions: calling through them would pass garbage.
            raise InputError(f"{self.path} implements C API version {lib.siamattn_api_version()}, these bindings "
                             f"need {API_VERSION}: rebuild it (siamattn plugins build)")
        lib.siamattn_build_info.restype = ctypes.c_char_p
        lib.siamattn_last_error.restype = ctypes.c_char_p
        lib.siamattn_status_string.restype = ctypes.c_char_p
        lib.siamattn_status_string.argtypes = [i32]
        lib.siamattn_deform_conv_validate.argtypes = [ctypes.POINTER(ConvParams)]
        lib.siamattn_deform_conv_validate.restype = i32
        lib.siamattn_deform_conv_workspace_size.argtypes = [ctypes.POINTER(ConvParams), i32]
        lib.siamattn_deform_conv_workspace_size.restype = sz
        lib.siamattn_deform_roi_pool_validate.argtypes = [ctypes.POINTER(RoiPoolParams)]
        lib.siamattn_deform_roi_pool_validate.restype = i32
        lib.siamattn_deform_conv_forward_cpu.argtypes = [ctypes.POINTER(ConvParams), i32, vp, vp, vp, vp, vp, vp]
        lib.siamattn_deform_conv_forward_cpu.restype = i32
        lib.siamattn_deform_roi_pool_forward_cpu.argtypes = [ctypes.POINTER(RoiPoolParams), i32, i32, vp, vp, vp, vp]
        lib.siamattn_deform_roi_pool_forward_cpu.restype = i32
        lib.siamattn_deform_conv_forward_cuda.argtypes = [
            ctypes.POINTER(ConvParams), i32, vp, vp, vp, vp, vp, vp, vp, sz, vp,
        ]
        lib.siamattn_deform_conv_forward_cuda.restype = i32
        lib.siamattn_deform_roi_pool_forward_cuda.argtypes = [
            ctypes.POINTER(RoiPoolParams), i32, i32, vp, vp, vp, vp, vp,
        ]
        lib.siamattn_deform_roi_pool_forward_cuda.restype = i32
        lib.siamattn_float_to_half.argtypes = [ctypes.c_float]
        lib.siamattn_float_to_half.restype = ctypes.c_uint16
        lib.siamattn_half_to_float.argtypes = [ctypes.c_uint16]
        lib.siamattn_half_to_float.restype = ctypes.c_float

    @property
    def build_info(self) -> str:
        return self._lib.siamattn_build_info().decode()

    def check(self, status: int, what: str) -> None:
        if status != 0:
            msg = self._lib.siamattn_last_error().decode() or self._lib.siamattn_status_string(status).decode()
            raise InputError(f"{what}: {msg}")

    def validate_conv(self, p: ConvParams) -> ConvParams:
        self.check(self._lib.siamattn_deform_conv_validate(ctypes.byref(p)), "deform_conv2d")
        return p

    def conv_workspace_size(self, p: ConvParams, dtype: int) -> int:
        return int(self._lib.siamattn_deform_conv_workspace_size(ctypes.byref(p), dtype))

    def float_to_half(self, v: float) -> int:
        return int(self._lib.siamattn_float_to_half(v))

    def half_to_float(self, bits: int) -> float:
        return float(self._lib.siamattn_half_to_float(bits))

    # ---- CPU entry points on numpy arrays

    def deform_conv2d(
        self,
        x: np.ndarray,
        weight: np.ndarray,
        offset: np.ndarray,
        bias: np.ndarray | None = None,
        mask: np.ndarray | None = None,
        *,
        stride: int | Sequence[int] = 1,
        padding: int | Sequence[int] = 0,
        dilation: int | Sequence[int] = 1,
        groups: int = 1,
    ) -> np.ndarray:
        """DeformConv2d on the CPU; arguments as torchvision.ops.deform_conv2d (NumPy, float32 or float16),
        except ``padding`` may also be ONNX-style (h_begin, w_begin, h_end, w_end)."""
        dtype = _common_dtype("deform_conv2d", x, weight, offset, bias, mask)
        p = conv_params(x.shape, weight.shape, offset.shape, has_bias=bias is not None,
                        mask_shape=None if mask is None else mask.shape, stride=stride, padding=padding,
                        dilation=dilation, groups=groups)
        self.validate_conv(p)
        if tuple(offset.shape[2:]) != (p.out_h, p.out_w):
            raise InputError(f"offset spatial size {tuple(offset.shape[2:])} != output size {(p.out_h, p.out_w)}")
        if bias is not None and bias.shape != (p.out_channels,):
            raise InputError(f"bias must have shape ({p.out_channels},), got {bias.shape}")
        arrays = [np.ascontiguousarray(a) if a is not None else None for a in (x, weight, bias, offset, mask)]
        y = np.empty((p.batch, p.out_channels, p.out_h, p.out_w), dtype=dtype)
        ptrs = [a.ctypes.data if a is not None else None for a in arrays]
        status = self._lib.siamattn_deform_conv_forward_cpu(
            ctypes.byref(p), F16 if dtype == np.float16 else F32, *ptrs, y.ctypes.data
        )
        self.check(status, "deform_conv2d")
        return y

    def deform_roi_pool(
        self,
        feat: np.ndarray,
        rois: np.ndarray,
        offset: np.ndarray | None = None,
        *,
        output_size: int | Sequence[int] = 7,
        spatial_scale: float = 1.0,
        sampling_ratio: int = 0,
        gamma: float = 0.1,
        mode: str = "mmcv",
    ) -> np.ndarray:
        """DeformRoIPool on the CPU; ``mode`` "mmcv" or "mmdet_v1" as in ``siamattn.ops.deform_roi_pool``.
        ``rois`` may be float32 while ``feat`` is float16."""
        dtype = _common_dtype("deform_roi_pool", feat, offset)
        if rois.dtype not in (np.float32, np.float16):
            raise InputError(f"deform_roi_pool: rois must be float32 or float16, got {rois.dtype}")
        ph, pw = _pair(output_size, "output_size")
        p = roi_pool_params(feat.shape, rois.shape, None if offset is None else offset.shape, (ph, pw),
                            spatial_scale, sampling_ratio, gamma, mode)
        self.check(self._lib.siamattn_deform_roi_pool_validate(ctypes.byref(p)), "deform_roi_pool")
        out = np.empty((p.num_rois, p.channels, ph, pw), dtype=dtype)
        feat_c, rois_c = np.ascontiguousarray(feat), np.ascontiguousarray(rois)
        off_c = None if offset is None else np.ascontiguousarray(offset)
        status = self._lib.siamattn_deform_roi_pool_forward_cpu(
            ctypes.byref(p), F16 if dtype == np.float16 else F32, F16 if rois.dtype == np.float16 else F32,
            feat_c.ctypes.data, rois_c.ctypes.data, None if off_c is None else off_c.ctypes.data, out.ctypes.data,
        )
        self.check(status, "deform_roi_pool")
        return out

    # ---- CUDA entry points on torch CUDA tensors (used by gpu_check and the benchmark)

    def deform_conv2d_cuda(self, x: Any, weight: Any, offset: Any, bias: Any = None, mask: Any = None, *,
                           stride: int | Sequence[int] = 1, padding: int | Sequence[int] = 0,
                           dilation: int | Sequence[int] = 1, groups: int = 1, workspace: Any = None) -> Any:
        """DeformConv2d with the CUDA kernels on torch CUDA tensors, on the current stream."""
        import torch

        tensors = [t for t in (x, weight, offset, bias, mask) if t is not None]
        if any(not t.is_cuda for t in tensors) or len({t.dtype for t in tensors}) != 1:
            raise InputError("deform_conv2d_cuda: all tensors must be CUDA tensors of one dtype (float32/float16)")
        p = conv_params(x.shape, weight.shape, offset.shape, has_bias=bias is not None,
                        mask_shape=None if mask is None else mask.shape, stride=stride, padding=padding,
                        dilation=dilation, groups=groups)
        self.validate_conv(p)
        dtype = F16 if x.dtype == torch.float16 else F32
        y = torch.empty((p.batch, p.out_channels, p.out_h, p.out_w), dtype=x.dtype, device=x.device)
        need = self.conv_workspace_size(p, dtype)
        if workspace is None or workspace.numel() < need:
            workspace = torch.empty(need, dtype=torch.uint8, device=x.device)
        args = [t.contiguous() if t is not None else None for t in (x, weight, bias, offset, mask)]
        ptrs = [t.data_ptr() if t is not None else None for t in args]
        stream = torch.cuda.current_stream(x.device).cuda_stream
        status = self._lib.siamattn_deform_conv_forward_cuda(ctypes.byref(p), dtype, *ptrs, y.data_ptr(),
                                                             workspace.data_ptr(), workspace.numel(), stream)
        self.check(status, "deform_conv2d_cuda")
        return y

    def deform_roi_pool_cuda(self, feat: Any, rois: Any, offset: Any = None, *,
                             output_size: int | Sequence[int] = 7, spatial_scale: float = 1.0,
                             sampling_ratio: int = 0, gamma: float = 0.1, mode: str = "mmcv") -> Any:
        """DeformRoIPool with the CUDA kernel on torch CUDA tensors (rois may be float32 with float16 feat)."""
        import torch

        ph, pw = _pair(output_size, "output_size")
        p = roi_pool_params(feat.shape, rois.shape, None if offset is None else offset.shape, (ph, pw),
                            spatial_scale, sampling_ratio, gamma, mode)
        self.check(self._lib.siamattn_deform_roi_pool_validate(ctypes.byref(p)), "deform_roi_pool_cuda")
        out = torch.empty((p.num_rois, p.channels, ph, pw), dtype=feat.dtype, device=feat.device)
        f, r = feat.contiguous(), rois.contiguous()
        o = None if offset is None else offset.to(feat.dtype).contiguous()
        stream = torch.cuda.current_stream(feat.device).cuda_stream
        status = self._lib.siamattn_deform_roi_pool_forward_cuda(
            ctypes.byref(p), F16 if feat.dtype == torch.float16 else F32,
            F16 if rois.dtype == torch.float16 else F32, f.data_ptr(), r.data_ptr(),
            None if o is None else o.data_ptr(), out.data_ptr(), stream)
        self.check(status, "deform_roi_pool_cuda")
        return out


def roi_pool_params(
    feat_shape: Sequence[int],
    rois_shape: Sequence[int],
    offset_shape: Sequence[int] | None,
    output_size: tuple[int, int],
    spatial_scale: float,
    sampling_ratio: int,
    gamma: float,
    mode: str = "mmcv",
) -> RoiPoolParams:
    if mode not in ROI_POOL_MODES:
        raise InputError(f"deform_roi_pool: mode must be one of {list(ROI_POOL_MODES)}, got {mode!r}")
    if len(feat_shape) != 4:
        raise InputError(f"deform_roi_pool: feat must be [N, C, H, W], got {tuple(feat_shape)}")
    if len(rois_shape) != 2 or rois_shape[1] != 5:
        raise InputError(f"deform_roi_pool: rois must be [K, 5] = (batch, x1, y1, x2, y2), got {tuple(rois_shape)}")
    ph, pw = output_size
    if offset_shape is not None and tuple(offset_shape) != (rois_shape[0], 2, ph, pw):
        raise InputError(f"deform_roi_pool: offset must be [K, 2, {ph}, {pw}] with K={rois_shape[0]}, "
                         f"got {tuple(offset_shape)}")
    n, c, h, w = feat_shape
    return RoiPoolParams(n, c, h, w, rois_shape[0], ph, pw, sampling_ratio, spatial_scale, gamma,
                         int(offset_shape is not None), ROI_POOL_MODES.index(mode))


def _common_dtype(what: str, *arrays: Any) -> np.dtype:
    present = [a for a in arrays if a is not None]
    dtypes = {np.dtype(a.dtype) for a in present}
    if len(dtypes) != 1 or next(iter(dtypes)) not in (np.float32, np.float16):
        raise InputError(f"{what}: tensors must all be float32 or all float16, got {sorted(map(str, dtypes))}")
    return next(iter(dtypes))


_LOADED: dict[str, DeformLibrary] = {}


def load(kind: str = "cpu", *, build_if_missing: bool = True) -> DeformLibrary:
    """The C API library (``cpu`` or ``cuda``), loaded once per process."""
    if kind not in ("cpu", "cuda"):
        raise ValueError("load() binds the C API libraries: kind 'cpu' or 'cuda'")
    if kind not in _LOADED:
        _LOADED[kind] = DeformLibrary(find_library(kind, build_if_missing=build_if_missing))
    return _LOADED[kind]
