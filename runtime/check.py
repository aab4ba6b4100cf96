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
Writes report.md, report.json and report.png; the report records what ran (:func:`run_metadata`).
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from siamattn.errors import InputError
from siamattn.geometry import box_iou, xywh_to_xyxy
from siamattn.host import cpu_name
from siamattn.runtime.backend import Backend
from siamattn.runtime.postprocess import RPNPostprocessor, RPNSelection
from siamattn.runtime.tracker import Tracker
from siamattn.validate import check_number

STAGES = ("crop", "search", "post", "refine", "mask", "total")
OUTPUTS = ("search/cls", "search/loc", "refine_box/deltas", "refine_mask/mask")

# Defaults of the lock-step verdict, from the demo model's FP32 and FP16 exports on real clips
# (measurements in docs/CHECK.md).
MAX_REL_ERROR = {"fp32": 1e-3, "fp16": 3e-2, "int8": 0.1}  # max |deployed - reference| / output range over the clip
TIE_MARGIN = 0.01  # an anchor flip whose penalised-score margin is below this is a near-tie
MIN_IOU = 0.9  # lock-step box IoU required on frames where both sides pick the same anchor
DIVERGENCE_IOU = 0.9  # free running: the trajectories have parted below this IoU


def precision_of(backend_name: str) -> str:
    """'fp16' or 'int8' when the backend's name says so ('onnxruntime cpu fp16', 'tensorrt 10.x int8'), else 'fp32'."""
    words = backend_name.split()
    return "int8" if "int8" in words else "fp16" if "fp16" in words else "fp32"


@dataclass
class OutputDiff:
    """How far one graph output of the deployed backend is from the reference's on identical inputs."""

    graph: str
    output: str
    max_abs: float
    mean_abs: float
    max_rel: float  # max |a-b| / max |reference| (relative to the output's range)
    worst_index: list[int]
    frame: int = -1  # lock step: the frame of the worst error


@dataclass
class LockstepFrame:
    """One frame of the lock step: both sides started from the reference tracker's state."""

    frame: int
    error: dict[str, float]  # output ("search/cls", ...) -> max |deployed - reference| / output range over the clip
    ref_index: int  # the reference's chosen anchor (flat a*S*S + y*S + x)
    dep_index: int  # the deployed backend's choice from its own outputs, same state
    margin_ref: float  # reference's penalised score at its choice minus at the deployed choice (>= 0)
    margin_dep: float  # deployed's penalised score at its choice minus at the reference's choice (>= 0)
    iou: float  # the deployed backend's own full step (choice, refinement) vs the reference's box
    abs_error: dict[str, float] = field(default_factory=dict)  # max |deployed - reference| per output

    @property
    def flip(self) -> bool:
        return self.ref_index != self.dep_index

    @property
    def margin(self) -> float:
        """How far from a tie the flip is: the larger of the two sides' margins (0 without a flip)."""
        return max(self.margin_ref, self.margin_dep)


@dataclass
class CheckReport:
    backend: str
    reference: str
    frames: int
    output_diffs: list[OutputDiff] = field(default_factory=list)  # lock step: the worst frame of each output
    iou: list[float] = field(default_factory=list)  # free running: per-frame IoU of the two trackers' boxes
    first_divergence: int | None = None  # free running: first frame with IoU < the divergence threshold
    divergence_iou: float = DIVERGENCE_IOU
    first_crop_diff: int | None = None  # free running: first frame whose two search crops differ in a pixel
    crop_diff_centre_px: float | None = None  # ... and how far apart the two trackers' centres were then
    first_flip: int | None = None  # free running: first frame where the two trackers pick different anchors
    first_flip_margin: float | None = None  # ... and its margin (as LockstepFrame.margin, each on its own crop)
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    fps: float = 0.0
    total_ms: list[float] = field(default_factory=list)  # per-frame end-to-end latency of the backend
    failures: list[str] = field(default_factory=list)
    run: dict[str, Any] = field(default_factory=dict)  # what ran where: run_metadata()
    lockstep: list[LockstepFrame] = field(default_factory=list)
    output_range: dict[str, float] = field(default_factory=dict)  # max |reference output| over the clip
    precision: str = ""  # of the deployed backend; empty: from its name (precision_of)
    thresholds: dict[str, float | None] = field(default_factory=dict)  # what evaluate_thresholds applied

    def __post_init__(self) -> None:
        self.precision = self.precision or precision_of(self.backend)

    @property
    def tracked(self) -> int:
        """Frames tracked after the init frame (``frames`` counts the init frame too)."""
        return len(self.iou)

    @property
    def min_iou(self) -> float:
        return min(self.iou) if self.iou else float("nan")

    @property
    def mean_iou(self) -> float:
        return float(np.mean(self.iou)) if self.iou else float("nan")

    @property
    def worst_rel_error(self) -> float:
        return max((e.max_rel for e in self.output_diffs), default=0.0)

    @property
    def flips(self) -> list[LockstepFrame]:
        return [f for f in self.lockstep if f.flip]

    def near_ties(self, tie_margin: float) -> list[LockstepFrame]:
        return [f for f in self.flips if f.margin <= tie_margin]

    @property
    def lockstep_iou(self) -> list[float]:
        """Lock-step box IoU on the frames where both sides picked the same anchor."""
        return [f.iou for f in self.lockstep if not f.flip]


def output_diff(graph: str, output: str, got: np.ndarray, ref: np.ndarray) -> OutputDiff:
    got = np.asarray(got, dtype=np.float64).reshape(ref.shape)
    ref = np.asarray(ref, dtype=np.float64)
    diff = np.abs(got - ref)
    scale = max(float(np.abs(ref).max()), 1e-12)
    worst = np.unravel_index(int(np.argmax(diff)), diff.shape)
    return OutputDiff(graph, output, float(diff.max()), float(diff.mean()), float(diff.max()) / scale,
                       [int(i) for i in worst])


class _Recorder:
    """Wraps a backend and records every input and output, so the other backend can replay them."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.has_refine, self.has_mask = inner.has_refine, inner.has_mask
        self.calls: list[tuple[str, np.ndarray, Any]] = []

    def init_template(self, z: np.ndarray) -> None:
        self.inner.init_template(z)
        self.calls.append(("init_template", z.copy(), None))

    def search(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cls, loc = self.inner.search(x)
        self.calls.append(("search", x.copy(), (np.array(cls, np.float32), np.array(loc, np.float32))))
        return cls, loc

    def refine_box(self, roi: np.ndarray) -> np.ndarray:
        out = self.inner.refine_box(roi)
        self.calls.append(("refine_box", roi.copy(), np.array(out, np.float32)))
        return out

    def refine_mask(self, roi: np.ndarray) -> np.ndarray:
        out = self.inner.refine_mask(roi)
        self.calls.append(("refine_mask", roi.copy(), np.array(out, np.float32)))
        return out

    def last(self, call: str) -> tuple[np.ndarray, Any] | None:
        for name, inp, out in reversed(self.calls):
            if name == call:
                return inp, out
        return None


class _CropWatch:
    """The free-running tracker's backend, unchanged, keeping a reference to the last search crop (the
    tracker's own buffer, read right after ``track`` returns) so the check can tell when the two trackers'
    inputs first differ; nothing is copied, so the measured latency is the backend's."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.has_refine, self.has_mask = inner.has_refine, inner.has_mask
        self.x: np.ndarray | None = None
        self.init_template = inner.init_template
        self.refine_box = inner.refine_box
        self.refine_mask = inner.refine_mask

    def search(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.x = x
        return self.inner.search(x)


class _SelectionRecorder:
    """Stands in for a tracker's :class:`RPNPostprocessor`: the same selection, with its inputs kept so the
    check can read the whole penalised score map of the last frame (no second post-processing)."""

    def __init__(self, inner: RPNPostprocessor) -> None:
        self.inner = inner
        self.args: tuple[np.ndarray, np.ndarray, float, float] | None = None

    def select(self, cls: np.ndarray, loc: np.ndarray, target_w: float, target_h: float) -> RPNSelection:
        self.args = (cls, loc, target_w, target_h)
        return self.inner.select(cls, loc, target_w, target_h)

    def last_pscores(self) -> np.ndarray:
        assert self.args is not None, "no selection yet"
        return self.inner.pscores(*self.args)


def compare_graphs(recorded: list[tuple[str, np.ndarray, Any]], backend: Backend) -> list[OutputDiff]:
    """Replay the reference's recorded calls on ``backend`` and keep, per output, the worst error."""
    worst: dict[tuple[str, str], OutputDiff] = {}

    def keep(e: OutputDiff) -> None:
        key = (e.graph, e.output)
        if key not in worst or e.max_abs > worst[key].max_abs:
            worst[key] = e

    for call, inp, ref in recorded:
        if call == "init_template":
            backend.init_template(inp)
        elif call == "search":
            cls, loc = backend.search(inp)
            keep(output_diff("search", "cls", cls, ref[0]))
            keep(output_diff("search", "loc", loc, ref[1]))
        elif call == "refine_box":
            keep(output_diff("refine_box", "deltas", backend.refine_box(inp), ref))
        elif call == "refine_mask":
            keep(output_diff("refine_mask", "mask", backend.refine_mask(inp), ref))
    return list(worst.values())


def percentiles(values: list[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=np.float64)
    if a.size == 0:
        return {"p50": math.nan, "p90": math.nan, "p99": math.nan, "mean": math.nan}
    return {"p50": float(np.percentile(a, 50)), "p90": float(np.percentile(a, 90)),
            "p99": float(np.percentile(a, 99)), "mean": float(a.mean())}


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
    ref_rec, dep_rec = _Recorder(reference), _Recorder(backend)
    free_watch = _CropWatch(backend)
    ref_t, lock_t, free_t = Tracker(ref_rec, cfg), Tracker(dep_rec, cfg), Tracker(free_watch, cfg)
    ref_sel, lock_sel, free_sel = (_SelectionRecorder(t.rpn) for t in (ref_t, lock_t, free_t))
    ref_t.rpn, lock_t.rpn, free_t.rpn = ref_sel, lock_sel, free_sel  # type: ignore[assignment]
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
                err[key] = stats.add(key, i, getattr(backend, call)(roi), ref_out)
        ps_ref, ps_dep = ref_sel.last_pscores(), lock_sel.last_pscores()
        r, d = a.best_index, b.best_index
        report.lockstep.append(LockstepFrame(i, {}, r, d, float(ps_ref[r] - ps_ref[d]), float(ps_dep[d] - ps_dep[r]),
                                             _iou(a.box, b.box), err))

        centre_gap = float(np.hypot(free_t.center[0] - ref_centre[0], free_t.center[1] - ref_centre[1]))
        c = free_t.track(f)
        if report.first_crop_diff is None and not np.array_equal(free_watch.x, x_ref):
            report.first_crop_diff, report.crop_diff_centre_px = i, centre_gap
        iou = _iou(a.box, c.box)
        report.iou.append(iou)
        if report.first_divergence is None and iou < divergence_iou:
            report.first_divergence = i
        if report.first_flip is None and c.best_index != r:
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


def free_running_summary(report: CheckReport, tie_margin: float = TIE_MARGIN) -> str:
    """One sentence: where the free-running trajectories part and why. Before the two trackers' search crops
    first differ, their inputs are identical and an anchor flip is judged by its margin like the lock step's;
    once the crops differ (the centres, a fraction of a pixel apart, round to different pixel windows), the
    outputs are of different inputs and the trajectories may part without any error."""
    if not report.iou:
        return "no frames tracked."
    crop = (f"their search crops first differ at frame {report.first_crop_diff} (centres "
            f"{report.crop_diff_centre_px:.4f} px apart round to different pixels)"
            if report.first_crop_diff is not None else "")
    flip = ""
    if report.first_flip is not None:
        same_crop = report.first_crop_diff is None or report.first_flip < report.first_crop_diff
        kind = ("near-tie " if (report.first_flip_margin or 0.0) <= tie_margin else "wide ") if same_crop else ""
        article = "a " + kind if kind else "an "
        flip = (f"{article}anchor flip at frame {report.first_flip}, margin {report.first_flip_margin:.4f}"
                + ("" if same_crop else " (on different crops)"))
    if report.first_divergence is None:
        what = "; ".join(x for x in (crop, flip and "first " + flip) if x) or "identical crops and anchors throughout"
        return f"the trajectories stay together (IoU >= {report.divergence_iou} on every frame); {what}."
    events = sorted(((report.first_crop_diff, crop), (report.first_flip, flip)),
                    key=lambda e: math.inf if e[0] is None else e[0])
    why = [text for frame, text in events if frame is not None and frame <= report.first_divergence]
    reason = "after " + ", then ".join(why) if why else "with identical crops and anchors before it"
    return f"the trajectories part at frame {report.first_divergence} (IoU < {report.divergence_iou}) {reason}."


def write_report(report: CheckReport, out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "report.json", "md": out_dir / "report.md", "png": out_dir / "report.png"}
    tie = _tie_margin(report)
    data = asdict(report)
    data.update(tracked=report.tracked, min_iou=report.min_iou, mean_iou=report.mean_iou,
                worst_rel_error=report.worst_rel_error, flips=len(report.flips),
                near_ties=len(report.near_ties(tie)), free_running=free_running_summary(report, tie),
                verdict="PASS" if not report.failures else "FAIL")
    paths["json"].write_text(json.dumps(data, indent=2))
    paths["md"].write_text(summary_markdown(report))
    _plot(report, paths["png"])
    return paths


def _tie_margin(report: CheckReport) -> float:
    t = report.thresholds.get("tie_margin")
    return TIE_MARGIN if t is None else float(t)


def summary_markdown(report: CheckReport) -> str:
    tie = _tie_margin(report)
    th = report.thresholds
    flips, ties = report.flips, report.near_ties(tie)
    verdict = "PASS" if not report.failures else "FAIL: " + "; ".join(report.failures)
    lines = [f"# siamattn check: {report.backend} vs {report.reference}", "",
             f"{report.frames} frames, {report.tracked} tracked after the init frame.", "",
             f"**Verdict (lock step): {verdict}**", ""]
    if report.lockstep:
        ls_iou = report.lockstep_iou
        lines += ["## Lock step: the deployed backend from the reference's state on every frame", "",
                  f"Anchor flips: {len(flips)} ({len(ties)} near-ties at margin <= {tie:g}, "
                  f"{len(flips) - len(ties)} wider). Box IoU on the {len(ls_iou)} frames without a flip: "
                  + (f"min {min(ls_iou):.4f}, mean {float(np.mean(ls_iou)):.4f}" if ls_iou else "none")
                  + (f" (required >= {th['min_iou']:g})." if th.get("min_iou") is not None else "."), ""]
    tol = th.get("max_rel_error")
    lines += ["| graph | output | max abs | mean abs | max / range | at frame | tolerance |",
              "|---|---|---|---|---|---|---|"]
    for e in report.output_diffs:
        lines.append(f"| {e.graph} | {e.output} | {e.max_abs:.3e} | {e.mean_abs:.3e} | {e.max_rel:.3e} | "
                     f"{e.frame if e.frame >= 0 else '-'} | {f'{tol:g}' if tol is not None else '-'} |")
    if flips:
        lines += ["", "| frame | reference anchor | deployed anchor | margin (reference) | margin (deployed) | "
                  "box IoU | kind |", "|---|---|---|---|---|---|---|"]
        shown = sorted(flips, key=lambda f: -f.margin)[:20]
        for f in sorted(shown, key=lambda f: f.frame):
            lines.append(f"| {f.frame} | {f.ref_index} | {f.dep_index} | {f.margin_ref:.5f} | {f.margin_dep:.5f} | "
                         f"{f.iou:.3f} | {'near-tie' if f.margin <= tie else 'FAIL'} |")
        if len(flips) > len(shown):
            lines.append(f"\n(the {len(shown)} widest of {len(flips)} flips; all in report.json)")
    lines += ["", "## Free running: each tracker on its own", "",
              f"Boxes: mean IoU {report.mean_iou:.4f}, min IoU {report.min_iou:.4f}; "
              + free_running_summary(report, tie)
              + " Not part of the verdict: after a near-tie flip two correct trackers may follow different "
                "targets.", ""]
    if report.first_divergence is not None and report.precision == "fp16":
        lines += ["Note: FP16 graphs drift from the FP32 reference once output differences of ~1e-3..1e-2 flip a "
                  "score-map argmax, and the two trajectories then go their own ways; that is not an accuracy loss "
                  "by itself. Judge FP16 by tracking metrics on a dataset (siamattn eval, FP32 vs FP16 export; "
                  "docs/PERFORMANCE.md, 'FP16 on a trained model').", ""]
    lines += [f"## Latency of {report.backend} (ms per frame, free running)", "", "| stage | p50 | p90 | p99 |",
              "|---|---|---|---|"]
    for s, p in report.latency_ms.items():
        lines.append(f"| {s} | {p['p50']:.2f} | {p['p90']:.2f} | {p['p99']:.2f} |")
    lines += ["", f"End-to-end: {report.fps:.1f} fps (mean of per-frame totals)"
              + (f", required >= {th['min_fps']:g}." if th.get("min_fps") is not None else "."), ""]
    if report.run:
        lines += ["## Run", ""] + [f"- {k}: {_md_value(v)}" for k, v in report.run.items()] + [""]
    lines.append("Result: " + verdict)
    return "\n".join(lines) + "\n"


def _md_value(v: Any) -> str:
    if isinstance(v, dict):
        return ", ".join(f"{k} {_md_value(x)}" for k, x in v.items())
    if v is None:
        return "none"
    if isinstance(v, (list, tuple)):
        return "(" + ", ".join(str(x) for x in v) + ")"
    return str(v)


def _gpu_name() -> str | None:
    torch = sys.modules.get("torch")  # the check's reference has imported it; never import it just for this
    try:
        return torch.cuda.get_device_name(0) if torch is not None and torch.cuda.is_available() else None
    except Exception:  # a broken driver must not fail the report
        return None


def _package_versions() -> dict[str, str | None]:
    from importlib import metadata

    versions: dict[str, str | None] = {"python": platform.python_version()}
    for dist in ("siamattn-trt", "numpy", "opencv-python-headless", "onnxruntime", "onnxruntime-gpu", "torch",
                 "tensorrt", "tensorrt-rtx-cu13-bindings"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return versions


def run_metadata(model_dir: str | Path, source: str, init_box: tuple[float, ...], backend: str, device: str,
                 checkpoint: str | Path | None = None) -> dict[str, Any]:
    """What a check ran on: the model (folder, manifest sha256, config), the clip, the init box, the backend
    and device, the machine (platform, CPU, GPU if any) and the package versions."""
    from siamattn.export.manifest import Manifest, sha256_file

    model_dir = Path(model_dir)
    manifest = Manifest.load(model_dir, verify=False)
    weights = manifest.data.get("weights", {})
    src = str(source)
    return {
        "model": {"folder": str(model_dir.resolve()), "manifest_sha256": sha256_file(model_dir / "manifest.json"),
                  "config": manifest.config().name, "weights": str(checkpoint or weights.get("path")
                                                                   or weights.get("source"))},
        "clip": src if src.isdigit() else str(Path(src).resolve()),
        "init_box": [float(v) for v in init_box],
        "backend": backend,
        "device": device,
        "machine": {"platform": platform.platform(), "cpu": cpu_name(), "cores": os.cpu_count(),
                    "gpu": _gpu_name()},
        "versions": _package_versions(),
    }


def _plot(report: CheckReport, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # plots are optional on a runtime-only install
        return
    tie = _tie_margin(report)
    fig, (ax0, ax1, ax2) = plt.subplots(1, 3, figsize=(16, 4.2))
    frames = [f.frame for f in report.lockstep]
    for key in OUTPUTS:
        ys = [f.error.get(key, math.nan) for f in report.lockstep]
        if not all(math.isnan(y) for y in ys):
            ax0.plot(frames, [max(y, 1e-12) for y in ys], lw=0.8, label=key)
    tol = report.thresholds.get("max_rel_error")
    if tol is not None:
        ax0.axhline(tol, color="r", ls="--", lw=1, label=f"tolerance ({tol:g})")
    flips = report.flips
    if flips:
        top = ax0.get_ylim()[1] if frames else 1.0
        for f in flips:
            ax0.axvline(f.frame, color="orange" if f.margin <= tie else "r", lw=0.6, alpha=0.6)
        for f in sorted(flips, key=lambda f: -f.margin)[:8]:  # label the widest few
            ax0.annotate(f"{f.margin:.4f}", (f.frame, top), rotation=90, fontsize=7, va="top", ha="right")
    ax0.set_yscale("log")
    ax0.set(xlabel="frame", ylabel="max |error| / output range",
            title=f"lock step: {len(flips)} flips (orange: near-tie <= {tie:g})")
    if ax0.get_legend_handles_labels()[0]:
        ax0.legend(loc="lower right", fontsize=7)
    ax1.plot(range(1, len(report.iou) + 1), report.iou, lw=1.2, label="free running")
    if report.lockstep:
        ax1.plot(frames, [f.iou for f in report.lockstep], lw=0.8, alpha=0.8, label="lock step")
    ax1.axhline(report.divergence_iou, color="r", ls="--", lw=1, label=f"divergence ({report.divergence_iou})")
    if report.first_divergence is not None:
        ax1.axvline(report.first_divergence, color="k", ls=":", lw=1,
                    label=f"parted at frame {report.first_divergence}")
    ax1.set(xlabel="frame", ylabel="IoU", title=f"{report.backend} vs {report.reference}", ylim=(0, 1.02))
    ax1.legend(loc="lower left", fontsize=7)
    ax2.hist(report.total_ms, bins=30)
    for q, style in (("p50", "-"), ("p99", "--")):
        ax2.axvline(report.latency_ms["total"][q], color="k", ls=style, lw=1, label=q)
    ax2.legend()
    ax2.set(xlabel="ms per frame", ylabel="frames", title="latency (total per frame)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
