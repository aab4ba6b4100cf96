"""Host-side cost per frame of the tracker: everything outside the networks.

Runs :class:`siamattn.runtime.Tracker` over a fake backend that returns precomputed arrays instantly, so
the measured time is crop + pre-processing + RPN post-processing + refinement RoI/decoding + mask paste
and rotated box: the work every backend shares. Frames are synthetic (a textured background with a moving
target); the fake outputs put the peak on an anchor that moves the box a little every frame, so the
crop position, size and mask change like in a real video.

    python bench/runtime.py [--frames 300] [--out bench/results/runtime_host.json]

Prints a table (median / p90 / p99 in ms per stage and in total) and writes the same numbers as JSON.
Target (issue 5): median total <= 1 ms at 1280x720 on the 2-core CPU machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from siamattn.config import load_config
from siamattn.geometry import anchor_shapes
from siamattn.runtime import Tracker

STAGES = ("crop", "post", "refine", "mask", "total")


class PrecomputedBackend:
    """Returns fixed arrays; a few peak positions cycle so the target keeps moving (not a static crop)."""

    def __init__(self, cfg, box_wh: tuple[float, float], with_mask: bool) -> None:
        self.has_refine = True
        self.has_mask = with_mask
        k, size = cfg.anchors.num, cfg.tracker.score_size
        ratios = list(cfg.anchors.ratios)
        a = ratios.index(1.0) if 1.0 in ratios else 0
        anchor = float(anchor_shapes(cfg.anchors.stride, ratios, cfg.anchors.scales)[a, 0])
        # deltas that reproduce the target's own size in the crop, so the state neither grows nor shrinks
        w, h = box_wh
        ctx = cfg.tracker.context_amount * (w + h)
        scale = cfg.tracker.exemplar_size / np.sqrt((w + ctx) * (h + ctx))
        dw, dh = np.log(w * scale / anchor), np.log(h * scale / anchor)
        rng = np.random.default_rng(0)
        c = size // 2
        n = size * size
        self._outputs = []
        for dx, dy in ((1, 0), (0, 1), (-1, 0), (0, -1)):  # the target circles around: crops move
            cls = rng.normal(0, 1, (1, 2 * k, size, size)).astype(np.float32)
            cls[0, k + a, c + dy, c + dx] = 8.0
            loc = rng.normal(0, 0.05, (1, 4 * k, size, size)).astype(np.float32)
            loc.reshape(4, k * n)[2:, a * n + (c + dy) * size + c + dx] = (dw, dh)
            self._outputs.append((cls, loc))
        self._deltas = np.array([[0.1, -0.1, 0.0, 0.0]], dtype=np.float32)
        m = cfg.model.refine.mask_size
        yy, xx = np.mgrid[0:m, 0:m]
        r = m / 2.0
        blob = np.exp(-(((xx - r) / (0.6 * r)) ** 2 + ((yy - r) / (0.45 * r)) ** 2))
        self._mask = blob.astype(np.float32)[None, None]
        self._i = 0

    def init_template(self, z_crop: np.ndarray) -> None:
        self._i = 0

    def search(self, x_crop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self._i += 1
        return self._outputs[self._i % len(self._outputs)]

    def refine_box(self, roi: np.ndarray) -> np.ndarray:
        return self._deltas

    def refine_mask(self, roi: np.ndarray) -> np.ndarray:
        return self._mask


def run_case(width: int, height: int, box_wh: tuple[int, int], frames: int, with_mask: bool) -> dict:
    cfg = load_config("siamattn_r50")
    backend = PrecomputedBackend(cfg, box_wh, with_mask)
    tracker = Tracker(backend, cfg)
    rng = np.random.default_rng(1)
    frame = cv2.GaussianBlur(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), (5, 5), 0)
    bw, bh = box_wh
    tracker.init(frame, ((width - bw) / 2, (height - bh) / 2, bw, bh))
    for _ in range(20):  # warm-up (allocator, OpenCV first calls)
        tracker.track(frame)
    per_stage: dict[str, list[float]] = {s: [] for s in STAGES}
    for _ in range(frames):
        res = tracker.track(frame)
        assert res.box[2] > 0.5 * bw, "fake outputs should keep the target size stable"
        for s in STAGES:
            per_stage[s].append(res.timings_ms[s])
    stats = {}
    for s, vals in per_stage.items():
        a = np.asarray(vals)
        stats[s] = {"median": float(np.median(a)), "p90": float(np.percentile(a, 90)),
                    "p99": float(np.percentile(a, 99))}
    return {"frame": f"{width}x{height}", "target": f"{bw}x{bh}", "mask": with_mask,
            "crop_px": round(float(np.sqrt((bw + (bw + bh) / 2) * (bh + (bw + bh) / 2))) * 255 / 127),
            "frames": frames, "ms": stats}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "runtime_host.json")
    args = parser.parse_args(argv)
    cases = [
        (640, 480, (80, 60), False),
        (640, 480, (80, 60), True),
        (1280, 720, (160, 120), False),
        (1280, 720, (160, 120), True),
        (1280, 720, (400, 300), True),  # big target: the crop (1402 px) extends past the frame
    ]
    results = [run_case(w, h, box, args.frames, m) for w, h, box, m in cases]
    header = f"{'frame':>9} {'target':>8} {'mask':>5} {'crop px':>7} | " + " | ".join(
        f"{s:>6} med/p90" for s in STAGES)
    print(header)
    print("-" * len(header))
    for r in results:
        cells = " | ".join(f"{r['ms'][s]['median']:6.3f}/{r['ms'][s]['p90']:5.3f}" for s in STAGES)
        print(f"{r['frame']:>9} {r['target']:>8} {('yes' if r['mask'] else 'no'):>5} {r['crop_px']:>7} | {cells}")
    machine = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
               "python": sys.version.split()[0], "numpy": np.__version__, "opencv": cv2.__version__,
               "opencv_threads": cv2.getNumThreads()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"what": "host-side ms per frame (no network time)", "machine": machine,
                                    "date": time.strftime("%Y-%m-%d"), "results": results}, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
