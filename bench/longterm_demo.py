"""The shipped demo model, normal vs long-term mode, on a real clip where the target leaves and comes back
(docs/MODELS.md "Long-term search": the figure and the tracks).

Runs the PyTorch demo model (assets/demo/model.pt, CPU) twice over ``lost_and_found_clip`` from the README's
bunny box: the normal tracker, and the long-term one with the confidence thresholds given here (the demo model
scores 0.72-0.88 on the bunny and 0.39-0.54 on the other shot, so pysot's 0.85 / 0.998 would keep it lost).
Writes both tracks as JSON and a contact sheet of chosen frames (normal box red, long-term box green, "lost
window" over the long-term box when that frame searched the lost window).

    python bench/longterm_demo.py [--low 0.6] [--high 0.7] [--frames 29,30,38,44,45,46,55,69]
        [--json bench/results/longterm_demo_tracks.json] [--figure docs/images/longterm_demo.jpg]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

NORMAL, LONG_TERM = (0, 0, 255), (0, 255, 0)  # BGR


def track(frames: list[np.ndarray], low: float | None, high: float | None) -> list[dict]:
    import torch

    from siamattn.runtime import Tracker
    from siamattn.runtime.sources import BUNNY_BOX
    from siamattn.runtime.torch_backend import TorchBackend
    from siamattn.training.model import load_checkpoint

    torch.set_num_threads(2)
    model = load_checkpoint("assets/demo/model.pt")
    sets = [] if low is None else [f"tracker.confidence_low={low}", f"tracker.confidence_high={high}"]
    from siamattn.config import apply_overrides, from_dict

    cfg = from_dict(apply_overrides(model.cfg.to_dict(), sets))
    tracker = Tracker(TorchBackend(model), cfg, long_term=low is not None)
    tracker.init(frames[0], BUNNY_BOX)
    rows = []
    for i, frame in enumerate(frames[1:], 1):
        r = tracker.track(frame)
        rows.append({"frame": i, "box": [round(v, 1) for v in r.box], "score": round(r.score, 4), "lost": r.lost,
                     "ms": round(r.timings_ms["total"])})
        print("long-term" if low is not None else "normal", rows[-1], flush=True)
    return rows


def sheet(frames: list[np.ndarray], tracks: dict[str, list[dict]], picks: list[int], path: Path,
          tile: tuple[int, int] = (384, 216), scale: float = 1.0, init: tuple[float, ...] | None = None) -> None:
    """Contact sheet, 4 tiles a row: normal box red, long-term green ("lost window" when it searched there);
    ``init``: the first box, white, on frame 0; ``scale``: line and text size."""
    tiles = []
    for i in picks:
        f = frames[i].copy()
        boxes = [(init, (255, 255, 255), False)] if i == 0 and init else [
            (tracks[name][i - 1]["box"], colour, name == "long_term" and tracks[name][i - 1]["lost"])
            for name, colour in (("normal", NORMAL), ("long_term", LONG_TERM))]
        for (x, y, w, h), colour, lost in boxes:
            cv2.rectangle(f, (int(x), int(y)), (int(x + w), int(y + h)), colour, round(6 * scale))
            if lost:
                cv2.putText(f, "lost window", (int(x), max(20, int(y) - 12)), cv2.FONT_HERSHEY_SIMPLEX,
                            1.6 * scale, colour, round(4 * scale))
        cv2.putText(f, f"frame {i}", (20, 60), cv2.FONT_HERSHEY_SIMPLEX, 2.0 * scale, (255, 255, 255), round(5 * scale))
        tiles.append(cv2.resize(f, tile, interpolation=cv2.INTER_AREA))
    rows = [np.hstack(tiles[k : k + 4]) for k in range(0, len(tiles), 4)]
    cv2.imwrite(str(path), np.vstack(rows), [cv2.IMWRITE_JPEG_QUALITY, 85])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--low", type=float, default=0.6, help="tracker.confidence_low of the long-term run")
    ap.add_argument("--high", type=float, default=0.7, help="tracker.confidence_high of the long-term run")
    ap.add_argument("--frames", default="29,30,38,44,45,46,55,69", help="frames of the figure (4 per row)")
    ap.add_argument("--json", type=Path, default=Path("bench/results/longterm_demo_tracks.json"))
    ap.add_argument("--figure", type=Path, default=Path("docs/images/longterm_demo.jpg"))
    args = ap.parse_args()
    from siamattn.runtime.sources import lost_and_found_clip

    frames = lost_and_found_clip(30, 15, 25)
    tracks = {"normal": track(frames, None, None), "long_term": track(frames, args.low, args.high)}
    args.json.write_text(json.dumps({"clip": "lost_and_found_clip(30, 15, 25)", "confidence": [args.low, args.high],
                                     **tracks}, indent=0))
    sheet(frames, tracks, [int(v) for v in args.frames.split(",")], args.figure)
    return 0


if __name__ == "__main__":
    sys.exit(main())
