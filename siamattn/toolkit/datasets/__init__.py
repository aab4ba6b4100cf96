"""Readers for tracking / segmentation datasets in their published folder layouts, one module each.

Every reader turns a dataset into :class:`VideoSequence` records (frame paths, ``[N, 4]`` ``x, y, w, h``
boxes, visibility flags, optional masks) behind the :class:`VideoDataset` interface
(:mod:`siamattn.toolkit.datasets.base`). A reader checks the layout when it is opened and raises
:class:`DatasetLayoutError` naming the missing file or folder and the layout it expected; layouts are listed
in each class docstring and in docs/DATASETS.md.

Nothing here needs torch, and nothing decodes images except YouTube-VOS masks (boxes come from the masks)
and mask look-ups; the training crop/augmentation pipeline reads the frames itself.
"""

from __future__ import annotations

from pathlib import Path

from siamattn.errors import InputError
from siamattn.toolkit.datasets.base import DatasetLayoutError, VideoDataset, VideoSequence
from siamattn.toolkit.datasets.coco import COCO
from siamattn.toolkit.datasets.files import mask_to_box, read_box_file, read_label_png
from siamattn.toolkit.datasets.got10k import GOT10k, read_meta_info
from siamattn.toolkit.datasets.lasot import LaSOT
from siamattn.toolkit.datasets.otb import OTB
from siamattn.toolkit.datasets.segmentation import decode_coco_segmentation
from siamattn.toolkit.datasets.trackingnet import TrackingNet
from siamattn.toolkit.datasets.vot import VOT
from siamattn.toolkit.datasets.youtube_vos import YouTubeVOS

__all__ = [
    "COCO",
    "OTB",
    "VOT",
    "DatasetLayoutError",
    "GOT10k",
    "LaSOT",
    "TrackingNet",
    "VideoDataset",
    "VideoSequence",
    "YouTubeVOS",
    "decode_coco_segmentation",
    "mask_to_box",
    "open_dataset",
    "read_box_file",
    "read_label_png",
    "read_meta_info",
]

_READERS: dict[str, type[VideoDataset]] = {
    "coco": COCO, "got10k": GOT10k, "lasot": LaSOT, "trackingnet": TrackingNet, "youtubevos": YouTubeVOS,
    "otb": OTB, "vot": VOT,
}


def open_dataset(kind: str, root: str | Path, **kwargs: object) -> VideoDataset:
    """Open a dataset by name (``coco``, ``got10k``, ``lasot``, ``trackingnet``, ``youtubevos``, ``otb``,
    ``vot``); keyword arguments go to the reader (e.g. ``split='val'``)."""
    cls = _READERS.get(kind.lower().replace("-", "").replace("_", ""))
    if cls is None:
        raise InputError(f"unknown dataset {kind!r}; choose one of {', '.join(sorted(_READERS))}")
    return cls(root, **kwargs)  # type: ignore[arg-type]

