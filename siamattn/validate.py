"""Checks of user-given values and paths shared by every command and the Python API (no torch, no OpenCV), so
each kind of value is checked by one implementation with one wording."""

from __future__ import annotations

import math
import os
from pathlib import Path

from siamattn.errors import InputError

__all__ = ["SEED_MAX", "as_path", "check_number", "is_finite_number"]

SEED_MAX = 2**32 - 1  # numpy's RandomState/SeedSequence take seeds up to this; torch's manual_seed too


def is_finite_number(value: object) -> bool:
    """A real number that is not NaN or infinite; ``bool`` is not a number here (``True`` is no coordinate)."""
    if isinstance(value, bool) or type(value).__name__ in ("bool", "bool_"):  # numpy.bool(_) without numpy
        return False
    try:
        return math.isfinite(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return False


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e16 else f"{v:g}"


def check_number(what: str, value: float, low: float | None = None, high: float | None = None) -> float:
    """``value`` as a float when it is finite and within [low, high]; else :class:`InputError` naming ``what``
    (empty: the message starts with "must", for argparse's "argument --x: ..."). NaN is refused explicitly: it
    compares false with every bound, so it would pass any range test."""
    prefix = f"{what} " if what else ""
    if not is_finite_number(value):
        raise InputError(f"{prefix}must be a finite number, got {value!r}")
    v = float(value)
    if (low is not None and v < low) or (high is not None and v > high):
        where = (f"in [{_fmt(low)}, {_fmt(high)}]" if low is not None and high is not None
                 else f">= {_fmt(low)}" if low is not None else f"<= {_fmt(high)}")  # type: ignore[arg-type]
        raise InputError(f"{prefix}must be {where}, got {value!r}")
    return v


def as_path(value: object, what: str = "path") -> Path:
    """A path given as ``str``, ``bytes`` or ``os.PathLike`` (bytes decoded as the OS does, ``os.fsdecode``);
    anything else is an :class:`InputError` naming ``what``."""
    if isinstance(value, (str, bytes, os.PathLike)):
        try:
            return Path(os.fsdecode(value))
        except (TypeError, ValueError) as exc:  # a PathLike returning something else, NUL bytes
            raise InputError(f"{what} is not a usable path ({exc}): {value!r}") from exc
    raise InputError(f"{what} must be a path (str or os.PathLike), got {type(value).__name__}: {value!r}")


def parse_box(text: str) -> tuple[float, float, float, float]:
    """'x,y,w,h' -> floats, with a clear error for anything else."""
    parts = text.replace(" ", "").split(",")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 4:
        raise InputError(f"--init must be x,y,w,h (four numbers), got '{text}'")
    return values  # type: ignore[return-value]
