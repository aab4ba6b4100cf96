"""The neck: projects the backbone's stride-8 maps (one per correlation level) to one width, template maps
centre-cropped; or nothing at all (``model.neck.enabled: false``, pysot's ``ADJUST: False``)."""

from __future__ import annotations

from torch import Tensor, nn

from siamattn.config import NeckConfig
from siamattn.errors import ConfigError


class Neck(nn.Module):
    """1x1 conv + BN per level to a common width; template maps (narrower than 20) are centre-cropped.
    Disabled, it passes the maps through (no parameters) and ``channels`` is their common width."""

    def __init__(self, in_channels: list[int], cfg: NeckConfig) -> None:
        super().__init__()
        self.crop = cfg.template_crop
        self.enabled = cfg.enabled
        if not cfg.enabled and len(set(in_channels)) != 1:
            raise ConfigError(f"config key 'model.neck.enabled' false needs backbone levels of one width; they "
                              f"have {in_channels} channels")
        self.channels = cfg.channels if cfg.enabled else in_channels[0]
        # each level's output width (model.neck.level_channels when the levels differ)
        self.level_channels = cfg.widths(len(in_channels)) if cfg.enabled else list(in_channels)
        self.adjust = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, w, 1, bias=False), nn.BatchNorm2d(w))
            for c, w in (zip(in_channels, self.level_channels, strict=True) if cfg.enabled else [])
        )

    def forward(self, feats: list[Tensor]) -> list[Tensor]:
        if not self.enabled:
            return list(feats)
        out = []
        for f, adj in zip(feats, self.adjust, strict=True):
            y = adj(f)
            if y.shape[-1] < 20:
                lo = (y.shape[-1] - self.crop) // 2
                y = y[:, :, lo : lo + self.crop, lo : lo + self.crop]
            out.append(y)
        return out
