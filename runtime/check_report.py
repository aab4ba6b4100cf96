"""The written ``siamattn check`` report: report.json, report.md and report.png (docs/CHECK.md)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from siamattn.runtime.check_data import OUTPUTS, TIE_MARGIN, CheckReport


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
        if report.lost_frames:
            lines += [f"Long-term mode: {len(report.lost_frames)} of these frames ran the lost-window graphs "
                      f"(first {report.lost_frames[0]}, last {report.lost_frames[-1]}).", ""]
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
