"""Argument helpers every subcommand shares (no imports of the stages, so any stage CLI may use them)."""

from __future__ import annotations

import argparse


def add_set_arg(p: argparse.ArgumentParser, help: str | None = None) -> None:
    """``--set KEY=VALUE`` (repeatable) into ``args.overrides``: the one definition of config overrides."""
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help=help or "override a config value, e.g. --set model.attention.deformable=false (repeatable)")


def add_config_args(p: argparse.ArgumentParser, default: str | None = "siamattn_r50") -> None:
    """The config arguments every stage command shares."""
    p.add_argument("--config", default=default,
                   help="shipped config name (see 'siamattn configs') or a YAML path (default: %(default)s)")
    add_set_arg(p)


def positive_int(text: str) -> int:
    """argparse type for counts such as --max-frames: 0 and negatives are refused (0 never means 'all')."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {value} (leave it out for all)")
    return value
