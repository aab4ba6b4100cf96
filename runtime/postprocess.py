"""Everything after the networks, shared by every backend (numpy + OpenCV, no torch).

Follows pysot's SiamRPN++/SiamMask tracker (docs/DESIGN.md §3): foreground softmax, anchor decoding, scale and
aspect-ratio change penalty, cosine window, argmax, learning-rate smoothing of the size, clipping to the
frame; then SiamAttn's refinement: box deltas on the RPN's best box, and the mask pasted back into the
frame and turned into a rotated box.

Units: RPN boxes are (cx, cy, w, h) in search-crop pixels with the centre as an offset from the crop
centre (see :mod:`siamattn.geometry`); frame boxes are (cx, cy, w, h) in frame pixels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np

from siamattn.config import FEATURE_STRIDE, Config
from siamattn.geometry import clip_cxcywh, crop_center, generate_anchors, mask_to_crop_affine, roi_in_crop
from siamattn.runtime.backend import BackendOutputError

__all__ = [
    "GEOMETRIES",
    "AuthorsGeometry",
    "CropWindow",
    "FrameMask",
    "LongTermRule",
    "RPNPostprocessor",
    "RPNSelection",
    "SearchWindow",
    "TrackerGeometry",
    "apply_box_deltas",
    "clip_to_frame",
    "mask_polygon",
    "paste_mask",
    "smooth_and_clip",
    "smooth_box",
    "tracker_geometry",
]


@dataclass(frozen=True)
class RPNSelection:
    """The RPN's chosen anchor after penalties and window."""

    index: int  # flat index a*S*S + y*S + x
    box: tuple[float, float, float, float]  # decoded (cx, cy, w, h), centre offset from the crop centre, crop px
    score: float  # foreground probability at index
    penalty: float  # scale/ratio change penalty at index

    @property
    def lr(self) -> float:
        """Unscaled smoothing weight penalty*score (pysot multiplies it by tracker.lr)."""
        return self.penalty * self.score


class RPNPostprocessor:
    """Turns one frame's cls/loc maps into the selected box. Anchors and window are built once here."""

    def __init__(self, cfg: Config, lost: bool = False) -> None:
        """``lost``: the long-term mode's lost window (tracker.lost_instance_size's score map and
        tracker.lost_window_influence) instead of the normal one."""
        t, a = cfg.tracker, cfg.anchors
        self.k = a.num
        self.score_size = t.lost_score_size if lost else t.score_size
        self.penalty_k = t.penalty_k
        self.window_influence = t.lost_window_influence if lost else t.window_influence
        # Vector work over all anchors is float32 (float32 exp/tanh are ~4x faster than float64 here); the
        # chosen anchor's box, score and penalty are then recomputed in float64 from the raw outputs.
        self.anchors = generate_anchors(a.stride, a.ratios, a.scales, self.score_size)
        hann = np.hanning(self.score_size)
        self.window = np.tile(np.outer(hann, hann).ravel(), self.k)  # same cosine window for every anchor
        self._window_term = (self.window * self.window_influence).astype(np.float32)
        self.float32_box = GEOMETRIES[t.geometry].float32_box
        self.cls_shape = (1, 2 * self.k, self.score_size, self.score_size)
        self.loc_shape = (1, 4 * self.k, self.score_size, self.score_size)

    # -- pieces (public so tests can check each against hand-computed values) ---------------------------

    def check_outputs(self, cls: np.ndarray, loc: np.ndarray) -> None:
        for name, arr, shape in (("cls", cls, self.cls_shape), ("loc", loc, self.loc_shape)):
            if not isinstance(arr, np.ndarray) or arr.shape != shape:
                got = arr.shape if isinstance(arr, np.ndarray) else type(arr).__name__
                raise BackendOutputError(
                    f"backend search() returned {name} {got}, expected {shape} "
                    f"({self.k} anchors, {self.score_size}x{self.score_size} map): the model does not "
                    "match the config's anchors/tracker sizes; re-export it with the same config"
                )

    def foreground(self, cls: np.ndarray) -> np.ndarray:
        """Foreground probability per anchor: softmax over (background [0:k], foreground [k:2k]) channels."""
        logits = cls.reshape(2, -1).astype(np.float32, copy=False)
        # softmax of a pair == sigmoid of the difference; the tanh form never overflows
        return 0.5 + 0.5 * np.tanh(0.5 * (logits[1] - logits[0]))

    def decode_sizes(self, loc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Predicted (w, h) for every anchor: w = exp(dw) * wa, h = exp(dh) * ha (crop px)."""
        d = loc.reshape(4, -1).astype(np.float32, copy=False)
        return np.exp(d[2]) * self.anchors[2], np.exp(d[3]) * self.anchors[3]

    def decode_box(self, loc: np.ndarray, index: int) -> tuple[float, float, float, float]:
        """Decoded (cx, cy, w, h) of one anchor: cx = dx * wa + xa, w = exp(dw) * wa (crop px)."""
        if self.float32_box:
            f = np.float32
            dx, dy, dw, dh = (f(v) for v in loc.reshape(4, -1)[:, index])
            xa, ya, wa, ha = (f(v) for v in self.anchors[:, index])
            with np.errstate(over="ignore"):
                out = (dx * wa + xa, dy * ha + ya, np.exp(dw) * wa, np.exp(dh) * ha)  # each op rounds to float32
            return float(out[0]), float(out[1]), float(out[2]), float(out[3])
        dx, dy, dw, dh = (float(v) for v in loc.reshape(4, -1)[:, index])
        xa, ya, wa, ha = (float(v) for v in self.anchors[:, index])
        return dx * wa + xa, dy * ha + ya, _exp(dw) * wa, _exp(dh) * ha

    def penalty(self, w: np.ndarray, h: np.ndarray, target_w: float, target_h: float) -> np.ndarray:
        """exp(-(change(ratio) * change(scale) - 1) * penalty_k) against the current size in crop px."""
        ref_sz = _pad_size(target_w, target_h)
        s_c = _change(_pad_size(w, h) / ref_sz)
        r_c = _change((target_w / target_h) / (w / h))
        return np.exp(-(r_c * s_c - 1.0) * self.penalty_k)

    # -- the whole step -----------------------------------------------------------------------------------

    def pscores(self, cls: np.ndarray, loc: np.ndarray, target_w: float, target_h: float) -> np.ndarray:
        """The penalised, windowed score of every anchor (flat, float32): what :meth:`select` takes the argmax
        of. ``siamattn check`` reads it to measure how close two anchors' scores are (docs/CHECK.md)."""
        self.check_outputs(cls, loc)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            score = self.foreground(cls)
            w, h = self.decode_sizes(loc)
            pen = self.penalty(w, h, target_w, target_h)
            return pen * score * (1.0 - self.window_influence) + self._window_term

    def select(self, cls: np.ndarray, loc: np.ndarray, target_w: float, target_h: float) -> RPNSelection:
        """Pick the best anchor. ``target_w``/``target_h``: the current target size in crop px (size*scale_z)."""
        pscore = self.pscores(cls, loc, target_w, target_h)
        best = int(np.argmax(pscore))
        box = self.decode_box(loc, best)
        if not np.isfinite(pscore).all() or not all(math.isfinite(v) for v in box) or min(box[2:]) <= 0:
            raise BackendOutputError(
                "backend returned NaN/inf in cls or loc: the engine or model is numerically broken "
                "(e.g. FP16 overflow); rebuild it in FP32 or check the checkpoint"
            )
        # the chosen anchor's numbers in float64 (they feed the state update)
        flat = cls.reshape(2, -1)
        score_b = 0.5 + 0.5 * math.tanh(0.5 * (float(flat[1, best]) - float(flat[0, best])))
        pen_b = float(self.penalty(box[2], box[3], target_w, target_h))
        return RPNSelection(best, box, score_b, pen_b)


def _exp(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def _change(r: np.ndarray | float) -> np.ndarray | float:
    return np.maximum(r, 1.0 / r)


def _pad_size(w: np.ndarray | float, h: np.ndarray | float) -> np.ndarray | float:
    pad = (w + h) * 0.5
    return np.sqrt((w + pad) * (h + pad))


def apply_box_deltas(
    box: Sequence[float], deltas: np.ndarray | Sequence[float], stds: Sequence[float]
) -> tuple[float, float, float, float]:
    """Refinement decode: cx' = cx + dx*std0*w, cy' = cy + dy*std1*h, w' = w*exp(dw*std2), h' = h*exp(dh*std3)."""
    d = np.asarray(deltas, dtype=np.float64).reshape(-1)
    if d.size != 4 or not np.all(np.isfinite(d)):
        raise BackendOutputError(
            f"backend refine_box() must return 4 finite deltas (shape (1, 4)), got {np.asarray(deltas).shape} "
            f"{d.tolist() if d.size <= 8 else ''}"
        )
    cx, cy, w, h = box
    with np.errstate(over="ignore"):
        out = (
            cx + d[0] * stds[0] * w,
            cy + d[1] * stds[1] * h,
            w * float(np.exp(d[2] * stds[2])),
            h * float(np.exp(d[3] * stds[3])),
        )
    if not np.all(np.isfinite(out)):
        raise BackendOutputError(f"refinement deltas {d.tolist()} overflow the box size; the model is broken")
    return float(out[0]), float(out[1]), float(out[2]), float(out[3])


def smooth_box(size: Sequence[float], new_box: Sequence[float], lr: float) -> tuple[float, float, float, float]:
    """pysot's size smoothing: the centre moves fully to ``new_box``'s centre (cx, cy, w, h frame px); only w, h
    are smoothed, ``size*(1-lr) + new*lr``."""
    cx, cy, w_new, h_new = new_box
    return cx, cy, size[0] * (1.0 - lr) + w_new * lr, size[1] * (1.0 - lr) + h_new * lr


def clip_to_frame(box: Sequence[float], frame_wh: tuple[int, int], min_size: float,
                  margin: float = 0.0) -> tuple[float, float, float, float]:
    """cx in [0, W], cy in [0, H], w in [min_size, W], h in [min_size, H] with ``W = width - margin``,
    ``H = height - margin`` (margin 0: pysot; 1: the SiamAttn authors). Clipping keeps a target that leaves
    the frame at the border (the reference behaviour) instead of losing it."""
    bound = (frame_wh[0] - margin, frame_wh[1] - margin)
    return clip_cxcywh(tuple(box), bound, min_size, bound)


def smooth_and_clip(
    size: Sequence[float],
    new_box: Sequence[float],
    lr: float,
    frame_wh: tuple[int, int],
    min_size: float,
    margin: float = 0.0,
) -> tuple[float, float, float, float]:
    """pysot's state update (:func:`smooth_box` then :func:`clip_to_frame`); ``new_box`` is (cx, cy, w, h) in
    frame px."""
    return clip_to_frame(smooth_box(size, new_box, lr), frame_wh, min_size, margin)


class LongTermRule(NamedTuple):
    """pysot's SiamRPNLTTracker confidence rules (tracker.confidence_low/high, docs/DESIGN.md "Long-term
    search"): the state follows the chosen box only when its score reaches ``low``; a score below ``low``
    switches to the lost window, one above ``high`` back to the normal one, anything between keeps the mode."""

    low: float
    high: float

    def follows(self, score: float) -> bool:
        return score >= self.low

    def next_lost(self, lost: bool, score: float) -> bool:
        if score < self.low:
            return True
        return False if score > self.high else lost


class CropWindow(NamedTuple):
    """Where this frame's search crop lies: cut around (cx, cy), ``size`` = round(s_x) frame px resized to
    the instance size, ``scale`` = scale_z = exemplar_size / s_z (crop px per frame px, s_z unrounded)."""

    cx: float
    cy: float
    scale: float
    size: int


class TrackerGeometry:
    """pysot's crop <-> frame geometry (tracker.geometry "pysot"): the one answer to every question of where
    a crop, box, RoI or mask lies, as docs/DESIGN.md §3 "Tracker geometry" states it.

    :class:`AuthorsGeometry` overrides only what the SiamAttn authors' tracker does differently; the
    tracking step (:class:`~siamattn.runtime.tracker.Tracker`) is shared.
    """

    name = "pysot"
    roi_inset = 0.0  # moved inwards on each side of the box RoI (crop px)
    frame_margin = 0.0  # frame clip bounds are (W - margin, H - margin)
    float32_box = False  # the chosen RPN box is decoded in float32 (RPNPostprocessor.decode_box)

    def __init__(self, instance_size: int, min_size: float) -> None:
        self.instance_size = instance_size
        self.min_size = min_size
        self.rpn_centre = crop_center(instance_size)  # crop px the RPN's offsets are measured from
        last = float(instance_size - 1)
        self._roi_centre_max = (last, last)
        self._roi_size_max = self._roi_size_limit()

    def _roi_size_limit(self) -> tuple[float, float]:
        return float(self.instance_size), float(self.instance_size)

    def box_roi(self, box: Sequence[float]) -> tuple[tuple[float, float, float, float], np.ndarray]:
        """The RPN box (offsets from :attr:`rpn_centre`) clipped to the crop, in crop px, and its RoI.

        Keeps the RoI inside the crop as the authors' tracker does (an RoI off the crop pools zeros).
        """
        c = self.rpn_centre
        clipped = clip_cxcywh((box[0] + c, box[1] + c, box[2], box[3]), self._roi_centre_max, self.min_size,
                              self._roi_size_max)
        return clipped, roi_in_crop(clipped, inset=self.roi_inset)

    def box_to_frame(self, box: Sequence[float], win: CropWindow) -> tuple[float, float, float, float]:
        """A box as offsets from :attr:`rpn_centre` (crop px) -> (cx, cy, w, h) in frame px."""
        s = win.scale
        return win.cx + box[0] / s, win.cy + box[1] / s, box[2] / s, box[3] / s

    def frame_to_crop(self, box: Sequence[float], win: CropWindow) -> tuple[float, float, float, float]:
        """(cx, cy, w, h) in frame px -> this frame's crop px (the mask RoI)."""
        c, s = self.rpn_centre, win.scale
        return c + (box[0] - win.cx) * s, c + (box[1] - win.cy) * s, box[2] * s, box[3] * s

    def mask_to_frame(self, roi: np.ndarray, box_crop: Sequence[float], mask_size: int, win: CropWindow,
                      frame_wh: tuple[int, int]) -> np.ndarray:
        """2x3 affine from mask px to frame px for the mask of ``roi`` (the RoI row the network saw;
        ``box_crop`` is the same box unrounded, (cx, cy, w, h) crop px)."""
        c, s = self.rpn_centre, win.scale
        to_crop = mask_to_crop_affine(roi[0, 1:], mask_size)  # mask px -> crop px, centre-aligned
        return np.array(
            [
                [to_crop[0, 0] / s, 0.0, win.cx + (to_crop[0, 2] - c) / s],
                [0.0, to_crop[1, 1] / s, win.cy + (to_crop[1, 2] - c) / s],
            ]
        )

    def window_mask_to_frame(self, row: int, col: int, mask_size: int, win: CropWindow, exemplar_size: int,
                             base_size: int, frame_wh: tuple[int, int]) -> np.ndarray:
        """2x3 affine from mask px to frame px for SiamMask's mask at score-map cell (``row``, ``col``): it
        covers that cell's exemplar-sized window of the crop (pysot's SiamMaskTracker: the window's corner is
        ``(col - base_size / 2) * stride`` crop px from the crop's, in frame px of the rounded crop), pasted
        with pysot's crop-back affine, which scales by (W - 1) / W and (H - 1) / H (docs/DESIGN.md "SiamMask")."""
        k = win.size / self.instance_size  # frame px per crop px
        half = win.size / 2.0
        x0 = win.cx - half + (col - base_size / 2.0) * FEATURE_STRIDE * k
        y0 = win.cy - half + (row - base_size / 2.0) * FEATURE_STRIDE * k
        px = exemplar_size * k / mask_size  # frame px per mask px
        fx = (frame_wh[0] - 1) / frame_wh[0]
        fy = (frame_wh[1] - 1) / frame_wh[1]
        return np.array([[fx * px, 0.0, fx * x0], [0.0, fy * px, fy * y0]])


class AuthorsGeometry(TrackerGeometry):
    """The SiamAttn authors' tracker geometry (tracker.geometry "authors"; what differs: docs/DESIGN.md §3)."""

    name = "authors"
    roi_inset = 0.5
    frame_margin = 1.0
    # their tracker decodes the chosen box in float32 (numpy float32 arrays); their boxes are only reproduced
    # over many frames when ours rounds the same way (docs/MODELS.md)
    float32_box = True

    def __init__(self, instance_size: int, min_size: float) -> None:
        super().__init__(instance_size, min_size)
        self.rpn_centre = instance_size / 2.0

    def _roi_size_limit(self) -> tuple[float, float]:
        return float(self.instance_size - 1), float(self.instance_size - 1)

    def box_roi(self, box: Sequence[float]) -> tuple[tuple[float, float, float, float], np.ndarray]:
        # their tracker adds the crop centre to the float32 box in float32 (float32_box)
        c = np.float32(self.rpn_centre)
        cx, cy = float(np.float32(box[0]) + c), float(np.float32(box[1]) + c)
        clipped = clip_cxcywh((cx, cy, box[2], box[3]), self._roi_centre_max, self.min_size, self._roi_size_max)
        return clipped, roi_in_crop(clipped, inset=self.roi_inset)

    def box_to_frame(self, box: Sequence[float], win: CropWindow) -> tuple[float, float, float, float]:
        c, s, half = self.rpn_centre, win.scale, win.size / 2.0
        return (box[0] + c) / s + (win.cx - half), (box[1] + c) / s + (win.cy - half), box[2] / s, box[3] / s

    def frame_to_crop(self, box: Sequence[float], win: CropWindow) -> tuple[float, float, float, float]:
        s, half = win.scale, win.size / 2.0
        return (box[0] - (win.cx - half)) * s, (box[1] - (win.cy - half)) * s, box[2] * s, box[3] * s

    def mask_to_frame(self, roi: np.ndarray, box_crop: Sequence[float], mask_size: int, win: CropWindow,
                      frame_wh: tuple[int, int]) -> np.ndarray:
        # the authors paste from their float64 box (the network saw its float32 RoI)
        cx, cy, w, h = box_crop
        to_crop = mask_to_crop_affine((cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0), mask_size,
                                      align="edge")
        k = win.size / self.instance_size  # frame px per crop px from the rounded crop size, not 1/scale_z
        half = win.size / 2.0
        fx = (frame_wh[0] - 1) / frame_wh[0]
        fy = (frame_wh[1] - 1) / frame_wh[1]
        return np.array(
            [
                [fx * to_crop[0, 0] * k, 0.0, fx * (win.cx - half + to_crop[0, 2] * k)],
                [0.0, fy * to_crop[1, 1] * k, fy * (win.cy - half + to_crop[1, 2] * k)],
            ]
        )


GEOMETRIES: dict[str, type[TrackerGeometry]] = {"pysot": TrackerGeometry, "authors": AuthorsGeometry}


def tracker_geometry(cfg: Config, lost: bool = False) -> TrackerGeometry:
    """The geometry named by ``cfg.tracker.geometry``, for the normal or (``lost``) the long-term lost window."""
    t = cfg.tracker
    return GEOMETRIES[t.geometry](t.lost_instance_size if lost else t.instance_size, t.min_size)


@dataclass(frozen=True)
class SearchWindow:
    """One search window of the tracking step: its crop side and crop geometry (its RPN post-processing is
    ``RPNPostprocessor(cfg, lost)``)."""

    instance_size: int
    geometry: TrackerGeometry
    lost: bool

    @classmethod
    def of(cls, cfg: Config, lost: bool = False) -> SearchWindow:
        t = cfg.tracker
        return cls(t.lost_instance_size if lost else t.instance_size, tracker_geometry(cfg, lost), lost)


@dataclass(frozen=True)
class FrameMask:
    """Binary target mask in frame coordinates, stored as the only region that can be non-zero.

    ``patch`` (uint8, 1 = target) covers frame pixels ``[x, x + patch.shape[1]) x [y, y + patch.shape[0])``;
    the rest of the frame is 0. Keeping the patch instead of a full frame keeps per-frame work and memory
    small; :meth:`to_frame` builds the full mask when needed (drawing, evaluation).
    """

    patch: np.ndarray
    x: int
    y: int
    frame_size: tuple[int, int]  # (W, H)

    def to_frame(self) -> np.ndarray:
        w, h = self.frame_size
        full = np.zeros((h, w), dtype=np.uint8)
        ph, pw = self.patch.shape
        full[self.y : self.y + ph, self.x : self.x + pw] = self.patch
        return full


def paste_mask(
    mask: np.ndarray, mask_to_frame: np.ndarray, frame_wh: tuple[int, int], threshold: float
) -> FrameMask:
    """Warp a (M, M) probability mask into the frame and threshold it (``> threshold``).

    ``mask_to_frame`` is the 2x3 axis-aligned affine from mask pixel coordinates to frame pixel
    coordinates. Bilinear warp with a zero border as pysot's crop-back, but only over the frame region the
    mask can reach (its extent plus one pixel), not the whole frame.
    """
    m = np.ascontiguousarray(mask, dtype=np.float32)
    size_m = m.shape[0]
    fw, fh = frame_wh
    a, _, tx = mask_to_frame[0]
    _, b, ty = mask_to_frame[1]
    # bilinear sampling with a zero border is non-zero for mask coordinates in (-1, M); one more pixel margin
    xs = (a * -1.0 + tx, a * size_m + tx)
    ys = (b * -1.0 + ty, b * size_m + ty)
    x0 = max(0, int(np.floor(min(xs))) - 1)
    y0 = max(0, int(np.floor(min(ys))) - 1)
    x1 = min(fw, int(np.ceil(max(xs))) + 2)
    y1 = min(fh, int(np.ceil(max(ys))) + 2)
    if x1 <= x0 or y1 <= y0:
        return FrameMask(np.zeros((0, 0), dtype=np.uint8), 0, 0, (fw, fh))
    shifted = np.array(mask_to_frame, dtype=np.float64)
    shifted[0, 2] -= x0
    shifted[1, 2] -= y0
    warped = cv2.warpAffine(
        m, shifted, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )
    return FrameMask((warped > threshold).astype(np.uint8), x0, y0, (fw, fh))


def mask_polygon(mask: FrameMask, min_area: float = 100.0) -> np.ndarray | None:
    """Rotated box (4, 2) float32 in frame px from the largest outer contour, or None if its area <= min_area.

    As pysot: external contours, the largest by cv2.contourArea, cv2.minAreaRect -> cv2.boxPoints.
    """
    if mask.patch.size == 0:
        return None
    contours, _ = cv2.findContours(
        mask.patch, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE, offset=(mask.x, mask.y)
    )
    if not contours:
        return None
    areas = [cv2.contourArea(c) for c in contours]
    best = int(np.argmax(areas))
    if areas[best] <= min_area:
        return None
    return cv2.boxPoints(cv2.minAreaRect(contours[best])).astype(np.float32)
