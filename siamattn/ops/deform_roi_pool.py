"""Deformable RoI pooling, vectorised PyTorch with autograd, in two modes.

This is the ground truth for the TensorRT plugin and for the portable ONNX decomposition.

``mode="mmcv"`` (docs/DESIGN.md §4.2): for RoI k = (b, x1, y1, x2, y2) in input-image pixels,

    sx = x1*s - 0.5, ex = x2*s - 0.5, rw = ex - sx (no clamp), bw = rw / PW   (same for y)
    with offsets: sx += gamma * rw * offset[k, 0, ph, pw]; sy += gamma * rh * offset[k, 1, ph, pw]
    sample x = sx + pw*bw + (ix + 0.5) * bw / gw,  ix in [0, gw)   (same for y)
    gw = sampling_ratio if > 0 else ceil(rw / PW)
    out[k, c, ph, pw] = sum of bilinear samples / max(gh*gw, 1)

Bilinear sampling follows the RoIAlign rule: a sample is 0 when y < -1, y > H, x < -1 or x > W;
otherwise negative coordinates clamp to 0 and coordinates at or past H-1 / W-1 clamp to the edge.

``mode="mmdet_v1"`` (docs/DESIGN.md §4.3, the mmdet-v1 deformable PS-RoI pooling with one group):

    sx = cround(x1)*s - 0.5, ex = (cround(x2) + 1)*s - 0.5, rw = max(ex - sx, 0.1), bw = rw / PW
    cround = C round (ties away from zero, not torch.round's ties-to-even)
    bin origin x0 = pw*bw + sx (+ (offset[k, 0, ph, pw]*gamma) * rw)
    samples x = x0 + ix * bw / g, ix in [0, g), g = sampling_ratio (fixed, >= 1; no +0.5)
    a sample with x < -0.5, x > W-0.5, y < -0.5 or y > H-0.5 is skipped; others clamp to [0, W-1] x [0, H-1]
    out = mean over the bin's valid samples, 0 when none is valid
"""

from __future__ import annotations

import torch
from torch import Tensor

from siamattn.ops.deform_conv import pair as _pair

# Pooling modes; the index is the integer that the ONNX node / TensorRT plugin attribute ``mode`` carries.
MODES: tuple[str, ...] = ("mmcv", "mmdet_v1")


def mode_id(mode: str) -> int:
    """Integer code of a pooling mode (0 = mmcv, 1 = mmdet_v1), for the ONNX/TensorRT attribute ``mode``."""
    if mode not in MODES:
        raise ValueError(f"deform_roi_pool: mode must be one of {list(MODES)}, got {mode!r}")
    return MODES.index(mode)


def cround(x: Tensor) -> Tensor:
    """C ``round``: halves away from zero (torch.round rounds them to even). Exact for every float:
    ``x - trunc(x)`` is exact, unlike ``floor(|x| + 0.5)`` which rounds 0.49999997f up to 1."""
    t = torch.trunc(x)
    return t + torch.sign(x) * ((x - t).abs() >= 0.5).to(x.dtype)


def _check_inputs(feat: Tensor, rois: Tensor, offset: Tensor | None, ph: int, pw: int) -> None:
    if feat.dim() != 4:
        raise ValueError(f"deform_roi_pool: feat must be [N,C,H,W], got shape {tuple(feat.shape)}")
    if rois.dim() != 2 or rois.shape[1] != 5:
        raise ValueError(f"deform_roi_pool: rois must be [K,5] (batch, x1, y1, x2, y2), got {tuple(rois.shape)}")
    if offset is not None and tuple(offset.shape) != (rois.shape[0], 2, ph, pw):
        raise ValueError(
            f"deform_roi_pool: offset must be [K,2,{ph},{pw}] for {rois.shape[0]} RoIs, got {tuple(offset.shape)}"
        )
    if ph < 1 or pw < 1:
        raise ValueError(f"deform_roi_pool: output_size must be positive, got {(ph, pw)}")


def _axis_samples(start: Tensor, bin_size: Tensor, grid: Tensor, g_max: int) -> tuple[Tensor, Tensor]:
    """Sample coordinates along one axis for bin origins ``start`` [K,PH,PW] and per-RoI ``bin_size``/``grid`` [K].

    Returns coordinates [K,PH,PW,g_max] and a mask [K,1,1,g_max] of the samples that exist (index < grid).
    """
    idx = torch.arange(g_max, device=start.device, dtype=start.dtype)
    g = grid.clamp(min=1).to(start.dtype)
    step = (bin_size / g)[:, None, None, None]
    coords = start[..., None] + (idx + 0.5) * step
    valid = (idx[None, :] < grid[:, None].to(start.dtype))[:, None, None, :]
    return coords, valid


def _bilinear_weights(coord: Tensor, size: int) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """RoIAlign-style bilinear taps along one axis: (low index, high index, w_low, w_high, inside mask)."""
    inside = (coord >= -1.0) & (coord <= size)
    c = coord.clamp(min=0.0)
    low = c.detach().floor().long()
    at_edge = low >= size - 1
    low = torch.where(at_edge, torch.full_like(low, size - 1), low)
    high = torch.where(at_edge, low, low + 1)
    c = torch.where(at_edge, low.to(c.dtype), c)
    frac = c - low.to(c.dtype)
    return low, high, 1.0 - frac, frac, inside


def deform_roi_pool(
    feat: Tensor,
    rois: Tensor,
    offset: Tensor | None = None,
    output_size: int | tuple[int, int] = 7,
    spatial_scale: float = 1.0,
    sampling_ratio: int = 0,
    gamma: float = 0.1,
    mode: str = "mmcv",
) -> Tensor:
    """Deformable RoI pooling: feat [N,C,H,W], rois [K,5], offset [K,2,PH,PW] ((dx,dy) order) -> [K,C,PH,PW].

    ``mode="mmcv"``: ``offset=None`` is plain RoIAlign-style average pooling (mmcv's ``roi_align`` with
    aligned=True and average mode gives the same numbers). Differentiable w.r.t. ``feat``, ``offset`` and
    ``rois``. ``sampling_ratio=0`` chooses ceil(roi_size / bins) samples per bin side, per RoI, as mmcv does.

    ``mode="mmdet_v1"``: the authors' pooling (module docstring); needs ``sampling_ratio >= 1`` (they use 4).
    Differentiable w.r.t. ``feat`` and ``offset``; the rounded RoI corners carry no gradient.
    """
    ph, pw = _pair(output_size)
    _check_inputs(feat, rois, offset, ph, pw)
    mode_id(mode)
    if mode == "mmdet_v1" and sampling_ratio < 1:
        raise ValueError(f"deform_roi_pool: mode='mmdet_v1' needs a fixed sampling_ratio >= 1 "
                         f"(the authors use 4), got {sampling_ratio}")
    if rois.shape[0] == 0:
        return feat.new_zeros((0, feat.shape[1], ph, pw))
    # Coordinates, interpolation weights and accumulation stay in (at least) FP32 even for FP16 features:
    # at 128..256 px FP16 resolves only 1/8 px (docs/DESIGN.md §4.1).
    rois = rois.to(torch.promote_types(feat.dtype, torch.float32))
    pool = _pool_mmdet_v1 if mode == "mmdet_v1" else _pool_mmcv
    return pool(feat, rois, offset, ph, pw, spatial_scale, sampling_ratio, gamma)


def _pool_mmcv(feat: Tensor, rois: Tensor, offset: Tensor | None, ph: int, pw: int, spatial_scale: float,
               sampling_ratio: int, gamma: float) -> Tensor:
    """The mmcv pooling of docs/DESIGN.md §4.2 (inputs checked by :func:`deform_roi_pool`; ``rois`` at least
    FP32, one or more)."""
    n, c, h, w = feat.shape
    k = rois.shape[0]
    dtype = rois.dtype
    batch = rois[:, 0].long()
    sx = rois[:, 1] * spatial_scale - 0.5
    sy = rois[:, 2] * spatial_scale - 0.5
    rw = rois[:, 3] * spatial_scale - 0.5 - sx
    rh = rois[:, 4] * spatial_scale - 0.5 - sy
    bw, bh = rw / pw, rh / ph

    if sampling_ratio > 0:
        # Fixed grid: sizes known on the host, so no device sync (keeps CUDA-graph capture possible).
        gw = torch.full((k,), sampling_ratio, device=feat.device, dtype=torch.long)
        gh = gw
        gw_max = gh_max = sampling_ratio
    else:
        gw = torch.ceil(bw.detach()).long()
        gh = torch.ceil(bh.detach()).long()
        gw_max = max(int(gw.max().item()), 1)
        gh_max = max(int(gh.max().item()), 1)

    # Bin origins [K,PH,PW], shifted by the learned offsets (scaled by the un-shifted RoI size).
    bin_x = torch.arange(pw, device=feat.device, dtype=dtype)
    bin_y = torch.arange(ph, device=feat.device, dtype=dtype)
    x0 = (sx[:, None] + bin_x[None, :] * bw[:, None])[:, None, :].expand(k, ph, pw)
    y0 = (sy[:, None] + bin_y[None, :] * bh[:, None])[:, :, None].expand(k, ph, pw)
    if offset is not None:
        off = offset.to(dtype)
        x0 = x0 + gamma * rw[:, None, None] * off[:, 0]
        y0 = y0 + gamma * rh[:, None, None] * off[:, 1]

    xs, vx = _axis_samples(x0, bw, gw, gw_max)  # [K,PH,PW,GW]
    ys, vy = _axis_samples(y0, bh, gh, gh_max)  # [K,PH,PW,GH]
    xl, xh, wxl, wxh, inx = _bilinear_weights(xs, w)
    yl, yh, wyl, wyh, iny = _bilinear_weights(ys, h)

    # Outer product over (GH, GW): [K,PH,PW,GH,GW]. A sample counts only if inside and within its grid.
    valid = (iny & vy)[..., :, None] & (inx & vx)[..., None, :]
    base = (batch * (h * w))[:, None, None, None, None]
    rows = [(yl, wyl), (yh, wyh)]
    cols = [(xl, wxl), (xh, wxh)]
    flat = feat.permute(0, 2, 3, 1).reshape(n * h * w, c)  # channels-last rows, one per pixel
    acc = None
    for yi, wy in rows:
        for xi, wx in cols:
            idx = base + yi[..., :, None] * w + xi[..., None, :]
            wgt = (wy[..., :, None] * wx[..., None, :]) * valid.to(dtype)
            vals = flat.index_select(0, idx.reshape(-1)).view(*idx.shape, c).to(dtype)
            term = (vals * wgt[..., None]).sum(dim=(3, 4))  # [K,PH,PW,C]
            acc = term if acc is None else acc + term
    count = (gh * gw).clamp(min=1).to(dtype)[:, None, None, None]
    # A RoI whose grid is empty on either axis (zero/negative size) pools to 0: the mask above already zeroes
    # every sample, and count guards the division.
    out = acc / count
    return out.permute(0, 3, 1, 2).contiguous().to(feat.dtype)



def _gather_bilinear(feat: Tensor, batch: Tensor, ys: Tensor, xs: Tensor, valid: Tensor, dtype: torch.dtype) -> Tensor:
    """Sum over each bin's samples of the bilinear value, weighted by ``valid``: [K,PH,PW,C].

    ``ys`` [K,PH,PW,GH] and ``xs`` [K,PH,PW,GW] are already clamped to [0, H-1] / [0, W-1]; ``valid``
    [K,PH,PW,GH,GW] is 0/1. The low tap is floor, the high tap floor+1 capped at the edge (where its weight is
    0, so this equals the floor/ceil form).
    """
    n, c, h, w = feat.shape
    yl = ys.detach().floor().long()
    xl = xs.detach().floor().long()
    yh = (yl + 1).clamp(max=h - 1)
    xh = (xl + 1).clamp(max=w - 1)
    fy = ys - yl.to(dtype)
    fx = xs - xl.to(dtype)
    base = (batch * (h * w))[:, None, None, None, None]
    flat = feat.permute(0, 2, 3, 1).reshape(n * h * w, c)  # channels-last rows, one per pixel
    acc = None
    for yi, wy in ((yl, 1.0 - fy), (yh, fy)):
        for xi, wx in ((xl, 1.0 - fx), (xh, fx)):
            idx = base + yi[..., :, None] * w + xi[..., None, :]
            wgt = (wy[..., :, None] * wx[..., None, :]) * valid
            vals = flat.index_select(0, idx.reshape(-1)).view(*idx.shape, c).to(dtype)
            term = (vals * wgt[..., None]).sum(dim=(3, 4))
            acc = term if acc is None else acc + term
    assert acc is not None
    return acc


def _pool_mmdet_v1(feat: Tensor, rois: Tensor, offset: Tensor | None, ph: int, pw: int, spatial_scale: float,
                   g: int, gamma: float) -> Tensor:
    """mmdet-v1 deformable PS-RoI pooling, one group (docs/DESIGN.md §4.3). Float operations in the
    authors' kernel order, so border decisions (a sample exactly at -0.5 or W-0.5) match in FP32."""
    n, c, h, w = feat.shape
    k = rois.shape[0]
    dtype = rois.dtype  # FP32 at least, even for FP16 features (docs/DESIGN.md §4.1)
    # The kernel multiplies by spatial_scale and trans_std as floats of the compute type.
    s = torch.tensor(spatial_scale, dtype=dtype, device=feat.device)
    batch = rois[:, 0].long()
    sx = cround(rois[:, 1]) * s - 0.5
    sy = cround(rois[:, 2]) * s - 0.5
    ex = (cround(rois[:, 3]) + 1.0) * s - 0.5
    ey = (cround(rois[:, 4]) + 1.0) * s - 0.5
    rw = (ex - sx).clamp(min=0.1)
    rh = (ey - sy).clamp(min=0.1)
    bw, bh = rw / pw, rh / ph
    sw, sh = bw / g, bh / g

    bin_x = torch.arange(pw, device=feat.device, dtype=dtype)
    bin_y = torch.arange(ph, device=feat.device, dtype=dtype)
    x0 = (bin_x[None, :] * bw[:, None] + sx[:, None])[:, None, :].expand(k, ph, pw)
    y0 = (bin_y[None, :] * bh[:, None] + sy[:, None])[:, :, None].expand(k, ph, pw)
    if offset is not None:
        off = offset.to(dtype)
        gm = torch.tensor(gamma, dtype=dtype, device=feat.device)
        x0 = x0 + (off[:, 0] * gm) * rw[:, None, None]
        y0 = y0 + (off[:, 1] * gm) * rh[:, None, None]
    idx = torch.arange(g, device=feat.device, dtype=dtype)
    xs = x0[..., None] + idx * sw[:, None, None, None]  # [K,PH,PW,g]
    ys = y0[..., None] + idx * sh[:, None, None, None]
    vx = (xs >= -0.5) & (xs <= w - 0.5)
    vy = (ys >= -0.5) & (ys <= h - 0.5)
    valid = (vy[..., :, None] & vx[..., None, :]).to(dtype)  # [K,PH,PW,g(y),g(x)]
    acc = _gather_bilinear(feat, batch, ys.clamp(0.0, h - 1.0), xs.clamp(0.0, w - 1.0), valid, dtype)
    count = valid.sum(dim=(3, 4))[..., None]  # [K,PH,PW,1]
    # A bin with no valid sample has acc == 0, so dividing by max(count, 1) gives the kernel's 0.
    out = acc / count.clamp(min=1.0)
    return out.permute(0, 3, 1, 2).contiguous().to(feat.dtype)
