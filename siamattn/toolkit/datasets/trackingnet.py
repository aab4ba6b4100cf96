"""TrackingNet reader."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from siamattn.toolkit.datasets.base import DatasetLayoutError, VideoDataset, VideoSequence, require_path
from siamattn.toolkit.datasets.files import pad_boxes, read_box_file, sorted_frames
from siamattn.toolkit.metrics import valid_boxes

_TRACKINGNET_LAYOUT = """  ROOT/TRAIN_0 ... ROOT/TRAIN_11, ROOT/TEST     (chunks; any subset)
  ROOT/<chunk>/frames/<seq>/0.jpg, 1.jpg, ...   (numbered from 0, no zero padding)
  ROOT/<chunk>/anno/<seq>.txt                   (x,y,w,h per frame, comma-separated; TEST: first frame only)"""


class TrackingNet(VideoDataset):
    """TrackingNet (https://tracking-net.org).

    Layout::

    """ + _TRACKINGNET_LAYOUT + """

    ``chunks`` picks chunk folders (default: every ``TRAIN_<i>`` present). Sequence names are
    ``<chunk>/<seq>``.
    """

    name = "trackingnet"

    def __init__(self, root: str | Path, chunks: Sequence[str] | None = None, cache_size: int = 2048) -> None:
        super().__init__(root, cache_size)
        require_path(self.root, "TrackingNet", _TRACKINGNET_LAYOUT)
        if chunks is None:
            chunks = sorted((p.name for p in self.root.iterdir() if re.fullmatch(r"TRAIN_\d+", p.name)),
                            key=lambda s: int(s.split("_")[1]))
            if not chunks:
                raise DatasetLayoutError(f"TrackingNet: no 'TRAIN_<i>' chunk folders in '{self.root}'. "
                                         f"Expected layout:\n{_TRACKINGNET_LAYOUT}")
        self._items: list[tuple[str, str]] = []
        for chunk in chunks:
            anno = require_path(self.root / chunk / "anno", "TrackingNet", _TRACKINGNET_LAYOUT)
            require_path(self.root / chunk / "frames", "TrackingNet", _TRACKINGNET_LAYOUT)
            for f in sorted(anno.glob("*.txt")):
                self._items.append((chunk, f.stem))
        if not self._items:
            raise DatasetLayoutError(f"TrackingNet: no '<chunk>/anno/<seq>.txt' files under '{self.root}'. "
                                     f"Expected layout:\n{_TRACKINGNET_LAYOUT}")
        self.names = [f"{c}/{s}" for c, s in self._items]

    def _load(self, i: int) -> VideoSequence:
        chunk, seq = self._items[i]
        frame_dir = require_path(self.root / chunk / "frames" / seq, "TrackingNet", _TRACKINGNET_LAYOUT)
        frames = sorted_frames(frame_dir)
        anno = self.root / chunk / "anno" / f"{seq}.txt"
        boxes = read_box_file(anno)
        if len(boxes) != len(frames) and len(boxes) != 1:
            raise DatasetLayoutError(f"TrackingNet: '{anno}' has {len(boxes)} boxes for {len(frames)} frames")
        boxes = pad_boxes(boxes, len(frames))
        return VideoSequence(self.names[i], frames, boxes, valid_boxes(boxes))

