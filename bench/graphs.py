"""Per-graph latency and where it goes: each exported graph on each backend, with an operator breakdown.

    python bench/graphs.py --model out/demo/model [--backends onnxruntime,torch,tensorrt-rtx] [--runs 30]
    python bench/graphs.py --model exported/r50 --runs 5 --graphs search --out bench/results/graphs_r50.json
    python bench/graphs.py --model out/fp32 --int8 out/int8 --backends onnxruntime,torch   # INT8 beside FP32

For every graph of the export folder (template, search, refine_box, refine_mask) and backend:

* ``onnxruntime``: the session the runtime opens (runtime/ort_runner.py ``session_options``), timed over
  ``--runs`` runs after ``--warmup``; then a second session with ONNX Runtime's profiler, whose per-node
  kernel times are summed per operator type (the optimised graph's operators: fused Conv, FusedMatMul, ...);
* ``torch``: the model's own stage (the export's checkpoint or random-init seed) in eager FP32, timed the
  same way, with torch.profiler's self CPU time per aten operator;
* ``tensorrt-rtx`` / ``tensorrt``: an engine built from the graph with detailed profiling verbosity and the
  engine inspector's layer list (layer types counted). Deserialising the engine for the inspector needs a
  CUDA driver: without one the row says so and gives the builder's network layer count only.

With ``--int8 DIR`` (an INT8 export of the same model, ``siamattn export --precision int8``), each graph also
runs as ``onnxruntime-int8``: the file the runtime loads on a CPU (the uint8-activation twin, export/int8.py), with
its operator profile (QLinearConv, the float layers left between Q/DQ pairs and their cost), and the speed-up over
the FP32 graph measured in alternation with it. The JSON records the CPU's INT8 flags (VNNI, AMX).

Inputs are the same arrays for every backend: a seeded random image per graph input image, the template
graph's own outputs as the cache, the search graph's outputs as refinement features, and a fixed RoI. Runs
of the backends alternate graph by graph, so load from other jobs on the machine affects both alike.
Prints a table and writes JSON (default bench/results/graphs_<config>.json).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from siamattn.host import cpu_flags, cpu_name
from siamattn.manifest import Manifest
from siamattn.runtime.ort_runner import physical_cores, session_options

TOP = 8


def _timed(fn: Callable[[], object], runs: int, warmup: int) -> dict[str, float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    a = np.asarray(times)
    return {"median_ms": float(np.median(a)), "p90_ms": float(np.percentile(a, 90)), "min_ms": float(a.min()),
            "runs": runs}


def _breakdown(per_op_us: dict[str, float], counts: dict[str, int], runs: int) -> list[dict[str, Any]]:
    total = sum(per_op_us.values()) or 1.0
    rows = [{"op": op, "ms": us / runs / 1e3, "share": us / total, "nodes": counts.get(op, 0)}
            for op, us in per_op_us.items()]
    return sorted(rows, key=lambda r: -r["ms"])


# -------------------------------------------------------------------------------------------- inputs


def graph_inputs(manifest: Manifest, threads: int) -> dict[str, dict[str, np.ndarray]]:
    """Feeds per graph, chained through ONNX Runtime (template -> cache -> search -> features)."""
    import onnxruntime as ort

    rng = np.random.default_rng(0)
    cfg = manifest.config()
    size = cfg.tracker.instance_size
    roi = np.array([[0, 0.3 * size, 0.35 * size, 0.7 * size, 0.65 * size]], dtype=np.float32)
    feeds: dict[str, dict[str, np.ndarray]] = {}
    produced: dict[str, np.ndarray] = {}
    n = manifest.max_targets  # the batch graphs ('targets' axis) run full
    for name in manifest.order:
        spec = manifest.graph(name)
        feed = {}
        for t in spec.inputs:
            shape = tuple(n if d < 0 else d for d in t.shape)
            if t.name in produced:  # batch-1 producers feed the batch graphs, one copy per target
                v = produced[t.name]
                feed[t.name] = np.repeat(v[:1], shape[0], axis=0) if v.shape[0] != shape[0] else v
            elif t.name == "rois":  # column 0: the target's index in the batch
                feed[t.name] = np.repeat(roi, shape[0], axis=0)
                feed[t.name][:, 0] = np.arange(shape[0])
            else:  # an image: raw 0..255 BGR
                feed[t.name] = (rng.random(shape, dtype=np.float32) * 255.0).astype(np.float32)
        feeds[name] = feed
        sess = ort.InferenceSession(str(manifest.onnx_path(name)), session_options(ort, threads),
                                    providers=["CPUExecutionProvider"])
        outs = sess.run(None, feed)
        produced.update({o.name: v for o, v in zip(sess.get_outputs(), outs, strict=True)})
    return feeds


# ---------------------------------------------------------------------------------------- onnxruntime


def ort_graph(path: Path, feed: dict[str, np.ndarray], threads: int, runs: int, warmup: int,
              profile_runs: int, spinning: bool = False) -> dict[str, Any]:
    import onnxruntime as ort

    t0 = time.perf_counter()
    sess = ort.InferenceSession(str(path), session_options(ort, threads, spinning),
                                providers=["CPUExecutionProvider"])
    create_ms = (time.perf_counter() - t0) * 1e3
    result: dict[str, Any] = {"session_create_ms": create_ms, **_timed(lambda: sess.run(None, feed), runs, warmup)}
    if profile_runs <= 0:
        return result
    with tempfile.TemporaryDirectory(prefix="siamattn-ortprof-") as tmp:
        opts = session_options(ort, threads, spinning)
        opts.enable_profiling = True
        opts.profile_file_prefix = str(Path(tmp) / "prof")
        psess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        for _ in range(warmup):
            psess.run(None, feed)
        # The profile records every run since the session started: count the warm-up runs too.
        for _ in range(profile_runs):
            psess.run(None, feed)
        events = json.loads(Path(psess.end_profiling()).read_text())
    per_op: dict[str, float] = defaultdict(float)
    per_node: dict[tuple[str, str], float] = defaultdict(float)
    nodes: dict[str, set[str]] = defaultdict(set)
    for ev in events:
        if ev.get("cat") == "Node" and ev.get("name", "").endswith("_kernel_time"):
            op = ev.get("args", {}).get("op_name", "?")
            per_op[op] += float(ev.get("dur", 0))
            per_node[(ev["name"][: -len("_kernel_time")], op)] += float(ev.get("dur", 0))
            nodes[op].add(ev["name"])
    total_runs = warmup + profile_runs
    result["ops"] = _breakdown(per_op, {k: len(v) for k, v in nodes.items()}, total_runs)
    slowest = sorted(per_node.items(), key=lambda kv: -kv[1])[:15]
    result["slowest_nodes"] = [{"node": n, "op": op, "ms": us / total_runs / 1e3} for (n, op), us in slowest]
    result["per_node"] = {n: us / total_runs / 1e3 for (n, _), us in per_node.items()}
    result["optimized_nodes"] = sum(len(v) for v in nodes.values())
    return result


# ---------------------------------------------------------------------------------------------- torch


def torch_stage(model: Any, name: str, input_names: list[str]) -> Callable[..., Any]:
    """The model's method behind graph ``name``, called with the graph's inputs in graph order."""
    if name == "template":
        return model.template
    if name == "search":
        cache_names = input_names[1:]  # x, then the cache tensors under their graph names
        return lambda x, *cache: model.search(x, dict(zip(cache_names, cache, strict=True)))
    return {"refine_box": model.refine_box, "refine_mask": model.refine_mask}[name]


def torch_graph(model: Any, name: str, feed: dict[str, np.ndarray], runs: int, warmup: int,
                profile_runs: int) -> dict[str, Any]:
    import torch

    args = [torch.from_numpy(v) for v in feed.values()]
    fn = torch_stage(model, name, list(feed))

    def call() -> object:
        with torch.inference_mode():
            return fn(*args)

    result: dict[str, Any] = _timed(call, runs, warmup)
    if profile_runs > 0:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(profile_runs):
                call()
        per_op = {e.key: float(e.self_cpu_time_total) for e in prof.key_averages() if e.self_cpu_time_total > 0}
        counts = {e.key: int(e.count) // profile_runs for e in prof.key_averages()}
        result["ops"] = _breakdown(per_op, counts, profile_runs)
    return result


# ------------------------------------------------------------------------------------------ TensorRT

_INSPECT = r"""
import json, sys
from collections import Counter
from siamattn.tensorrt_env import resolve_flavour
trt = resolve_flavour(sys.argv[1]).load()
log = trt.Logger(trt.Logger.ERROR)
if sys.argv[3] and hasattr(trt, "get_plugin_registry"):
    trt.get_plugin_registry().load_library(sys.argv[3])
b = trt.Builder(log)
flags = 0
if hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED"):
    flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
net = b.create_network(flags)
parser = trt.OnnxParser(net, log)
out = {}
if not parser.parse_from_file(sys.argv[2]):
    out["error"] = "parse failed: " + "; ".join(parser.get_error(i).desc() for i in range(parser.num_errors))
else:
    cfg = b.create_builder_config()
    cfg.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    data = b.build_serialized_network(net, cfg)
    out["network_layers"] = net.num_layers
    if data is None:
        out["error"] = "build failed"
    else:
        out["engine_bytes"] = data.nbytes
        engine = trt.Runtime(log).deserialize_cuda_engine(data)
        if engine is None:
            out["note"] = "engine built; the inspector needs the engine deserialised, which needs a CUDA driver"
        else:
            info = json.loads(engine.create_engine_inspector().get_engine_information(
                trt.LayerInformationFormat.JSON))
            layers = info.get("Layers", [])
            out["engine_layers"] = len(layers)
            out["layer_types"] = dict(Counter(l.get("LayerType", "?") if isinstance(l, dict) else "?"
                                              for l in layers).most_common())
print("RESULT " + json.dumps(out))
"""


def trt_graph(flavour: str, path: Path, plugin_library: str | None) -> dict[str, Any]:
    """Build an engine from ``path`` in a child process (TensorRT-RTX wants its unversioned library on the
    search path: the export's own engine-building environment) and list its layers where possible."""
    from siamattn.export.engine import _child_env
    from siamattn.tensorrt_env import resolve_flavour

    try:
        backend = resolve_flavour(flavour)
    except Exception as exc:
        return {"error": str(exc).splitlines()[0]}
    assert backend is not None
    with tempfile.TemporaryDirectory(prefix="siamattn-trtinspect-") as tmp:
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", _INSPECT, flavour, str(path), plugin_library or ""],
                              env=_child_env(backend, Path(tmp)), capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if not lines:
        return {"error": f"inspector process failed (exit {proc.returncode}): {proc.stderr.strip()[-200:]}"}
    result = json.loads(lines[-1][len("RESULT "):])
    result["build_s"] = round(time.perf_counter() - t0, 1)
    result["version"] = backend.version
    return result


# ----------------------------------------------------------------------------------------------- main


def _print_table(rows: list[dict[str, Any]]) -> None:
    print(f"{'graph':<12} {'backend':<14} {'median ms':>10} {'p90 ms':>8} {'min ms':>8}  top operators (ms, share)")
    for r in rows:
        if "error" in r or "median_ms" not in r:
            extra = r.get("error") or r.get("note") or ""
            layers = r.get("engine_layers") or r.get("network_layers")
            print(f"{r['graph']:<12} {r['backend']:<14} {'-':>10} {'-':>8} {'-':>8}  "
                  f"{f'{layers} layers; ' if layers else ''}{extra}")
            if r.get("layer_types"):
                print(f"{'':<12} {'':<14} {'':>28}  " + ", ".join(f"{k} {v}" for k, v in r["layer_types"].items()))
            continue
        ops = ", ".join(f"{o['op']} {o['ms']:.1f} ({o['share']:.0%})" for o in r.get("ops", [])[:TOP])
        print(f"{r['graph']:<12} {r['backend']:<14} {r['median_ms']:>10.2f} {r['p90_ms']:>8.2f} "
              f"{r['min_ms']:>8.2f}  {ops}")


def _int8_speedups(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per graph: FP32 and INT8 median ms on ONNX Runtime and their ratio."""
    by = {(r["graph"], r["backend"]): r for r in rows if "median_ms" in r}
    out = {}
    for (g, b), r in by.items():
        if b == "onnxruntime-int8" and (g, "onnxruntime") in by:
            f = by[(g, "onnxruntime")]["median_ms"]
            out[g] = {"fp32_ms": f, "int8_ms": r["median_ms"], "speedup": f / r["median_ms"]}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="export folder (siamattn export --out)")
    parser.add_argument("--backends", default="onnxruntime,torch,tensorrt-rtx")
    parser.add_argument("--graphs", default="", help="comma-separated subset (default: every graph)")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--profile-runs", type=int, default=5, help="runs under the profilers (0: no breakdown)")
    parser.add_argument("--threads", type=int, default=0, help="threads for both CPU backends (0: physical cores)")
    parser.add_argument("--plugin-library", default=None, help="for TensorRT graphs that need our plugins")
    parser.add_argument("--int8", type=Path, default=None,
                        help="an INT8 export of the same model: its graphs run beside the FP32 ones (onnxruntime-int8)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    threads = args.threads or physical_cores()
    manifest = Manifest.load(args.model, verify=False)
    cfg = manifest.config()
    backends = [b for b in args.backends.split(",") if b]
    int8 = Manifest.load(args.int8, verify=False) if args.int8 else None
    if int8 is not None:
        backends.append("onnxruntime-int8")
    graphs = [g for g in manifest.order if not args.graphs or g in args.graphs.split(",")]
    feeds = graph_inputs(manifest, threads)
    model = None
    if "torch" in backends:
        import torch

        from siamattn.runtime.loader import load_reference

        torch.set_num_threads(threads)
        model = load_reference(args.model).model  # type: ignore[attr-defined]
    rows: list[dict[str, Any]] = []
    for g in graphs:
        for b in backends:
            row: dict[str, Any] = {"graph": g, "backend": b}
            try:
                if b == "onnxruntime":
                    row.update(ort_graph(manifest.onnx_path(g), feeds[g], threads, args.runs, args.warmup,
                                         args.profile_runs))
                elif b == "onnxruntime-int8":
                    assert int8 is not None
                    entry = int8.data["graphs"].get(g, {})
                    path = int8.root / entry["cpu_file"] if entry.get("cpu_file") else int8.onnx_path(g)
                    row.update(ort_graph(path, feeds[g], threads, args.runs, args.warmup, args.profile_runs))
                    row["precision"] = entry.get("precision", "fp32")
                    row["file"] = path.name
                elif b == "torch":
                    row.update(torch_graph(model, g, feeds[g], args.runs, args.warmup, args.profile_runs))
                elif b in ("tensorrt-rtx", "tensorrt"):
                    row.update(trt_graph(b, manifest.onnx_path(g), args.plugin_library))
                else:
                    row["error"] = f"unknown backend {b}"
            except Exception as exc:  # one backend failing must not hide the others' numbers
                row["error"] = f"{exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            rows.append(row)
            _print_table([row])
    speedups = _int8_speedups(rows)
    for g, v in speedups.items():
        print(f"{g}: INT8 {v['int8_ms']:.1f} ms vs FP32 {v['fp32_ms']:.1f} ms on ONNX Runtime: {v['speedup']:.2f}x")
    name = cfg.name if hasattr(cfg, "name") else manifest.data["config"].get("name", "model")
    out = args.out or Path(__file__).parent / "results" / f"graphs_{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    import onnxruntime

    machine = {"cpu": cpu_name(), "logical_cpus": os.cpu_count(),
               "physical_cores": physical_cores(), "threads": threads, "load_avg_1_5_15": os.getloadavg(),
               "cpu_flags": cpu_flags(), "python": sys.version.split()[0], "onnxruntime": onnxruntime.__version__}
    if model is not None:
        import torch

        machine["torch"] = torch.__version__
    out.write_text(json.dumps({"what": "per-graph latency (ms) and operator breakdown per backend",
                               "model": str(args.model), "config": name,
                               "command": "python bench/graphs.py " + " ".join(argv if argv is not None
                                                                               else sys.argv[1:]),
                               "machine": machine, "date": time.strftime("%Y-%m-%d"), "results": rows,
                               "int8_model": str(args.int8) if args.int8 else None, "int8_speedup": speedups},
                              indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
