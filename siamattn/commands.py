"""Subcommands that need no stage: listing and printing configs."""

from __future__ import annotations

import argparse

from .config import available_configs, load_config


def _configs(args: argparse.Namespace) -> int:
    if args.name:
        cfg = load_config(args.name, args.overrides)
        print(cfg.to_yaml(), end="")
    else:
        for name in available_configs():
            print(name)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("configs", help="list the shipped configs, or print one fully resolved",
                       description="List the shipped configs, or print one with every default filled in.")
    p.add_argument("name", nargs="?", help="config name or YAML path to print")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a value before printing (repeatable)")
    p.set_defaults(func=_configs)
