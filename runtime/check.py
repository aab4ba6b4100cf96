"""Accuracy-vs-latency check of a deployed backend against the PyTorch FP32 reference.

(a) per-graph output errors on identical inputs: the reference tracker's own crops and RoIs of the first
    frames are fed to both the reference stages and the deployed graphs;
(b) both trackers run the whole clip independently: per-frame IoU of their boxes and the first frame
    where they diverge;
(c) latency per stage of the deployed backend (p50/p90/p99) and end-to-end fps.
Writes report.md, report.json and report.png (IoU over frames, latency histogram); the report records
what ran (model, clip, init box, backend, machine, versions: :func:`run_metadata`).
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from siamattn.geometry import box_iou, xywh_to_xyxy
from siamattn.runtime.backend import Backend
from siamattn.runtime.tracker import Tracker

STAGES = ("crop", "search", "post", "refine", "mask", "total")


@dataclass
class OutputDiff:
    """How far one graph output of the deployed backend is from the reference's on identical inputs."""

    graph: str
    output: str
    max_abs: float
    mean_abs: float
    max_rel: float  # max |a-b| / max |reference| (relative to the output's range)
    worst_index: list[int]


@dataclass
class CheckReport:
    backend: str
    reference: str
    frames: int
    output_diffs: list[OutputDiff] = field(default_factory=list)
    iou: list[float] = field(default_factory=list)
    first_divergence: int | None = None  # first frame with IoU < the divergence threshold
    divergence_iou: float = 0.9
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    fps: float = 0.0
    total_ms: list[float] = field(default_factory=list)  # per-frame end-to-end latency of the backend
    failures: list[str] = field(default_factory=list)
    run: dict[str, Any] = field(default_factory=dict)  # what ran where: run_metadata()

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


def run_check(frames: list[np.ndarray], init_box: tuple[float, float, float, float], reference: Backend,
              backend: Backend, cfg: Any, backend_name: str, reference_name: str = "torch fp32",
              graph_frames: int = 5, divergence_iou: float = 0.9, progress: Any = None) -> CheckReport:
    """Run the whole check on in-memory frames (the CLI reads the video first, so both see identical pixels)."""
    report = CheckReport(backend_name, reference_name, len(frames), divergence_iou=divergence_iou)

    # (a) identical inputs: record the reference's first frames, replay on the backend.
    rec = _Recorder(reference)
    t_ref = Tracker(rec, cfg)
    t_ref.init(frames[0], init_box)
    for f in frames[1 : 1 + graph_frames]:
        t_ref.track(f)
    report.output_diffs = compare_graphs(rec.calls, backend)

    # (b) + (c): both trackers over the clip.
    ref_tracker, dep_tracker = Tracker(reference, cfg), Tracker(backend, cfg)
    ref_tracker.init(frames[0], init_box)
    dep_tracker.init(frames[0], init_box)
    lat: dict[str, list[float]] = {s: [] for s in STAGES}
    for i, f in enumerate(frames[1:], 1):
        a = ref_tracker.track(f)
        b = dep_tracker.track(f)
        iou = float(box_iou(xywh_to_xyxy(a.box), xywh_to_xyxy(b.box)).reshape(-1)[0])
        report.iou.append(iou)
        if report.first_divergence is None and iou < divergence_iou:
            report.first_divergence = i
        for s in STAGES:
            lat[s].append(b.timings_ms.get(s, 0.0))
        if progress is not None:
            progress(i, iou, b.timings_ms.get("total", 0.0))
    report.latency_ms = {s: percentiles(v) for s, v in lat.items()}
    report.total_ms = lat["total"]
    total = report.latency_ms["total"]["mean"]
    report.fps = 1000.0 / total if total and total > 0 else 0.0
    return report


def evaluate_thresholds(report: CheckReport, min_iou: float | None, max_rel_error: float | None,
                        min_fps: float | None) -> None:
    if min_iou is not None and report.iou and report.min_iou < min_iou:
        report.failures.append(f"min IoU {report.min_iou:.4f} < {min_iou} (first divergence at frame "
                               f"{report.first_divergence})")
    if max_rel_error is not None and report.worst_rel_error > max_rel_error:
        worst = max(report.output_diffs, key=lambda e: e.max_rel)
        report.failures.append(f"{worst.graph}/{worst.output} relative error {worst.max_rel:.2e} > {max_rel_error}")
    if min_fps is not None and report.fps < min_fps:
        report.failures.append(f"{report.fps:.1f} fps < {min_fps}")


def write_report(report: CheckReport, out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "report.json", "md": out_dir / "report.md", "png": out_dir / "report.png"}
    data = asdict(report)
    data.update(tracked=report.tracked, min_iou=report.min_iou, mean_iou=report.mean_iou,
                worst_rel_error=report.worst_rel_error)
    paths["json"].write_text(json.dumps(data, indent=2))
    paths["md"].write_text(summary_markdown(report))
    _plot(report, paths["png"])
    return paths


def summary_markdown(report: CheckReport) -> str:
    lines = [f"# siamattn check: {report.backend} vs {report.reference}", "",
             f"{report.frames} frames, {report.tracked} tracked after the init frame. Boxes: mean IoU "
             f"{report.mean_iou:.4f}, min IoU {report.min_iou:.4f}, "
             f"first frame with IoU < {report.divergence_iou}: {report.first_divergence or 'none'}.", "",
             "## Graph outputs on identical inputs", "",
             "| graph | output | max abs | mean abs | max rel | worst element |", "|---|---|---|---|---|---|"]
    for e in report.output_diffs:
        lines.append(f"| {e.graph} | {e.output} | {e.max_abs:.3e} | {e.mean_abs:.3e} | {e.max_rel:.3e} | "
                     f"{tuple(e.worst_index)} |")
    lines += ["", f"## Latency of {report.backend} (ms per frame)", "", "| stage | p50 | p90 | p99 |",
              "|---|---|---|---|"]
    for s, p in report.latency_ms.items():
        lines.append(f"| {s} | {p['p50']:.2f} | {p['p90']:.2f} | {p['p99']:.2f} |")
    lines += ["", f"End-to-end: {report.fps:.1f} fps (mean of per-frame totals).", ""]
    if report.first_divergence is not None and "fp16" in report.backend.split():
        lines += ["Note: FP16 graphs drift from the FP32 reference once output differences of ~1e-3..1e-2 flip a "
                  "score-map argmax, and the two trajectories then go their own ways; that is not an accuracy loss "
                  "by itself. Judge FP16 by tracking metrics on a dataset (siamattn eval, FP32 vs FP16 export; "
                  "docs/PERFORMANCE.md, 'FP16 on a trained model').", ""]
    if report.run:
        lines += ["## Run", ""] + [f"- {k}: {_md_value(v)}" for k, v in report.run.items()] + [""]
    lines.append("Result: " + ("PASS" if not report.failures else "FAIL: " + "; ".join(report.failures)))
    return "\n".join(lines) + "\n"


def _md_value(v: Any) -> str:
    if isinstance(v, dict):
        return ", ".join(f"{k} {_md_value(x)}" for k, x in v.items())
    if v is None:
        return "none"
    if isinstance(v, (list, tuple)):
        return "(" + ", ".join(str(x) for x in v) + ")"
    return str(v)


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


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
        "machine": {"platform": platform.platform(), "cpu": _cpu_name(), "cores": os.cpu_count(),
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
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
    ax1.plot(range(1, len(report.iou) + 1), report.iou, lw=1.5)
    ax1.axhline(report.divergence_iou, color="r", ls="--", lw=1, label=f"divergence ({report.divergence_iou})")
    ax1.set(xlabel="frame", ylabel="IoU", title=f"{report.backend} vs {report.reference}", ylim=(0, 1.02))
    ax1.legend(loc="lower left")
    ax2.hist(report.total_ms, bins=30)
    for q, style in (("p50", "-"), ("p99", "--")):
        ax2.axvline(report.latency_ms["total"][q], color="k", ls=style, lw=1, label=q)
    ax2.legend()
    ax2.set(xlabel="ms per frame", ylabel="frames", title="latency (total per frame)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
