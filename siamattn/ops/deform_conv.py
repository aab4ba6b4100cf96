"""Deformable convolution (DCNv1, optional DCNv2 modulation) with autograd.

torchvision's ``deform_conv2d`` computes exactly the ONNX DeformConv-19 semantics (docs/DESIGN.md §4.1): offsets
are (dy, dx) pairs per kernel tap k = i*kw + j, grouped by offset group; bilinear samples outside
(-1, H) x (-1, W) are 0. This wrapper validates shapes with clear messages and is what the model calls, so
the export stage can swap in its own lowering at one place.

Training on CPU takes another route to the same function: torchvision's CPU backward is a serial im2col-style
loop that took a quarter of a demo-model training step; bilinear ``grid_sample`` taps + one matmul give the
same values (float rounding apart) and let autograd differentiate vectorised ops, 5-9x faster forward +
backward on the demo model's maps. Inference (no gradient), CUDA and everything exported keep torchvision.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.ops import deform_conv2d as _tv_deform_conv2d


def pair(v: int | tuple[int, int]) -> tuple[int, int]:
    """An int or a 2-sequence as an (h, w) pair."""
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def deform_conv2d(
    x: Tensor,
    offset: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    mask: Tensor | None = None,
) -> Tensor:
    """x [N,C,H,W], offset [N,2*G*kh*kw,oH,oW], weight [M,C/groups,kh,kw], mask [N,G*kh*kw,oH,oW] -> [N,M,oH,oW].

    ``groups`` is C / weight.shape[1]; offset groups G is offset.shape[1] / (2*kh*kw).
    """
    if x.dim() != 4 or weight.dim() != 4:
        raise ValueError(f"deform_conv2d: x and weight must be 4-D, got {tuple(x.shape)} and {tuple(weight.shape)}")
    sh, sw = pair(stride)
    ph, pw = pair(padding)
    dh, dw = pair(dilation)
    n, c, h, w = x.shape
    m, cg, kh, kw = weight.shape
    if c % cg:
        raise ValueError(f"deform_conv2d: input channels {c} not divisible by weight's {cg} channels per group")
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    taps = kh * kw
    if offset.dim() != 4 or offset.shape[0] != n or offset.shape[1] % (2 * taps) or tuple(offset.shape[2:]) != (oh, ow):
        raise ValueError(
            f"deform_conv2d: offset must be [{n}, G*{2 * taps}, {oh}, {ow}] for this input and kernel, "
            f"got {tuple(offset.shape)}"
        )
    groups_off = offset.shape[1] // (2 * taps)
    if c % groups_off:
        raise ValueError(f"deform_conv2d: {c} input channels not divisible by {groups_off} offset groups")
    if mask is not None and tuple(mask.shape) != (n, groups_off * taps, oh, ow):
        raise ValueError(f"deform_conv2d: mask must be [{n}, {groups_off * taps}, {oh}, {ow}], got {tuple(mask.shape)}")
    needs_grad = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (x, offset, weight, bias, mask))
    if needs_grad and x.device.type == "cpu" and h > 1 and w > 1:
        return _sampled(x, offset, weight, bias, (sh, sw), (ph, pw), (dh, dw), mask)
    return _tv_deform_conv2d(x, offset, weight, bias, stride=(sh, sw), padding=(ph, pw),
                             dilation=(dh, dw), mask=mask)


def _sampled(x: Tensor, offset: Tensor, weight: Tensor, bias: Tensor | None, stride: tuple[int, int],
             padding: tuple[int, int], dilation: tuple[int, int], mask: Tensor | None) -> Tensor:
    """The same DCN as bilinear samples of every tap (one ``grid_sample`` per offset group) and a grouped
    matmul. ``grid_sample`` with zero padding and ``align_corners=True`` is exactly the DCN sampling rule
    (corners outside the map count 0). Needs H, W > 1 (the grid normalisation divides by H-1, W-1)."""
    n, c, h, w = x.shape
    m, cg, kh, kw = weight.shape
    groups, taps = c // cg, kh * kw
    g_off = offset.shape[1] // (2 * taps)
    oh, ow = offset.shape[2], offset.shape[3]
    ar = functools.partial(torch.arange, device=x.device, dtype=offset.dtype)
    tap_y = (ar(kh) * dilation[0]).repeat_interleave(kw).view(taps, 1, 1)  # tap k = i*kw + j
    tap_x = (ar(kw) * dilation[1]).repeat(kh).view(taps, 1, 1)
    base_y = (ar(oh) * stride[0] - padding[0]).view(1, oh, 1)
    base_x = (ar(ow) * stride[1] - padding[1]).view(1, 1, ow)
    off = offset.view(n, g_off, taps, 2, oh, ow)  # (dy, dx) per tap
    py = off[:, :, :, 0] + (tap_y + base_y)
    px = off[:, :, :, 1] + (tap_x + base_x)
    grid = torch.stack([px * (2.0 / (w - 1)) - 1.0, py * (2.0 / (h - 1)) - 1.0], dim=-1)
    cols = F.grid_sample(x.reshape(n * g_off, c // g_off, h, w), grid.view(n * g_off, taps * oh, ow, 2).to(x.dtype),
                         mode="bilinear", padding_mode="zeros", align_corners=True)
    cols = cols.view(n, g_off, c // g_off, taps, oh, ow)
    if mask is not None:
        cols = cols * mask.view(n, g_off, 1, taps, oh, ow)
    # channel-major, tap-minor within each conv group: the layout of weight.reshape(m, cg * taps)
    cols = cols.reshape(n, groups, cg * taps, oh * ow)
    out = torch.matmul(weight.reshape(groups, m // groups, cg * taps), cols).reshape(n, m, oh, ow)
    return out if bias is None else out + bias.view(1, m, 1, 1)


def deform_conv2d_flops(x_shape: torch.Size, w_shape: torch.Size, out_shape: torch.Size) -> int:
    """Multiply-adds x2 of the convolution plus the bilinear sampling (4 taps, ~3 MACs each per sample)."""
    n, c = x_shape[0], x_shape[1]
    m, cg, kh, kw = w_shape
    oh, ow = out_shape[-2], out_shape[-1]
    conv = 2 * n * m * cg * kh * kw * oh * ow
    sampling = 2 * 4 * 3 * n * c * kh * kw * oh * ow
    return int(conv + sampling)
