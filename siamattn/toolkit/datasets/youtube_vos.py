"""YouTube-VOS reader (boxes from the object masks)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from siamattn.toolkit.datasets.base import DatasetLayoutError, VideoDataset, VideoSequence, require_path
from siamattn.toolkit.datasets.files import mask_to_box, read_label_png, read_text
from siamattn.toolkit.metrics import valid_boxes

_YTVOS_LAYOUT = """  ROOT/<split>/meta.json    ({"videos": {<vid>: {"objects": {"<id>": {"category": ...,
                                                "frames": ["00000", "00005", ...]}}}}})
  ROOT/<split>/JPEGImages/<vid>/00000.jpg, ...
  ROOT/<split>/Annotations/<vid>/00000.png, ... (palette PNGs: pixel value = object id, 0 = background)"""


class YouTubeVOS(VideoDataset):
    """YouTube-VOS (https://youtube-vos.org), one split.

    Layout::

    """ + _YTVOS_LAYOUT + """

    Every (video, object) pair is a sequence named ``<vid>/<id>`` over the frames meta.json lists for the
    object; boxes are the tight boxes of its mask pixels (computed when the sequence is first loaded),
    frames where the mask is empty are not visible.
    """

    name = "youtubevos"

    def __init__(self, root: str | Path, split: str = "train", cache_size: int = 2048) -> None:
        super().__init__(root, cache_size)
        self.split = split
        meta_file = require_path(self.root / split / "meta.json", "YouTube-VOS", _YTVOS_LAYOUT)
        require_path(self.root / split / "JPEGImages", "YouTube-VOS", _YTVOS_LAYOUT)
        require_path(self.root / split / "Annotations", "YouTube-VOS", _YTVOS_LAYOUT)
        try:
            videos = json.loads(read_text(meta_file))["videos"]
        except (KeyError, json.JSONDecodeError) as exc:
            raise DatasetLayoutError(f"YouTube-VOS: '{meta_file}' is not a meta.json with a 'videos' map "
                                     f"({exc}). Expected layout:\n{_YTVOS_LAYOUT}") from exc
        self._items: list[tuple[str, int, list[str]]] = []
        for vid in sorted(videos):
            for obj_id, obj in sorted(videos[vid].get("objects", {}).items(), key=lambda kv: int(kv[0])):
                frames = list(obj.get("frames", []))
                if frames:
                    self._items.append((vid, int(obj_id), frames))
        if not self._items:
            raise DatasetLayoutError(f"YouTube-VOS: '{meta_file}' lists no objects with frames")
        self.names = [f"{v}/{o}" for v, o, _ in self._items]

    def check_annotations(self) -> None:
        # meta.json was parsed when the dataset was opened; the boxes come from decoding every mask PNG,
        # too slow to do up front, so only check that each listed frame exists (masks fail when read).
        for vid, _, stems in self._items:
            for s in stems:
                require_path(self.root / self.split / "JPEGImages" / vid / f"{s}.jpg", "YouTube-VOS", _YTVOS_LAYOUT)

    def _load(self, i: int) -> VideoSequence:
        vid, obj_id, stems = self._items[i]
        img_dir = self.root / self.split / "JPEGImages" / vid
        ann_dir = self.root / self.split / "Annotations" / vid
        frames = [require_path(img_dir / f"{s}.jpg", "YouTube-VOS", _YTVOS_LAYOUT) for s in stems]
        masks: list[Path | None] = [p if p.exists() else None for p in (ann_dir / f"{s}.png" for s in stems)]
        if all(m is None for m in masks):
            require_path(ann_dir / f"{stems[0]}.png", "YouTube-VOS", _YTVOS_LAYOUT)
        boxes = np.full((len(stems), 4), np.nan)
        for k, m in enumerate(masks):
            if m is not None:
                boxes[k] = mask_to_box(read_label_png(m) == obj_id)
        return VideoSequence(self.names[i], frames, boxes, valid_boxes(boxes), mask_paths=masks, mask_value=obj_id)

