"""The data of a ``siamattn check`` report (docs/CHECK.md): what each frame of the lock step measured, the
whole report, and the verdict's default thresholds. Written by :mod:`siamattn.runtime.check`, rendered by
:mod:`siamattn.runtime.check_report`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

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
    # long-term mode: lock-step frames the reference searched in the lost window (the lost-window graphs ran)
    lost_frames: list[int] = field(default_factory=list)

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


def percentiles(values: list[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=np.float64)
    if a.size == 0:
        return {"p50": math.nan, "p90": math.nan, "p99": math.nan, "mean": math.nan}
    return {"p50": float(np.percentile(a, 50)), "p90": float(np.percentile(a, 90)),
            "p99": float(np.percentile(a, 99)), "mean": float(a.mean())}
