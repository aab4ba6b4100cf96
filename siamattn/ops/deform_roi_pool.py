"""Deformable RoI pooling (mmcv semantics), vectorised PyTorch with autograd.

This is the ground truth for the TensorRT plugin and for the portable ONNX decomposition. Semantics
(docs/DESIGN.md §4.2): for RoI k = (b, x1, y1, x2, y2) in input-image pixels,

    sx = x1*s - 0.5, ex = x2*s - 0.5, rw = ex - sx (no clamp), bw = rw / PW   (same for y)
    with offsets: sx += gamma * rw * offset[k, 0, ph, pw]; sy += gamma * rh * offset[k, 1, ph, pw]
    sample x = sx + pw*bw + (ix + 0.5) * bw / gw,  ix in [0, gw)   (same for y)
    gw = sampling_ratio if > 0 else ceil(rw / PW)
    out[k, c, ph, pw] = sum of bilinear samples / max(gh*gw, 1)

Bilinear sampling follows the RoIAlign rule: a sample is 0 when y < -1, y > H, x < -1 or x > W;
otherwise negative coordinates clamp to 0 and coordinates at or past H-1 / W-1 clamp to the edge.
"""

from __future__ import annotations

import torch
from torch import Tensor

from siamattn.ops.deform_conv import pair as _pair


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
) -> Tensor:
    """Deformable RoI pooling: feat [N,C,H,W], rois [K,5], offset [K,2,PH,PW] ((dx,dy) order) -> [K,C,PH,PW].

    ``offset=None`` is plain RoIAlign-style average pooling (mmcv's ``roi_align`` with aligned=True and
    average mode gives the same numbers). Differentiable w.r.t. ``feat``, ``offset`` and ``rois``.
    ``sampling_ratio=0`` chooses ceil(roi_size / bins) samples per bin side, per RoI, as mmcv does.
    """
    ph, pw = _pair(output_size)
    _check_inputs(feat, rois, offset, ph, pw)
    n, c, h, w = feat.shape
    k = rois.shape[0]
    if k == 0:
        return feat.new_zeros((0, c, ph, pw))
    # Coordinates, interpolation weights and accumulation stay in (at least) FP32 even for FP16 features:
    # at 128..256 px FP16 resolves only 1/8 px.
    dtype = torch.promote_types(feat.dtype, torch.float32)
    rois = rois.to(dtype)
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

