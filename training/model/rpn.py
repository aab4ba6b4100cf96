"""Three SiamRPN++ blocks (depth-wise cross-correlation heads) fused by learned weights."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from siamattn.ops import dispatch


def conv_bn_relu(cin: int, cout: int, k: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class DepthwiseXCorrHead(nn.Module):
    """3x3 conv on each branch (7->5, 31->29), depth-wise correlation (-> 25x25), 1x1 head."""

    def __init__(self, channels: int, hidden: int, out_channels: int) -> None:
        super().__init__()
        self.conv_kernel = conv_bn_relu(channels, hidden, 3)
        self.conv_search = conv_bn_relu(channels, hidden, 3)
        self.head = nn.Sequential(
            nn.Conv2d(hidden, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, out_channels, 1),
        )

    def forward(self, z: Tensor, x: Tensor) -> Tensor:
        return self.head(dispatch.xcorr_depthwise(self.conv_search(x), self.conv_kernel(z)))


class MultiRPN(nn.Module):
    def __init__(self, levels: int, channels: int | list[int], hidden: int, anchors: int, weighted: bool) -> None:
        """``channels``: one width, or one per level; ``hidden`` 0: each level's own width (pysot's MultiRPN)."""
        super().__init__()
        widths = list(channels) if isinstance(channels, list) else [channels] * levels
        self.cls = nn.ModuleList(DepthwiseXCorrHead(c, hidden or c, 2 * anchors) for c in widths)
        self.loc = nn.ModuleList(DepthwiseXCorrHead(c, hidden or c, 4 * anchors) for c in widths)
        self.weighted = weighted
        if weighted:
            self.cls_weight = nn.Parameter(torch.ones(levels))
            self.loc_weight = nn.Parameter(torch.ones(levels))

    def _fuse(self, maps: list[Tensor], weight: Tensor | None) -> Tensor:
        w = torch.softmax(weight, 0) if weight is not None else torch.full((len(maps),), 1.0 / len(maps))
        return sum((w[i] * m for i, m in enumerate(maps[1:], 1)), w[0] * maps[0])

    def forward(self, zs: list[Tensor], xs: list[Tensor]) -> tuple[Tensor, Tensor]:
        cls = [head(z, x) for head, z, x in zip(self.cls, zs, xs, strict=True)]
        loc = [head(z, x) for head, z, x in zip(self.loc, zs, xs, strict=True)]
        return (self._fuse(cls, self.cls_weight if self.weighted else None),
                self._fuse(loc, self.loc_weight if self.weighted else None))
