"""The ``siamattn`` command. Each stage adds its own subcommands through a ``register(subparsers)``
function in its ``cli`` module; heavy imports (torch, onnx, tensorrt) happen inside the handlers so that
``siamattn --help`` is instant and a missing optional package only affects the command that needs it."""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
from collections.abc import Callable

from siamattn import __version__
from siamattn.cli_args import add_config_args, add_set_arg
from siamattn.errors import SiamAttnError, interruption
from siamattn.outputs import exit_code, install_signal_handlers

__all__ = ["add_config_args", "add_set_arg", "build_parser", "main"]  # the first two: stage CLIs import them here

# Stage modules that contribute subcommands, in the order data flows through the project.
STAGE_CLIS = (
    "siamattn.commands",
    "siamattn.training.cli",
    "siamattn.export.cli",
    "siamattn.plugins.cli",
    "siamattn.runtime.cli",
    "siamattn.runtime.vot",
)


class _Parser(argparse.ArgumentParser):
    """Usage mistakes as one line naming the fix, like every other error (the full usage is in --help)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
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


# Options whose value may start with '-' (a box partly left of the frame: --init -5,40,40,60). argparse takes
# such a value for an option unless it is a plain negative number, so it is glued on as --init=-5,40,40,60.
NEGATIVE_VALUE_OPTIONS = ("--init", "--calib-init")
_NUMBERS = re.compile(r"^-\d[\d.,\s+-]*$")


def _glue_negative_values(argv: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i] in NEGATIVE_VALUE_OPTIONS and i + 1 < len(argv) and _NUMBERS.match(argv[i + 1]):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def os_error_line(exc: OSError) -> str:
    """An OSError as one line: what failed and on which path(s), e.g. "No space left on device: 'out/x.mp4'"."""
    what = exc.strerror or str(exc) or type(exc).__name__
    paths = [f"'{os.fsdecode(p)}'" for p in (exc.filename, exc.filename2) if p is not None]
    return f"{what}: {' -> '.join(paths)}" if paths else what


def main(argv: list[str] | None = None) -> int:
    # The outermost guard: every user-caused error is one line (exit 2) and Ctrl-C or SIGTERM is 'interrupted'
    # (130/143), also while the stages are imported or the arguments parsed; other exceptions are bugs and keep
    # their traceback.
    try:
        if argv is None:  # a command line run (not a call from Python): SIGTERM like Ctrl-C, staging removed
            install_signal_handlers()
        parser = build_parser()
        args = parser.parse_args(_glue_negative_values(list(sys.argv[1:] if argv is None else argv)))
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        return int(args.func(args) or 0)
    except BaseException as exc:
        return _user_error_exit(exc)


def _user_error_exit(exc: BaseException) -> int:
    """The exit code of a user-caused error or interruption, its one line printed; anything else re-raised."""
    stop = interruption(exc)
    if stop is not None:
        print("interrupted", file=sys.stderr)
        return exit_code(stop)
    if isinstance(exc, SiamAttnError):
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if isinstance(exc, OSError):  # a file or folder the specific checks did not foresee
        print(f"error: {os_error_line(exc)}", file=sys.stderr)
        return 2
    raise exc


def run_script(script_main: Callable[[], object]) -> int:
    """The same guard for the project's scripts (assets/demo/*.py): a user's mistake is one line, exit 2."""
    try:
        return int(script_main() or 0)
    except BaseException as exc:
        return _user_error_exit(exc)


if __name__ == "__main__":
    sys.exit(main())
