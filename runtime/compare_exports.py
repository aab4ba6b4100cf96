"""The accuracy-vs-latency report: several exports (or backends) on the same clip against the same PyTorch FP32
reference, ``siamattn check --model A --model B ...`` (docs/CHECK.md, "Several exports side by side").

Each export runs the single-model check (:func:`siamattn.runtime.check.run_check`, its lock-step verdict with its
precision's default tolerances, its report in a sub-folder); this module adds one table and one plot: latency
p50/p90 against fidelity (lock-step max error of range per output, anchor flips, free-running IoU against the
reference), the Pareto front marked, and with ``--eval-dataset`` each export's success AUC / precision from
``siamattn eval``'s metrics.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from siamattn.config import with_long_term
from siamattn.errors import InputError
from siamattn.runtime.backend import BACKEND_CHOICES
from siamattn.runtime.check import OUTPUTS, CheckReport

# A model argument may name its backend: out/int8@onnxruntime (default: --backend).
_AT_BACKEND = re.compile(r"^(?P<path>.+)@(?P<backend>[a-z]+)$")


@dataclass
class Row:
    label: str  # the export folder's name (+ @backend when given)
    model: str
    backend: str  # what ran, e.g. "onnxruntime cpu int8"
    precision: str
    verdict: str
    failures: list[str]
    p50_ms: float
    p90_ms: float
    error: dict[str, float]  # lock step: max error of range per output
    flips: int
    wide_flips: int
    lockstep_min_iou: float
    free_mean_iou: float
    free_min_iou: float
    report_dir: str
    eval: dict[str, float] = field(default_factory=dict)  # success AUC / precision on --eval-dataset
    pareto: bool = False

    @property
    def worst_error(self) -> float:
        return max(self.error.values(), default=0.0)


def parse_models(models: list[str], default_backend: str) -> list[tuple[Path, str, str]]:
    """(folder, backend, label) per --model; a folder with '@backend' runs on that backend."""
    out = []
    for text in models:
        m = _AT_BACKEND.match(text)
        path, backend = (m["path"], m["backend"]) if m and m["backend"] in BACKEND_CHOICES else (text, default_backend)
        label = Path(path).name + (f"@{backend}" if m and m["backend"] in BACKEND_CHOICES else "")
        out.append((Path(path), backend, label))
    labels = [label for _, _, label in out]
    dup = sorted({x for x in labels if labels.count(x) > 1})
    if dup:
        raise InputError(f"--model given twice with the same name: {', '.join(dup)} (rename a folder or add "
                         "@backend)")
    return out


def same_weights(models: list[Path]) -> None:
    """One reference for all: every export must come from the same weights (checkpoint sha256 or seed)."""
    from siamattn.manifest import Manifest

    idents = {}
    for m in models:
        w = Manifest.load(m, verify=False).weights
        idents[m] = w.sha256 or f"random-init seed {w.seed}"
    if len(set(idents.values())) > 1:
        raise InputError("the exports come from different weights (" + "; ".join(f"{k}: {str(v)[:12]}" for k, v in
                         idents.items()) + "): one PyTorch reference cannot judge them all; compare exports of "
                         "one checkpoint")


def row_of(label: str, model: Path, report: CheckReport, report_dir: Path, tie_margin: float) -> Row:
    total = report.latency_ms.get("total", {})
    ls_iou = report.lockstep_iou
    return Row(label, str(model), report.backend, report.precision, "PASS" if not report.failures else "FAIL",
               list(report.failures), float(total.get("p50", math.nan)), float(total.get("p90", math.nan)),
               {f"{e.graph}/{e.output}": e.max_rel for e in report.output_diffs}, len(report.flips),
               len(report.flips) - len(report.near_ties(tie_margin)), min(ls_iou) if ls_iou else math.nan,
               report.mean_iou, report.min_iou, str(report_dir))


def mark_pareto(rows: list[Row]) -> None:
    """An export is on the front when no other is at least as fast (p50) and at least as faithful (worst lock-step
    error of range) and strictly better in one of them."""
    for r in rows:
        r.pareto = not any((o.p50_ms <= r.p50_ms and o.worst_error <= r.worst_error)
                           and (o.p50_ms < r.p50_ms or o.worst_error < r.worst_error) for o in rows if o is not r)


def markdown(rows: list[Row], clip: str, frames: int, reference: str) -> str:
    outs = [k for k in OUTPUTS if any(k in r.error for r in rows)]
    has_eval = any(r.eval for r in rows)
    head = ["export", "backend", "verdict", "p50 ms", "p90 ms", *outs, "flips (wide)", "lock-step min IoU",
            "free-running mean IoU"] + (["success AUC", "precision@20"] if has_eval else []) + ["Pareto"]
    lines = [f"# siamattn check: {len(rows)} exports vs {reference}", "",
             f"Clip {clip}, {frames} frames. Lock-step errors are max |export - reference| / output range over the "
             "clip; the verdict is each export's own (its precision's default tolerances). Pareto: no other "
             "export is both faster (p50) and more faithful (worst lock-step error).", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r.label, r.backend, r.verdict, f"{r.p50_ms:.1f}", f"{r.p90_ms:.1f}",
                 *[f"{r.error[k]:.2e}" if k in r.error else "-" for k in outs], f"{r.flips} ({r.wide_flips})",
                 f"{r.lockstep_min_iou:.4f}", f"{r.free_mean_iou:.4f}"]
        if has_eval:
            cells += [f"{r.eval.get('success_auc', math.nan):.4f}", f"{r.eval.get('precision', math.nan):.4f}"]
        cells.append("*" if r.pareto else "")
        lines.append("| " + " | ".join(cells) + " |")
    fails = [r for r in rows if r.failures]
    if fails:
        lines += ["", "Failures:"] + [f"- {r.label}: " + "; ".join(r.failures) for r in fails]
    lines += ["", "Per-export reports (lock step frame by frame, flips, latency per stage): "
              + ", ".join(f"{r.label}: {r.report_dir}" for r in rows)]
    return "\n".join(lines) + "\n"


def plot(rows: list[Row], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # plots are optional on a runtime-only install
        return
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(13, 4.8))
    for r in rows:
        colour = "tab:green" if r.verdict == "PASS" else "tab:red"
        for ax, y in ((ax0, max(r.worst_error, 1e-9)), (ax1, r.free_mean_iou)):
            ax.errorbar(r.p50_ms, y, xerr=[[0], [max(r.p90_ms - r.p50_ms, 0)]], fmt="o", color=colour,
                        mec="k" if r.pareto else colour, ms=9 if r.pareto else 6, capsize=3)
            ax.annotate(f"{r.label} ({r.verdict})", (r.p50_ms, y), fontsize=8, xytext=(5, 4),
                        textcoords="offset points")
    front = sorted((r for r in rows if r.pareto), key=lambda r: r.p50_ms)
    if len(front) > 1:
        ax0.plot([r.p50_ms for r in front], [max(r.worst_error, 1e-9) for r in front], "k--", lw=1,
                 label="Pareto front")
        ax0.legend(fontsize=8)
    ax0.set_yscale("log")
    ax0.set(xlabel="latency per frame, ms (p50, bar to p90)", ylabel="worst lock-step error / output range",
            title="fidelity vs latency (lower left is better)")
    ax1.set(xlabel="latency per frame, ms (p50, bar to p90)", ylabel="free-running mean IoU vs reference",
            title="free running (reported, not judged)", ylim=(0, 1.02))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write(rows: list[Row], out: Path, clip: str, frames: int, reference: str) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {"md": out / "compare.md", "json": out / "compare.json", "png": out / "compare.png"}
    paths["md"].write_text(markdown(rows, clip, frames, reference))
    paths["json"].write_text(json.dumps({"clip": clip, "frames": frames, "reference": reference,
                                         "rows": [asdict(r) | {"worst_error": r.worst_error} for r in rows]},
                                        indent=2))
    plot(rows, paths["png"])
    return paths


def is_earlier_comparison(folder: Path) -> str | None:
    """None when ``folder`` holds an earlier several-export report (what --overwrite may replace)."""
    from siamattn.outputs import only_names

    return only_names(folder, "compare.json", lambda n: n.startswith("compare.") or re.match(r"\d+-", n) is not None)


def run_compare(args: Any) -> int:
    """``siamattn check`` with several --model: the check per export, then the table and plot in --out (staged:
    it appears complete or not at all)."""
    import itertools

    from tqdm import tqdm

    from siamattn.errors import require
    from siamattn.outputs import StagedDir, check_dir_output
    from siamattn.runtime.check import evaluate_thresholds, run_check, run_metadata, write_report
    from siamattn.runtime.loader import load_backend, load_reference, print_notes
    from siamattn.runtime.video import open_source, parse_box

    box = parse_box(args.init)
    if args.polygraphy is not None:
        raise InputError("--polygraphy writes one export's files: run it with a single --model")
    if (args.eval_dataset is None) != (args.eval_root is None):
        raise InputError("give --eval-dataset and --eval-root together")
    models = parse_models([str(m) for m in args.model], args.backend)
    inputs = {"source": None if str(args.source).isdigit() else args.source, "--checkpoint": args.checkpoint,
              "--eval-root": args.eval_root, **{f"--model folder {i + 1}": m for i, (m, _, _) in enumerate(models)}}
    check_dir_output("--out", args.out, overwrite=args.overwrite, inputs=inputs, what="comparison report",
                     earlier=is_earlier_comparison)
    require("torch", "export", "'siamattn check' (its reference is the PyTorch FP32 model)")
    same_weights([m for m, _, _ in models])
    # each export reads the clip again, one frame at a time: a long or large clip never sits in memory
    if len(list(itertools.islice(open_source(args.source, args.max_frames), 2))) < 2:
        raise InputError(f"source '{args.source}' needs at least 2 frames for a check")
    reference = load_reference(models[0][0], args.checkpoint)
    rows: list[Row] = []
    with StagedDir(args.out, "--out") as staged:
        for i, (model, backend_name, label) in enumerate(models):
            notes: list[str] = []
            backend, cfg, name = load_backend(model, backend_name, args.device, notes)
            cfg = with_long_term(cfg, getattr(args, "long_term", False) or None)
            print_notes(notes, args.quiet)
            source = open_source(args.source, args.max_frames)
            bar = tqdm(total=source.length - 1 if source.length else None, unit="frame",
                       desc=f"[{i + 1}/{len(models)}] {label} ({name})", disable=args.quiet)
            try:
                report = run_check(source, box, reference, backend, cfg, name, divergence_iou=args.divergence_iou,
                                   progress=lambda *_, b=bar: b.update(1))
            finally:
                bar.close()
            report.run = run_metadata(model, args.source, box, name, args.device, args.checkpoint)
            evaluate_thresholds(report, args.min_iou, args.max_rel_error, args.min_fps, args.tie_margin)
            sub = f"{i + 1}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', label)}"
            write_report(report, staged.path / sub)
            row = row_of(label, model, report, Path(args.out) / sub, args.tie_margin)
            if getattr(args, "eval_dataset", None):
                row.eval = _eval_metrics(model, backend_name, args, staged.path / sub)
            rows.append(row)
        mark_pareto(rows)
        written = write(rows, staged.path, str(args.source), report.tracked + 1, "torch fp32")
        staged.commit()
    paths = {k: Path(args.out) / p.name for k, p in written.items()}
    if not args.quiet:
        print(paths["md"].read_text())
        print(f"report: {paths['md']}  {paths['json']}  {paths['png']}")
    return 1 if any(r.failures for r in rows) else 0


def _eval_metrics(model: Path, backend: str, args: Any, out: Path) -> dict[str, float]:
    """Success AUC and precision of this export on --eval-dataset, with ``siamattn eval``'s code."""
    from siamattn.runtime.tracker import Tracker
    from siamattn.runtime.video import tracking_fn
    from siamattn.toolkit.evaluate import evaluate

    tracker = Tracker(model, backend=backend, device=args.device, notes=[])
    summary = evaluate(args.eval_dataset, args.eval_root, tracking_fn(tracker, args.eval_dataset), out / "eval",
                       tracker_name=Path(model).name, progress=not args.quiet, plots=False)
    keys = {"success_auc": ("success_auc", "auc", "ao"), "precision": ("precision", "precision_20")}
    found: dict[str, float] = {}
    for want, names in keys.items():
        for k in names:
            if isinstance(summary.get(k), (int, float)):
                found[want] = float(summary[k])
                break
    return found
