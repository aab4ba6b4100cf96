"""VOT short-term (2016-2019) reader."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from siamattn.errors import InputError
from siamattn.toolkit.datasets.base import DatasetLayoutError, VideoDataset, VideoSequence, require_path
from siamattn.toolkit.datasets.files import read_text, read_text_lines, sorted_frames
from siamattn.toolkit.metrics import valid_boxes

_VOT_LAYOUT = """  ROOT/list.txt                  (sequence names; optional: else each folder with groundtruth.txt)
  ROOT/<seq>/color/00000001.jpg  (or ROOT/<seq>/00000001.jpg in older releases)
  ROOT/<seq>/groundtruth.txt     (per frame: x1,y1,x2,y2,x3,y3,x4,y4 polygon, or x,y,w,h)"""


class VOT(VideoDataset):
    """VOT short-term challenges 2016-2019 (https://votchallenge.net).

    Layout::

    """ + _VOT_LAYOUT + """

    ``polygons`` holds the 8-value regions (4-value boxes become their corners); ``boxes_xywh`` are
    their axis-aligned bounding boxes.
    """

    name = "vot"

    def __init__(self, root: str | Path, cache_size: int = 2048) -> None:
        super().__init__(root, cache_size)
        require_path(self.root, "VOT", _VOT_LAYOUT)
        list_file = self.root / "list.txt"
        if list_file.exists():
            self.names = [s.strip() for s in read_text(list_file).splitlines() if s.strip()]
        else:
            self.names = sorted(p.name for p in self.root.iterdir() if (p / "groundtruth.txt").exists())
        if not self.names:
            raise DatasetLayoutError(f"VOT: no '<seq>/groundtruth.txt' under '{self.root}'. Expected layout:\n"
                                     + _VOT_LAYOUT)
        for s in self.names:
            require_path(self.root / s / "groundtruth.txt", "VOT", _VOT_LAYOUT)

    def _load(self, i: int) -> VideoSequence:
        d = self.root / self.names[i]
        frames = sorted_frames(d / "color") if (d / "color").is_dir() else sorted_frames(d)
        rows = []
        for lineno, line in enumerate(read_text_lines(d / "groundtruth.txt"), 1):
            if not line.strip():
                continue
            try:
                vals = [float(v) for v in line.replace("\t", ",").split(",") if v.strip()]
            except ValueError:
                raise InputError(f"{d / 'groundtruth.txt'}:{lineno}: expected 4 or 8 numbers, got {line!r}") from None
            if len(vals) == 4:
                x, y, w, h = vals
                vals = [x, y, x + w, y, x + w, y + h, x, y + h]
            if len(vals) != 8:
                raise InputError(f"{d / 'groundtruth.txt'}:{lineno}: expected 4 or 8 values, got {len(vals)}")
            if not all(math.isfinite(v) for v in vals):
                raise InputError(f"{d / 'groundtruth.txt'}:{lineno}: expected finite numbers, got {line!r}")
            rows.append(vals)
        polys = np.array(rows, dtype=np.float64).reshape(-1, 8)
        if len(polys) != len(frames):
            raise DatasetLayoutError(f"VOT: '{d / 'groundtruth.txt'}' has {len(polys)} regions for "
                                     f"{len(frames)} frames. Expected layout:\n{_VOT_LAYOUT}")
        xs, ys = polys[:, 0::2], polys[:, 1::2]
        boxes = np.stack([xs.min(1), ys.min(1), xs.max(1) - xs.min(1), ys.max(1) - ys.min(1)], axis=1)
        return VideoSequence(self.names[i], frames, boxes, valid_boxes(boxes), polygons=polys)

