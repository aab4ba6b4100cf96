"""Argument helpers every subcommand shares (no imports of the stages, so any stage CLI may use them)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from siamattn.errors import InputError
from siamattn.validate import SEED_MAX, check_number


def add_set_arg(p: argparse.ArgumentParser, help: str | None = None) -> None:
    """``--set KEY=VALUE`` (repeatable) into ``args.overrides``: the one definition of config overrides."""
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help=help or "override a config value, e.g. --set model.attention.deformable=false (repeatable)")


def add_config_args(p: argparse.ArgumentParser, default: str | None = "siamattn_r50") -> None:
    """The config arguments every stage command shares."""
    p.add_argument("--config", default=default, type=config_name,
                   help="shipped config name (see 'siamattn configs') or a YAML path (default: %(default)s)")
    add_set_arg(p)


def config_name(text: str) -> str:
    """argparse type for --config: an empty value is a mistake, never "the default"."""
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty: give a shipped config name (see 'siamattn configs') or a YAML path")
    return text


def positive_int(text: str) -> int:
    """argparse type for counts such as --max-frames: 0 and negatives are refused (0 never means 'all')."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {value} (leave it out for the "
                                         "default)")
    return value


def _argparse_type(name: str, check: Callable[[str], object]) -> Callable[[str], object]:
    """An argparse type from a check that raises InputError: its message becomes argparse's one line."""
    def parse(text: str) -> object:
        try:
            return check(text)
        except InputError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    parse.__name__ = name  # argparse names the type in "invalid <name> value" messages
    return parse


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise InputError(f"must be a whole number, got '{text}'") from None


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise InputError(f"must be a number, got '{text}'") from None


def _non_negative(text: str) -> int:
    value = _whole(text)
    if value < 0:
        raise InputError(f"must be 0 or more, got {value}")
    return value


# argparse type for counts where 0 means none (e.g. --workers 0: load data in the main process)
non_negative_int = _argparse_type("non_negative_int", _non_negative)


seed_int = _argparse_type("seed", lambda t: int(check_number("", _whole(t), 0, SEED_MAX)))


def number(low: float | None = None, high: float | None = None) -> Callable[[str], object]:
    """argparse type for a finite number in [low, high] (thresholds: NaN would make every comparison pass)."""
    return _argparse_type("number", lambda t: check_number("", _float(t), low, high))
