"""The neck: projects the backbone's three stride-8 maps to one width (template maps centre-cropped)."""

from __future__ import annotations

from torch import Tensor, nn

from siamattn.config import NeckConfig


class Neck(nn.Module):
    """1x1 conv + BN per level to a common width; template maps (narrower than 20) are centre-cropped."""

    def __init__(self, in_channels: list[int], cfg: NeckConfig) -> None:
        super().__init__()
        self.crop = cfg.template_crop
        self.adjust = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, cfg.channels, 1, bias=False), nn.BatchNorm2d(cfg.channels)) for c in in_channels
        )

    def forward(self, feats: list[Tensor]) -> list[Tensor]:
        out = []
        for f, adj in zip(feats, self.adjust, strict=True):
            y = adj(f)
            if y.shape[-1] < 20:
                lo = (y.shape[-1] - self.crop) // 2
                y = y[:, :, lo : lo + self.crop, lo : lo + self.crop]
            out.append(y)
        return out
