"""Training targets in the search crop: anchor labels and deltas for the RPN, jittered refinement RoIs with
their box deltas, and mask targets per RoI.

Every box here is in 255-search-crop pixels in the frame of :mod:`siamattn.geometry` (pixel centres at
integers, crop centre 127). Anchors come from :func:`siamattn.geometry.generate_anchors` (pysot order,
centres as offsets from the crop centre), RoIs are built by :func:`siamattn.geometry.roi_in_crop` and
mask targets sample the crop mask through :func:`siamattn.geometry.mask_to_crop_affine`, so training
and the runtime share one definition of each. Encodings are the inverses of the runtime decoders:

* RPN (pysot): ``dx = (gx - ax) / aw``, ``dy = (gy - ay) / ah``, ``dw = log(gw / aw)``, ``dh = log(gh / ah)``
  (decoded by ``RPNPostprocessor.decode_box``).
* refinement: the same deltas relative to the RoI, divided by ``model.refine.box_stds`` (decoded by
  ``runtime.postprocess.apply_box_deltas``).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from siamattn.config import Config
from siamattn.geometry import box_iou, crop_center, cxcywh_to_xyxy, generate_anchors, mask_to_crop_affine, roi_in_crop

__all__ = ["AnchorTargeter", "RPNTargets", "encode_refine", "mask_targets", "sample_rois"]

IGNORE, NEGATIVE, POSITIVE = -1, 0, 1
# A negative pair's negatives are the anchors centred within this many cells of the distractor's centre:
# the places where a matcher that ignores the template would fire (pysot samples a 7x7 centre window).
NEG_PAIR_RADIUS = 3
# RoI jitter: centre shift as a fraction of the gt size and log-size change; rejection keeps IoU > roi_iou.
ROI_SHIFT = 0.25
ROI_LOG_SCALE = 0.35


@dataclass
class RPNTargets:
    labels: np.ndarray  # int8 [k, S, S]: 1 positive, 0 negative, -1 ignored
    deltas: np.ndarray  # float32 [4, k, S, S]: dx, dy, dw, dh of the gt relative to every anchor


class AnchorTargeter:
    """Anchor labels for one pair. Positive pair: IoU > ``train.pos_iou`` positive (at most
    ``train.max_pos``), IoU < ``train.neg_iou`` negative (``train.anchors_per_pair`` in all), the rest
    ignored. Negative pair: ``train.neg_pair_anchors`` negatives around the distractor, the rest ignored."""

    def __init__(self, cfg: Config) -> None:
        t, a = cfg.train, cfg.anchors
        self.size = cfg.tracker.score_size
        self.k = a.num
        anchors = generate_anchors(a.stride, a.ratios, a.scales, self.size).astype(np.float64)  # (4, k*S*S)
        c = crop_center(cfg.tracker.instance_size)
        self.anchors = anchors  # cx, cy as offsets from the crop centre
        self.anchors_xyxy = cxcywh_to_xyxy(np.stack([anchors[0] + c, anchors[1] + c, anchors[2], anchors[3]], 1))
        self.center = c
        self.stride = a.stride
        self.pos_iou, self.neg_iou = t.pos_iou, t.neg_iou
        self.max_pos, self.total = t.max_pos, t.anchors_per_pair
        self.neg_pair_anchors = t.neg_pair_anchors

    def encode(self, gt_cxcywh: np.ndarray) -> np.ndarray:
        """pysot deltas of the gt box (crop px) relative to every anchor, float32 [4, k, S, S]."""
        gx, gy, gw, gh = (float(v) for v in gt_cxcywh)
        ax, ay, aw, ah = self.anchors
        d = np.stack([(gx - self.center - ax) / aw, (gy - self.center - ay) / ah,
                      np.log(max(gw, 1e-6) / aw), np.log(max(gh, 1e-6) / ah)])
        return d.astype(np.float32).reshape(4, self.k, self.size, self.size)

    def __call__(self, gt_cxcywh: np.ndarray, positive: bool, rng: np.random.Generator) -> RPNTargets:
        n = self.anchors.shape[1]
        labels = np.full(n, IGNORE, dtype=np.int8)
        if positive:
            iou = box_iou(self.anchors_xyxy, cxcywh_to_xyxy(np.asarray(gt_cxcywh, dtype=np.float64))[None])
            pos = _subsample(np.flatnonzero(iou > self.pos_iou), self.max_pos, rng)
            neg = _subsample(np.flatnonzero(iou < self.neg_iou), self.total - len(pos), rng)
            labels[neg] = NEGATIVE
            labels[pos] = POSITIVE
        else:
            # anchor cells near the distractor's centre (the crop was taken around it, then shifted)
            col = np.rint((gt_cxcywh[0] - self.center) / self.stride)
            row = np.rint((gt_cxcywh[1] - self.center) / self.stride)
            ax = self.anchors[0] / self.stride
            ay = self.anchors[1] / self.stride
            near = np.flatnonzero((np.abs(ax - col) <= NEG_PAIR_RADIUS) & (np.abs(ay - row) <= NEG_PAIR_RADIUS))
            if near.size == 0:  # distractor outside the map: any anchor is a negative
                near = np.arange(n)
            labels[_subsample(near, self.neg_pair_anchors, rng)] = NEGATIVE
        return RPNTargets(labels.reshape(self.k, self.size, self.size), self.encode(gt_cxcywh))


def _subsample(idx: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    if len(idx) <= limit:
        return idx
    return np.sort(rng.choice(idx, size=max(limit, 0), replace=False))


def sample_rois(gt_cxcywh: np.ndarray, num: int, min_iou: float, rng: np.random.Generator,
                limit: float | None = None) -> np.ndarray:
    """``num`` jittered boxes (cx, cy, w, h), float64 [num, 4], each with IoU > ``min_iou`` with the gt.

    Candidates shift the centre by up to ``ROI_SHIFT`` of the gt size and change each side by up to
    ``exp(+-ROI_LOG_SCALE)``; rejected ones are redrawn (a few rounds) and any still missing is the gt
    itself, so the IoU guarantee always holds. ``limit`` (crop size) keeps centres inside the crop as the
    tracker does at run time.
    """
    gt = np.asarray(gt_cxcywh, dtype=np.float64).reshape(4)
    gt_xyxy = cxcywh_to_xyxy(gt)
    kept: list[np.ndarray] = []
    have = 0
    for _ in range(8):
        m = 4 * num
        shift = rng.uniform(-ROI_SHIFT, ROI_SHIFT, (m, 2)) * gt[2:]
        scale = np.exp(rng.uniform(-ROI_LOG_SCALE, ROI_LOG_SCALE, (m, 2)))
        cand = np.concatenate([gt[:2] + shift, gt[2:] * scale], axis=1)
        if limit is not None:
            cand[:, :2] = np.clip(cand[:, :2], 0.0, limit - 1.0)
        ok = cand[box_iou(cxcywh_to_xyxy(cand), gt_xyxy[None]) > min_iou]
        kept.append(ok)
        have += len(ok)
        if have >= num:
            break
    out = np.concatenate(kept)[:num] if kept else np.empty((0, 4))
    if len(out) < num:
        out = np.concatenate([out, np.repeat(gt[None], num - len(out), axis=0)])
    return out


def encode_refine(rois_cxcywh: np.ndarray, gt_cxcywh: np.ndarray, stds: list[float]) -> np.ndarray:
    """Box-refinement targets [K, 4] (float32): deltas of the gt relative to each RoI, divided by stds."""
    r = np.asarray(rois_cxcywh, dtype=np.float64).reshape(-1, 4)
    g = np.asarray(gt_cxcywh, dtype=np.float64).reshape(4)
    d = np.stack([(g[0] - r[:, 0]) / r[:, 2], (g[1] - r[:, 1]) / r[:, 3],
                  np.log(g[2] / r[:, 2]), np.log(g[3] / r[:, 3])], axis=1)
    return (d / np.asarray(stds, dtype=np.float64)).astype(np.float32)


def mask_targets(crop_mask: np.ndarray, rois_cxcywh: np.ndarray, size: int) -> np.ndarray:
    """Binary mask targets uint8 [K, size, size]: the search-crop mask (float or bool [255, 255]) sampled
    over each RoI exactly as the runtime pastes a predicted mask back (``mask_to_crop_affine``)."""
    src = crop_mask.astype(np.float32)
    rois = roi_in_crop(np.asarray(rois_cxcywh).reshape(-1, 4))
    out = np.empty((len(rois), size, size), dtype=np.uint8)
    for i, roi in enumerate(rois):
        m = mask_to_crop_affine(roi[1:], size)
        warped = cv2.warpAffine(src, m, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
        out[i] = warped >= 0.5
    return out
