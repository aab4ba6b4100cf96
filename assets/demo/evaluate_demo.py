"""Evaluate a trained checkpoint against a tracker that never moves, on held-out generated sequences.

    python assets/demo/evaluate_demo.py --checkpoint assets/demo/model.pt --root /tmp/demo/gen --split val \
        --out /tmp/demo/eval

Runs :class:`siamattn.runtime.tracker.Tracker` over the PyTorch backend (the reference every deployed
backend is checked against) and the static baseline (the first box repeated) through
:func:`siamattn.toolkit.evaluate.evaluate` on a GOT-10k-layout split; writes both trackers' result files,
GOT-10k summaries and plots under OUT, and prints/writes (OUT/comparison.json) GOT-10k AO / SR50 and the
OTB-style success AUC / precision of both.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np


def tracker_fn(checkpoint: str, threads: int):
    import torch

    from siamattn.runtime.torch_backend import TorchBackend
    from siamattn.runtime.tracker import Tracker
    from siamattn.training.model import load_checkpoint

    torch.set_num_threads(threads)
    model = load_checkpoint(checkpoint)
    tracker = Tracker(TorchBackend(model, device="cpu"), model.cfg)

    def track(frames: Sequence[str], init_box: np.ndarray) -> Iterator[Sequence[float]]:
        tracker.init(cv2.imread(frames[0]), init_box)
        yield list(init_box)
        for f in frames[1:]:
            yield tracker.track(cv2.imread(f)).box

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


def main() -> None:
    from siamattn.toolkit.evaluate import evaluate

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--root", required=True, help="GOT-10k-layout root with the held-out split")
    p.add_argument("--split", default="val")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    results = {}
    for name, fn in (("static", static_fn), ("siamattn", tracker_fn(a.checkpoint, a.threads))):
        s = evaluate("got10k", a.root, fn, a.out / name, tracker_name=name, split=a.split, progress=False)
        overall = s["overall"]
        results[name] = {"got10k_ao": overall["ao"], "got10k_sr50": overall["sr50"],
                         **ope_scores(a.root, a.split, Path(s["results"])), "sequences": s["num_sequences"],
                         "frames": overall["num_frames"], "wall_seconds": s["wall_seconds"]}
    (a.out / "comparison.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
