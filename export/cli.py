"""``siamattn export``: ONNX graphs, manifest and TensorRT engines from a config (and a checkpoint)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from siamattn import export_choices as choices
from siamattn.cli_args import seed_int
from siamattn.errors import ConfigError, SiamAttnError


def _load_config(args: argparse.Namespace) -> Any:
    """--config wins; else the checkpoint's own config; else siamattn_r50. --set applies on top."""
    from siamattn.config import apply_overrides, from_dict, load_config

    if args.config or not args.checkpoint:
        return load_config(args.config or "siamattn_r50", args.overrides)
    from siamattn.training.model.checkpoint import read_checkpoint

    data = apply_overrides(read_checkpoint(args.checkpoint)["config"], args.overrides)
    return from_dict(data)


def _run(args: argparse.Namespace) -> int:
    # Heavy imports here so 'siamattn --help' stays instant and a missing torch only affects this command.
    try:
        from siamattn.export.exporter import ExportOptions, export_model
    except ImportError as exc:
        raise SiamAttnError(f"'siamattn export' needs torch, onnx and onnxscript ({exc}); "
                            "install them with: pip install 'siamattn-trt[export]'") from exc
    islands = tuple(choices.FP32_ISLANDS)
    cfg = _load_config(args)
    keep = islands if args.keep_fp32 is None else tuple(x for x in args.keep_fp32.split(",") if x)
    bad = sorted(set(keep) - set(islands))
    if bad:
        raise ConfigError(f"--keep-fp32: unknown island(s) {', '.join(bad)}; choose from {', '.join(islands)}")
    precision = args.precision or cfg.export.precision
    int8_opts = _int8_options(args, precision)
    opts = ExportOptions(
        ops=args.ops or cfg.export.ops, precision=precision, int8=int8_opts,
        xcorr=args.xcorr, deform_conv=args.deform_conv, trt_version=args.trt_version, keep_fp32=keep,
        template_fp16=args.template_fp16, engine=args.engine,
        plugin_library=args.plugin_library, verify=not args.no_verify, seed=args.seed,
    )

    def log(msg: str) -> None:
        print(msg, flush=True)

    export_model(cfg, args.out, args.checkpoint, opts, log=log, overwrite=args.overwrite)
    return 0


def _int8_options(args: argparse.Namespace, precision: str) -> Any:
    """--calib-* into int8_export.Int8Options; they mean nothing without --precision int8."""
    given = [o for o, v in (("--calib-source", args.calib_source), ("--calib-init", args.calib_init),
                            ("--calib-frames", args.calib_frames), ("--calib-method", args.calib_method),
                            ("--calib-cache", args.calib_cache)) if v is not None]
    if precision != "int8":
        if given:
            raise ConfigError(f"{', '.join(given)} only apply to --precision int8")
        return None
    from siamattn.export.int8 import DEFAULT_METHOD
    from siamattn.export.int8_export import Int8Options
    from siamattn.validate import parse_box

    init = None
    if args.calib_init is not None:
        try:
            init = parse_box(args.calib_init)
        except SiamAttnError as exc:
            raise ConfigError(f"--calib-init: {exc}") from exc
    return Int8Options(source=args.calib_source, init=init, frames=args.calib_frames,
                       method=args.calib_method or DEFAULT_METHOD, cache=args.calib_cache)


def _build_engines(args: argparse.Namespace) -> int:
    """Torch-free: engines for an existing export folder, built on the target device."""
    from pathlib import Path

    from siamattn.export.engine import build_engines
    from siamattn.manifest import FILE_NAME, Manifest, ManifestDraft
    from siamattn.outputs import StagedDir, check_folder, pause_point, real
    from siamattn.tensorrt_env import resolve_flavour

    manifest = Manifest.load(args.model)
    backend = resolve_flavour(args.engine)
    if backend is None:
        raise SiamAttnError("no TensorRT Python module is installed: install TensorRT (JetPack ships it) or "
                            "'pip install siamattn-trt[tensorrt-rtx]'")
    draft = ManifestDraft.of(manifest)
    draft.reset_engines(backend.flavour, backend.version)
    # The folder is updated as a whole: its graphs hard-linked into a staging copy, the engines and manifest
    # written there, the copy moved into place; an interrupt or failure leaves the export as it was.
    check_folder("--model", args.model, real(args.model).parent)  # the staging copy is made beside it
    keep = lambda name: name != FILE_NAME and not name.endswith(".engine")  # noqa: E731
    with StagedDir(args.model, "--model", clone=keep) as staged:
        pause_point("build-engines:staged")
        # Every engine is asked for here (that is the command's job): one that cannot be built fails the command.
        build_engines(draft, staged.path, backend, manifest.precision, args.plugin_library,
                      lambda msg: print(msg.replace(str(staged.path), str(args.model))), required=True)
        draft.write(staged.path)
        staged.commit()
    print(f"updated {Path(args.model) / FILE_NAME}")
    return 0


def _add_choice(p: argparse.ArgumentParser, choice: choices.ExportChoice, *, default: str | None = "table") -> None:
    """An option from the table of export choices: its values as argparse choices, its help from the table.
    ``default``: the table's default unless given (None: the option has no argparse default)."""
    value = choice.default if default == "table" else default
    p.add_argument(choice.option, choices=choice.names, default=value, help=choice.help().replace("%", "%%"))


def _add_calibration_args(p: argparse.ArgumentParser) -> None:
    from siamattn.cli_args import positive_int

    g = p.add_argument_group("INT8 calibration (--precision int8; docs/EXPORT.md \"INT8\")")
    g.add_argument("--calib-source", metavar="SRC",
                   help="video file, image folder, or a dataset as KIND:ROOT (like 'siamattn train --data'); the "
                        "PyTorch FP32 tracker runs it and every graph is calibrated on its real feeds (default: the "
                        "shipped demo clip bigbuckbunny.mp4 from 232,240,296,320)")
    g.add_argument("--calib-init", metavar="X,Y,W,H",
                   help="target box in the first frame of --calib-source (required for a video or folder)")
    g.add_argument("--calib-frames", type=positive_int, metavar="N",
                   help="frames the tracker runs for calibration, the first of each video initialising "
                        "(default: 32, measured in docs/EXPORT.md)")
    g.add_argument("--calib-method", choices=("entropy", "minmax", "percentile"),
                   help="activation range estimator (ONNX Runtime's calibrators; default: minmax, measured best)")
    g.add_argument("--calib-cache", metavar="FILE",
                   help="calibration ranges and layer choices: written when FILE does not exist, reused (no "
                        "calibration run) when it does; a cache of another model is refused")


def register(sub: argparse._SubParsersAction) -> None:
    from siamattn.cli import add_config_args

    p = sub.add_parser(
        "export", help="export ONNX graphs (+ manifest, + TensorRT engines) for deployment",
        description="Export the template/search/refinement graphs to ONNX with a manifest.json the runtime reads, "
                    "and build TensorRT or TensorRT-RTX engines when one is installed. Without --checkpoint a "
                    "seeded random-init model is exported (pipeline tests only).",
    )
    add_config_args(p, default=None)
    p.add_argument("--checkpoint", help="siamattn checkpoint (.pt); its config is used unless --config is given")
    p.add_argument("--out", required=True, help="output directory (created if missing)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an earlier export in --out (without it --out must be new or empty)")
    for choice in (choices.OPS, choices.PRECISION, choices.ENGINE):
        _add_choice(p, choice)
    p.add_argument("--plugin-library", help="libsiamattn_trt_plugins.so to load (default: the plugins stage's build)")
    # Their defaults come from the TensorRT profile (--trt-version): see export_choices.TRT_PROFILES.
    for choice in (choices.XCORR, choices.DEFORM_CONV, choices.TRT_VERSION):
        _add_choice(p, choice, default=None)
    p.add_argument("--template-fp16", action="store_true",
                   help="FP16 for the template graph too (default: it stays FP32 in FP16 exports; it runs once per "
                        "video, so FP16 saves nothing per frame, and its outputs feed every frame)")
    p.add_argument("--keep-fp32", metavar="LIST",
                   help="comma-separated FP32 islands in FP16 graphs (default: all: "
                        f"{','.join(choices.FP32_ISLANDS)}; empty string for none)")
    _add_calibration_args(p)
    p.add_argument("--seed", type=seed_int, default=0, help="seed of the random-init model and example inputs")
    p.add_argument("--no-verify", action="store_true", help="skip the ONNX Runtime vs PyTorch parity check")
    p.set_defaults(func=_run)

    p = sub.add_parser(
        "build-engines", help="build TensorRT engines for an existing export folder (no torch needed)",
        description="Build (or rebuild) one TensorRT / TensorRT-RTX engine per graph of an export folder, on the "
                    "machine that will run them: export ONNX on a workstation with --engine none, copy the "
                    "folder to the Jetson/RTX device, run this there. Needs only TensorRT and the plugin library.")
    p.add_argument("--model", required=True, help="export folder (manifest.json)")
    _add_choice(p, choices.BUILD_ENGINE)
    p.add_argument("--plugin-library", help="libsiamattn_trt_plugins.so (default: the plugins stage's build)")
    p.set_defaults(func=_build_engines)


if __name__ == "__main__":  # pragma: no cover
    from siamattn.cli import main

    sys.exit(main(["export", *sys.argv[1:]]))
