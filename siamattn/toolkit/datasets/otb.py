"""OTB-2013/2015 reader."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from siamattn.toolkit.datasets.base import DatasetLayoutError, VideoDataset, VideoSequence, require_path
from siamattn.toolkit.datasets.files import read_box_file, read_text, sorted_frames
from siamattn.toolkit.metrics import valid_boxes

_OTB_LAYOUT = """  ROOT/<seq>/img/0001.jpg, 0002.jpg, ...
  ROOT/<seq>/groundtruth_rect.txt            (x,y,w,h per frame; commas, tabs or spaces)
  ROOT/<seq>/groundtruth_rect.1.txt, .2.txt  (instead, for sequences with two targets: Jogging, Skating2)"""

# OTB sequences whose image folder holds more frames than the annotation: first annotated frame (1-based).
# The others with extra images (Football1, Freeman3, Freeman4, Diving) start at frame 1 and end early.
_OTB_START_FRAME = {"david": 300}


class OTB(VideoDataset):
    """OTB-2013/2015 (http://cvlab.hanyang.ac.kr/tracker_benchmark/).

    Layout::

    """ + _OTB_LAYOUT + """

    A sequence with two annotation files becomes ``<seq>.1`` and ``<seq>.2`` (got10k's names). Empty
    annotation files are ignored (Human4's groundtruth_rect.1.txt).
    """

    name = "otb"

    def __init__(self, root: str | Path, names: Sequence[str] | None = None, cache_size: int = 2048) -> None:
        super().__init__(root, cache_size)
        require_path(self.root, "OTB", _OTB_LAYOUT)
        items: list[tuple[str, Path, Path]] = []
        for d in sorted(p for p in self.root.iterdir() if p.is_dir()):
            annos = sorted(f for f in d.glob("groundtruth_rect*.txt") if read_text(f).strip())
            if not annos:
                continue
            require_path(d / "img", "OTB", _OTB_LAYOUT)
            for k, a in enumerate(annos, 1):
                items.append((d.name if len(annos) == 1 else f"{d.name}.{k}", d, a))
        if names is not None:
            by_name = {it[0]: it for it in items}
            missing = [n for n in names if n not in by_name]
            if missing:
                raise DatasetLayoutError(f"OTB: missing '{self.root / missing[0].split('.')[0]}'. "
                                         f"Expected layout:\n{_OTB_LAYOUT}")
            items = [by_name[n] for n in names]
        if not items:
            raise DatasetLayoutError(f"OTB: no '<seq>/groundtruth_rect.txt' under '{self.root}'. "
                                     f"Expected layout:\n{_OTB_LAYOUT}")
        self._items = items
        self.names = [it[0] for it in items]

    def _load(self, i: int) -> VideoSequence:
        name, d, anno = self._items[i]
        frames = sorted_frames(d / "img")
        boxes = read_box_file(anno)
        start = _OTB_START_FRAME.get(d.name.lower(), 1) - 1
        if len(frames) - start < len(boxes):
            raise DatasetLayoutError(f"OTB: '{anno}' has {len(boxes)} boxes but '{d / 'img'}' has "
                                     f"{len(frames)} frames")
        frames = frames[start:start + len(boxes)]
        return VideoSequence(name, frames, boxes, valid_boxes(boxes))

