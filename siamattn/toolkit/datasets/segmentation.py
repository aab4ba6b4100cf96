"""COCO ``segmentation`` decoding: compressed and uncompressed RLE, and polygons, to boolean masks."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from siamattn.errors import InputError


def _rle_counts_from_string(s: str) -> list[int]:
    """Decode COCO's compressed RLE string: 6-bit characters (offset 48) forming variable-length signed
    integers, 5 payload bits each, 0x20 = "more follows", 0x10 in the last char = negative; from the third
    count on, each value is stored as a difference to the count two places before."""
    counts: list[int] = []
    p = 0
    while p < len(s):
        value, shift, more = 0, 0, True
        while more:
            c = ord(s[p]) - 48
            value |= (c & 0x1F) << shift
            more = bool(c & 0x20)
            p += 1
            shift += 5
            if not more and (c & 0x10):
                value |= -1 << shift
        if len(counts) > 2:
            value += counts[-2]
        counts.append(value)
    return counts


def _rle_decode(counts: Sequence[int], height: int, width: int) -> np.ndarray:
    """Run lengths alternate background/foreground, starting with background, over the image in
    column-major (Fortran) order."""
    flat = np.zeros(height * width, dtype=bool)
    pos, value = 0, False
    for run in counts:
        if value:
            flat[pos:pos + run] = True
        pos += run
        value = not value
    return flat.reshape((width, height)).T


def _fill_polygon(points: np.ndarray, height: int, width: int, out: np.ndarray) -> None:
    """Scanline fill (even-odd rule) of the pixels whose centres ``(x + 0.5, y + 0.5)`` lie inside the
    polygon: a ``w x h`` rectangle fills exactly ``w * h`` pixels, close to pycocotools' rasteriser."""
    x0, y0 = points[:, 0], points[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    lo, hi = max(int(np.floor(points[:, 1].min())), 0), min(int(np.ceil(points[:, 1].max())), height)
    for row in range(lo, hi):
        yc = row + 0.5
        crossing = (y0 <= yc) != (y1 <= yc)  # half-open so a vertex on the line is counted once
        if not crossing.any():
            continue
        t = (yc - y0[crossing]) / (y1[crossing] - y0[crossing])
        xs = np.sort(x0[crossing] + t * (x1[crossing] - x0[crossing]))
        for a, b in zip(xs[0::2], xs[1::2], strict=False):
            # pixel x is inside when a <= x + 0.5 < b
            c0, c1 = max(int(np.ceil(a - 0.5)), 0), min(int(np.ceil(b - 0.5)), width)
            if c1 > c0:
                out[row, c0:c1] ^= True


def decode_coco_segmentation(segmentation: object, height: int, width: int) -> np.ndarray:
    """COCO ``segmentation`` (polygon list, uncompressed RLE or compressed RLE) -> bool ``[H, W]`` mask.

    Polygons are filled at pixel centres (several polygons of one object are OR-ed), which agrees with
    pycocotools except for pixels whose centre lies on an edge; RLE decoding is exact.
    """
    if isinstance(segmentation, list):
        mask = np.zeros((height, width), dtype=bool)
        for p in segmentation:
            if len(p) >= 6:
                part = np.zeros_like(mask)
                _fill_polygon(np.asarray(p, dtype=np.float64).reshape(-1, 2), height, width, part)
                mask |= part
        return mask
    if isinstance(segmentation, dict) and "counts" in segmentation:
        h, w = segmentation.get("size", (height, width))
        counts = segmentation["counts"]
        if isinstance(counts, str | bytes):
            counts = _rle_counts_from_string(counts.decode() if isinstance(counts, bytes) else counts)
        return _rle_decode(counts, int(h), int(w))
    raise InputError(f"unsupported COCO segmentation {type(segmentation).__name__}")

