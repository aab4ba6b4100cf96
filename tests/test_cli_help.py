"""Every option of the runtime and config subcommands says what it does, and ``siamattn configs`` says
what each shipped config is."""

from __future__ import annotations

import argparse
from importlib import resources

import pytest

from siamattn.cli import build_parser, main
from siamattn.config import available_configs


def subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


@pytest.mark.parametrize("command", ["track", "check", "eval", "demo", "configs", "vot"])
def test_every_option_has_help(command):
    sub = subparsers()[command]
    missing = [a.option_strings or a.dest for a in sub._actions if not a.help and a.dest != "help"]
    assert missing == []


def test_configs_lists_each_with_a_description(capsys):
    assert main(["configs"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    names = available_configs()
    assert [ln.split()[0] for ln in lines] == names
    for name, line in zip(names, lines, strict=True):
        description = line[len(name) :].strip()
        first_comment = (resources.files("siamattn.configs") / f"{name}.yaml").read_text().splitlines()[0]
        assert description and len(line) <= 120
        # taken from the comment that opens the YAML file
        assert first_comment.lstrip("# ").startswith(description.rstrip(".")[:30]), (name, description)
