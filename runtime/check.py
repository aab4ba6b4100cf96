"""Accuracy-vs-latency check of a deployed backend against the PyTorch FP32 reference (docs/CHECK.md).

(a) lock step: the reference tracker runs the clip; before every frame the deployed backend's tracker takes
    the reference tracker's state (:meth:`Tracker.follow`), so both crop the same pixels. Per frame: each
    graph output's error on identical inputs (the refinement graphs on the reference's RoIs), the anchor each
    side picks from its own outputs (one :class:`RPNPostprocessor`), the score margin between the two picks
    when they differ, and the IoU of the two boxes from that same state. The verdict comes from here: an
    output error over the precision's tolerance fails, an anchor flip at a margin above ``tie_margin`` fails
    (below it: a near-tie, counted and shown), a frame without a flip whose box IoU is under ``min_iou`` fails;
(b) free running: a second tracker on the deployed backend runs the clip on its own; per-frame IoU with the
    reference, the first frame where they part and the first anchor flip (with its margin) as the reason;
(c) latency per stage of the free-running deployed tracker (p50/p90/p99) and end-to-end fps.
Writes report.md, report.json and report.png (:mod:`~siamattn.runtime.check_report`); the report records
what ran (:func:`~siamattn.runtime.run_info.run_metadata`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from siamattn.errors import InputError
from siamattn.geometry import box_iou, xywh_to_xyxy
from siamattn.runtime.backend import Backend
from siamattn.runtime.check_data import (
    DIVERGENCE_IOU,
    MAX_REL_ERROR,
    MIN_IOU,
    OUTPUTS,
    STAGES,
    TIE_MARGIN,
    CheckReport,
    LockstepFrame,
    OutputDiff,
    percentiles,
    precision_of,
)
from siamattn.runtime.check_report import free_running_summary, summary_markdown, write_report
from siamattn.runtime.recorders import CallRecorder, CropWatch, SelectionRecorder
from siamattn.runtime.run_info import run_metadata
from siamattn.runtime.tracker import Tracker
from siamattn.validate import check_number

# The check's rooms (issue 24): report data (check_data), backend wrappers (recorders), the written report
# (check_report), what ran where (run_info); this module keeps the run and the verdict and re-exports the
# rest, so ``from siamattn.runtime.check import ...`` keeps working.
__all__ = ["DIVERGENCE_IOU", "MAX_REL_ERROR", "MIN_IOU", "OUTPUTS", "STAGES", "TIE_MARGIN", "CallRecorder",
           "CheckReport", "LockstepFrame", "OutputDiff", "check_thresholds", "evaluate_thresholds",
           "free_running_summary", "percentiles", "precision_of", "run_check", "run_metadata", "summary_markdown",
           "write_report"]


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    return float(box_iou(xywh_to_xyxy(a), xywh_to_xyxy(b)).reshape(-1)[0])


class _ErrorStats:
    """Per output: the worst frame, the sum of absolute errors for the mean, and the reference's range."""

    def __init__(self) -> None:
        self.worst: dict[str, tuple[float, int, list[int]]] = {}
        self.sum: dict[str, float] = {}
        self.count: dict[str, int] = {}
        self.range: dict[str, float] = {}

    def add(self, key: str, frame: int, got: np.ndarray, ref: np.ndarray) -> float:
        ref = np.asarray(ref, dtype=np.float64)
        diff = np.abs(np.asarray(got, dtype=np.float64).reshape(ref.shape) - ref)
        worst = float(diff.max())
        if key not in self.worst or worst > self.worst[key][0]:
            idx = np.unravel_index(int(np.argmax(diff)), diff.shape)
            self.worst[key] = (worst, frame, [int(i) for i in idx])
        self.sum[key] = self.sum.get(key, 0.0) + float(diff.sum())
        self.count[key] = self.count.get(key, 0) + diff.size
        self.range[key] = max(self.range.get(key, 0.0), float(np.abs(ref).max()))
        return worst

    def diffs(self) -> list[OutputDiff]:
        out = []
        for key in OUTPUTS:
            if key in self.worst:
                worst, frame, idx = self.worst[key]
                graph, name = key.split("/")
                out.append(OutputDiff(graph, name, worst, self.sum[key] / self.count[key],
                                      worst / max(self.range[key], 1e-12), idx, frame))
        return out


def run_check(frames: Iterable[np.ndarray], init_box: tuple[float, float, float, float], reference: Backend,
              backend: Backend, cfg: Any, backend_name: str, reference_name: str = "torch fp32",
              divergence_iou: float = DIVERGENCE_IOU, precision: str | None = None,
              progress: Any = None) -> CheckReport:
    """Run the whole check over ``frames`` (a list, or any iterable: every frame is read once and given to all
    three trackers, so they see identical pixels; a long clip need not fit in memory).

    ``progress(i, free_running_iou, ms)`` is called after every tracked frame. The thresholds are applied
    afterwards by :func:`evaluate_thresholds`.
    """
    report = CheckReport(backend_name, reference_name, 0, divergence_iou=divergence_iou,
                         precision=precision or precision_of(backend_name))
    it = iter(frames)
    first = next(it, None)
    if first is None:
        raise InputError("the check needs at least 2 frames, got none")
    ref_rec, dep_rec = CallRecorder(reference), CallRecorder(backend)
    free_watch = CropWatch(backend)
    ref_t, lock_t, free_t = Tracker(ref_rec, cfg), Tracker(dep_rec, cfg), Tracker(free_watch, cfg)
    ref_sel, lock_sel, free_sel = (SelectionRecorder(t.rpn, t.rpn_lost) for t in (ref_t, lock_t, free_t))
    for t, sel in ((ref_t, ref_sel), (lock_t, lock_sel), (free_t, free_sel)):
        t.rpn = sel  # type: ignore[assignment]
        if t.rpn_lost is not None:  # long-term mode: the same recorder picks the lost window's by map shape
            t.rpn_lost = sel  # type: ignore[assignment]
    # One deployed backend serves both of its trackers: the same template crop initialises it, and each
    # tracker's step (search, then its refinements) runs whole before the other's.
    ref_t.init(first, init_box)
    lock_t.init(first, init_box)
    free_t.init(first, init_box)
    stats = _ErrorStats()
    lat: dict[str, list[float]] = {s: [] for s in STAGES}
    for i, f in enumerate(it, 1):
        ref_rec.calls.clear()
        dep_rec.calls.clear()
        lock_t.follow(ref_t)  # the reference's state before this frame
        ref_centre = ref_t.center
        a = ref_t.track(f)
        b = lock_t.track(f)
        (x_ref, (cls_ref, loc_ref)), (x_dep, (cls_dep, loc_dep)) = ref_rec.last("search"), dep_rec.last("search")
        if not np.array_equal(x_ref, x_dep):  # same state and frame must give the same crop
            raise RuntimeError(f"lock step broken at frame {i}: the two search crops differ")
        err = {"search/cls": stats.add("search/cls", i, cls_dep, cls_ref),
               "search/loc": stats.add("search/loc", i, loc_dep, loc_ref)}
        # the refinement graphs on the reference's RoIs, after the deployed search on this frame's crop
        for call, key in (("refine_box", "refine_box/deltas"), ("refine_mask", "refine_mask/mask")):
            ref_call = ref_rec.last(call)
            if ref_call is not None and dep_rec.last(call) is not None:
                roi, ref_out = ref_call
                err[key] = stats.add(key, i, getattr(backend, f"{call}_batch")(roi), ref_out)
        ps_ref, ps_dep = ref_sel.last_pscores(), lock_sel.last_pscores()
        r, d = a.best_index, b.best_index
        report.lockstep.append(LockstepFrame(i, {}, r, d, float(ps_ref[r] - ps_ref[d]), float(ps_dep[d] - ps_dep[r]),
                                             _iou(a.box, b.box), err))
        if a.lost:
            report.lost_frames.append(i)

        centre_gap = float(np.hypot(free_t.center[0] - ref_centre[0], free_t.center[1] - ref_centre[1]))
        c = free_t.track(f)
        if report.first_crop_diff is None and not np.array_equal(free_watch.x, x_ref):
            report.first_crop_diff, report.crop_diff_centre_px = i, centre_gap
        iou = _iou(a.box, c.box)
        report.iou.append(iou)
        if report.first_divergence is None and iou < divergence_iou:
            report.first_divergence = i
        if report.first_flip is None and c.lost != a.lost:  # different windows: no common anchor to compare
            report.first_flip, report.first_flip_margin = i, float("inf")
        elif report.first_flip is None and c.best_index != r:
            ps_free = free_sel.last_pscores()  # on the free tracker's own crop
            report.first_flip = i
            report.first_flip_margin = max(float(ps_ref[r] - ps_ref[c.best_index]),
                                           float(ps_free[c.best_index] - ps_free[r]))
        for s in STAGES:
            lat[s].append(c.timings_ms.get(s, 0.0))
        if progress is not None:
            progress(i, iou, c.timings_ms.get("total", 0.0))
    report.frames = len(report.iou) + 1
    if not report.iou:
        raise InputError("the check needs at least 2 frames, got 1")
    report.output_diffs = stats.diffs()
    report.output_range = {k: stats.range[k] for k in OUTPUTS if k in stats.range}
    for fr in report.lockstep:
        fr.error = {k: v / max(report.output_range[k], 1e-12) for k, v in fr.abs_error.items()}
    report.latency_ms = {s: percentiles(v) for s, v in lat.items()}
    report.total_ms = lat["total"]
    total = report.latency_ms["total"]["mean"]
    report.fps = 1000.0 / total if total and total > 0 else 0.0
    return report


def check_thresholds(min_iou: float | None = MIN_IOU, max_rel_error: float | None = None,
                     min_fps: float | None = None, tie_margin: float = TIE_MARGIN,
                     divergence_iou: float = DIVERGENCE_IOU) -> None:
    """Refuse thresholds that would make the verdict meaningless (NaN passes every comparison, an IoU outside
    [0, 1] can never or always fail), naming the option; ``None`` means "not checked" where allowed."""
    for option, value, low, high, optional in (
            ("--min-iou", min_iou, 0.0, 1.0, True), ("--max-rel-error", max_rel_error, 0.0, None, True),
            ("--min-fps", min_fps, 0.0, None, True), ("--tie-margin", tie_margin, 0.0, None, False),
            ("--divergence-iou", divergence_iou, 0.0, 1.0, False)):
        if value is not None or not optional:
            check_number(option, value, low, high)  # type: ignore[arg-type]


def evaluate_thresholds(report: CheckReport, min_iou: float | None = MIN_IOU, max_rel_error: float | None = None,
                        min_fps: float | None = None, tie_margin: float = TIE_MARGIN) -> None:
    """The lock-step verdict (docs/CHECK.md) into ``report.failures``; ``max_rel_error=None`` takes the
    precision's default (:data:`MAX_REL_ERROR`), ``min_iou=None`` skips the box test."""
    check_thresholds(min_iou, max_rel_error, min_fps, tie_margin, report.divergence_iou)
    if max_rel_error is None:
        max_rel_error = MAX_REL_ERROR.get(report.precision, MAX_REL_ERROR["fp32"])
    report.thresholds = {"max_rel_error": max_rel_error, "tie_margin": tie_margin, "min_iou": min_iou,
                         "min_fps": min_fps}
    for e in report.output_diffs:
        if e.max_rel > max_rel_error:
            report.failures.append(f"{e.graph}/{e.output} error {e.max_rel:.2e} of its range at frame {e.frame} "
                                   f"> {max_rel_error:g} ({report.precision} tolerance)")
    wide = [f for f in report.flips if f.margin > tie_margin]
    if wide:
        worst = max(wide, key=lambda f: f.margin)
        report.failures.append(f"{len(wide)} anchor flip(s) at a margin above the tie margin {tie_margin:g}: worst "
                               f"at frame {worst.frame}, margin {worst.margin:.4f}")
    if min_iou is not None:
        low = [f for f in report.lockstep if not f.flip and f.iou < min_iou]
        if low:
            worst = min(low, key=lambda f: f.iou)
            report.failures.append(f"{len(low)} frame(s) without a flip have lock-step IoU < {min_iou:g}: worst "
                                   f"{worst.iou:.4f} at frame {worst.frame}")
    if min_fps is not None and report.fps < min_fps:
        report.failures.append(f"{report.fps:.1f} fps < {min_fps:g}")
