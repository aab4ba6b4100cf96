"""The export pipeline behind ``siamattn export``: model -> four ONNX graphs -> manifest -> engines."""

from __future__ import annotations

import datetime as _dt
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx
import torch

from siamattn import __version__
from siamattn import export_choices as choices
from siamattn.config import Config
from siamattn.export import engine as engines
from siamattn.export.fp16 import ISLANDS, convert_to_fp16, find_islands
from siamattn.export.graphs import LOST_SUFFIX, MULTI_SUFFIX, Stage, export_stage, stages
from siamattn.export.lowering import DEFAULT_XCORR, lowerings
from siamattn.export.opset import downgrade_opset
from siamattn.export.postpass import custom_ops, describe_io, finalize, op_counts, optimize
from siamattn.export.random_model import random_model
from siamattn.export.verify import compare, rounding_noise, run_onnx
from siamattn.manifest import FILE_NAME, STAGE_ORDER, ManifestDraft, sha256_file
from siamattn.outputs import StagedDir, check_dir_output, only_names, pause_point
from siamattn.tensorrt_env import TrtFlavour, resolve_flavour
from siamattn.training.model import SiamAttn, load_checkpoint

RANDOM_INIT_NOTE = "RANDOM-INIT WEIGHTS: not a trained tracker; for pipeline tests only (pass --checkpoint)"

Log = Callable[[str], None]


@dataclass
class ExportOptions:
    ops: str = "portable"  # values of these: siamattn/export_choices.py
    precision: str = "fp16"
    # None: the TensorRT profile's default (export_choices.TRT_PROFILES; DEFAULT_XCORR / "onnx" for 10 and 11).
    xcorr: str | None = None
    deform_conv: str | None = None
    trt_version: str | None = None  # profile; None: the installed TensorRT's, else 10
    keep_fp32: tuple[str, ...] = ISLANDS
    # The template graph runs once per video, so FP16 saves nothing per frame there, while its outputs (features,
    # the channel affinity's softmax) feed every frame: by default it stays FP32 in FP16 exports.
    template_fp16: bool = False
    engine: str = "auto"  # values: siamattn/export_choices.py ENGINE
    plugin_library: str | None = None
    verify: bool = True
    seed: int = 0
    graphs: tuple[str, ...] = field(default=STAGE_ORDER)
    int8: Any = None  # int8_export.Int8Options for --precision int8 (None: calibrate on the demo clip)


def is_earlier_export(folder: Path) -> str | None:
    """None when ``folder`` holds an earlier export (what ``--overwrite`` may replace), else why not."""
    return only_names(folder, FILE_NAME, lambda n: n == FILE_NAME or n.endswith((".onnx", ".engine", ".cache")))


def check_output_dir(out: str | os.PathLike[str], overwrite: bool = False,
                     checkpoint: str | os.PathLike[str] | None = None) -> Path:
    """Refuse, before any long work, an ``out`` that cannot be written, holds the checkpoint, or exists
    (with ``overwrite``: exists and is not an earlier export)."""
    check_dir_output("--out", out, overwrite=overwrite, inputs={"--checkpoint": checkpoint}, what="export",
                     earlier=is_earlier_export)
    return Path(out)


def _versions(backend: TrtFlavour | None) -> dict[str, Any]:
    import onnxscript
    import torchvision

    out: dict[str, Any] = {"siamattn": __version__, "torch": torch.__version__, "torchvision": torchvision.__version__,
                           "onnx": onnx.__version__, "onnxscript": onnxscript.__version__}
    try:
        import onnxruntime

        out["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        out["onnxruntime"] = None
    out["tensorrt"] = None if backend is None else {"flavour": backend.flavour, "version": backend.version}
    return out


def load_model(cfg: Config, checkpoint: str | None, seed: int) -> tuple[SiamAttn, dict[str, Any]]:
    if checkpoint:
        model = load_checkpoint(checkpoint, cfg)
        return model, {"source": "checkpoint", "path": str(Path(checkpoint).resolve()),
                       "sha256": sha256_file(checkpoint), "seed": None, "note": None}
    return random_model(cfg, seed), {"source": "random-init", "path": None, "sha256": None, "seed": seed,
                                     "note": RANDOM_INIT_NOTE}


def graph_precision(name: str, opts: ExportOptions) -> str:
    if opts.precision == "int8" and name.endswith(LOST_SUFFIX):
        return "fp32"  # the long-term lost-window graphs are not calibrated (docs/EXPORT.md "INT8")
    return "fp32" if name == "template" and not opts.template_fp16 else opts.precision


def resolve_profile(opts: ExportOptions, backend: TrtFlavour | None) -> ExportOptions:
    """Fill the TensorRT profile (from the installed TensorRT unless given) and the lowerings it implies; a
    lowering the profile's TensorRT cannot build is a ConfigError naming the ones it can."""
    from dataclasses import replace

    from siamattn.errors import ConfigError

    name = opts.trt_version or choices.trt_profile_for(
        backend.version if backend is not None and not backend.is_rtx else None)
    problem = choices.TRT_VERSION.check(name)
    if problem:
        raise ConfigError(f"--trt-version {problem}")
    profile = choices.TRT_PROFILES[name]
    if backend is not None and opts.trt_version:
        mismatch = choices.profile_mismatch(name, backend.flavour, backend.version)
        if mismatch:
            raise ConfigError(f"cannot build engines here: {mismatch} (or pass --engine none)")
    xcorr = opts.xcorr or (DEFAULT_XCORR if DEFAULT_XCORR in profile.xcorr else profile.xcorr[0])
    deform_conv = opts.deform_conv or profile.deform_conv[0]
    for what, value, allowed in (("--xcorr", xcorr, profile.xcorr), ("--deform-conv", deform_conv,
                                                                      profile.deform_conv)):
        if value not in allowed:
            raise ConfigError(f"{what} {value} cannot be built by TensorRT {name}: use {' or '.join(allowed)}")
    return replace(opts, trt_version=name, xcorr=xcorr, deform_conv=deform_conv)


def export_graph(stage: Stage, cfg: Config, opts: ExportOptions) -> tuple[onnx.ModelProto, dict[str, Any]]:
    """One stage through dynamo export, the post-pass, FP16 conversion (or, for the 8.5 profile, the FP32 layers
    of the builder's precision constraints), the opset the profile's parser reads, and the checker."""
    assert opts.xcorr is not None and opts.deform_conv is not None, "resolve_profile first"
    profile = choices.trt_profile(opts.trt_version)
    # dynamo writes opset 18+ only; older targets are down-converted afterwards (export/opset.py).
    opset = max(min(cfg.export.opset, profile.opset), 18)
    batch = stage.max_batch if stage.dynamic_axes else None
    model = export_stage(stage, opset, lowerings(opts.ops, opts.xcorr, opts.deform_conv, batch))
    model = optimize(model)
    info: dict[str, Any] = {"precision": graph_precision(stage.name, opts)}
    if stage.dynamic_axes:
        info["max_batch"] = stage.max_batch
        info["xcorr"] = "conv (target axis padded to max_batch)" if opts.xcorr == "conv" else opts.xcorr
    if info["precision"] == "fp16" and profile.strongly_typed:
        model, report = convert_to_fp16(model, opts.keep_fp32)
        info["fp32_islands"] = report.summary()
        info["casts"] = report.casts
    elif info["precision"] == "fp16":
        # TensorRT 8.5 builds FP16 through its builder flag: the graph stays FP32 and the islands become layer
        # precision constraints (ONNX node names; the parser names layers after them), set by the engine builder.
        islands = find_islands(model, opts.keep_fp32)
        info["typing"] = "fp16-builder-flag"
        info["fp32_islands"] = {k: len(v) for k, v in islands.items()}
        info["fp32_layers"] = sorted({model.graph.node[i].name for v in islands.values() for i in v})
    if profile.opset < opset:
        model = downgrade_opset(model, profile.opset, stage.name)
    model = finalize(model, cfg.export.ir_version, stage.name)
    return model, info


def verify_graph(stage: Stage, model: onnx.ModelProto) -> dict[str, dict[str, Any]]:
    """Per output: the graph's error against the PyTorch stage, and PyTorch's own float32 rounding noise on
    these weights (``rounding_noise``), the scale an FP32 graph's error is to be read against."""
    feeds = {k: v.detach().cpu().numpy() for k, v in stage.inputs.items()}
    outputs, runner = run_onnx(model, feeds)
    result = compare(stage.reference(), outputs)
    noise = rounding_noise(stage)
    for name, v in result.items():
        v["runner"] = runner
        v["fp32_noise"] = noise[name]
    return result


def export_model(cfg: Config, out_dir: str | os.PathLike[str], checkpoint: str | None = None,
                 opts: ExportOptions | None = None, log: Log = print, overwrite: bool = False) -> dict[str, Any]:
    """Write the graphs, manifest.json and (with a TensorRT backend) the engines into ``out_dir``: built in a
    staging folder beside it and moved into place when complete (``overwrite``: replacing an earlier export;
    until then, and after any failure or interrupt, an existing ``out_dir`` is untouched).
    Returns the manifest dictionary."""
    opts = opts or ExportOptions()
    cfg.export.ops, cfg.export.precision = opts.ops, opts.precision
    cfg.export.validate()
    backend = resolve_flavour(opts.engine)  # fails now, not after minutes of export, if missing
    opts = resolve_profile(opts, backend)
    int8_plan = _int8_plan(cfg, checkpoint, opts, log) if opts.precision == "int8" else None
    required = backend is not None and opts.engine != "auto"  # engines asked for by name must all build
    if required:
        _check_plugins_available(cfg, opts, backend)
    t_start = time.monotonic()
    out = check_output_dir(out_dir, overwrite, checkpoint)
    with StagedDir(out, "--out") as staged:
        def shown(msg: str) -> None:  # paths as they will be, not the staging folder's
            log(msg.replace(str(staged.path), str(out)))

        manifest = _export(cfg, staged.path, checkpoint, opts, backend, required, shown, int8_plan)
        staged.commit()
    log(f"wrote {out / FILE_NAME} ({time.monotonic() - t_start:.0f}s total)")
    return manifest


def _int8_plan(cfg: Config, checkpoint: str | None, opts: ExportOptions, log: Log) -> Any:
    """--precision int8: every calibration check before any work (export/int8_export.py). INT8 exports have no
    batch graphs yet: several targets run one by one on the batch-1 graphs."""
    from siamattn.export import int8_export

    if cfg.export.max_targets > 1:
        log("int8: no batch (*_multi) graphs in INT8 exports; several targets run one after another")
        cfg.export.max_targets = 1
    weights = {"sha256": sha256_file(checkpoint)} if checkpoint else {"seed": opts.seed}
    lowering = {"ops": opts.ops, "xcorr": opts.xcorr, "deform_conv": opts.deform_conv}
    return int8_export.prepare(opts.int8 or int8_export.Int8Options(), weights, cfg.to_dict(), lowering,
                               opts.trt_version, opts.ops)


def _check_plugins_available(cfg: Config, opts: ExportOptions, backend: TrtFlavour) -> None:
    """Before minutes of export: fail when engines asked for by name will need our plugin library and there is
    none (build_engines checks again, per graph, once the graphs exist)."""
    graphs = []
    deform_plugin = opts.deform_conv == "plugin" or (backend.is_rtx and opts.deform_conv == "onnx")
    if deform_plugin and cfg.model.attention.deformable:  # the deformable conv sits in the search graph
        graphs.append("search")
    if opts.ops == "plugin" and cfg.model.refine.enabled:
        graphs += ["refine_box", "refine_mask"] if cfg.model.refine.mask else ["refine_box"]
    if not graphs:
        return
    lib, why = engines.find_plugin_library(opts.plugin_library, backend)
    if lib is None:
        raise engines.plugins_missing_error(graphs, why)


def _profile_entry(opts: ExportOptions, backend: TrtFlavour | None) -> dict[str, Any]:
    """manifest export.trt_profile: the TensorRT the graphs are for, how FP16 is built, which DeformConv runs."""
    profile = choices.trt_profile(opts.trt_version)
    assert opts.deform_conv is not None
    return {"name": profile.name, "opset": profile.opset,
            "typing": "strongly-typed" if profile.strongly_typed else "fp16-builder-flag+fp32-layer-constraints",
            "plugin_interface": profile.plugin_interface,
            "deform_conv_runs": choices.deform_conv_runs(opts.deform_conv, backend.flavour if backend else None,
                                                         profile.name)}


def _export(cfg: Config, out: Path, checkpoint: str | None, opts: ExportOptions, backend: TrtFlavour | None,
            required: bool, log: Log, int8_plan: Any = None) -> dict[str, Any]:
    model, weights = load_model(cfg, checkpoint, opts.seed)
    if weights["source"] == "random-init":
        log(f"WARNING: {RANDOM_INIT_NOTE}")
    manifest = ManifestDraft.new(
        created_utc=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), config=cfg.to_dict(),
        export={"ops": opts.ops, "precision": opts.precision, "opset": choices.trt_profile(opts.trt_version).opset,
                "trt_profile": _profile_entry(opts, backend),
                "ir_version": cfg.export.ir_version, "xcorr": opts.xcorr, "deform_conv": opts.deform_conv,
                "fp32_islands": list(opts.keep_fp32) if opts.precision == "fp16" else [],
                "template_fp16": opts.precision == "fp16" and opts.template_fp16,
                "max_targets": cfg.export.max_targets,
                "io_dtype": "float32", "exporter": "torch.onnx.export(dynamo=True)"},
        weights=weights, versions=_versions(backend))
    all_stages = [s for s in stages(model, opts.seed, cfg.export.max_targets)
                  if s.name.removesuffix(MULTI_SUFFIX).removesuffix(LOST_SUFFIX) in opts.graphs]
    for stage in all_stages:
        t0 = time.monotonic()
        log(f"[{stage.name}] exporting ({opts.ops}, {graph_precision(stage.name, opts)}) ...")
        graph, info = export_graph(stage, cfg, opts)
        path = out / f"{stage.name}.onnx"
        onnx.save(graph, str(path))
        pause_point("export:graph")
        entry = {"file": path.name, "sha256": sha256_file(path), "bytes": path.stat().st_size, **describe_io(graph),
                 "custom_ops": custom_ops(graph), "op_counts": op_counts(graph), **info}
        manifest.add_graph(stage.name, entry)
        line = f"[{stage.name}] {path.name}: {len(graph.graph.node)} nodes, {entry['bytes'] / 2**20:.1f} MiB"
        if opts.verify:
            check = verify_graph(stage, graph)
            manifest.set_verification(stage.name, check)
            worst = max(check.items(), key=lambda kv: kv[1]["rel_err"])
            line += f", max |err|/range vs PyTorch {worst[1]['rel_err']:.1e} ({worst[0]}, {worst[1]['runner']}"
            if info["precision"] == "fp32":  # the yardstick of an FP32 graph (docs/EXPORT.md, "Parity figures")
                line += f"; PyTorch's own FP32 rounding noise there {worst[1]['fp32_noise']:.1e}"
            line += ")"
        log(line + f" [{time.monotonic() - t0:.1f}s]")
    if int8_plan is not None:
        from siamattn.export.int8_export import quantize_export

        quantize_export(int8_plan, model, cfg, out, manifest, cfg.export.ir_version, log)
    manifest.write(out)

    if backend is None:
        reason = ("--engine none" if opts.engine == "none" else
                  "no TensorRT Python module is installed (pip install 'siamattn-trt[tensorrt-rtx]' for AOT builds)")
        log(f"engines: skipped ({reason})")
        for name in manifest.order:
            manifest.skip_engine(name, reason)
    else:
        engines.build_engines(manifest, out, backend, opts.precision, opts.plugin_library, log, required=required)
    manifest.write(out)
    return manifest.as_dict()


