"""Evaluate trained checkpoints against each other and a tracker that never moves, on held-out generated
sequences.

    python assets/demo/evaluate_demo.py --checkpoint new=runs/demo25/last.pt \
        --checkpoint shipped=assets/demo/model.pt --root /tmp/demo/gen --split val --out /tmp/demo/eval

Runs :class:`siamattn.runtime.tracker.Tracker` over the PyTorch backend (the reference every deployed
backend is checked against) for each checkpoint, and the static baseline (the first box repeated), through
:func:`siamattn.toolkit.evaluate.evaluate` on a GOT-10k-layout split; writes every tracker's result files,
GOT-10k summaries and plots under OUT, and prints/writes (OUT/comparison.json, OUT/comparison.md) GOT-10k
AO / SR50, the OTB-style success AUC / precision and, where the split has masks (generated sequences), the
mask IoU: the tracker's frame mask against the generated ground-truth mask, pooled over frames 2..N where
the target is visible (a frame without a predicted mask counts 0), beside the IoU that the tracker's own box,
filled, gets against the same masks (what a mask head that only fills its box would score).
A checkpoint may be a training checkpoint (``last.pt``, ``checkpoints/epoch_NNN.pt``) or a final one.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

MaskLog = list[tuple[float, float]]  # per scored frame: (mask IoU, filled-box IoU)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return float(np.count_nonzero(a & b)) / union if union else 1.0


def _gt_mask(frame: str) -> np.ndarray | None:
    p = Path(frame)
    m = cv2.imread(str(p.parent / "masks" / (p.stem + ".png")), cv2.IMREAD_GRAYSCALE)
    return None if m is None else m > 0


def tracker_fn(checkpoint: str, threads: int, mask_log: MaskLog,
               overrides: Sequence[str] = ()) -> Callable[..., Iterator[Sequence[float]]]:
    """The checkpoint's tracker, its config changed by ``key.path=value`` overrides (e.g. tracker.lr=0.3)."""
    import torch

    from siamattn.config import apply_overrides, from_dict
    from siamattn.runtime.torch_backend import TorchBackend
    from siamattn.runtime.tracker import Tracker
    from siamattn.training.model import load_checkpoint
    from siamattn.training.model.checkpoint import read_checkpoint

    torch.set_num_threads(threads)
    cfg = from_dict(apply_overrides(read_checkpoint(checkpoint)["config"], list(overrides)))
    model = load_checkpoint(checkpoint, cfg)
    tracker = Tracker(TorchBackend(model, device="cpu"), model.cfg)

    def track(frames: Sequence[str], init_box: np.ndarray) -> Iterator[Sequence[float]]:
        tracker.init(cv2.imread(frames[0]), init_box)
        yield list(init_box)
        for f in frames[1:]:
            frame = cv2.imread(f)
            r = tracker.track(frame)
            gt = _gt_mask(f)
            if gt is not None and gt.any():  # visible target: score the mask and the filled box
                pred = r.mask.to_frame() > 0 if r.mask is not None else np.zeros_like(gt)
                box = np.zeros_like(gt)
                x, y, w, h = r.box
                x0, y0 = max(0, round(x)), max(0, round(y))
                box[y0:max(y0, round(y + h)), x0:max(x0, round(x + w))] = True
                mask_log.append((_iou(pred, gt), _iou(box, gt)))
            yield r.box

    return track


def static_fn(frames: Sequence[str], init_box: np.ndarray) -> Iterator[Sequence[float]]:
    for _ in frames:
        yield list(init_box)


def ope_scores(root: str, split: str, results: Path) -> dict[str, float]:
    """OTB-style one-pass scores (success AUC over 21 IoU thresholds, precision at 20 px) of GOT-10k result
    files, every sequence weighing the same; frames without a valid ground-truth box are skipped."""
    from siamattn.toolkit import metrics as M
    from siamattn.toolkit.datasets import GOT10k, read_box_file

    ds = GOT10k(root, split)
    per_seq = []
    for i, name in enumerate(ds.names):
        gt = ds.sequence(i).boxes_xywh
        pred = read_box_file(results / name / f"{name}_001.txt")
        per_seq.append(M.ope_sequence(pred, gt))
    avg = M.ope_average(per_seq)
    return {"success_auc": avg.success_auc, "precision_20px": avg.precision, "norm_precision": avg.norm_precision}


def markdown(results: dict[str, dict[str, float]]) -> str:
    rows = ["| tracker | success AUC | precision @20 px | GOT-10k AO | GOT-10k SR50 | mask IoU | filled-box IoU |",
            "|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        m = (f"{r['mask_iou']:.3f} | {r['box_fill_iou']:.3f}" if "mask_iou" in r else "- | -")
        rows.append(f"| {name} | {r['success_auc']:.3f} | {r['precision_20px']:.3f} | {r['got10k_ao']:.3f} | "
                    f"{r['got10k_sr50']:.3f} | {m} |")
    return "\n".join(rows) + "\n"


def main() -> None:
    from siamattn.cli_args import add_set_arg
    from siamattn.toolkit.evaluate import evaluate

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True, action="append",
                   help="[NAME=]PATH; repeat to compare several (NAME defaults to 'siamattn', then the file stem)")
    p.add_argument("--root", required=True, help="GOT-10k-layout root with the held-out split")
    p.add_argument("--split", default="val")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-static", action="store_true", help="skip the static-box baseline")
    add_set_arg(p, "override a checkpoint's config value for every checkpoint, e.g. --set tracker.lr=0.3")
    a = p.parse_args()
    trackers: list[tuple[str, Callable[..., Iterator[Sequence[float]]], MaskLog | None]] = []
    if not a.no_static:
        trackers.append(("static", static_fn, None))
    for spec in a.checkpoint:
        name, _, path = spec.rpartition("=")
        name = name or ("siamattn" if len(a.checkpoint) == 1 else f"{Path(path).parent.name}/{Path(path).stem}")
        log: MaskLog = []
        trackers.append((name, tracker_fn(path, a.threads, log, a.overrides), log))
    results: dict[str, dict[str, float]] = {}
    for name, fn, log in trackers:
        folder = name.replace("/", "_")
        s = evaluate("got10k", a.root, fn, a.out / folder, tracker_name=folder, split=a.split, progress=False)
        overall = s["overall"]
        results[name] = {"got10k_ao": overall["ao"], "got10k_sr50": overall["sr50"],
                         **ope_scores(a.root, a.split, Path(s["results"])), "sequences": s["num_sequences"],
                         "frames": overall["num_frames"], "wall_seconds": s["wall_seconds"]}
        if log:
            ious = np.array(log)
            results[name].update(mask_iou=float(ious[:, 0].mean()), box_fill_iou=float(ious[:, 1].mean()),
                                 mask_frames=len(ious))
        print(name, json.dumps(results[name]), flush=True)
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "comparison.json").write_text(json.dumps(results, indent=2))
    (a.out / "comparison.md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    from siamattn.cli import run_script

    sys.exit(run_script(main))
