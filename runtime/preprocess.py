"""Frame/box validation and the pysot search/template crop, shared by every backend (numpy + OpenCV).

Accepted frames (checked by :func:`validate_frame`):

* ``uint8`` arrays, shape (H, W, 3) in OpenCV's BGR order (what ``cv2.VideoCapture`` and ``cv2.imread``
  return). The networks were trained on BGR; an RGB frame still tracks but less well.
* (H, W, 4) BGRA: the alpha channel is ignored (dropped after cropping, no full-frame copy).
* (H, W) or (H, W, 1) grayscale: used as BGR with three equal channels (replicated after cropping, so it
  costs no full-frame conversion).
* Anything else raises :class:`~siamattn.errors.InputError` with what to do: ``None`` (the video ended or
  could not be read), empty arrays, a batch (N, H, W, 3), other channel counts, and other dtypes. Float
  frames are refused rather than guessed at (0..1 or 0..255?); the message shows the conversion.
  Because only uint8 is accepted, a frame cannot hold NaN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import cv2
import numpy as np

from siamattn.errors import InputError

__all__ = [
    "FrameInfo",
    "get_subwindow",
    "has_bool",
    "pad_color",
    "subwindow_bounds",
    "validate_box",
    "validate_frame",
]


class FrameInfo(NamedTuple):
    """Shape of a validated frame; channels is 1 (gray), 3 (BGR) or 4 (BGRA)."""

    height: int
    width: int
    channels: int


def validate_frame(frame: object) -> tuple[np.ndarray, FrameInfo]:
    """Check a frame; return it as an (H, W, C) uint8 view (no copy) and its :class:`FrameInfo`."""
    if frame is None:
        raise InputError("frame is None: the video has ended or could not be read (check the source path)")
    if not isinstance(frame, np.ndarray):
        raise InputError(
            f"frame must be a numpy array (H x W x 3 uint8 BGR, as cv2 returns), got {type(frame).__name__}"
        )
    if frame.size == 0:
        raise InputError(f"frame is empty (shape {frame.shape}): the video may have ended or failed to decode")
    if frame.dtype != np.uint8:
        if np.issubdtype(frame.dtype, np.floating):
            hint = (
                "convert it first: frame.astype(np.uint8) if values are 0..255, or "
                "(frame * 255).clip(0, 255).astype(np.uint8) if they are 0..1"
            )
        else:
            hint = "convert it to 8-bit first (e.g. cv2.convertScaleAbs(frame, alpha=255/frame.max()))"
        raise InputError(f"frame dtype must be uint8, got {frame.dtype}; {hint}")
    if frame.ndim == 2:
        frame = frame[:, :, None]
    elif frame.ndim != 3:
        raise InputError(
            f"frame must have shape (H, W, 3) (or (H, W) gray, (H, W, 4) BGRA), got {frame.shape}; "
            "pass one frame at a time, not a batch"
        )
    h, w, c = frame.shape
    if c not in (1, 3, 4):
        raise InputError(f"frame must have 1, 3 or 4 channels (gray, BGR, BGRA), got {c} (shape {frame.shape})")
    if frame.strides[2] != 1 or frame.strides[1] != c or frame.strides[0] <= 0:
        # OpenCV needs each row contiguous; flipped or channel-sliced views get one contiguous copy
        frame = np.ascontiguousarray(frame)
    return frame, FrameInfo(h, w, c)


MAX_BOX_FRAMES = 2  # an initial box may be at most this many frame widths (heights) wide (high)


def has_bool(value: object) -> bool:
    """True when ``value`` is or holds a bool: ``True`` would silently become the coordinate 1."""
    if isinstance(value, (bool, np.bool_)):
        return True
    if isinstance(value, np.ndarray):
        return value.dtype == np.bool_ or (value.dtype == object and any(map(has_bool, value.reshape(-1))))
    if isinstance(value, (list, tuple)):
        return any(map(has_bool, value))
    return False


def validate_box(box: object, info: FrameInfo) -> tuple[float, float, float, float]:
    """Check an initial box (x, y, w, h) in frame pixels against the frame; return it as floats.

    The box must be 4 finite numbers (not bools) with w > 0 and h > 0, at most ``MAX_BOX_FRAMES`` times the
    frame's size, and must overlap the frame (a box partly outside is allowed, as in the reference tracker).
    """
    if has_bool(box):
        raise InputError(f"initial box must be 4 numbers x, y, w, h, not True/False; got {box!r}")
    try:
        arr = np.asarray(box, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise InputError(f"initial box must be 4 numbers x, y, w, h; got {box!r}") from exc
    if arr.size != 4:
        raise InputError(f"initial box must be 4 numbers x, y, w, h; got {arr.size} ({box!r})")
    if not np.all(np.isfinite(arr)):
        raise InputError(f"initial box has NaN or infinite values: {box!r}")
    x, y, w, h = (float(v) for v in arr)
    if w <= 0 or h <= 0:
        raise InputError(f"initial box must have positive width and height, got w={w:g}, h={h:g} (x, y, w, h)")
    if w > MAX_BOX_FRAMES * info.width or h > MAX_BOX_FRAMES * info.height:
        # the tracker never lets a target outgrow the frame; such a box would only ask for a giant context crop
        raise InputError(f"initial box ({w:g} x {h:g}) is more than {MAX_BOX_FRAMES} times the "
                         f"{info.width}x{info.height} frame; give x, y, w, h in pixels of this frame")
    if x >= info.width or y >= info.height or x + w <= 0 or y + h <= 0:
        raise InputError(
            f"initial box (x={x:g}, y={y:g}, w={w:g}, h={h:g}) lies outside the {info.width}x{info.height} "
            "frame; give x, y, w, h in pixels of this frame"
        )
    return x, y, w, h


def pad_color(frame: np.ndarray) -> tuple[float, ...]:
    """Per-channel mean of the frame as a padding colour, truncated to integers (for 3 channels).

    pysot writes the float mean into a uint8 canvas, which truncates; we do the same so crops are
    bit-identical with the reference. Gray frames give one value; BGRA frames three (alpha is unused).
    """
    means = cv2.mean(frame)[: min(frame.shape[2], 3)]  # exact: integer sums divided once, like np.mean
    return tuple(float(int(m)) for m in means)


def subwindow_bounds(center: Sequence[float], crop_size: int) -> tuple[int, int]:
    """(xmin, ymin) of the ``crop_size`` window around ``center`` (pysot: floor(c - (sz+1)/2 + 0.5))."""
    c = (crop_size + 1) / 2.0
    return math.floor(center[0] - c + 0.5), math.floor(center[1] - c + 0.5)


def get_subwindow(
    frame: np.ndarray,
    center: Sequence[float],
    out_size: int,
    crop_size: int,
    pad: Sequence[float],
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Crop a ``crop_size`` square around ``center``, pad outside the frame with ``pad``, resize to
    ``out_size``; return (1, 3, out_size, out_size) float32 BGR 0..255 (written into ``out`` if given).

    pysot's get_subwindow semantics (window ``[xmin, xmin + crop_size)``, uint8 mean-colour padding,
    cv2.resize INTER_LINEAR) without ever copying the frame:

    * window inside the frame: a view resized directly; bit-identical with pysot;
    * window partly outside: the padded canvas (cv2.copyMakeBorder of the part inside) is resized;
      bit-identical. (A single warpAffine with the padding as border would skip the canvas, but its
      fixed-point coordinates differ from cv2.resize by a grey level on some pixels, which moves boxes
      against the reference trackers; measured on a 1280x720 frame it is not faster either: 0.6-1.8 ms
      for 300-1000 px windows vs 1.4-1.5 ms.)

    ``frame`` is (H, W, C) uint8 as returned by :func:`validate_frame`; gray frames give three equal planes,
    BGRA frames lose alpha.
    """
    crop_size = int(crop_size)
    if crop_size < 1:
        raise InputError(f"crop size must be >= 1 pixel, got {crop_size}")
    h, w, c = frame.shape
    x0, y0 = subwindow_bounds(center, crop_size)
    x1, y1 = x0 + crop_size, y0 + crop_size  # exclusive
    ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    # pysot writes the float mean into a uint8 canvas: truncation (OpenCV would round it)
    pad_value = [float(int(min(max(v, 0.0), 255.0))) for v in pad] + [0.0] * (4 - len(pad))
    if ix0 >= ix1 or iy0 >= iy1:  # window entirely outside the frame: all padding (resized or not)
        patch = np.empty((out_size, out_size, c), dtype=np.uint8)
        patch[...] = np.asarray(pad_value[:c], dtype=np.uint8)
    elif (ix0, iy0, ix1, iy1) == (x0, y0, x1, y1):  # inside the frame: a view, then resize (bit-exact)
        patch = frame[iy0:iy1, ix0:ix1]
        if crop_size != out_size:
            patch = cv2.resize(patch, (out_size, out_size), interpolation=cv2.INTER_LINEAR)
    else:  # partly outside: pad the part inside, then resize (bit-exact)
        patch = cv2.copyMakeBorder(
            frame[iy0:iy1, ix0:ix1], iy0 - y0, y1 - iy1, ix0 - x0, x1 - ix1, cv2.BORDER_CONSTANT,
            value=pad_value,
        )
        patch = cv2.resize(patch, (out_size, out_size), interpolation=cv2.INTER_LINEAR)
    if patch.ndim == 2:  # OpenCV drops a single channel axis
        patch = patch[:, :, None]
    if out is None:
        out = np.empty((1, 3, out_size, out_size), dtype=np.float32)
    elif out.shape != (1, 3, out_size, out_size) or out.dtype != np.float32:
        raise ValueError(f"out must be float32 (1, 3, {out_size}, {out_size}), got {out.dtype} {out.shape}")
    if c == 1:
        out[0, :] = patch[:, :, 0]  # gray -> three equal BGR planes
    else:
        # contiguous uint8 planes, then one cast per plane: ~2x faster than a strided HWC->CHW float copy
        planes = cv2.split(np.ascontiguousarray(patch))
        for i in range(3):
            np.copyto(out[0, i], planes[i])
    return out
