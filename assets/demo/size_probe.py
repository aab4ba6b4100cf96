"""Measure a checkpoint's box-size bias by stepping its tracker from the ground truth: does the box it predicts
come back to the target's size when the tracker's state was the right size, too large or too small?

    python assets/demo/size_probe.py --checkpoint runs/demo25/checkpoints/epoch_080.pt \
        --root runs/demo25_data/gen --split val --out runs/eval/size_val.json

For every frame k >= 2 of the first --frames frames of each sequence, the tracker's state is set to frame k-1's
ground-truth box with its size times each --scales factor, frame k is tracked, and the raw box the model
predicts (before the tracker's smoothing; the RPN box, and the refined box when the model has box refinement)
is compared with frame k's ground truth: median log(w_pred / w_gt) and log(h_pred / h_gt). A model that reads
the target's size gives ~0 at every scale; one that echoes the state gives ~log(scale). docs/TRAINING.md
"Size drift and BatchNorm statistics" is what this found. Writes OUT (JSON) and prints a table.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

import cv2
import numpy as np

SCALES = (0.77, 1.0, 1.3)


def probe(checkpoint: str, root: str, split: str, scales: tuple[float, ...], frames: int,
          threads: int) -> list[dict[str, float | str]]:
    """One row per (box, scale): the medians above and the number of frames."""
    import torch

    from siamattn.config import apply_overrides, from_dict
    from siamattn.errors import InputError
    from siamattn.runtime.torch_backend import TorchBackend
    from siamattn.runtime.tracker import Tracker
    from siamattn.toolkit.datasets import GOT10k
    from siamattn.training.model import load_checkpoint
    from siamattn.training.model.checkpoint import read_checkpoint

    torch.set_num_threads(threads)
    data = read_checkpoint(checkpoint)["config"]
    has_refine = bool(data.get("model", {}).get("refine", {}).get("enabled", False))
    ds = GOT10k(root, split)
    rows: list[dict[str, float | str]] = []
    raw: list[tuple[float, float, float, float]] = []

    class Recording(Tracker):
        """The tracker, keeping each frame's raw box (cx, cy, w, h frame px) from before the smoothing."""

        def _update(self, t, sel, new_box, frame_wh, window):  # type: ignore[no-untyped-def, override]
            raw.append(new_box)
            return super()._update(t, sel, new_box, frame_wh, window)

    for box in ("refined", "rpn") if has_refine else ("rpn",):
        cfg = from_dict(apply_overrides(copy.deepcopy(data), [f"tracker.refine_box={box == 'refined'}"]))
        tracker = Recording(TorchBackend(load_checkpoint(checkpoint, cfg), device="cpu"), cfg)
        for scale in scales:
            logs: list[tuple[float, float]] = []
            for i in range(len(ds.names)):
                seq = ds.sequence(i)
                gt = seq.boxes_xywh
                tracker.init(cv2.imread(str(seq.frame_paths[0])), gt[0])
                (tid,) = tracker.ids
                for k in range(1, min(len(seq.frame_paths), frames)):
                    if min(gt[k - 1, 2:].min(), gt[k, 2:].min()) <= 0:
                        continue  # target not visible
                    x, y, w, h = gt[k - 1]
                    tracker.set_state(tid, (x + w / 2, y + h / 2), (w * scale, h * scale))
                    raw.clear()
                    tracker.track(cv2.imread(str(seq.frame_paths[k])))
                    pw, ph = raw[0][2], raw[0][3]
                    logs.append((float(np.log(pw / gt[k, 2])), float(np.log(ph / gt[k, 3]))))
            if not logs:
                raise InputError(f"split '{split}' under '{root}' has no two consecutive frames with the target "
                                 "visible in the first --frames frames: nothing to probe")
            a = np.array(logs)
            rows.append({"box": box, "state_scale": scale, "median_log_w": float(np.median(a[:, 0])),
                         "median_log_h": float(np.median(a[:, 1])), "frames": len(a)})
    return rows


def markdown(rows: list[dict[str, float | str]]) -> str:
    out = ["| box | state size / gt | median log(w/w_gt) | median log(h/h_gt) | log(state/gt) | frames |",
           "|---|---|---|---|---|---|"]
    for r in rows:
        s = float(r["state_scale"])
        out.append(f"| {r['box']} | {s:.2f} | {float(r['median_log_w']):+.3f} | {float(r['median_log_h']):+.3f} | "
                   f"{np.log(s):+.3f} | {r['frames']} |")
    return "\n".join(out) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--root", required=True, help="GOT-10k-layout root with the split")
    p.add_argument("--split", default="val")
    p.add_argument("--scales", type=float, nargs="+", default=list(SCALES),
                   help=f"state size / ground truth factors (default: {' '.join(map(str, SCALES))})")
    p.add_argument("--frames", type=int, default=40, help="frames per sequence, >= 2 (default: 40)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, help="write the rows here (JSON)")
    a = p.parse_args()
    if any(s <= 0 for s in a.scales):
        p.error("--scales must be > 0")
    if a.frames < 2:
        p.error("--frames must be >= 2 (frame k is stepped from frame k-1's truth)")
    rows = probe(a.checkpoint, a.root, a.split, tuple(a.scales), a.frames, a.threads)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps({"checkpoint": a.checkpoint, "split": a.split, "rows": rows}, indent=2))
    print(markdown(rows))


if __name__ == "__main__":
    from siamattn.cli import run_script

    sys.exit(run_script(main))
