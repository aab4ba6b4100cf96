"""LaSOT reader."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from siamattn.toolkit.datasets.base import DatasetLayoutError, VideoDataset, VideoSequence, require_path
from siamattn.toolkit.datasets.files import read_box_file, read_flags, sorted_frames
from siamattn.toolkit.metrics import valid_boxes

_LASOT_LAYOUT = """  ROOT/<category>/<category>-<n>/img/00000001.jpg, ...
  ROOT/<category>/<category>-<n>/groundtruth.txt      (x,y,w,h per frame, comma-separated)
  ROOT/<category>/<category>-<n>/full_occlusion.txt   (0/1 per frame, comma-separated on one line)
  ROOT/<category>/<category>-<n>/out_of_view.txt      (0/1 per frame, comma-separated on one line)"""


class LaSOT(VideoDataset):
    """LaSOT (https://vision.cs.stonybrook.edu/~lasot/).

    Layout::

    """ + _LASOT_LAYOUT + """

    ``names`` restricts the sequences (e.g. the 280 test sequences, ``airplane-1`` style names);
    ``visible`` is False on fully occluded and out-of-view frames.
    """

    name = "lasot"

    def __init__(self, root: str | Path, names: Sequence[str] | None = None, cache_size: int = 2048) -> None:
        super().__init__(root, cache_size)
        require_path(self.root, "LaSOT", _LASOT_LAYOUT)
        found = sorted(
            (p for c in self.root.iterdir() if c.is_dir() for p in c.iterdir()
             if p.is_dir() and p.name.startswith(c.name + "-")),
            key=lambda p: (p.parent.name, int(p.name.rsplit("-", 1)[1]) if p.name.rsplit("-", 1)[1].isdigit()
                           else 0),
        )
        by_name = {p.name: p for p in found}
        if names is not None:
            missing = [n for n in names if n not in by_name]
            if missing:
                cat = missing[0].rsplit("-", 1)[0]
                raise DatasetLayoutError(f"LaSOT: missing '{self.root / cat / missing[0]}'. Expected layout:\n"
                                         + _LASOT_LAYOUT)
            found = [by_name[n] for n in names]
        if not found:
            raise DatasetLayoutError(f"LaSOT: no '<category>/<category>-<n>' folders under '{self.root}'. "
                                     f"Expected layout:\n{_LASOT_LAYOUT}")
        for p in found:
            require_path(p / "groundtruth.txt", "LaSOT", _LASOT_LAYOUT)
            require_path(p / "img", "LaSOT", _LASOT_LAYOUT)
        self._dirs = found
        self.names = [p.name for p in found]

    def _load(self, i: int) -> VideoSequence:
        d = self._dirs[i]
        frames = sorted_frames(d / "img")
        boxes = read_box_file(d / "groundtruth.txt")
        if len(boxes) != len(frames):
            raise DatasetLayoutError(f"LaSOT: '{d / 'groundtruth.txt'}' has {len(boxes)} boxes for "
                                     f"{len(frames)} frames in '{d / 'img'}'")
        visible = valid_boxes(boxes)
        attrs: dict[str, np.ndarray] = {}
        for label in ("full_occlusion", "out_of_view"):
            f = require_path(d / f"{label}.txt", "LaSOT", _LASOT_LAYOUT)
            values = read_flags(f)
            if len(values) != len(frames):
                raise DatasetLayoutError(f"LaSOT: '{f}' has {len(values)} values for {len(frames)} frames")
            attrs[label] = values
            visible &= values == 0
        return VideoSequence(self.names[i], frames, boxes, visible, attributes=attrs)

