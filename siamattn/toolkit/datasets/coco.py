"""COCO instances reader: every object annotation is a one-frame sequence."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np

from siamattn.toolkit.datasets.base import DatasetLayoutError, VideoDataset, VideoSequence, require_path
from siamattn.toolkit.datasets.files import read_text
from siamattn.toolkit.datasets.segmentation import decode_coco_segmentation

_COCO_LAYOUT = """  ROOT/annotations/instances_<split>.json   (COCO 'instances' format; split e.g. train2017)
  ROOT/<split>/<file_name>                   (images named by the JSON's images[].file_name)"""


class COCO(VideoDataset):
    """COCO instances (https://cocodataset.org): every object annotation is a one-frame sequence.

    Layout::

    """ + _COCO_LAYOUT + """

    Crowd annotations (``iscrowd: 1``) and boxes smaller than ``min_size`` pixels on a side are skipped.
    Masks decode on demand from the annotation's polygons or RLE.
    """

    name = "coco"
    is_image_dataset = True

    def __init__(self, root: str | Path, split: str = "train2017", annotation_file: str | Path | None = None,
                 min_size: float = 1.0, include_crowd: bool = False, cache_size: int = 2048) -> None:
        super().__init__(root, cache_size)
        self.split = split
        ann = Path(annotation_file) if annotation_file else self.root / "annotations" / f"instances_{split}.json"
        require_path(ann, "COCO", _COCO_LAYOUT)
        self.image_dir = require_path(self.root / split, "COCO", _COCO_LAYOUT)
        try:
            data = json.loads(read_text(ann))
            images = {img["id"]: img for img in data["images"]}
            annotations = data["annotations"]
        except (KeyError, TypeError, json.JSONDecodeError) as exc:
            raise DatasetLayoutError(f"COCO: '{ann}' is not an instances JSON with 'images' and 'annotations' "
                                     f"({exc})") from exc
        self._items: list[tuple[dict, dict]] = []
        for a in annotations:
            if a.get("iscrowd", 0) and not include_crowd:
                continue
            x, y, w, h = a["bbox"]
            if w < min_size or h < min_size:
                continue
            img = images.get(a["image_id"])
            if img is None:
                raise DatasetLayoutError(f"COCO: annotation {a.get('id')} refers to missing image "
                                         f"{a['image_id']} in '{ann}'")
            self._items.append((img, a))
        self.names = [f"{img['file_name'].rsplit('.', 1)[0]}/{a.get('id', k)}"
                      for k, (img, a) in enumerate(self._items)]

    def _load(self, i: int) -> VideoSequence:
        img, a = self._items[i]
        path = self.image_dir / img["file_name"]
        mask_fn = None
        if a.get("segmentation"):
            mask_fn = functools.partial(_coco_mask, a["segmentation"], int(img["height"]), int(img["width"]))
        return VideoSequence(self.names[i], [path], np.array([a["bbox"]], dtype=np.float64), np.array([True]),
                        mask_fn=mask_fn, image_size=(int(img["width"]), int(img["height"])),
                        attributes={"category_id": np.array([a.get("category_id", 0)])})


def _coco_mask(segmentation: object, height: int, width: int, _frame: int) -> np.ndarray:
    return decode_coco_segmentation(segmentation, height, width)

