"""SiamMask's mask branch (pysot's siammask_r50_l3; docs/DESIGN.md "SiamMask", docs/MODELS.md).

* :class:`MaskCorr`: a depth-wise correlation block like the RPN's (3x3 conv + BN + ReLU per branch, depth-wise
  correlation, 1x1 + BN + ReLU, 1x1 head) whose head predicts a ``vector**2`` coarse mask at every score-map
  position; the tracker uses its correlation map (the input of the head), which is what the refine module reads.
* :class:`MaskRefine`: pysot's refine module. At one score-map position (row, col) it deconvolves that position's
  correlation vector to 15x15, then adds the search crop's layer2 / layer1 / stem windows that the position's
  127 px template window covers (15, 31 and 61 cells, read from the maps zero-padded by 4, 8 and 16), upsampling
  (nearest) 15 -> 31 -> 61 -> 127 on the way: a 127x127 mask logit map over that window.

The positions come from the host (the anchor it chose), one row ``[item, row, col]`` per target, so the module
gathers its windows with index arithmetic on the position (exportable: GatherElements, no data-dependent shape).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from siamattn.config import SIAMMASK_OUTPUT
from siamattn.ops import dispatch
from siamattn.training.model.rpn import DepthwiseXCorrHead

# (window side, map cells per score-map cell, zero padding) of the layer2, layer1 and stem windows; the stem's
# 61 cells upsample to the SIAMMASK_OUTPUT mask
WINDOWS = ((15, 1, 4), (31, 2, 8), (61, 4, 16))


class MaskCorr(DepthwiseXCorrHead):
    """The mask correlation block; :meth:`correlation` is the map the refine module reads."""

    def correlation(self, z: Tensor, x: Tensor) -> Tensor:
        return dispatch.xcorr_depthwise(self.conv_search(x), self.conv_kernel(z))

    def vectors(self, corr: Tensor) -> Tensor:
        """The coarse mask logits [B, vector**2, S, S] from :meth:`correlation`'s map (pysot's mask output)."""
        return self.head(corr)


def _conv_pair(cin: int, mid: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, mid, 3, padding=1), nn.ReLU(inplace=True),
                         nn.Conv2d(mid, cout, 3, padding=1), nn.ReLU(inplace=True))


def _window(feat: Tensor, item: Tensor, row: Tensor, col: Tensor, side: int, step: int, pad: int) -> Tensor:
    """[K, C, side, side]: for each position k, the window of ``feat[item[k]]`` (zero-padded by ``pad``) whose
    top-left cell is (step * row[k], step * col[k])."""
    padded = F.pad(feat, [pad, pad, pad, pad]).index_select(0, item)
    k, c, h, w = padded.shape
    span = torch.arange(side, device=feat.device)
    rows = (step * row)[:, None] + span  # [K, side]
    cols = (step * col)[:, None] + span
    out = padded.gather(2, rows[:, None, :, None].expand(k, c, side, w))
    return out.gather(3, cols[:, None, None, :].expand(k, c, side, side))


class MaskRefine(nn.Module):
    """pysot's Refine with the input widths of the backbone it reads (64 / 256 / 512 for ResNet-50); the inner
    widths are pysot's."""

    def __init__(self, corr_channels: int, stem_channels: int, layer1_channels: int, layer2_channels: int) -> None:
        super().__init__()
        self.v0 = _conv_pair(stem_channels, 16, 4)
        self.v1 = _conv_pair(layer1_channels, 64, 16)
        self.v2 = _conv_pair(layer2_channels, 128, 32)
        self.h2 = _conv_pair(32, 32, 32)
        self.h1 = _conv_pair(16, 16, 16)
        self.h0 = _conv_pair(4, 4, 4)
        self.deconv = nn.ConvTranspose2d(corr_channels, 32, 15, 15)
        self.post0 = nn.Conv2d(32, 16, 3, padding=1)
        self.post1 = nn.Conv2d(16, 4, 3, padding=1)
        self.post2 = nn.Conv2d(4, 1, 3, padding=1)

    def forward(self, corr: Tensor, stem: Tensor, layer1: Tensor, layer2: Tensor, pos: Tensor) -> Tensor:
        """corr [B,C,S,S], the search crop's stem/layer1/layer2 maps, pos [K,3] rows (item, row, col) ->
        mask logits [K,1,127,127]."""
        pos = pos.to(torch.int64)
        item, row, col = pos[:, 0], pos[:, 1], pos[:, 2]
        b, c, s, _ = corr.shape
        flat = corr.reshape(b, c, s * s).index_select(0, item)
        vec = flat.gather(2, (row * s + col)[:, None, None].expand(-1, c, 1))
        p2, p1, p0 = (_window(f, item, row, col, *w) for f, w in zip((layer2, layer1, stem), WINDOWS, strict=True))
        out = self.deconv(vec.reshape(-1, c, 1, 1))
        out = self.post0(F.interpolate(self.h2(out) + self.v2(p2), size=(WINDOWS[1][0],) * 2, mode="nearest"))
        out = self.post1(F.interpolate(self.h1(out) + self.v1(p1), size=(WINDOWS[2][0],) * 2, mode="nearest"))
        return self.post2(F.interpolate(self.h0(out) + self.v0(p0), size=(SIAMMASK_OUTPUT,) * 2, mode="nearest"))
