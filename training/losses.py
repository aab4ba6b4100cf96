"""SiamAttn losses (paper §3.4 / docs/DESIGN.md §7): cls NLL + 0.2 reg smooth-L1 + 0.2 refine-box smooth-L1
+ 0.1 refine-mask BCE, weights from ``train.*_weight``.

Every term is computed **per pair** and the batch loss is the mean over pairs. That makes the loss of a
batch split over DDP processes or micro-batches (equal shares) exactly the average of the parts, so the
gradient step does not depend on how the batch was split. Per pair:

* cls: log-softmax over each anchor's (background, foreground) logits; ``0.5 * mean NLL over sampled
  positives + 0.5 * mean NLL over sampled negatives`` (pysot's balance; an empty set contributes 0, so a
  negative pair gives only the negative half);
* reg: smooth-L1 over the 4 deltas, summed, averaged over the positive anchors (0 without positives);
* refine-box: smooth-L1 of the RoI deltas (already divided by the box stds), summed over the 4, averaged
  over the pair's RoIs, positive pairs only;
* refine-mask: BCE over each RoI's 64x64 target, averaged, positive pairs whose dataset has masks only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from siamattn.config import TrainConfig

__all__ = ["SMOOTH_L1_BETA", "siamattn_loss"]

SMOOTH_L1_BETA = 1.0 / 9.0  # quadratic only very close to 0: behaves like the L1 loss pysot uses for loc


def _masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``values`` over ``mask`` along every axis but the first; 0 where the mask is empty."""
    dims = tuple(range(1, values.dim()))
    m = mask.to(values.dtype)
    return (values * m).sum(dims) / m.sum(dims).clamp(min=1.0)


def siamattn_loss(out: dict[str, Tensor], batch: dict[str, Tensor], cfg: TrainConfig) -> dict[str, Tensor]:
    """Losses of one (micro-)batch. ``out``: the model's forward (cls, loc, optionally box, mask_logits);
    ``batch``: the collated targets of :class:`~siamattn.training.pairs.PairDataset`. Returns scalars
    ``total``, ``cls``, ``loc``, ``box``, ``mask`` (batch means)."""
    cls = out["cls"].float()
    b, two_k, s, _ = cls.shape
    k = two_k // 2
    logp = F.log_softmax(cls.view(b, 2, k, s, s), dim=1)
    labels = batch["labels"].long()
    pos, neg = labels == 1, labels == 0
    cls_loss = 0.5 * _masked_mean(-logp[:, 1], pos) + 0.5 * _masked_mean(-logp[:, 0], neg)

    loc = out["loc"].float().view(b, 4, k, s, s)
    reg = F.smooth_l1_loss(loc, batch["deltas"].float(), beta=SMOOTH_L1_BETA, reduction="none").sum(1)
    loc_loss = _masked_mean(reg, pos)

    zero = cls_loss.new_zeros(b)
    positive = batch["positive"].to(cls.dtype)
    box_loss = mask_loss = zero
    if "box" in out:
        r = batch["box_targets"].shape[1]
        pred = out["box"].float().view(b, r, 4)
        box_loss = F.smooth_l1_loss(pred, batch["box_targets"].float(), beta=SMOOTH_L1_BETA,
                                    reduction="none").sum(-1).mean(-1) * positive
    if "mask_logits" in out:
        tgt = batch["mask_targets"].float()
        logits = out["mask_logits"].float().view_as(tgt)
        bce = F.binary_cross_entropy_with_logits(logits, tgt, reduction="none").flatten(1).mean(1)
        mask_loss = bce * positive * batch["has_mask"].to(cls.dtype)

    total = (cfg.cls_weight * cls_loss + cfg.loc_weight * loc_loss + cfg.refine_box_weight * box_loss
             + cfg.refine_mask_weight * mask_loss)
    return {"total": total.mean(), "cls": cls_loss.mean(), "loc": loc_loss.mean(), "box": box_loss.mean(),
            "mask": mask_loss.mean()}


def rois_for_model(rois_cxcywh: Tensor) -> Tensor:
    """[B, R, 4] (cx, cy, w, h) -> the model's [B*R, 5] (batch, x1, y1, x2, y2), as ``geometry.roi_in_crop``."""
    b, r, _ = rois_cxcywh.shape
    c, half = rois_cxcywh[..., :2], rois_cxcywh[..., 2:] * 0.5
    idx = torch.arange(b, dtype=rois_cxcywh.dtype, device=rois_cxcywh.device).view(b, 1, 1).expand(b, r, 1)
    return torch.cat([idx, c - half, c + half], dim=-1).view(b * r, 5)
