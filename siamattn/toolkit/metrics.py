"""Tracking evaluation metrics (numpy only), following the pysot / got10k toolkit conventions.

Boxes are ``[x, y, w, h]`` in pixels (top-left corner, width, height), one row per frame.

* **OTB / LaSOT / TrackingNet (one-pass evaluation, OPE).** Per sequence: the success curve is the
  fraction of frames whose IoU is *strictly greater* than each of 21 thresholds ``0, 0.05, ..., 1``; its
  mean is the success AUC. The precision curve is the fraction of frames whose centre error (centre
  ``x + (w - 1) / 2``) is ``<=`` each threshold ``0..50`` px, reported at 20 px. The normalized precision
  divides the centre offset by the ground-truth ``(w, h)`` before taking its length (pysot's LaSOT
  definition, which is TrackingNet's), thresholds ``0, 0.01, ..., 0.5``, reported at 0.20. Curves are
  averaged over sequences (every sequence weighs the same). Only frames whose ground truth is finite with
  ``w, h > 0`` count (docs/DESIGN.md §8); on sequences where every frame is valid this equals got10k's
  ``ExperimentOTB`` exactly. pysot instead keeps invalid frames in the denominator (as failures for success
  and as hits for precision), so it differs only on sequences with absent targets.
* **GOT-10k.** IoUs of every frame but the first, both boxes clipped to the image, frames whose
  ``cover`` label is 0 dropped, repetitions concatenated; AO is the mean IoU over all frames of all
  sequences (frame-weighted, as the official toolkit), SR_t the fraction with IoU > t.
* **VOT (reset-based, supervised).** :func:`run_reset_protocol` runs a tracker, declares a failure when
  the overlap with the ground-truth region is 0, skips 5 frames and re-initialises. Accuracy ignores 10
  burn-in frames after each (re-)initialisation; robustness is failures / frames * 100; EAO averages the
  expected overlap curve over a length interval (pysot's fragment construction).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

# ---------------------------------------------------------------------------------------------------------
# thresholds and reporting points

IOU_THRESHOLDS = np.linspace(0.0, 1.0, 21)  # OTB success plot
PRECISION_THRESHOLDS = np.arange(0, 51, dtype=np.float64)  # pixels
NORM_PRECISION_THRESHOLDS = np.arange(0, 51, dtype=np.float64) / 100.0
GOT10K_IOU_THRESHOLDS = np.linspace(0.0, 1.0, 101)
PRECISION_AT = 20  # index into PRECISION_THRESHOLDS (20 px)
NORM_PRECISION_AT = 20  # index into NORM_PRECISION_THRESHOLDS (0.20)

# EAO length intervals [low, high] (inclusive, in frames) of the VOT challenges.
EAO_RANGES: dict[str, tuple[int, int]] = {
    "vot2016": (108, 371),
    "vot2017": (100, 356),
    "vot2018": (100, 356),
}

VOT_SKIP = 5  # frames between a failure and the re-initialisation
VOT_BURNIN = 10  # frames ignored by accuracy after every (re-)initialisation
FLAG_SKIPPED, FLAG_INIT, FLAG_FAILURE = 0, 1, 2  # VOT result-file codes for non-box frames

_EPS = np.finfo(np.float64).eps  # keeps IoU defined for empty boxes, as got10k's rect_iou


# ---------------------------------------------------------------------------------------------------------
# boxes


def as_boxes(boxes: object) -> np.ndarray:
    """Return ``boxes`` as a float64 ``[N, 4]`` array (a single box becomes one row)."""
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"boxes must have shape [N, 4] (x, y, w, h), got {arr.shape}")
    return arr


def valid_boxes(boxes: np.ndarray) -> np.ndarray:
    """Frames whose box is usable as ground truth: all finite and ``w, h > 0``."""
    boxes = as_boxes(boxes)
    return np.isfinite(boxes).all(axis=1) & (boxes[:, 2] > 0) & (boxes[:, 3] > 0)


def clip_boxes(boxes: np.ndarray, width: float, height: float) -> np.ndarray:
    """Clip boxes to the image as got10k's ``bound`` does, returning a copy: ``x`` into ``[0, width]``,
    then ``w`` into ``[0, width - x]`` (a part left of 0 is not subtracted from ``w``); same for y/h."""
    b = as_boxes(boxes).copy()
    b[:, 0] = np.clip(b[:, 0], 0, width)
    b[:, 1] = np.clip(b[:, 1], 0, height)
    b[:, 2] = np.clip(b[:, 2], 0, width - b[:, 0])
    b[:, 3] = np.clip(b[:, 3], 0, height - b[:, 1])
    return b


def iou_xywh_rows(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Row-by-row IoU of two ``[N, 4]`` ``x, y, w, h`` arrays (row i with row i; continuous coordinates, no +1
    on sizes). For all-pairs IoU of ``x1, y1, x2, y2`` boxes see :func:`siamattn.geometry.box_iou`."""
    a, b = as_boxes(pred), as_boxes(gt)
    if a.shape != b.shape:
        raise ValueError(f"box arrays differ in shape: {a.shape} vs {b.shape}")
    iw = np.maximum(np.minimum(a[:, 0] + a[:, 2], b[:, 0] + b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0)
    ih = np.maximum(np.minimum(a[:, 1] + a[:, 3], b[:, 1] + b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0)
    inter = iw * ih
    union = a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - inter
    return np.clip(inter / (union + _EPS), 0.0, 1.0)


def box_centers(boxes: np.ndarray) -> np.ndarray:
    """Centres with the benchmarks' pixel convention ``x + (w - 1) / 2``."""
    b = as_boxes(boxes)
    return b[:, :2] + (b[:, 2:] - 1.0) / 2.0


def center_errors(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Euclidean distance between predicted and ground-truth centres, in pixels."""
    return np.linalg.norm(box_centers(pred) - box_centers(gt), axis=1)


def normalized_center_errors(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Centre offset divided per axis by the ground-truth ``(w, h)``, then its length."""
    g = as_boxes(gt)
    return np.linalg.norm((box_centers(pred) - box_centers(g)) / (g[:, 2:] + 1e-16), axis=1)


# ---------------------------------------------------------------------------------------------------------
# curves


def success_curve(ious: np.ndarray, thresholds: np.ndarray = IOU_THRESHOLDS) -> np.ndarray:
    """Fraction of frames with IoU strictly above each threshold (0 frames -> zeros)."""
    ious = np.asarray(ious, dtype=np.float64).reshape(-1)
    if ious.size == 0:
        return np.zeros(len(thresholds))
    return (ious[:, None] > np.asarray(thresholds)[None, :]).mean(axis=0)


def precision_curve(errors: np.ndarray, thresholds: np.ndarray = PRECISION_THRESHOLDS) -> np.ndarray:
    """Fraction of frames with an error at most each threshold (0 frames -> zeros)."""
    errors = np.asarray(errors, dtype=np.float64).reshape(-1)
    if errors.size == 0:
        return np.zeros(len(thresholds))
    return (errors[:, None] <= np.asarray(thresholds)[None, :]).mean(axis=0)


@dataclass
class OPEScores:
    """One-pass-evaluation curves of one sequence or averaged over a benchmark."""

    success_curve: np.ndarray
    precision_curve: np.ndarray
    norm_precision_curve: np.ndarray
    num_frames: int = 0  # frames that counted (valid ground truth)

    @property
    def success_auc(self) -> float:
        return float(np.mean(self.success_curve))

    @property
    def precision(self) -> float:
        return float(self.precision_curve[PRECISION_AT])

    @property
    def norm_precision(self) -> float:
        return float(self.norm_precision_curve[NORM_PRECISION_AT])

    @property
    def success_rate(self) -> float:
        """Success at IoU 0.5 (the middle of the 21 thresholds)."""
        return float(self.success_curve[len(self.success_curve) // 2])

    def to_dict(self) -> dict[str, object]:
        return {
            "success_auc": self.success_auc,
            "precision": self.precision,
            "norm_precision": self.norm_precision,
            "success_rate": self.success_rate,
            "num_frames": self.num_frames,
            "success_curve": self.success_curve.tolist(),
            "precision_curve": self.precision_curve.tolist(),
            "norm_precision_curve": self.norm_precision_curve.tolist(),
        }


def ope_sequence(pred: np.ndarray, gt: np.ndarray, replace_first: bool = True) -> OPEScores:
    """OPE curves of one sequence.

    ``replace_first`` sets the first prediction to the ground truth, as got10k's ExperimentOTB does: frame 0
    is the initialisation, whatever a result file holds there.
    """
    pred, gt = as_boxes(pred).copy(), as_boxes(gt)
    if len(pred) != len(gt):
        raise ValueError(f"{len(pred)} predicted boxes for {len(gt)} ground-truth frames")
    if replace_first and len(pred):
        pred[0] = gt[0]
    keep = valid_boxes(gt)
    p, g = pred[keep], gt[keep]
    return OPEScores(
        success_curve=success_curve(iou_xywh_rows(p, g)),
        precision_curve=precision_curve(center_errors(p, g)),
        norm_precision_curve=precision_curve(normalized_center_errors(p, g), NORM_PRECISION_THRESHOLDS),
        num_frames=int(keep.sum()),
    )


def ope_average(per_sequence: Iterable[OPEScores]) -> OPEScores:
    """Benchmark score: curves averaged over sequences, each sequence weighing the same."""
    seqs = list(per_sequence)
    if not seqs:
        raise ValueError("no sequences to average")
    return OPEScores(
        success_curve=np.mean([s.success_curve for s in seqs], axis=0),
        precision_curve=np.mean([s.precision_curve for s in seqs], axis=0),
        norm_precision_curve=np.mean([s.norm_precision_curve for s in seqs], axis=0),
        num_frames=sum(s.num_frames for s in seqs),
    )


# ---------------------------------------------------------------------------------------------------------
# GOT-10k


def got10k_sequence_ious(
    runs: Sequence[np.ndarray], gt: np.ndarray, cover: np.ndarray | None, resolution: tuple[int, int]
) -> np.ndarray:
    """IoUs counted by GOT-10k for one sequence: frames 1.. of every run, boxes clipped to the image,
    frames with ``cover == 0`` (target fully occluded or out of view) dropped; runs concatenated."""
    gt = as_boxes(gt)
    width, height = resolution
    keep = np.ones(len(gt) - 1, dtype=bool) if cover is None else np.asarray(cover)[1:] > 0
    out = []
    for run in runs:
        run = as_boxes(run)
        if run.shape != gt.shape:
            raise ValueError(f"a run has {len(run)} boxes for {len(gt)} ground-truth frames")
        ious = iou_xywh_rows(clip_boxes(run[1:], width, height), clip_boxes(gt[1:], width, height))
        out.append(ious[keep])
    return np.concatenate(out) if out else np.zeros(0)


@dataclass
class GOT10kScores:
    ao: float
    sr50: float
    sr75: float
    success_curve: np.ndarray  # 101 thresholds
    num_frames: int

    def to_dict(self) -> dict[str, object]:
        return {"ao": self.ao, "sr50": self.sr50, "sr75": self.sr75, "num_frames": self.num_frames,
                "success_curve": self.success_curve.tolist()}


def got10k_scores(ious: np.ndarray | Iterable[np.ndarray]) -> GOT10kScores:
    """AO / SR0.5 / SR0.75 over the pooled frames (pass one array or one array per sequence)."""
    if not isinstance(ious, np.ndarray):
        parts = list(ious)
        ious = np.concatenate(parts) if parts else np.zeros(0)
    ious = np.asarray(ious, dtype=np.float64).reshape(-1)
    if ious.size == 0:
        raise ValueError("no frames to score (every frame has cover 0?)")
    return GOT10kScores(
        ao=float(ious.mean()),
        sr50=float((ious > 0.5).mean()),
        sr75=float((ious > 0.75).mean()),
        success_curve=success_curve(ious, GOT10K_IOU_THRESHOLDS),
        num_frames=int(ious.size),
    )


# ---------------------------------------------------------------------------------------------------------
# VOT regions: axis-aligned boxes (4 values) or polygons (8 values: x1,y1,...,x4,y4)


def region_polygon(region: Sequence[float] | np.ndarray) -> np.ndarray:
    """A VOT region as a ``[K, 2]`` vertex array (a 4-value box becomes its 4 corners)."""
    r = np.asarray(region, dtype=np.float64).reshape(-1)
    if r.size == 4:
        x, y, w, h = r
        return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]])
    if r.size >= 6 and r.size % 2 == 0:
        return r.reshape(-1, 2)
    raise ValueError(f"a region needs 4 values (x,y,w,h) or an even number >= 6 (polygon), got {r.size}")


def polygon_area(poly: np.ndarray) -> float:
    """Unsigned shoelace area."""
    if len(poly) < 3:
        return 0.0
    x, y = poly[:, 0], poly[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2.0)


def _clip_polygon(subject: np.ndarray, clipper: np.ndarray) -> np.ndarray:
    """Sutherland-Hodgman: the part of ``subject`` inside the convex polygon ``clipper``."""
    # Orient the clipper counter-clockwise so "inside" is the left side of every edge.
    signed = np.dot(clipper[:, 0], np.roll(clipper[:, 1], -1)) - np.dot(clipper[:, 1], np.roll(clipper[:, 0], -1))
    if signed < 0:
        clipper = clipper[::-1]
    out = list(subject)
    for i in range(len(clipper)):
        if not out:
            break
        a, b = clipper[i], clipper[(i + 1) % len(clipper)]
        edge = b - a

        def side(p: np.ndarray, a: np.ndarray = a, edge: np.ndarray = edge) -> float:
            return float(edge[0] * (p[1] - a[1]) - edge[1] * (p[0] - a[0]))

        pts, out = out, []
        for j in range(len(pts)):
            cur, nxt = pts[j], pts[(j + 1) % len(pts)]
            sc, sn = side(cur), side(nxt)
            if sc >= 0:
                out.append(cur)
            if (sc >= 0) != (sn >= 0):  # the segment crosses the edge line
                t = sc / (sc - sn)
                out.append(cur + t * (nxt - cur))
    return np.array(out) if out else np.zeros((0, 2))


def region_overlap(pred: Sequence[float] | np.ndarray, gt: Sequence[float] | np.ndarray,
                   bounds: tuple[float, float] | None = None) -> float:
    """IoU of two VOT regions (exact polygon geometry), both first clipped to ``[0, W] x [0, H]``.

    The regions must be convex (boxes and VOT's rotated rectangles are). The VOT toolkit rasterises
    regions instead, so its values can differ by a fraction of a percent.
    """
    p, g = region_polygon(pred), region_polygon(gt)
    if bounds is not None:
        frame = region_polygon([0.0, 0.0, float(bounds[0]), float(bounds[1])])
        p, g = _clip_polygon(p, frame), _clip_polygon(g, frame)
    ap, ag = polygon_area(p), polygon_area(g)
    if ap <= 0 or ag <= 0:
        return 0.0
    inter = polygon_area(_clip_polygon(p, g))
    return float(np.clip(inter / (ap + ag - inter), 0.0, 1.0))


def vot_init_box(region: Sequence[float] | np.ndarray) -> np.ndarray:
    """Axis-aligned ``[x, y, w, h]`` to initialise a box tracker from a VOT region: the polygon's
    bounding box shrunk to the polygon's area around its vertex mean (the SiamRPN/pysot convention for
    rotated ground truth; an axis-aligned rectangle gives itself back)."""
    poly = region_polygon(region)
    x0, y0 = poly.min(axis=0)
    x1, y1 = poly.max(axis=0)
    w, h = x1 - x0, y1 - y0
    if w <= 0 or h <= 0:
        return np.array([x0, y0, w, h])
    s = np.sqrt(polygon_area(poly) / (w * h))
    if s > 1 - 1e-9:
        return np.array([x0, y0, w, h])
    cx, cy = poly.mean(axis=0)
    return np.array([cx - w * s / 2, cy - h * s / 2, w * s, h * s])


# ---------------------------------------------------------------------------------------------------------
# VOT reset-based protocol

TrackFn = Callable[[Sequence[str], np.ndarray], Iterable[Sequence[float]]]
"""``track_fn(frame_paths, init_box_xywh)`` returns or yields one box per frame (the first for the
initialisation frame, ignored). Yielding lets the reset protocol stop tracking at a failure."""


def run_reset_protocol(frames: Sequence[str], gt_regions: np.ndarray, track_fn: TrackFn,
                       image_size: tuple[int, int], skip: int = VOT_SKIP) -> list[np.ndarray]:
    """Run ``track_fn`` under VOT's supervised (reset-based) protocol.

    The tracker is initialised on frame 0; on every later frame whose overlap with the ground truth is 0
    the frame is marked a failure, the next ``skip - 1`` frames are skipped and the tracker is
    re-initialised ``skip`` frames after the failure on a fresh call of ``track_fn``.

    Returns the trajectory in VOT's result-file form: ``[1.]`` (init), ``[2.]`` (failure), ``[0.]``
    (skipped) or the predicted region.
    """
    n = len(frames)
    if len(gt_regions) != n:
        raise ValueError(f"{len(gt_regions)} ground-truth regions for {n} frames")
    traj: list[np.ndarray] = [np.array([float(FLAG_SKIPPED)])] * n
    start = 0
    while start < n:
        traj[start] = np.array([float(FLAG_INIT)])
        outputs = track_fn(list(frames[start:]), vot_init_box(gt_regions[start]))
        stream = iter(outputs)
        failure = None
        try:
            next(stream, None)  # the initialisation frame's output
            for k in range(start + 1, n):
                box = next(stream, None)
                if box is None:
                    raise ValueError(f"track_fn gave fewer boxes than the {n - start} frames it was given")
                box = np.asarray(box, dtype=np.float64).reshape(-1)
                if region_overlap(box, gt_regions[k], image_size) > 0:
                    traj[k] = box
                else:
                    traj[k] = np.array([float(FLAG_FAILURE)])
                    failure = k
                    break
        finally:
            close = getattr(stream, "close", None)  # stop a generator that still holds frames
            if close is not None:
                close()
        if failure is None:
            break
        start = failure + skip
    return traj


def trajectory_overlaps(traj: Sequence[np.ndarray], gt_regions: np.ndarray, image_size: tuple[int, int],
                        burnin: int = 0) -> np.ndarray:
    """Per-frame overlaps of a VOT trajectory; NaN on flag frames and on ``burnin`` frames from every
    initialisation (the init frame included)."""
    n = min(len(traj), len(gt_regions))
    out = np.full(n, np.nan)
    hidden = np.zeros(n, dtype=bool)
    for i in range(n):
        if len(traj[i]) == 1 and int(traj[i][0]) == FLAG_INIT:
            hidden[i:i + burnin] = True
    for i in range(n):
        if len(traj[i]) > 1 and not hidden[i]:
            out[i] = region_overlap(traj[i], gt_regions[i], image_size)
    return out


def trajectory_failures(traj: Sequence[np.ndarray]) -> list[int]:
    """Frame indices marked as failures."""
    return [i for i, r in enumerate(traj) if len(r) == 1 and int(r[0]) == FLAG_FAILURE]


@dataclass
class VOTScores:
    accuracy: float
    robustness: float  # failures per 100 frames
    failures: int
    num_frames: int
    eao: float
    expected_overlaps: np.ndarray = field(repr=False)
    eao_range: tuple[int, int] = (100, 356)

    def to_dict(self) -> dict[str, object]:
        return {"accuracy": self.accuracy, "robustness": self.robustness, "failures": self.failures,
                "num_frames": self.num_frames, "eao": self.eao, "eao_range": list(self.eao_range),
                "expected_overlaps": self.expected_overlaps.tolist()}


def expected_overlap_curve(overlaps: Sequence[np.ndarray], failures: Sequence[Sequence[int]],
                           skip: int = VOT_SKIP) -> np.ndarray:
    """Expected overlap ``Phi[L]`` for every length index ``L`` (``Phi[0] = 1``).

    Each run is cut into fragments starting at frame 0 and at every re-initialisation (failure +
    ``skip``). A fragment that ended in a failure scores 0 for every frame past its end (the tracker is
    lost); the run's last fragment is unknown (NaN) past the sequence end. ``Phi[L]`` averages, over the
    fragments known at index ``L``, the mean overlap of indices ``1..L`` (index 0 is the initialisation).
    Frames without an overlap (flags) count as 0.
    """
    frags: list[np.ndarray] = []
    max_len = max((len(o) for o in overlaps), default=0)
    for ov, fails in zip(overlaps, failures, strict=True):
        ov = np.nan_to_num(np.asarray(ov, dtype=np.float64), nan=0.0)
        starts = [0] + [f + skip for f in fails if f + skip <= len(ov)]
        for j, s in enumerate(starts):
            last = j == len(starts) - 1
            row = np.full(max_len, np.nan if last else 0.0)
            piece = ov[s:] if last else ov[s:starts[j + 1] + 1]
            row[:len(piece)] = piece
            frags.append(row)
    phi = np.zeros(max_len)
    if max_len == 0:
        return phi
    phi[0] = 1.0
    table = np.array(frags)
    known = ~np.isnan(table)
    sums = np.cumsum(np.nan_to_num(table[:, 1:], nan=0.0), axis=1)  # sums[:, L-1] = sum of indices 1..L
    for length in range(1, max_len):
        rows = known[:, length]
        if rows.any():
            phi[length] = float(np.mean(sums[rows, length - 1] / length))
    return phi


def eao_from_curve(phi: np.ndarray, eao_range: tuple[int, int]) -> float:
    """Mean of ``phi`` over lengths ``low..high`` (1-based lengths, i.e. indices ``low-1..high-1``)."""
    low, high = eao_range
    part = phi[low - 1:high]
    return float(part.mean()) if part.size else float("nan")


def vot_scores(trajectories: Mapping[str, Sequence[np.ndarray]], gt_regions: Mapping[str, np.ndarray],
               image_sizes: Mapping[str, tuple[int, int]], eao_range: tuple[int, int] = (100, 356),
               burnin: int = VOT_BURNIN, skip: int = VOT_SKIP) -> VOTScores:
    """Accuracy, robustness and EAO of one run per sequence (pooled over frames as pysot)."""
    acc_overlaps, eao_overlaps, fails, total_frames = [], [], [], 0
    for name, traj in trajectories.items():
        gt, size = gt_regions[name], image_sizes[name]
        acc_overlaps.append(trajectory_overlaps(traj, gt, size, burnin))
        eao_overlaps.append(trajectory_overlaps(traj, gt, size, 0))
        fails.append(trajectory_failures(traj))
        total_frames += len(gt)
    pooled = np.concatenate(acc_overlaps) if acc_overlaps else np.zeros(0)
    n_fail = sum(len(f) for f in fails)
    phi = expected_overlap_curve(eao_overlaps, fails, skip)
    return VOTScores(
        accuracy=float(np.nanmean(pooled)) if np.isfinite(pooled).any() else 0.0,
        robustness=100.0 * n_fail / max(total_frames, 1),
        failures=n_fail,
        num_frames=total_frames,
        eao=eao_from_curve(phi, eao_range),
        expected_overlaps=phi,
        eao_range=eao_range,
    )
