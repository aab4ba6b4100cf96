"""The in-memory form every dataset reader produces: :class:`VideoSequence` records behind the
:class:`VideoDataset` interface (``len(ds)``, ``ds.sequence(i)``, ``ds.names``), and the layout error the
readers raise. Image datasets (COCO) expose every annotated object as a one-frame sequence.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from siamattn.errors import InputError
from siamattn.toolkit.datasets.files import read_label_png


class DatasetLayoutError(InputError):
    """A dataset folder does not have the layout its reader expects. The message is one line, as every error's
    (docs/ERRORS.md): a layout diagram given over several lines is joined by '; '."""

    def __init__(self, message: str) -> None:
        first, *rest = str(message).splitlines() or [""]
        parts = [" ".join(line.split()) for line in rest if line.strip()]
        super().__init__(" ".join([first.rstrip(), "; ".join(parts)]) if parts else first)


def require_path(path: Path, dataset: str, layout: str) -> Path:
    """``path`` if it exists, else a :class:`DatasetLayoutError` naming it and the expected ``layout``."""
    if not path.exists():
        raise DatasetLayoutError(f"{dataset}: missing '{path}'. Expected layout:\n{layout}")
    return path




@dataclass
class VideoSequence:
    """One tracked object: its frames and per-frame annotation.

    ``boxes_xywh`` is ``[N, 4]`` float64 (NaN rows where the benchmark gives no box, e.g. test splits);
    ``visible[i]`` is False where the target is absent, fully occluded, out of view or unlabeled.
    Masks come from ``mask_paths`` (one PNG per frame or None; the object is the pixels equal to
    ``mask_value``, or all non-zero pixels when it is None) or from ``mask_fn`` (frame index -> bool
    array).
    """

    name: str
    frame_paths: list[Path]
    boxes_xywh: np.ndarray
    visible: np.ndarray
    mask_paths: list[Path | None] | None = None
    mask_value: int | None = None
    mask_fn: Callable[[int], np.ndarray] | None = field(default=None, repr=False)
    polygons: np.ndarray | None = None  # [N, 8] VOT regions (rotated rectangles) when the dataset has them
    image_size: tuple[int, int] | None = None  # (W, H) when the dataset states it
    attributes: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # per-frame labels

    def __post_init__(self) -> None:
        self.boxes_xywh = np.asarray(self.boxes_xywh, dtype=np.float64).reshape(-1, 4)
        self.visible = np.asarray(self.visible, dtype=bool).reshape(-1)
        n = len(self.frame_paths)
        if len(self.boxes_xywh) != n or len(self.visible) != n:
            raise InputError(f"sequence {self.name!r}: {n} frames but {len(self.boxes_xywh)} boxes and "
                             f"{len(self.visible)} visibility flags")

    def __len__(self) -> int:
        return len(self.frame_paths)

    @property
    def has_masks(self) -> bool:
        return self.mask_fn is not None or self.mask_paths is not None

    def mask(self, i: int) -> np.ndarray | None:
        """Boolean ``[H, W]`` mask of the object in frame ``i``, or None if the dataset has none there."""
        if self.mask_fn is not None:
            return self.mask_fn(i)
        if self.mask_paths is None or self.mask_paths[i] is None:
            return None
        labels = read_label_png(self.mask_paths[i])
        return labels > 0 if self.mask_value is None else labels == self.mask_value


class VideoDataset:
    """Base class: a list of sequence names and a lazy, cached ``sequence(i)``."""

    name = "dataset"
    is_image_dataset = False  # True for datasets whose sequences are single images (COCO)

    def __init__(self, root: str | Path, cache_size: int = 2048) -> None:
        self.root = Path(root)
        self.names: list[str] = []
        self._cache: OrderedDict[int, VideoSequence] = OrderedDict()
        self._cache_size = cache_size

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self) -> Iterator[VideoSequence]:
        for i in range(len(self)):
            yield self.sequence(i)

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise InputError(f"{self.name}: no sequence named {name!r} under {self.root}") from None

    def sequence(self, i: int) -> VideoSequence:
        if not 0 <= i < len(self):
            raise IndexError(f"{self.name}: sequence index {i} out of range (0..{len(self) - 1})")
        seq = self._cache.get(i)
        if seq is None:
            seq = self._load(i)
            self._cache[i] = seq
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(i)
        return seq

    def _load(self, i: int) -> VideoSequence:  # pragma: no cover - abstract
        raise NotImplementedError

    def check_annotations(self) -> None:
        """Parse every sequence's annotation files now, so that a malformed one fails with one line naming the
        file and line before any work starts (training would otherwise meet it inside a DataLoader worker,
        epochs later). Readers whose sequences are costly to load (YouTube-VOS decodes every mask for its
        boxes) override this with a cheaper check."""
        for i in range(len(self)):
            self._load(i)  # not cached: workers get the dataset without its cache anyway

    def __getstate__(self) -> dict:
        # DataLoader workers get a copy without the (possibly large) cache.
        state = self.__dict__.copy()
        state["_cache"] = OrderedDict()
        return state

