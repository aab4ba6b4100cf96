"""Depth-wise cross-correlation (SiamRPN++): each channel of the search map correlated with the same
channel of a per-sample kernel. The kernel is a tensor, not a weight, which is why export offers other
lowerings of it (see siamattn.export)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def xcorr_depthwise(x: Tensor, kernel: Tensor) -> Tensor:
    """x [B,C,H,W], kernel [B,C,h,w] -> [B,C,H-h+1,W-w+1] (valid correlation, per sample and channel)."""
    if x.dim() != 4 or kernel.dim() != 4 or x.shape[:2] != kernel.shape[:2]:
        raise ValueError(f"xcorr_depthwise: x {tuple(x.shape)} and kernel {tuple(kernel.shape)} must share [B,C]")
    b, c, h, w = x.shape
    out = F.conv2d(x.reshape(1, b * c, h, w), kernel.reshape(b * c, 1, *kernel.shape[2:]), groups=b * c)
    return out.reshape(b, c, out.shape[2], out.shape[3])
