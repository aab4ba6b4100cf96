"""GOT-10k reader."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from siamattn.toolkit.datasets.base import DatasetLayoutError, VideoDataset, VideoSequence, require_path
from siamattn.toolkit.datasets.files import pad_boxes, read_box_file, read_flags, read_text, sorted_frames
from siamattn.toolkit.metrics import valid_boxes

_GOT10K_LAYOUT = """  ROOT/<split>/list.txt                       (one sequence name per line; split = train|val|test)
  ROOT/<split>/<seq>/00000001.jpg, 00000002.jpg, ...
  ROOT/<split>/<seq>/groundtruth.txt          (x,y,w,h per frame; test: first frame only)
  ROOT/<split>/<seq>/absence.label, cover.label, cut_by_image.label   (one value per frame; train/val)
  ROOT/<split>/<seq>/meta_info.ini            ([METAINFO] lines 'key: value', incl. 'resolution: (W, H)')
  ROOT/<split>/<seq>/masks/00000001.png ...   (optional, written by siamattn's generator)"""


def read_meta_info(path: Path) -> dict[str, str]:
    """GOT-10k meta_info.ini: a '[METAINFO]' header then 'key: value' lines."""
    meta: dict[str, str] = {}
    for line in read_text(path).splitlines()[1:]:
        if ": " in line:
            key, value = line.split(": ", 1)
            meta[key.strip()] = value.strip()
    return meta


def _parse_resolution(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    nums = re.findall(r"\d+", text)
    return (int(nums[0]), int(nums[1])) if len(nums) >= 2 else None


class GOT10k(VideoDataset):
    """GOT-10k (http://got-10k.aitestunion.com), one split.

    Layout::

    """ + _GOT10K_LAYOUT + """

    ``visible`` is ``absence == 0 and cover > 0`` where the labels exist (a valid box otherwise). The
    ``masks/`` folder is not part of GOT-10k; the generator in :mod:`siamattn.training.generator` adds it.
    """

    name = "got10k"

    def __init__(self, root: str | Path, split: str = "train", cache_size: int = 2048) -> None:
        super().__init__(root, cache_size)
        self.split = split
        split_dir = self.root / split
        list_file = require_path(split_dir / "list.txt", "GOT-10k", _GOT10K_LAYOUT)
        self.names = [s.strip() for s in read_text(list_file).splitlines() if s.strip()]
        if not self.names:
            raise DatasetLayoutError(f"GOT-10k: '{list_file}' lists no sequences")
        for s in self.names:
            require_path(split_dir / s / "groundtruth.txt", "GOT-10k", _GOT10K_LAYOUT)

    def _load(self, i: int) -> VideoSequence:
        name = self.names[i]
        d = self.root / self.split / name
        frames = sorted_frames(d)
        if not frames:
            raise DatasetLayoutError(f"GOT-10k: no frames '{d}/00000001.jpg' ... Expected layout:\n"
                                     + _GOT10K_LAYOUT)
        boxes = read_box_file(d / "groundtruth.txt")
        if len(boxes) != len(frames) and not (self.split == "test" and len(boxes) == 1):
            raise DatasetLayoutError(f"GOT-10k: '{d / 'groundtruth.txt'}' has {len(boxes)} boxes for "
                                     f"{len(frames)} frames")
        boxes = pad_boxes(boxes, len(frames))
        visible = valid_boxes(boxes)
        attrs: dict[str, np.ndarray] = {}
        for label in ("absence", "cover", "cut_by_image"):
            f = d / f"{label}.label"
            if f.exists():
                values = read_flags(f)
                if len(values) != len(frames):
                    raise DatasetLayoutError(f"GOT-10k: '{f}' has {len(values)} values for {len(frames)} frames")
                attrs[label] = values
        if "absence" in attrs:
            visible &= attrs["absence"] == 0
        if "cover" in attrs:
            visible &= attrs["cover"] > 0
        size = None
        if (d / "meta_info.ini").exists():
            size = _parse_resolution(read_meta_info(d / "meta_info.ini").get("resolution"))
        mask_dir = d / "masks"
        masks = None
        if mask_dir.is_dir():
            masks = [p if p.exists() else None for p in (mask_dir / f"{f.stem}.png" for f in frames)]
        return VideoSequence(name, frames, boxes, visible, mask_paths=masks, image_size=size, attributes=attrs)

