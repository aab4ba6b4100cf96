"""Subcommands that need no stage: listing and printing configs."""

from __future__ import annotations

import argparse
import re
from importlib import resources

from siamattn.cli_args import add_set_arg
from siamattn.config import available_configs, load_config

_DESCRIPTION_LIMIT = 90


def config_description(name: str) -> str:
    """One line about a shipped config: the first sentence of the comment that opens its YAML file, cut at
    its first ':' when longer than a line (the shipped files say what each is there)."""
    text = (resources.files("siamattn.configs") / f"{name}.yaml").read_text()
    comment = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        comment.append(line.lstrip("#").strip())
    words = " ".join(comment)
    sentence = re.split(r"(?<=\.)\s", words, maxsplit=1)[0].rstrip(".")
    if len(sentence) > _DESCRIPTION_LIMIT and ":" in sentence:
        sentence = sentence.split(":", 1)[0]
    if len(sentence) > _DESCRIPTION_LIMIT:
        sentence = sentence[: _DESCRIPTION_LIMIT - 3].rsplit(" ", 1)[0] + "..."
    return sentence or "(no description: the YAML file has no leading comment)"


def _configs(args: argparse.Namespace) -> int:
    if args.name:
        cfg = load_config(args.name, args.overrides)
        print(cfg.to_yaml(), end="")
    else:
        names = available_configs()
        width = max(map(len, names), default=0)
        for name in names:
            print(f"{name:<{width}}  {config_description(name)}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("configs", help="list the shipped configs with what each is, or print one fully resolved",
                       description="List the shipped configs (name and a one-line description from the comment "
                                   "that opens its YAML file), or print one with every default filled in.")
    p.add_argument("name", nargs="?", help="config name or YAML path to print")
    add_set_arg(p, help="override a value before printing, e.g. --set tracker.lr=0.3 (repeatable)")
    p.set_defaults(func=_configs)
