"""Host-side cost per frame of the tracker: everything outside the networks.

Runs :class:`siamattn.runtime.Tracker` over a fake backend that returns precomputed arrays instantly, so
the measured time is crop + pre-processing + RPN post-processing + refinement RoI/decoding + mask paste
and rotated box: the work every backend shares. Frames are synthetic (a textured background with a moving
target); the fake outputs put the peak on an anchor that moves the box a little every frame, so the
crop position, size and mask change like in a real video.

    python bench/runtime.py [--frames 300] [--out bench/results/runtime_host.json]
    python bench/runtime.py --model out/demo/model --backends onnxruntime,torch,tensorrt [--clip-frames 132]
                            [--threads N] [--rounds R]

    python bench/runtime.py --model out/demo/model --multi 1,2,4,8,16 [--clip-frames 24] [--threads N]

    python bench/runtime.py --model out/fp32 --int8 out/int8 --backends onnxruntime,torch [--rounds R]

With ``--int8 DIR`` (an INT8 export of the same model) the end-to-end form also tracks with it on ONNX Runtime
(``onnxruntime-int8``, interleaved with the others), gives its per-frame speed-up over the FP32 export (paired),
and ONNX Runtime's op-type profile of both search graphs on the same crop and cache (what stays float in the
INT8 graph, and its cost). The JSON records the CPU's INT8 flags (VNNI, AMX).

The third form measures many targets (ONNX Runtime): per frame, one MultiTracker holding N targets (one search
call per chunk of the export's max_targets) against N single Trackers (N search calls), both on the same
frames in the same run, interleaved frame by frame; the ratio is taken per frame (paired). Then the search
graphs alone (CPU): ``search`` on one target against ``search_multi`` on each N up to max_targets, and ONNX
Runtime's op-type profile of both (where a batch's time goes).

The second form measures end-to-end tracking per backend on the real demo clip (networks included): the
torch backend in FP32 on CPU, or FP16 weights + a CUDA-graph search stage on a GPU; ONNX Runtime (CUDA
provider when installed); TensorRT engines. Backends that cannot run on the machine are reported as such.
The backends run interleaved frame by frame with the same CPU thread count, and the ONNX Runtime / torch
speed-up is also given per frame (paired), so that other load on the machine does not favour either.

Prints a table (median / p90 / p99 in ms per stage and in total) and writes the same numbers as JSON.
Target (issue 5): median total <= 1 ms at 1280x720 on the 2-core CPU machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from siamattn.config import load_config
from siamattn.geometry import anchor_shapes, context_size
from siamattn.host import cpu_flags, cpu_name
from siamattn.runtime import Tracker

STAGES = ("crop", "post", "refine", "mask", "total")


class PrecomputedBackend:
    """Returns fixed arrays; a few peak positions cycle so the target keeps moving (not a static crop)."""

    max_batch = 1

    def __init__(self, cfg, box_wh: tuple[float, float], with_mask: bool) -> None:
        self.has_refine = True
        self.has_mask = with_mask
        k, size = cfg.anchors.num, cfg.tracker.score_size
        ratios = list(cfg.anchors.ratios)
        a = ratios.index(1.0) if 1.0 in ratios else 0
        anchor = float(anchor_shapes(cfg.anchors.stride, ratios, cfg.anchors.scales)[a, 0])
        # deltas that reproduce the target's own size in the crop, so the state neither grows nor shrinks
        w, h = box_wh
        scale = cfg.tracker.exemplar_size / context_size(w, h, cfg.tracker.context_amount)
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

    def set_template(self, slot: int, z_crop: np.ndarray) -> None:
        self._i = 0

    def drop_template(self, slot: int) -> None:
        pass

    def search_batch(self, x_crops: np.ndarray, slots: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        self._i += 1
        return self._outputs[self._i % len(self._outputs)]

    def refine_box_batch(self, rois: np.ndarray) -> np.ndarray:
        return self._deltas

    def refine_mask_batch(self, rois: np.ndarray) -> np.ndarray:
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
            "crop_px": round(context_size(bw, bh, 0.5) * 255 / 127),
            "frames": frames, "ms": stats}


def _open_backend(model_dir: Path, name: str, threads: int):
    """(tracker, label) for one backend name; torch runs FP16 + CUDA graphs when a GPU is present. CPU
    backends get the same thread count (``threads``)."""
    if name in ("onnxruntime", "onnxruntime-int8"):
        from siamattn.runtime.graph_backend import GraphBackend
        from siamattn.runtime.ort_runner import OnnxRuntimeRunner

        manifest = _manifest(model_dir)
        cpu = manifest.cpu_paths()
        runner = OnnxRuntimeRunner({n: manifest.onnx_path(n) for n in manifest.order}, "auto", threads, cpu)
        return Tracker(GraphBackend(runner), manifest.config()), f"onnxruntime {runner.device} {manifest.precision}"
    if name != "torch":
        t = Tracker(model_dir, backend=name, device="auto")
        return t, t.backend_label
    import torch

    from siamattn.runtime.loader import load_reference
    from siamattn.runtime.torch_backend import TorchBackend, torch_device

    torch.set_num_threads(threads)
    ref = load_reference(model_dir)
    device = torch_device("auto")
    gpu = device == "cuda"
    backend = TorchBackend(ref.model, device=device, half=gpu, cuda_graph=gpu)
    t = Tracker(backend, _manifest(model_dir).config())
    return t, "torch cuda fp16 + CUDA graph" if gpu else "torch cpu fp32"


def _manifest(model_dir: Path):
    from siamattn.manifest import Manifest

    return Manifest.load(model_dir, verify=False)


def end_to_end(model_dir: Path, backends: list[str], clip_frames: int, threads: int, rounds: int,
               int8_dir: Path | None = None) -> dict:
    """Every backend tracks the clip ``rounds`` times, interleaved frame by frame (the backend order
    alternates per frame), so that load from other jobs on the machine falls on all backends alike."""
    from siamattn.errors import SiamAttnError
    from siamattn.runtime.demo import DEMO_INIT, demo_clip
    from siamattn.runtime.video import open_source

    frames = list(open_source(str(demo_clip()), clip_frames))
    trackers, rows = [], []
    for name in backends:
        try:
            tracker, label = _open_backend(int8_dir if name == "onnxruntime-int8" and int8_dir else model_dir, name,
                                           threads)
        except (SiamAttnError, ImportError) as exc:
            rows.append({"backend": name, "error": str(exc).splitlines()[0]})
            continue
        tracker.init(frames[0], DEMO_INIT)
        for f in frames[1:4]:  # warm-up: lazy initialisation, CUDA-graph capture, TensorRT-RTX JIT
            tracker.track(f)
        trackers.append((name, label, tracker))
    totals: dict[str, list[list[float]]] = {name: [] for name, _, _ in trackers}
    stages: dict[str, dict[str, list[float]]] = {name: {} for name, _, _ in trackers}
    for _ in range(rounds):
        for name, _, tracker in trackers:
            tracker.init(frames[0], DEMO_INIT)
            totals[name].append([])
        for i, f in enumerate(frames[1:]):
            order = trackers if i % 2 == 0 else trackers[::-1]
            for name, _, tracker in order:
                ms = tracker.track(f).timings_ms
                totals[name][-1].append(ms["total"])
                for k, v in ms.items():
                    stages[name].setdefault(k, []).append(v)
    for name, label, _ in trackers:
        a = np.concatenate([np.asarray(r) for r in totals[name]])
        rows.append({"backend": label, "name": name, "frames": int(a.size), "rounds": rounds,
                     "median_ms": float(np.median(a)), "p90_ms": float(np.percentile(a, 90)),
                     "round_medians_ms": [float(np.median(r)) for r in totals[name]],
                     "stage_median_ms": {k: float(np.median(v)) for k, v in stages[name].items()},
                     "fps": float(1000.0 / a.mean())})
    result = {"rows": rows}
    names = [n for n, _, _ in trackers]
    # paired per frame: each frame's runs were back to back, so their ratio cancels slow load drifts
    for slow, fast, key in (("torch", "onnxruntime", "torch_over_onnxruntime"),
                            ("onnxruntime", "onnxruntime-int8", "fp32_over_int8_onnxruntime")):
        if slow in names and fast in names:
            ratio = np.concatenate([np.asarray(a) / np.asarray(b)
                                    for a, b in zip(totals[slow], totals[fast], strict=True)])
            result[key] = {"median": float(np.median(ratio)), "p10": float(np.percentile(ratio, 10)),
                           "p90": float(np.percentile(ratio, 90))}
    return result


def int8_search_profiles(model_dir: Path, int8_dir: Path, threads: int, runs: int = 5) -> dict:
    """Op-type profile (ms per run) of the FP32 search graph and the INT8 one the CPU runs, on the same real crop
    and cache (the demo clip's second frame from its first), alternating."""
    from siamattn.runtime.demo import DEMO_INIT, demo_clip
    from siamattn.runtime.loader import load_reference
    from siamattn.runtime.polygraphy_data import record_graph_io
    from siamattn.runtime.video import open_source

    fp32, q = _manifest(model_dir), _manifest(int8_dir)
    calls = record_graph_io(open_source(str(demo_clip()), 2), DEMO_INIT, load_reference(model_dir), fp32.config(), 2)
    feeds = calls["search"][0][0]
    entry = q.data["graphs"]["search"]
    int8_path = q.root / entry["cpu_file"] if entry.get("cpu_file") else q.onnx_path("search")
    profiles = _op_profiles_ms({"fp32": (fp32.onnx_path("search"), feeds), "int8": (int8_path, feeds)}, threads, runs)
    return {"search_op_profile_ms": profiles,
            "search_total_ms": {k: float(sum(v.values())) for k, v in profiles.items()},
            "int8_search_layers": {k: entry.get("int8", {}).get(k) for k in ("int8_layers", "float_layers")}}


def _target_boxes(n: int, width: int, height: int) -> list[tuple[float, float, float, float]]:
    """N boxes spread over the frame: the demo box first, then a deterministic grid of 120x100 regions."""
    from siamattn.runtime.demo import DEMO_INIT

    boxes = [tuple(float(v) for v in DEMO_INIT)]
    cols, rows = 6, 3
    for k in range(n - 1):
        c, r = k % cols, (k // cols) % rows
        boxes.append((40.0 + c * (width - 200) / (cols - 1) + 7 * (k // (cols * rows)), 60.0 + r * (height - 220) / 2,
                      120.0, 100.0))
    return boxes[:n]  # type: ignore[return-value]


def many_targets(model_dir: Path, counts: list[int], clip_frames: int, threads: int) -> dict:
    """Per-frame ms of one MultiTracker with N targets vs N single Trackers (ONNX Runtime, CPU or CUDA),
    interleaved per frame; the single trackers share one set of sessions (N GraphBackends on one runner)."""
    from siamattn.runtime.demo import demo_clip
    from siamattn.runtime.graph_backend import GraphBackend
    from siamattn.runtime.ort_runner import OnnxRuntimeRunner
    from siamattn.runtime.tracker import MultiTracker
    from siamattn.runtime.video import open_source

    manifest = _manifest(model_dir)
    cfg = manifest.config()
    runner = OnnxRuntimeRunner({n: manifest.onnx_path(n) for n in manifest.order}, "auto", threads)
    frames = list(open_source(str(demo_clip()), clip_frames))
    h, w = frames[0].shape[:2]
    rows = []
    for n in counts:
        boxes = _target_boxes(n, w, h)
        multi = MultiTracker(GraphBackend(runner, max_batch=manifest.max_targets), cfg)
        singles = [Tracker(GraphBackend(runner, max_batch=1), cfg) for _ in boxes]
        for b in boxes:
            multi.add(frames[0], b)
        for t, b in zip(singles, boxes, strict=True):
            t.init(frames[0], b)
        multi_ms, single_ms = [], []
        for i, f in enumerate(frames[1:]):
            for which in (("multi", "singles") if i % 2 == 0 else ("singles", "multi")):
                t0 = time.perf_counter()
                if which == "multi":
                    multi.track(f)
                else:
                    for t in singles:
                        t.track(f)
                (multi_ms if which == "multi" else single_ms).append((time.perf_counter() - t0) * 1000.0)
        skip = 2  # warm-up frames (first runs of each batch size)
        m, s = np.asarray(multi_ms[skip:]), np.asarray(single_ms[skip:])
        ratio = m / s
        rows.append({"targets": n, "frames": int(m.size), "search_calls_per_frame": -(-n // multi.max_batch),
                     "multi_median_ms": float(np.median(m)), "singles_median_ms": float(np.median(s)),
                     "multi_per_target_ms": float(np.median(m)) / n, "ratio_median": float(np.median(ratio)),
                     "ratio_p10": float(np.percentile(ratio, 10)), "ratio_p90": float(np.percentile(ratio, 90))})
        r = rows[-1]
        print(f"{n:>7} {r['search_calls_per_frame']:>6} {r['multi_median_ms']:>10.1f} "
              f"{r['singles_median_ms']:>11.1f} {r['multi_per_target_ms']:>10.1f} {r['ratio_median']:>7.2f} "
              f"({r['ratio_p10']:.2f}-{r['ratio_p90']:.2f})", flush=True)
    return {"backend": f"onnxruntime {runner.device} {manifest.precision}", "max_targets": manifest.max_targets,
            "rows": rows}


def _search_feeds(template, crop: int, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """n targets' search inputs: each the template graph's cache of a random image and a random search crop,
    stacked on the first axis (real caches: random normal ones can make the attention slow with inf/NaN)."""
    per_target = []
    for _ in range(n):
        z = (rng.random((1, 3, *template.get_inputs()[0].shape[2:])) * 255.0).astype(np.float32)
        feeds = dict(zip([o.name for o in template.get_outputs()], template.run(None, {"z": z}), strict=True))
        feeds["x"] = (rng.random((1, 3, crop, crop)) * 255.0).astype(np.float32)
        per_target.append(feeds)
    return {k: np.concatenate([f[k] for f in per_target]) for k in per_target[0]}


def _op_profiles_ms(cases: dict[str, tuple[Path, dict[str, np.ndarray]]], threads: int,
                    runs: int) -> dict[str, dict[str, float]]:
    """ONNX Runtime's own per-kernel times of each (graph, feeds), summed by op type, ms per run; the graphs run
    alternately (load from other jobs falls on all alike). A Conv whose weight is computed in the graph (the
    depth-wise xcorr) is counted as ``Conv (xcorr)``."""
    import onnx
    import onnxruntime as ort

    from siamattn.runtime.ort_runner import session_options

    sessions, xcorr = {}, {}
    for label, (path, _) in cases.items():
        graph = onnx.load(str(path)).graph
        stored = {t.name for t in graph.initializer}
        xcorr[label] = {n.name for n in graph.node if n.op_type == "Conv" and n.input[1] not in stored}
        opts = session_options(ort, threads)
        opts.enable_profiling = True
        opts.profile_file_prefix = str(Path(tempfile.gettempdir()) / f"siamattn-profile-{os.getpid()}-{len(sessions)}")
        sessions[label] = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    for _ in range(runs):
        for label, (_, feeds) in cases.items():
            sessions[label].run(None, feeds)
    out = {}
    for label, sess in sessions.items():
        profile = Path(sess.end_profiling())
        events = json.loads(profile.read_text())
        profile.unlink()
        ms: dict[str, float] = {}
        for e in events:
            if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
                op = e["args"]["op_name"]
                op = "Conv (xcorr)" if op == "Conv" and e["name"].removesuffix("_kernel_time") in xcorr[label] else op
                ms[op] = ms.get(op, 0.0) + e["dur"] / 1000.0 / runs
        out[label] = dict(sorted(ms.items(), key=lambda kv: -kv[1]))
    return out


def search_graph_alone(model_dir: Path, counts: list[int], runs: int, threads: int) -> dict:
    """ms per call of the search graphs alone (ONNX Runtime CPU): ``search`` on one target and ``search_multi``
    on each count up to max_targets, interleaved round robin, median of ``runs``; then ONNX Runtime's op-type
    profile of ``search`` on one target and ``search_multi`` on max_targets (where the time goes)."""
    import onnxruntime as ort

    from siamattn.runtime.ort_runner import session_options

    manifest = _manifest(model_dir)
    rng = np.random.default_rng(0)

    def session(name: str):
        return ort.InferenceSession(str(manifest.onnx_path(name)), session_options(ort, threads),
                                    providers=["CPUExecutionProvider"])

    template = session("template")
    top = manifest.max_targets
    cases = [("search", 1)] + [("search_multi", n) for n in counts if 1 <= n <= top]
    sessions = {name: session(name) for name in {g for g, _ in cases}}
    crop = manifest.config().tracker.instance_size
    feeds = {case: _search_feeds(template, crop, rng, case[1]) for case in cases}
    times: dict[tuple[str, int], list[float]] = {case: [] for case in cases}
    for r in range(runs + 1):  # the first round warms up
        for case in cases:
            t0 = time.perf_counter()
            sessions[case[0]].run(None, feeds[case])
            if r:
                times[case].append((time.perf_counter() - t0) * 1000.0)
    rows = [{"graph": g, "targets": n, "median_ms": float(np.median(times[(g, n)])),
             "per_target_ms": float(np.median(times[(g, n)])) / n} for g, n in cases]
    profile = _op_profiles_ms({f"{g} x{n}": (manifest.onnx_path(g), feeds[(g, n)])
                               for g, n in (("search", 1), ("search_multi", top))}, threads, runs)
    xcorr = (manifest.data["graphs"].get("search_multi") or {}).get("xcorr")
    return {"runs": runs, "search_multi_xcorr": xcorr, "rows": rows, "op_profile_ms": profile}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON path (default bench/results/runtime_host.json or runtime_e2e.json)")
    parser.add_argument("--model", type=Path, help="export folder: measure end-to-end fps per backend instead")
    parser.add_argument("--backends", default="onnxruntime,torch,tensorrt")
    parser.add_argument("--clip-frames", type=int, default=132)
    parser.add_argument("--threads", type=int, default=0,
                        help="intra-op threads of every CPU backend (0: the physical cores)")
    parser.add_argument("--rounds", type=int, default=1, help="passes over the clip (backends interleaved)")
    parser.add_argument("--int8", type=Path, help="with --model: an INT8 export of the same model, tracked as "
                                                  "onnxruntime-int8 beside the other backends")
    parser.add_argument("--multi", help="with --model: target counts, e.g. 1,2,4,8,16: one MultiTracker vs N "
                                        "single Trackers per frame (ONNX Runtime)")
    args = parser.parse_args(argv)
    results_dir = Path(__file__).parent / "results"
    if args.model and args.multi:
        return _many_targets_main(args, argv, results_dir)
    if args.model:
        return _end_to_end_main(args, argv, results_dir)
    return _host_main(args, results_dir)


def _command(argv: list[str] | None) -> str:
    return "python bench/runtime.py " + " ".join(argv if argv is not None else sys.argv[1:])


def _many_targets_main(args: argparse.Namespace, argv: list[str] | None, results_dir: Path) -> int:
    """--model --multi: one MultiTracker with N targets vs N single Trackers, and the search graphs alone."""
    from siamattn.runtime.ort_runner import physical_cores

    threads = args.threads or physical_cores()
    load_before = os.getloadavg()
    print(f"{'targets':>7} {'calls':>6} {'multi ms':>10} {'singles ms':>11} {'ms/target':>10} {'ratio':>7} "
          "(p10-p90)")
    counts = [int(v) for v in args.multi.split(",")]
    result = many_targets(args.model, counts, args.clip_frames, threads)
    result["search_graph"] = alone = search_graph_alone(args.model, counts, 7, threads)
    for r in alone["rows"]:
        print(f"{r['graph']} on {r['targets']} target(s): {r['median_ms']:.1f} ms ({r['per_target_ms']:.1f} "
              "per target)")
    for what, ops in alone["op_profile_ms"].items():
        print(f"{what} op profile (ms per run): " + ", ".join(f"{k} {v:.1f}" for k, v in list(ops.items())[:6]))
    out = args.out or results_dir / "runtime_multi.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    machine = {"cpu": cpu_name(), "cores": os.cpu_count(), "threads": threads,
               "load_avg_1_5_15_before": load_before, "load_avg_1_5_15_after": os.getloadavg()}
    print(f"{result['backend']}, max_targets {result['max_targets']}, threads {threads}; load average before "
          f"{load_before[0]:.1f}, after {os.getloadavg()[0]:.1f}")
    cmd = _command(argv)
    out.write_text(json.dumps({"what": "ms per frame: one MultiTracker with N targets vs N single Trackers, "
                                       "bigbuckbunny.mp4, interleaved per frame", "command": cmd,
                               "model": str(args.model), "machine": machine, "date": time.strftime("%Y-%m-%d"),
                               **result}, indent=2))
    print(f"wrote {out}")
    return 0


def _end_to_end_main(args: argparse.Namespace, argv: list[str] | None, results_dir: Path) -> int:
    """--model: end-to-end ms per frame per backend (and INT8 beside FP32 with --int8)."""
    from siamattn.runtime.ort_runner import physical_cores

    threads = args.threads or physical_cores()
    load_before = os.getloadavg()
    backends = args.backends.split(",") + (["onnxruntime-int8"] if args.int8 else [])
    result = end_to_end(args.model, backends, args.clip_frames, threads, args.rounds, args.int8)
    if args.int8:
        result["int8"] = int8_search_profiles(args.model, args.int8, threads)
    rows = result["rows"]
    print(f"{'backend':<34} {'frames':>6} {'median ms':>10} {'p90 ms':>8} {'fps':>7}  round medians ms")
    for r in rows:
        if "error" in r:
            print(f"{r['backend']:<34} not available: {r['error']}")
        else:
            rounds = " ".join(f"{m:.1f}" for m in r["round_medians_ms"])
            print(f"{r['backend']:<34} {r['frames']:>6} {r['median_ms']:>10.1f} {r['p90_ms']:>8.1f} "
                  f"{r['fps']:>7.1f}  {rounds}")
    if "fp32_over_int8_onnxruntime" in result:
        q = result["fp32_over_int8_onnxruntime"]
        print(f"per-frame speed-up of the INT8 export over FP32 on ONNX Runtime: median {q['median']:.2f}x "
              f"(p10 {q['p10']:.2f}, p90 {q['p90']:.2f})")
        for k, ops in result["int8"]["search_op_profile_ms"].items():
            print(f"search graph {k} op profile (ms per run): "
                  + ", ".join(f"{op} {ms:.1f}" for op, ms in list(ops.items())[:8]))
    if "torch_over_onnxruntime" in result:
        q = result["torch_over_onnxruntime"]
        print(f"per-frame speed-up of ONNX Runtime over torch (same frame, back to back): median "
              f"{q['median']:.2f}x (p10 {q['p10']:.2f}, p90 {q['p90']:.2f})")
    out = args.out or results_dir / "runtime_e2e.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    machine = {"cpu": cpu_name(), "cpu_flags": cpu_flags(), "cores": os.cpu_count(), "threads": threads,
               "load_avg_1_5_15_before": load_before, "load_avg_1_5_15_after": os.getloadavg()}
    print(f"threads {threads}; load average before {load_before[0]:.1f}, after {os.getloadavg()[0]:.1f}")
    cmd = _command(argv)
    out.write_text(json.dumps({"what": "end-to-end ms per frame on bigbuckbunny.mp4, backends interleaved",
                               "command": cmd, "model": str(args.model), "machine": machine,
                               "date": time.strftime("%Y-%m-%d"), **result}, indent=2))
    print(f"wrote {out}")
    return 0


def _host_main(args: argparse.Namespace, results_dir: Path) -> int:
    """No --model: the host-side cost of the tracker (a backend returning precomputed maps)."""
    args.out = args.out or results_dir / "runtime_host.json"
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
    machine = {"cpu": cpu_name(), "cores": os.cpu_count(),
               "python": sys.version.split()[0], "numpy": np.__version__, "opencv": cv2.__version__,
               "opencv_threads": cv2.getNumThreads()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"what": "host-side ms per frame (no network time)", "machine": machine,
                                    "date": time.strftime("%Y-%m-%d"), "results": results}, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
