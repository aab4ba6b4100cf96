"""Small readers shared by the dataset readers: box and label text files, frame listings, mask PNGs."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from siamattn.errors import InputError, MissingDependencyError


def read_text(path: str | Path) -> str:
    """A dataset's text file (annotations, lists, JSON); one that is not UTF-8 text or cannot be read is an
    :class:`InputError` naming it."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not a text annotation file ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror or exc})") from None


def read_text_lines(path: str | Path) -> list[str]:
    """The lines of an annotation text file (see :func:`read_text`)."""
    return read_text(path).splitlines()


def read_box_file(path: str | Path, columns: int = 4) -> np.ndarray:
    """Read boxes, one per line, separated by commas, tabs or spaces (OTB mixes them). Empty lines are
    skipped; 'NaN'/'nan' (no box on that frame) are accepted, infinite values are not. Returns ``[N, columns]``
    float64."""
    rows = []
    for lineno, line in enumerate(read_text_lines(path), 1):
        line = line.strip()
        if not line:
            continue
        parts = [p for p in re.split(r"[,\s]+", line) if p]
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise InputError(f"{path}:{lineno}: expected {columns} numbers, got {line!r}") from None
        if len(values) != columns:
            raise InputError(f"{path}:{lineno}: expected {columns} numbers, got {len(values)}")
        if any(math.isinf(v) for v in values):
            raise InputError(f"{path}:{lineno}: expected finite numbers (or NaN for no box), got {line!r}")
        rows.append(values)
    return np.array(rows, dtype=np.float64).reshape(-1, columns)


def read_flags(path: Path) -> np.ndarray:
    """0/1 (or small integer) labels, one per line or comma-separated on one line (LaSOT)."""
    values = []
    for lineno, line in enumerate(read_text_lines(path), 1):
        for token in line.replace(",", " ").split():
            try:
                values.append(int(float(token)))
            except (ValueError, OverflowError):  # 'x', 'nan' / 'inf'
                raise InputError(f"{path}:{lineno}: expected integer labels, got {token!r}") from None
    return np.array(values, dtype=np.int64)


def sorted_frames(folder: Path, pattern: str = "*.jpg") -> list[Path]:
    """Frames in numeric order when their names are numbers (TrackingNet's 0.jpg, 1.jpg, ... 10.jpg)."""
    files = list(folder.glob(pattern))
    if all(p.stem.isdigit() for p in files):
        return sorted(files, key=lambda p: int(p.stem))
    return sorted(files)


def pad_boxes(boxes: np.ndarray, n: int) -> np.ndarray:
    """Test splits give only the first box: pad the unknown frames with NaN rows."""
    if len(boxes) >= n:
        return boxes[:n]
    return np.vstack([boxes, np.full((n - len(boxes), 4), np.nan)])


def valid_boxes(boxes: np.ndarray) -> np.ndarray:
    return np.isfinite(boxes).all(axis=1) & (boxes[:, 2] > 0) & (boxes[:, 3] > 0)


def read_label_png(path: str | Path) -> np.ndarray:
    """Read a mask PNG as an integer label map. Palette PNGs (YouTube-VOS, DAVIS) give their palette
    indices, which OpenCV would expand to colours, so PIL reads them."""
    try:
        from PIL import Image
    except ImportError as exc:  # pragma: no cover - pillow comes with matplotlib
        raise MissingDependencyError("reading mask PNGs needs Pillow: pip install pillow") from exc
    try:
        with Image.open(path) as im:
            if im.mode in ("P", "L", "1", "I", "I;16"):
                return np.array(im)
            return np.array(im.convert("L"))
    except OSError as exc:  # missing, truncated or not an image (PIL's UnidentifiedImageError is an OSError)
        raise InputError(f"could not read mask '{path}': {exc}") from None


def mask_to_box(mask: np.ndarray) -> np.ndarray:
    """Tight ``[x, y, w, h]`` around the True pixels (pixel-edge convention: a single pixel at (x, y)
    is ``[x, y, 1, 1]``); ``[nan] * 4`` for an empty mask."""
    ys, xs = np.nonzero(mask)
    if xs.size == 0:
        return np.full(4, np.nan)
    return np.array([xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1], dtype=np.float64)

