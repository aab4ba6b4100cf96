"""Region refinement: depth-wise correlation of the attentional features of every level, fused into one
25x25 map, then a box head on a deformable-RoI-pooled 4x4 window and a mask head on a 16x16 window of
63x63 features that also carry the search image's first two backbone stages for detail."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from siamattn.config import RefineConfig
from siamattn.errors import ConfigError
from siamattn.ops import DeformRoIPool, dispatch


def conv1x1_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 1), nn.ReLU(inplace=True))


def _resize(f: Tensor, size: int) -> Tensor:
    if f.shape[-1] == size and f.shape[-2] == size:
        return f
    return F.interpolate(f, size=(size, size), mode="bilinear", align_corners=False)


class RegionRefinement(nn.Module):
    def __init__(self, channels: int, levels: int, stem_channels: int, layer1_channels: int,
                 cfg: RefineConfig, instance_size: int, corr_size: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.fuse = nn.ModuleList(
            nn.Sequential(nn.Conv2d(channels, channels, 1, bias=False), nn.BatchNorm2d(channels), nn.ReLU(inplace=True))
            for _ in range(levels)
        )
        # Both poolings treat their map as covering the whole search crop (authors' convention).
        self.box_pool = DeformRoIPool(channels, cfg.box_pool, corr_size / instance_size, cfg.sampling_ratio,
                                      cfg.gamma, cfg.offset_fc, deformable=cfg.deformable_pool)
        self.box_head = nn.Sequential(
            nn.Flatten(), nn.Linear(channels * cfg.box_pool**2, cfg.box_fc), nn.ReLU(inplace=True),
            nn.Linear(cfg.box_fc, cfg.box_fc), nn.ReLU(inplace=True), nn.Linear(cfg.box_fc, 4),
        )
        self.has_mask = cfg.mask
        if cfg.mask:
            up, rem = divmod(cfg.mask_size, cfg.mask_pool)
            if rem:
                raise ConfigError("config key 'model.refine.mask_size' must be a multiple of model.refine.mask_pool")
            m = cfg.mask_channels
            self.mask_corr = conv1x1_relu(channels, m)
            self.mask_layer1 = conv1x1_relu(layer1_channels, m)
            self.mask_stem = conv1x1_relu(stem_channels, m)
            self.mask_pool = DeformRoIPool(m, cfg.mask_pool, cfg.mask_feature_size / instance_size,
                                           cfg.sampling_ratio, cfg.gamma, deformable=False)
            convs: list[nn.Module] = []
            for _ in range(4):
                convs += [nn.Conv2d(m, m, 3, padding=1), nn.ReLU(inplace=True)]
            self.mask_head = nn.Sequential(*convs, nn.ConvTranspose2d(m, m, up, up), nn.ReLU(inplace=True),
                                           nn.Conv2d(m, 1, 1))

    def features(self, z_atts: list[Tensor], x_atts: list[Tensor], stem: Tensor,
                 layer1: Tensor) -> tuple[Tensor, Tensor | None]:
        """Per-frame refinement features: box map [B,C,25,25] and mask map [B,Cm,63,63] (None without mask)."""
        corr = None
        for fuse, z, x in zip(self.fuse, z_atts, x_atts, strict=True):
            c = fuse(dispatch.xcorr_depthwise(x, z))
            corr = c if corr is None else corr + c
        assert corr is not None
        if not self.has_mask:
            return corr, None
        s = self.cfg.mask_feature_size
        mask_feat = (self.mask_corr(_resize(corr, s)) + self.mask_layer1(_resize(layer1, s))
                     + self.mask_stem(_resize(stem, s)))
        return corr, mask_feat

    def box_deltas(self, box_feat: Tensor, rois: Tensor) -> Tensor:
        """Box refinement deltas [K,4] (normalised by model.refine.box_stds) for RoIs [K,5] in crop pixels."""
        return self.box_head(self.box_pool(box_feat, rois))

    def mask_logits(self, mask_feat: Tensor, rois: Tensor) -> Tensor:
        """Mask logits [K,1,mask_size,mask_size] over each RoI."""
        return self.mask_head(self.mask_pool(mask_feat, rois))
