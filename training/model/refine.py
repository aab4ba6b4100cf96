"""Region refinement: depth-wise correlation of the attentional features of every level, fused into one
25x25 map, then a box head on a deformable-RoI-pooled 4x4 window and a mask head on a 16x16 window of
63x63 features that also carry the search image's first two backbone stages for detail.

Two variants, chosen by model.refine switches (defaults = the paper-text variant of the demo and tiny
models; ``configs/siamattn_r50.yaml`` = the authors' code):

* box features: ``box_corr: raw`` fuses the plain depth-wise correlation of each level; ``head`` puts a full
  depth-wise correlation block (:class:`DepthwiseXCorrHead`, neck width out) before each level's fuse conv.
* mask features: ``mask_features: corr`` sums 1x1+ReLU laterals over the fused box map, layer1 and the stem;
  ``laterals`` sums five 1x1 no-bias conv+BN+ReLU laterals over the stem (before max-pool), layer1 and the
  three attentional search levels, each resized bilinearly (align_corners=True) to the mask map size first.
* mask head: ``mask_head_bn`` uses no-bias convs + BN; ``mask_deformable_pool`` makes the mask pooling
  deformable (offset MLP of ``mask_channels * mask_pool**2`` inputs).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from siamattn.config import RefineConfig
from siamattn.errors import ConfigError
from siamattn.ops import DeformRoIPool, dispatch
from siamattn.training.model.rpn import DepthwiseXCorrHead


def conv1x1_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 1), nn.ReLU(inplace=True))


def conv1x1_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def _resize(f: Tensor, size: int, align_corners: bool = False) -> Tensor:
    if f.shape[-1] == size and f.shape[-2] == size:
        return f
    return F.interpolate(f, size=(size, size), mode="bilinear", align_corners=align_corners)


def _mask_head(m: int, up: int, bn: bool) -> nn.Sequential:
    """4 x 3x3 conv (+BN) + ReLU, transposed conv x``up`` + ReLU, 1x1 to one logit map. Indices: with BN
    convs at 0,3,6,9 and BNs at 1,4,7,10, upsampling at 12, logits at 14; without BN convs at 0,2,4,6,
    upsampling at 8, logits at 10."""
    layers: list[nn.Module] = []
    for _ in range(4):
        layers.append(nn.Conv2d(m, m, 3, padding=1, bias=not bn))
        if bn:
            layers.append(nn.BatchNorm2d(m))
        layers.append(nn.ReLU(inplace=True))
    head = nn.Sequential(*layers, nn.ConvTranspose2d(m, m, up, up), nn.ReLU(inplace=True), nn.Conv2d(m, 1, 1))
    # He init for the ReLU stack and a near-zero logit layer (as the mask heads of mmdet and Detectron2):
    # PyTorch's default init halves the signal at every layer, and after six layers the logits were a constant
    # the mask loss could hardly move (the first demo model's mask was its box).
    for layer in head:
        if isinstance(layer, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
    nn.init.normal_(head[-1].weight, std=0.001)
    return head


class RegionRefinement(nn.Module):
    def __init__(self, channels: int, levels: int, stem_channels: int, layer1_channels: int,
                 cfg: RefineConfig, windows: Sequence[tuple[int, int]]) -> None:
        """``windows``: (search crop side, box feature side) of each search window the model runs on, the
        normal one first (the long-term mode's lost window second): each window's maps cover its whole crop,
        so the poolings' spatial scale follows the map's side (docs/DESIGN.md "Long-term search")."""
        super().__init__()
        self.cfg = cfg
        instance_size, corr_size = windows[0]
        self.instance_size = instance_size
        self._box_scale = {corr: corr / inst for inst, corr in windows}
        self._mask_scale = {self.mask_feature_side(inst): self.mask_feature_side(inst) / inst for inst, _ in windows}
        self.box_xcorr: nn.ModuleList | None = None
        if cfg.box_corr == "head":
            self.box_xcorr = nn.ModuleList(DepthwiseXCorrHead(channels, channels, channels) for _ in range(levels))
        self.fuse = nn.ModuleList(
            nn.Sequential(nn.Conv2d(channels, channels, 1, bias=False), nn.BatchNorm2d(channels), nn.ReLU(inplace=True))
            for _ in range(levels)
        )
        # Both poolings treat their map as covering the whole search crop (authors' convention).
        self.box_pool = DeformRoIPool(channels, cfg.box_pool, corr_size / instance_size, cfg.sampling_ratio,
                                      cfg.gamma, cfg.offset_fc, deformable=cfg.deformable_pool, mode=cfg.pool_mode)
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
            if cfg.mask_features == "laterals":
                # order: stem, layer1, then the attentional search levels (the key order of the authors' code)
                ins = [stem_channels, layer1_channels] + [channels] * levels
                self.mask_lateral = nn.ModuleList(conv1x1_bn_relu(c, m) for c in ins)
            else:
                self.mask_corr = conv1x1_relu(channels, m)
                self.mask_layer1 = conv1x1_relu(layer1_channels, m)
                self.mask_stem = conv1x1_relu(stem_channels, m)
            self.mask_pool = DeformRoIPool(m, cfg.mask_pool, cfg.mask_feature_size / instance_size,
                                           cfg.sampling_ratio, cfg.gamma, cfg.offset_fc,
                                           deformable=cfg.mask_deformable_pool, mode=cfg.pool_mode)
            self.mask_head = _mask_head(m, up, cfg.mask_head_bn)

    def mask_feature_side(self, instance_size: int) -> int:
        """Side of the fused mask map for a search crop of ``instance_size`` px: model.refine.mask_feature_size
        at the normal window, scaled with the crop otherwise (the same crop px per cell)."""
        return round(self.cfg.mask_feature_size * instance_size / self.instance_size)

    def features(self, z_atts: list[Tensor], x_atts: list[Tensor], stem: Tensor,
                 layer1: Tensor, instance_size: int | None = None) -> tuple[Tensor, Tensor | None]:
        """Per-frame refinement features: box map [B,C,25,25] and mask map [B,Cm,63,63] (None without mask);
        larger maps for a larger search crop of ``instance_size`` px."""
        corr = None
        for i, (fuse, z, x) in enumerate(zip(self.fuse, z_atts, x_atts, strict=True)):
            # the "head" block's template conv runs per frame: z_att depends on the search image
            xc = self.box_xcorr[i](z, x) if self.box_xcorr is not None else dispatch.xcorr_depthwise(x, z)
            c = fuse(xc)
            corr = c if corr is None else corr + c
        assert corr is not None
        if not self.has_mask:
            return corr, None
        s = self.mask_feature_side(instance_size or self.instance_size)
        if self.cfg.mask_features == "laterals":
            ins = [stem, layer1, *x_atts]
            mask_feat = self.mask_lateral[1](_resize(layer1, s, align_corners=True))
            for i, (lat, f) in enumerate(zip(self.mask_lateral, ins, strict=True)):
                if i != 1:
                    mask_feat = mask_feat + lat(_resize(f, s, align_corners=True))
            return corr, mask_feat
        mask_feat = (self.mask_corr(_resize(corr, s)) + self.mask_layer1(_resize(layer1, s))
                     + self.mask_stem(_resize(stem, s)))
        return corr, mask_feat

    def box_deltas(self, box_feat: Tensor, rois: Tensor) -> Tensor:
        """Box refinement deltas [K,4] (normalised by model.refine.box_stds) for RoIs [K,5] in crop pixels."""
        return self.box_head(self.box_pool(box_feat, rois, self._box_scale.get(box_feat.shape[-1])))

    def mask_logits(self, mask_feat: Tensor, rois: Tensor) -> Tensor:
        """Mask logits [K,1,mask_size,mask_size] over each RoI."""
        return self.mask_head(self.mask_pool(mask_feat, rois, self._mask_scale.get(mask_feat.shape[-1])))
