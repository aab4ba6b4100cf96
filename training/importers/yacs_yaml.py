"""Reading the yacs-style experiment YAMLs that pysot and the SiamAttn authors' code ship (a key the file leaves
out takes that code's default), shared by both importers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from siamattn.errors import ConfigError
from siamattn.validate import is_finite_number


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The file as a mapping; one line naming the problem when it is missing, a folder, not YAML or not a
    mapping."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--config-file '{path}' does not exist" if not path.exists()
                          else f"--config-file '{path}' is a folder, not a YAML file")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--config-file '{path}' cannot be read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"--config-file '{path}' is not valid YAML (not UTF-8 text)") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" (line {where.line + 1})" if where is not None else ""
        raise ConfigError(f"--config-file '{path}' is not valid YAML{at}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"--config-file '{path}' is not a YAML mapping (their experiment configs are)")
    return data


def lookup(data: dict[str, Any], dotted: str, defaults: dict[str, Any]) -> Any:
    """``data['A']['B']`` for ``'A.B'``, or the code's default ``defaults['A.B']`` where the file leaves it out."""
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return defaults[dotted]
        node = node[part]
    return node


def as_numbers(x: Any, n: int | None = None) -> list[float] | None:
    """``x`` as a list of floats when it is a non-empty list/tuple of numbers (of length ``n`` if given), else None."""
    if not isinstance(x, list | tuple) or not x or (n is not None and len(x) != n):
        return None
    vals = [as_number(v) for v in x]
    return None if None in vals else [float(v) for v in vals if v is not None]


def as_number(x: Any) -> float | None:
    """``x`` as a float when it is a finite int or float (not a bool, NaN or inf), else None."""
    return float(x) if is_finite_number(x) else None
