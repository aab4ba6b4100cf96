"""The SiamAttn network and its inference split.

Deployment runs four stages (the export stage turns each into a graph):

* :meth:`SiamAttn.template`     once per video: template image -> named cache tensors (X-independent part)
* :meth:`SiamAttn.search`       per frame: search image + cache -> cls/loc maps + refinement features
* :meth:`SiamAttn.refine_box`   per frame, on the RoI chosen by host post-processing -> box deltas
* :meth:`SiamAttn.refine_mask`  per frame, on the smoothed box -> mask probabilities
* :meth:`SiamAttn.mask_at`      per frame, SiamMask (``model.siammask``) instead of the two refinements: at the
  score-map position of the chosen anchor -> 127x127 mask probabilities (docs/DESIGN.md "SiamMask")

:meth:`SiamAttn.forward` (training) computes the same network on batches of pairs without the split.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from siamattn.config import SIAMMASK_MAPS, Config
from siamattn.training.model.attention import DSA
from siamattn.training.model.backbone import build_backbone
from siamattn.training.model.neck import Neck
from siamattn.training.model.refine import RegionRefinement
from siamattn.training.model.rpn import MultiRPN
from siamattn.training.model.siammask import MaskCorr, MaskRefine


class SiamAttn(nn.Module):
    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.cfg = cfg
        m = cfg.model
        self.backbone = build_backbone(m.backbone)
        ch = self.backbone.channels
        # the last `levels` backbone maps are the correlation levels; the ones before them (stride 2 and 4,
        # when the backbone has them) feed the refinement's mask features (training/model/backbone.py)
        self.levels = levels = self.backbone.levels
        self.neck = Neck(ch[-levels:], m.neck)
        widths = self.neck.level_channels
        c = widths[0]  # the refinement's width (the config makes the levels' widths equal when it is on)
        self.dsa = nn.ModuleList(DSA(w, m.attention) for w in widths)
        self.rpn = MultiRPN(levels, widths, m.rpn.hidden, cfg.anchors.num, m.rpn.weighted_fusion)
        self.refine: RegionRefinement | None = None
        if m.refine.enabled:  # the config guarantees stride-2/4 maps (ModelConfig.validate)
            t = cfg.tracker  # both windows, so the long-term mode can be switched on at run time
            self.refine = RegionRefinement(c, levels, ch[0], ch[1], m.refine,
                                           [(t.instance_size, t.score_size), (t.lost_instance_size, t.lost_score_size)])

        self.mask_corr: MaskCorr | None = None
        if m.siammask.enabled:  # the config guarantees resnet50's stem, layer1, layer2 before one level
            sm = m.siammask
            self.mask_corr = MaskCorr(c, sm.hidden, sm.vector**2)
            self.mask_refine = MaskRefine(sm.hidden, ch[0], ch[1], ch[2])

    @property
    def has_refine(self) -> bool:
        return self.refine is not None

    @property
    def has_mask(self) -> bool:
        return self.mask_by_position or (self.refine is not None and self.refine.has_mask)

    @property
    def mask_by_position(self) -> bool:
        """SiamMask: the mask stage takes score-map positions (:meth:`mask_at`), not RoIs."""
        return self.mask_corr is not None

    # -- deployment split -------------------------------------------------------------------------
    def template(self, z: Tensor) -> dict[str, Tensor]:
        """z [B,3,127,127] BGR 0..255 -> cache tensors named ``z{level}_{part}``."""
        zf = self.neck(self.backbone(z)[-self.levels:])
        cache: dict[str, Tensor] = {}
        for i, (dsa, f) in enumerate(zip(self.dsa, zf, strict=True)):
            cache.update({f"z{i}_{k}": v for k, v in dsa.template_part(f).items()})
        return cache

    def search(self, x: Tensor, cache: dict[str, Tensor]) -> dict[str, Tensor]:
        """x [B,3,I,I] (I = tracker.instance_size, 255) + template cache -> cls [B,2k,S,S], loc [B,4k,S,S]
        (S = tracker.score_size, 25) and, with refinement,
        box_feat [B,C,25,25] and mask_feat [B,Cm,63,63]."""
        feats = self.backbone(x)
        early, xf = feats[: -self.levels], self.neck(feats[-self.levels:])
        z_att, x_att = [], []
        for i, (dsa, f) in enumerate(zip(self.dsa, xf, strict=True)):
            prefix = f"z{i}_"
            level = {k[len(prefix):]: v for k, v in cache.items() if k.startswith(prefix)}
            za, xa = dsa.search_part(f, level)
            z_att.append(za)
            x_att.append(xa)
        cls, loc = self.rpn(z_att, x_att)
        out = {"cls": cls, "loc": loc}
        if self.mask_corr is not None:  # its correlation map and the early maps, read by mask_at
            out[SIAMMASK_MAPS[0]] = self.mask_corr.correlation(z_att[0], x_att[0])
            out.update(zip(SIAMMASK_MAPS[1:], early, strict=True))
        if self.refine is not None:
            box_feat, mask_feat = self.refine.features(z_att, x_att, *early, instance_size=x.shape[-1])
            out["box_feat"] = box_feat
            if mask_feat is not None:
                out["mask_feat"] = mask_feat
        return out

    def refine_box(self, box_feat: Tensor, rois: Tensor) -> Tensor:
        """rois [K,5] (batch, x1, y1, x2, y2) in search-crop pixels -> deltas [K,4]."""
        if self.refine is None:
            raise RuntimeError("this model has no region refinement (model.refine.enabled: false)")
        return self.refine.box_deltas(box_feat, rois)

    def refine_mask(self, mask_feat: Tensor, rois: Tensor) -> Tensor:
        """rois [K,5] -> mask probabilities [K,1,64,64] over each RoI."""
        if self.refine is None or not self.refine.has_mask:
            raise RuntimeError("this model has no mask head (model.refine.mask: false)")
        return torch.sigmoid(self.refine.mask_logits(mask_feat, rois))

    def mask_at(self, mask_corr: Tensor, stem: Tensor, layer1: Tensor, layer2: Tensor, pos: Tensor) -> Tensor:
        """SiamMask: pos [K,3] rows (item of the last search, score-map row, column) -> mask probabilities
        [K,1,127,127] over the position's template window (pysot's refined mask)."""
        if self.mask_corr is None:
            raise RuntimeError("this model has no SiamMask branch (model.siammask.enabled: false)")
        return torch.sigmoid(self.mask_refine(mask_corr, stem, layer1, layer2, pos))

    # -- training forward --------------------------------------------------------------------------
    def forward(self, z: Tensor, x: Tensor, rois: Tensor | None = None) -> dict[str, Tensor]:
        """Pairs z [B,3,127,127], x [B,3,255,255]; optional RoIs [K,5] for the refinement heads.
        Returns cls, loc and, given RoIs, box deltas [K,4] and mask logits [K,1,64,64]; SiamMask's coarse mask
        logits per position mask_vectors [B,vector**2,S,S]."""
        zf = self.neck(self.backbone(z)[-self.levels:])
        feats = self.backbone(x)
        early, xf = feats[: -self.levels], self.neck(feats[-self.levels:])
        pairs = [dsa(a, b) for dsa, a, b in zip(self.dsa, zf, xf, strict=True)]
        z_att = [p[0] for p in pairs]
        x_att = [p[1] for p in pairs]
        cls, loc = self.rpn(z_att, x_att)
        out = {"cls": cls, "loc": loc}
        if self.mask_corr is not None:  # SiamMask's coarse mask per position (no loss is trained on it here)
            out["mask_vectors"] = self.mask_corr.vectors(self.mask_corr.correlation(z_att[0], x_att[0]))
        if self.refine is not None and rois is not None:
            box_feat, mask_feat = self.refine.features(z_att, x_att, *early)
            out["box"] = self.refine.box_deltas(box_feat, rois)
            if mask_feat is not None:
                out["mask_logits"] = self.refine.mask_logits(mask_feat, rois)
        return out


def build_model(cfg: Config) -> SiamAttn:
    return SiamAttn(cfg)
