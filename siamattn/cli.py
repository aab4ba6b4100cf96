"""The ``siamattn`` command. Each stage adds its own subcommands through a ``register(subparsers)``
function in its ``cli`` module; heavy imports (torch, onnx, tensorrt) happen inside the handlers so that
``siamattn --help`` is instant and a missing optional package only affects the command that needs it."""

from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__
from .errors import SiamAttnError

# Stage modules that contribute subcommands, in the order data flows through the project.
STAGE_CLIS = (
    "siamattn.commands",
    "siamattn.training.cli",
    "siamattn.export.cli",
    "siamattn.plugins.cli",
    "siamattn.runtime.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="siamattn",
        description="SiamAttn tracker: train in PyTorch, export to ONNX/TensorRT, track in real time.",
    )
    parser.add_argument("--version", action="version", version=f"siamattn-trt {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in STAGE_CLIS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # stage not present in this installation
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except SiamAttnError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def add_config_args(p: argparse.ArgumentParser, default: str | None = "siamattn_r50") -> None:
    """The config arguments every stage command shares."""
    p.add_argument("--config", default=default,
                   help="shipped config name (see 'siamattn configs') or a YAML path (default: %(default)s)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set model.attention.deformable=false (repeatable)")


if __name__ == "__main__":
    sys.exit(main())
