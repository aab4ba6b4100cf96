"""``siamattn export --precision int8``: the FP32 graphs the exporter wrote become Q/DQ graphs (int8.py), calibrated
on real feeds (calibration.py), with the choices and measurements in manifest.json.

Files per quantized graph: ``<graph>.onnx``, symmetric INT8 Q/DQ (what the TensorRT / TensorRT-RTX engine builders
read and ONNX Runtime's CUDA provider runs), and ``<graph>.cpu.onnx``, the same numbers with uint8 activations
(what ONNX Runtime's CPU kernels run fast; int8.cpu_variant). The template graph stays FP32.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx

from siamattn.errors import ConfigError, InputError
from siamattn.export import calibration as calib
from siamattn.export import int8
from siamattn.export.postpass import op_counts
from siamattn.manifest import ManifestDraft, sha256_file
from siamattn.outputs import write_file

CPU_SUFFIX = ".cpu.onnx"


@dataclass
class Int8Options:
    source: str | None = None  # video, image folder or KIND:ROOT; None: the demo clip
    init: tuple[float, float, float, float] | None = None
    frames: int | None = None  # None: calibration.DEFAULT_FRAMES
    method: str = int8.DEFAULT_METHOD
    cache: str | None = None  # calibration cache file: written, or reused when it exists (this model's only)


@dataclass
class Int8Plan:
    """What an INT8 export will do, checked before any work (one-line errors)."""

    opts: Int8Options
    key: str  # the model the calibration belongs to (int8.model_key)
    source: calib.CalibrationSource | None  # None when the cache is reused
    cache: dict[str, Any] | None  # the reused cache


def check_options(opts: Int8Options, trt_version: str | None, ops: str) -> None:
    if opts.method not in int8.METHODS:
        raise ConfigError(f"--calib-method must be one of {', '.join(int8.METHODS)} (got {opts.method!r})")
    if trt_version == "8.5":
        raise ConfigError("--precision int8 is built for the strongly typed TensorRT profiles (10, 11): the 8.5 "
                          "profile builds FP16 by builder flag and has no INT8 path here; use --trt-version 10 or 11")
    if opts.cache is not None:
        p = Path(opts.cache)
        if p.exists() and not p.is_file():
            raise InputError(f"--calib-cache '{p}' is not a file")
        if not p.exists() and not p.parent.is_dir():
            raise InputError(f"--calib-cache '{p}': folder '{p.parent}' does not exist")


def prepare(opts: Int8Options, weights: dict[str, Any], cfg_dict: dict[str, Any], lowering: dict[str, Any],
            trt_version: str | None, ops: str) -> Int8Plan:
    """Every check an INT8 export can fail, before the export starts."""
    check_options(opts, trt_version, ops)
    key = int8.model_key(weights, cfg_dict, lowering)
    cache = int8.read_cache(Path(opts.cache), key, opts.method) if opts.cache else None
    source = None if cache is not None else calib.resolve_source(opts.source, opts.init, opts.frames)
    return Int8Plan(opts, key, source, cache)


def quantize_export(plan: Int8Plan, model: Any, cfg: Any, out: Path, manifest: ManifestDraft, ir_version: int,
                    log: int8.Log) -> None:
    """Quantize the per-frame graphs of ``manifest`` in ``out`` (written FP32 by the exporter) and record how."""
    t0 = time.monotonic()
    names = [n for n in manifest.order if n in int8.QUANTIZED_GRAPHS and not manifest.entry(n)["custom_ops"]]
    entry: dict[str, Any] = {
        "library": f"onnxruntime.quantization {_ort_version()} (QDQ, quantize_static)",
        "weights": "int8 symmetric, per output channel", "activations": "int8 symmetric, per tensor",
        "cpu_files": "uint8 activations, zero point 128: the same numbers, ONNX Runtime's fast x86 form",
        "float_graphs": {"template": "runs once per video: INT8 saves nothing per frame; stays FP32"},
        "budget": {"group_limit": int8.GROUP_LIMIT, "graph_budget": int8.GRAPH_BUDGET,
                   "negligible": int8.NEGLIGIBLE},
        "verification": "the top-level 'verification' is of the FP32 graphs before quantization (random inputs); the "
                        "INT8 graphs' error on real held-back feeds is graphs.<name>.int8.error_held_back",
    }
    for n in manifest.order:
        if n in int8.QUANTIZED_GRAPHS and n not in names:
            entry["float_graphs"][n] = (f"plugin nodes ({', '.join(manifest.entry(n)['custom_ops'])}): ONNX "
                                        "Runtime cannot run it to calibrate; stays FP32 (--ops portable for INT8)")
            log(f"[{n}] int8: {entry['float_graphs'][n]}")
    if plan.cache is not None:
        log(f"int8: reusing calibration and layer choices from {plan.opts.cache} "
            f"({plan.cache['calibration']['source']})")
        ranges, layers = plan.cache["ranges"], plan.cache["int8_layers"]
        entry["calibration"] = {**plan.cache["calibration"], "cache": str(plan.opts.cache), "cache_reused": True}
        decisions: dict[str, Any] = plan.cache.get("decisions", {})
    else:
        assert plan.source is not None
        log(f"int8: calibrating on {plan.source.description}: running the PyTorch FP32 tracker over "
            f"{plan.source.frames} frames ...")
        calls = calib.collect_feeds(plan.source, model, cfg)
        ranges, layers, decisions = {}, {}, {}
        counts: dict[str, dict[str, int]] = {}
        for name in names:
            records = calls.get(name, [])
            if not records:
                raise InputError(f"int8: the tracker never called the {name} graph on the calibration source; "
                                 "choose a clip where the target is visible")
            fit, held = int8.split_records(records)
            counts[name] = {"calibration": len(fit), "held_back": len(held)}
            path = out / manifest.entry(name)["file"]
            log(f"[{name}] int8: {plan.opts.method} ranges from {len(fit)} calls; sensitivity on {len(held)} "
                "held-back calls ...")
            ranges[name] = int8.calibrate(path, [f for f, _ in fit], plan.opts.method)
            d = int8.choose_float(name, path, ranges[name], held, int8.JUDGED_OUTPUTS[name], log)
            layers[name] = d.int8_nodes()
            decisions[name] = d.to_dict()
        entry["calibration"] = {"source": plan.source.description, "kind": plan.source.kind,
                                "frames": plan.source.frames, "method": plan.opts.method, "calls": counts,
                                "held_back_every": int8.HELD_BACK_EVERY, "cache": plan.opts.cache,
                                "cache_reused": False}
        if plan.opts.cache:
            _write_cache(Path(plan.opts.cache), plan.key, entry["calibration"], ranges, layers, decisions)
            log(f"int8: calibration cache written to {plan.opts.cache}")
    for name in names:
        path = out / manifest.entry(name)["file"]
        if name not in ranges:
            raise InputError(f"--calib-cache '{plan.opts.cache}' has no ranges for graph '{name}'; delete it")
        q = int8.finalize_qdq(int8.quantize(path, ranges[name], layers[name], path), ir_version, name)
        onnx.save(q, str(path))
        cpu_path = out / f"{name}{CPU_SUFFIX}"
        onnx.save(int8.finalize_qdq(int8.cpu_variant(q), ir_version, name), str(cpu_path))
        d = decisions.get(name, {})
        manifest.update_graph(name, sha256=sha256_file(path), bytes=path.stat().st_size, op_counts=op_counts(q),
                              precision="int8", cpu_file=cpu_path.name, cpu_sha256=sha256_file(cpu_path),
                              int8={"qdq": int8.count_qdq(q), "int8_layers": len(layers[name]), **d})
        err = d.get("error_held_back", {})
        log(f"[{name}] int8: {len(layers[name])} INT8 layers, {d.get('float_layers', '?')} float; held-back "
            f"error " + ", ".join(f"{k} {v:.2e}" for k, v in err.items()))
    entry["seconds"] = round(time.monotonic() - t0, 1)
    manifest.set_export("int8", entry)


def _write_cache(path: Path, key: str, calibration: dict[str, Any], ranges: dict[str, Any],
                 layers: dict[str, list[str]], decisions: dict[str, Any]) -> None:
    data = {"format": int8.CACHE_FORMAT, "version": 1, "model_key": key, "method": calibration["method"],
            "calibration": {k: v for k, v in calibration.items() if k not in ("cache", "cache_reused")},
            "ranges": ranges, "int8_layers": layers, "decisions": decisions}
    write_file(path, json.dumps(data), "--calib-cache")


def _ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__
