"""Export-time lowerings of the ops the model calls through :mod:`siamattn.ops.dispatch`.

Each function here has the signature of its reference op and is swapped in with ``dispatch.use(...)``
while ``torch.onnx.export(..., dynamo=True)`` traces a stage, so the model code never changes:

* deformable RoI pooling: ``portable`` = standard ONNX (GridSample + AveragePool + elementwise coordinate
  math, exact mmcv/RoIAlign semantics), ``plugin`` = one ``siamattn::DeformRoIPool`` node that TensorRT maps
  to our plugin (name/version/attributes agreed with plugins/).
* deformable conv: ``onnx`` = the reference (torchvision) exported as standard ONNX DeformConv-19 (TensorRT-RTX
  maps it to our ``DeformConv`` plugin); ``gridsample`` = nine GridSamples and a 1x1 Conv for targets with
  neither DeformConv nor our plugin; ``plugin`` = ``siamattn::SiamAttnDeformConv`` (our plugin under full
  TensorRT too, which otherwise imports DeformConv with its own FP16-coordinate plugin).
* depth-wise cross-correlation with a kernel that is a tensor (template cache), three forms: see XCORR.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from siamattn import export_choices as choices
from siamattn.errors import ConfigError
from siamattn.ops.deform_conv import pair as _pair
from siamattn.ops.deform_roi_pool import mode_id
from siamattn.plugins import names as plugin_names

# ---------------------------------------------------------------------------------------- RoI pooling

# Custom ONNX domain and op types of our plugin nodes (plugins/include/siamattn_plugin_names.h); TensorRT's
# parser looks a plugin up by op type and the node's plugin_version (default "1").
PLUGIN_DOMAIN = plugin_names.ONNX_DOMAIN
ROI_POOL_OP = plugin_names.DEFORM_ROI_POOL.name
ROI_POOL_VERSION = int(plugin_names.DEFORM_ROI_POOL.version)


def _fixed_sampling(sampling_ratio: int) -> int:
    if sampling_ratio <= 0:
        # Adaptive sampling (ceil(roi/bins) per RoI) makes the number of samples data-dependent.
        raise ConfigError("export needs model.refine.sampling_ratio >= 1 (adaptive sampling cannot be a static graph)")
    return sampling_ratio


def _sample_lattice(feat: Tensor, rois: Tensor, xs: Tensor, ys: Tensor, ph: int, pw: int, g: int) -> Tensor:
    """Bilinear samples at already-clamped coordinates, on the lattice [K, C, PH*g, PW*g] (rows (ph, iy),
    columns (pw, ix)).

    ``xs`` [K,PH|1,PW,g] and ``ys`` [K,PH,PW|1,g] lie in [0, W-1] / [0, H-1]. GridSample with
    align_corners=True maps -1 and +1 to the centres of pixels 0 and size-1 (size 1 maps everything to -1),
    so at clamped coordinates it is plain bilinear interpolation and its padding mode never matters.
    """
    n, c, h, w = feat.shape
    k = rois.shape[0]
    # Sample lattice [K, PH, g(y), PW, g(x)]: a plain reshape then gives GridSample's [rows, cols] layout.
    x5 = xs[:, :, None, :, :]
    y5 = ys.permute(0, 1, 3, 2)[..., None]
    gx = x5 * (2.0 / max(w - 1, 1)) - 1.0
    gy = y5 * (2.0 / max(h - 1, 1)) - 1.0
    gx, gy = torch.broadcast_tensors(gx, gy)
    grid = torch.stack([gx, gy], dim=-1).reshape(k, ph * g, pw * g, 2)
    if n == 1:
        # One image: all RoIs as rows of one grid, no per-RoI copy of the feature map.
        samples = F.grid_sample(feat, grid.reshape(1, k * ph * g, pw * g, 2), mode="bilinear",
                                padding_mode="border", align_corners=True)
        return samples.reshape(c, k, ph * g, pw * g).transpose(0, 1)
    per_roi = feat.index_select(0, rois[:, 0].to(torch.int64))
    return F.grid_sample(per_roi, grid, mode="bilinear", padding_mode="border", align_corners=True)


def deform_roi_pool_portable(
    feat: Tensor,
    rois: Tensor,
    offset: Tensor | None = None,
    output_size: int | tuple[int, int] = 7,
    spatial_scale: float = 1.0,
    sampling_ratio: int = 0,
    gamma: float = 0.1,
    mode: str = "mmcv",
) -> Tensor:
    """Deformable RoI pooling from standard ops: one bilinear GridSample over all sample points, a validity
    mask, and a per-bin average over each bin's g x g samples. ``mode`` as in the reference op.

    mmcv (docs/DESIGN.md §4.2): GridSample alone does not implement the RoIAlign border rule (samples in
    [-1, 0) read row 0, samples in [H-1, H] read row H-1, only samples beyond that are 0), so coordinates are
    clamped to [0, H-1] first (then border padding never matters) and a mask zeroes samples outside
    [-1, H] x [-1, W]; the bin value is the AveragePool of the masked samples.
    """
    mode_id(mode)
    if mode == "mmdet_v1":
        return _portable_mmdet_v1(feat, rois, offset, output_size, spatial_scale, sampling_ratio, gamma)
    ph, pw = _pair(output_size)
    g = _fixed_sampling(sampling_ratio)
    n, c, h, w = feat.shape
    rois = rois.to(feat.dtype)
    sx = rois[:, 1] * spatial_scale - 0.5
    sy = rois[:, 2] * spatial_scale - 0.5
    rw = rois[:, 3] * spatial_scale - 0.5 - sx
    rh = rois[:, 4] * spatial_scale - 0.5 - sy
    bw, bh = rw / pw, rh / ph

    # Bin origins, then the learned shift, then sub-bin steps: the reference's float operation order, so
    # border decisions (a sample exactly at -1 or at H) come out the same bit for bit.
    xo = (sx[:, None] + torch.arange(pw, dtype=feat.dtype)[None, :] * bw[:, None])[:, None, :]  # [K,1,PW]
    yo = (sy[:, None] + torch.arange(ph, dtype=feat.dtype)[None, :] * bh[:, None])[:, :, None]  # [K,PH,1]
    if offset is not None:
        off = offset.to(feat.dtype)
        xo = xo + gamma * rw[:, None, None] * off[:, 0]  # [K,PH,PW]
        yo = yo + gamma * rh[:, None, None] * off[:, 1]
    sub = torch.arange(g, dtype=feat.dtype) + 0.5
    xs = xo[..., None] + sub * (bw / g)[:, None, None, None]  # [K,PH|1,PW,g]
    ys = yo[..., None] + sub * (bh / g)[:, None, None, None]  # [K,PH,PW|1,g]
    x5 = xs[:, :, None, :, :]
    y5 = ys.permute(0, 1, 3, 2)[..., None]
    inside = ((x5 >= -1.0) & (x5 <= float(w)) & (y5 >= -1.0) & (y5 <= float(h))).to(feat.dtype)
    samples = _sample_lattice(feat, rois, xs.clamp(0.0, float(w - 1)), ys.clamp(0.0, float(h - 1)), ph, pw, g)
    mask = inside.expand(rois.shape[0], ph, g, pw, g).reshape(rois.shape[0], 1, ph * g, pw * g)
    return F.avg_pool2d(samples * mask, kernel_size=g, stride=g)


def _cround_portable(x: Tensor) -> Tensor:
    """C round (halves away from zero) from Floor/Ceil/Where only: ONNX Round rounds halves to even, and
    floor(|x| + 0.5) rounds 0.49999997f up. trunc(x) = Where(x >= 0, Floor, Ceil); x - trunc(x) is exact."""
    t = torch.where(x >= 0, torch.floor(x), torch.ceil(x))
    frac = x - t
    one = torch.ones_like(x)
    zero = torch.zeros_like(x)
    return t + torch.where(frac >= 0.5, one, zero) - torch.where(frac <= -0.5, one, zero)


def _portable_mmdet_v1(feat: Tensor, rois: Tensor, offset: Tensor | None, output_size: int | tuple[int, int],
                       spatial_scale: float, sampling_ratio: int, gamma: float) -> Tensor:
    """mmdet-v1 deformable PS-RoI pooling (docs/DESIGN.md §4.3) from standard ops: C-rounded corners, fixed
    g x g samples from the bin corner, a validity mask for [-0.5, W-0.5] x [-0.5, H-0.5], per-bin sums and
    valid counts (ReduceSum) and sum / max(count, 1), which is 0 for a bin without valid samples. Float
    operations in the reference's order, so border decisions agree bit for bit in FP32."""
    ph, pw = _pair(output_size)
    g = _fixed_sampling(sampling_ratio)
    n, c, h, w = feat.shape
    k = rois.shape[0]
    dt = feat.dtype
    rois = rois.to(dt)
    s = torch.tensor(spatial_scale, dtype=dt)
    sx = _cround_portable(rois[:, 1]) * s - 0.5
    sy = _cround_portable(rois[:, 2]) * s - 0.5
    ex = (_cround_portable(rois[:, 3]) + 1.0) * s - 0.5
    ey = (_cround_portable(rois[:, 4]) + 1.0) * s - 0.5
    rw = (ex - sx).clamp(min=0.1)
    rh = (ey - sy).clamp(min=0.1)
    bw, bh = rw / pw, rh / ph
    xo = (torch.arange(pw, dtype=dt)[None, :] * bw[:, None] + sx[:, None])[:, None, :]  # [K,1,PW]
    yo = (torch.arange(ph, dtype=dt)[None, :] * bh[:, None] + sy[:, None])[:, :, None]  # [K,PH,1]
    if offset is not None:
        off = offset.to(dt)
        gm = torch.tensor(gamma, dtype=dt)
        xo = xo + (off[:, 0] * gm) * rw[:, None, None]  # [K,PH,PW]
        yo = yo + (off[:, 1] * gm) * rh[:, None, None]
    idx = torch.arange(g, dtype=dt)
    xs = xo[..., None] + idx * (bw / g)[:, None, None, None]  # [K,PH|1,PW,g]
    ys = yo[..., None] + idx * (bh / g)[:, None, None, None]  # [K,PH,PW|1,g]
    x5 = xs[:, :, None, :, :]
    y5 = ys.permute(0, 1, 3, 2)[..., None]
    valid = ((x5 >= -0.5) & (x5 <= w - 0.5) & (y5 >= -0.5) & (y5 <= h - 0.5)).to(dt)
    valid = valid.expand(k, ph, g, pw, g).reshape(k, 1, ph * g, pw * g)
    samples = _sample_lattice(feat, rois, xs.clamp(0.0, w - 1.0), ys.clamp(0.0, h - 1.0), ph, pw, g)
    total = (samples * valid).reshape(k, c, ph, g, pw, g).sum(dim=(3, 5))
    count = valid.reshape(k, 1, ph, g, pw, g).sum(dim=(3, 5))
    return total / count.clamp(min=1.0)


def deform_roi_pool_plugin(
    feat: Tensor,
    rois: Tensor,
    offset: Tensor | None = None,
    output_size: int | tuple[int, int] = 7,
    spatial_scale: float = 1.0,
    sampling_ratio: int = 0,
    gamma: float = 0.1,
    mode: str = "mmcv",
) -> Tensor:
    """One custom-domain node (docs/DESIGN.md §6: dynamo needs torch.onnx.ops.symbolic; autograd.Function.symbolic
    is ignored). Attribute names are the plugin creator's field names; ``mode`` is 0 = mmcv, 1 = mmdet_v1."""
    ph, pw = _pair(output_size)
    inputs: list[Tensor] = [feat, rois] if offset is None else [feat, rois, offset]
    attrs: dict[str, Any] = {
        "output_height": ph,
        "output_width": pw,
        "spatial_scale": float(spatial_scale),
        "sampling_ratio": int(_fixed_sampling(sampling_ratio)),
        "gamma": float(gamma),
        "mode": mode_id(mode),
    }
    return torch.onnx.ops.symbolic(f"{PLUGIN_DOMAIN}::{ROI_POOL_OP}", inputs, attrs, dtype=feat.dtype,
                                   shape=(rois.shape[0], feat.shape[1], ph, pw), version=ROI_POOL_VERSION)


# ------------------------------------------------------------------------------------------ deform conv


def deform_conv2d_gridsample(
    x: Tensor,
    offset: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    mask: Tensor | None = None,
) -> Tensor:
    """DCN as kh*kw bilinear GridSamples (zero padding, align_corners=True) + one 1x1 Conv over the stacked taps.

    Exact DeformConv semantics: GridSample with zero padding gives 0 for corners outside the map, which is
    the DeformConv rule (a sample at p <= -1 or p >= H is 0; in (-1, 0) only the in-map corner counts).
    Single offset group and groups=1 only (what the model uses); anything else raises.
    """
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    n, c, h, w = x.shape
    m, cg, kh, kw = weight.shape
    if cg != c or offset.shape[1] != 2 * kh * kw:
        raise ConfigError("the gridsample DeformConv lowering supports groups=1 and one offset group only")
    oh, ow = offset.shape[2], offset.shape[3]
    base_y = (torch.arange(oh, dtype=x.dtype) * sh - ph).view(1, oh, 1)
    base_x = (torch.arange(ow, dtype=x.dtype) * sw - pw).view(1, 1, ow)
    taps = []
    for i in range(kh):
        for j in range(kw):
            t = i * kw + j
            py = base_y + i * dh + offset[:, 2 * t]  # (dy, dx) pairs, ONNX/torchvision order
            px = base_x + j * dw + offset[:, 2 * t + 1]
            grid = torch.stack([px * (2.0 / max(w - 1, 1)) - 1.0, py * (2.0 / max(h - 1, 1)) - 1.0], dim=-1)
            v = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
            if mask is not None:
                v = v * mask[:, t : t + 1]
            taps.append(v)
    stacked = torch.stack(taps, dim=2).reshape(n, c * kh * kw, oh, ow)  # channel-major, tap-minor = weight layout
    return F.conv2d(stacked, weight.reshape(m, c * kh * kw, 1, 1), bias)


# Our DeformConv plugin under a name full TensorRT does not import itself.
DEFORM_CONV_OP = plugin_names.CUSTOM_DEFORM_CONV.name
DEFORM_CONV_VERSION = int(plugin_names.CUSTOM_DEFORM_CONV.version)


def deform_conv2d_plugin(
    x: Tensor,
    offset: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    mask: Tensor | None = None,
) -> Tensor:
    """``siamattn::SiamAttnDeformConv``: the standard DeformConv's inputs and attributes under a custom name, so
    full TensorRT uses our plugin (FP32 coordinates) instead of its built-in one (FP16 coordinates, symmetric
    pads only). TensorRT-RTX maps the standard node to the same plugin already."""
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    n, c, h, w = x.shape
    m, cg, kh, kw = weight.shape
    if bias is None and mask is not None:
        bias = weight.new_zeros(m)  # the plugin tells B from mask by rank; an empty B slot is rejected
    inputs = [x, weight, offset] + ([bias] if bias is not None else []) + ([mask] if mask is not None else [])
    attrs: dict[str, Any] = {
        "dilations": [dh, dw], "group": c // cg, "kernel_shape": [kh, kw],
        "offset_group": offset.shape[1] // (2 * kh * kw), "pads": [ph, pw, ph, pw], "strides": [sh, sw],
    }
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    return torch.onnx.ops.symbolic(f"{PLUGIN_DOMAIN}::{DEFORM_CONV_OP}", inputs, attrs, dtype=x.dtype,
                                   shape=(n, m, oh, ow), version=DEFORM_CONV_VERSION)


# ---------------------------------------------------------------------------------------------- xcorr


def xcorr_conv(x: Tensor, kernel: Tensor) -> Tensor:
    """Grouped Conv whose weight is a tensor computed in the graph (one group per channel)."""
    b, c, h, w = x.shape
    out = F.conv2d(x.reshape(1, b * c, h, w), kernel.reshape(b * c, 1, kernel.shape[2], kernel.shape[3]), groups=b * c)
    return out.reshape(b, c, out.shape[2], out.shape[3])


def xcorr_conv_padded(max_items: int) -> Callable[[Tensor, Tensor], Tensor]:
    """The ``conv`` lowering for the batch graphs, whose first axis is a symbolic target count b in 1..max_items:
    ONNX Conv (and TensorRT's convolution layer) needs a fixed ``group`` and output channel count, so x and the
    kernel are padded with zero targets to ``max_items`` (Concat with ConstantOfShape), correlated by one grouped
    Conv of max_items*C groups, and the output is cut back to the b real targets. The depth-wise correlation is
    a small part of the search graph's work, so correlating the padding costs far less than an elementwise form
    (docs/PERFORMANCE.md "Many targets"); every real target's output is exactly the batch-1 ``conv`` lowering's."""

    def xcorr(x: Tensor, kernel: Tensor) -> Tensor:
        b, c, h, w = x.shape
        kh, kw = kernel.shape[2], kernel.shape[3]
        pad = max_items - b
        xs = torch.cat([x, x.new_zeros(pad, c, h, w)])
        ks = torch.cat([kernel, kernel.new_zeros(pad, c, kh, kw)])
        out = F.conv2d(xs.reshape(1, max_items * c, h, w), ks.reshape(max_items * c, 1, kh, kw),
                       groups=max_items * c)
        return out.reshape(max_items, c, out.shape[2], out.shape[3])[:b]

    return xcorr


def _windows(x: Tensor, kh: int, kw: int) -> list[Tensor]:
    """The kh*kw shifted valid windows of x, tap order k = i*kw + j. Row bands first, then columns of each
    band: kh + kh*kw single-axis slices instead of two slices per tap (a smaller raw graph to optimise)."""
    oh, ow = x.shape[2] - kh + 1, x.shape[3] - kw + 1
    bands = [x.narrow(2, i, oh) for i in range(kh)]
    return [band.narrow(3, j, ow) for band in bands for j in range(kw)]


def xcorr_shift_add(x: Tensor, kernel: Tensor) -> Tensor:
    """Sum over kernel taps of (shifted window of x) * (kernel value): only Slice/Split/Mul/Add."""
    b, c, kh, kw = kernel.shape
    taps = kernel.reshape(b, c, kh * kw, 1).split(1, dim=2)  # one Split node, taps [B,C,1,1]
    out = None
    for window, tap in zip(_windows(x, kh, kw), taps, strict=True):
        term = window * tap
        out = term if out is None else out + term
    assert out is not None
    return out


def _im2col_index(h: int, w: int, kh: int, kw: int) -> Tensor:
    """Flat indices [kh*kw * oH*oW] into an HxW map: row t*oH*oW + p reads pixel p of window t."""
    oh, ow = h - kh + 1, w - kw + 1
    base = (torch.arange(oh)[:, None] * w + torch.arange(ow)[None, :]).reshape(-1)
    shifts = (torch.arange(kh)[:, None] * w + torch.arange(kw)[None, :]).reshape(-1)
    return (shifts[:, None] + base[None, :]).reshape(-1)


def xcorr_unfold_matmul(x: Tensor, kernel: Tensor) -> Tensor:
    """im2col as one Gather with constant indices, then a batched MatMul [B*C,1,taps] x [B*C,taps,oH*oW]."""
    b, c, h, w = x.shape
    kh, kw = kernel.shape[2], kernel.shape[3]
    oh, ow = h - kh + 1, w - kw + 1
    cols = x.reshape(b * c, h * w).index_select(1, _im2col_index(h, w, kh, kw))
    out = torch.matmul(kernel.reshape(b * c, 1, kh * kw), cols.reshape(b * c, kh * kw, oh * ow))
    return out.reshape(b, c, oh, ow)


# The implementations of the values of siamattn/export_choices.py (a test checks both list the same values).
XCORR: dict[str, Callable[[Tensor, Tensor], Tensor]] = dict(
    zip(choices.XCORR.names, (xcorr_conv, xcorr_shift_add, xcorr_unfold_matmul), strict=True))
# Chosen by the measurements in docs/PERFORMANCE.md (python -m siamattn.export.measure xcorr).
DEFAULT_XCORR = choices.XCORR.default or next(iter(XCORR))

ROI_POOL = dict(zip(choices.OPS.names, (deform_roi_pool_portable, deform_roi_pool_plugin), strict=True))
# None: the reference op (torchvision) is exported as standard ONNX DeformConv.
DEFORM_CONV: dict[str, Callable[..., Tensor] | None] = dict(
    zip(choices.DEFORM_CONV.names, (None, deform_conv2d_gridsample, deform_conv2d_plugin), strict=True))


def lowerings(ops: str, xcorr: str, deform_conv: str = "onnx", max_batch: int | None = None
              ) -> dict[str, Callable[..., Any]]:
    """The ``dispatch.use(**...)`` arguments for an export mode. ``max_batch``: for a batch graph, whose target
    axis is symbolic up to that many targets (the ``conv`` xcorr is then :func:`xcorr_conv_padded`)."""
    for what, choice, value in (("export ops", choices.OPS, ops), ("xcorr lowering", choices.XCORR, xcorr),
                                ("deform-conv lowering", choices.DEFORM_CONV, deform_conv)):
        problem = choice.check(value)
        if problem:
            raise ConfigError(f"{what} {problem}")
    out: dict[str, Callable[..., Any]] = {"deform_roi_pool": ROI_POOL[ops], "xcorr_depthwise": XCORR[xcorr]}
    if max_batch is not None and xcorr == "conv":
        out["xcorr_depthwise"] = xcorr_conv_padded(max_batch)
    conv = DEFORM_CONV[deform_conv]
    if conv is not None:
        out["deform_conv2d"] = conv
    return out
