"""Readers for tracking / segmentation datasets in their published folder layouts, and a sampler that
mixes them into (template frame, search frame) pairs.

Every reader turns a dataset into :class:`Sequence` objects (frame paths, ``[N, 4]`` ``x, y, w, h``
boxes, visibility flags, optional masks) behind the :class:`VideoDataset` interface (``len(ds)``,
``ds.sequence(i)``, ``ds.names``). Image datasets (COCO) expose every annotated object as a one-frame
sequence. A reader checks the layout when it is opened and raises :class:`DatasetLayoutError` naming the
missing file or folder and the layout it expected. Layouts are listed in each class docstring and in
docs/DATASETS.md.

Nothing here decodes images except YouTube-VOS masks (boxes come from the masks) and mask look-ups; the
crop/augmentation pipeline reads the frames itself.
"""

from __future__ import annotations

import functools
import json
import re
from collections import OrderedDict
from collections.abc import Callable, Iterator
from collections.abc import Sequence as Seq
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from siamattn.errors import InputError, MissingDependencyError

__all__ = [
    "COCO",
    "OTB",
    "VOT",
    "DatasetLayoutError",
    "FrameRef",
    "GOT10k",
    "LaSOT",
    "MixedSampler",
    "PairIndex",
    "Sequence",
    "TrackingNet",
    "VideoDataset",
    "YouTubeVOS",
    "decode_coco_segmentation",
    "mask_to_box",
    "open_dataset",
    "read_box_file",
]


class DatasetLayoutError(InputError):
    """A dataset folder does not have the layout its reader expects."""


def _require(path: Path, dataset: str, layout: str) -> Path:
    if not path.exists():
        raise DatasetLayoutError(f"{dataset}: missing '{path}'. Expected layout:\n{layout}")
    return path


# ---------------------------------------------------------------------------------------------------------
# in-memory interface


@dataclass
class Sequence:
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
        self._cache: OrderedDict[int, Sequence] = OrderedDict()
        self._cache_size = cache_size

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self) -> Iterator[Sequence]:
        for i in range(len(self)):
            yield self.sequence(i)

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise InputError(f"{self.name}: no sequence named {name!r} under {self.root}") from None

    def sequence(self, i: int) -> Sequence:
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

    def _load(self, i: int) -> Sequence:  # pragma: no cover - abstract
        raise NotImplementedError

    def __getstate__(self) -> dict:
        # DataLoader workers get a copy without the (possibly large) cache.
        state = self.__dict__.copy()
        state["_cache"] = OrderedDict()
        return state


# ---------------------------------------------------------------------------------------------------------
# small file helpers


def read_box_file(path: str | Path, columns: int = 4) -> np.ndarray:
    """Read boxes, one per line, separated by commas, tabs or spaces (OTB mixes them). Empty lines are
    skipped; 'NaN'/'nan' are accepted. Returns ``[N, columns]`` float64."""
    rows = []
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            parts = [p for p in re.split(r"[,\s]+", line) if p]
            try:
                values = [float(p) for p in parts]
            except ValueError:
                raise InputError(f"{path}:{lineno}: expected {columns} numbers, got {line!r}") from None
            if len(values) != columns:
                raise InputError(f"{path}:{lineno}: expected {columns} numbers, got {len(values)}")
            rows.append(values)
    return np.array(rows, dtype=np.float64).reshape(-1, columns)


def _read_flags(path: Path) -> np.ndarray:
    """0/1 (or small integer) labels, one per line or comma-separated on one line (LaSOT)."""
    text = path.read_text().replace(",", " ").split()
    return np.array([int(float(t)) for t in text], dtype=np.int64)


def _sorted_frames(folder: Path, pattern: str = "*.jpg") -> list[Path]:
    """Frames in numeric order when their names are numbers (TrackingNet's 0.jpg, 1.jpg, ... 10.jpg)."""
    files = list(folder.glob(pattern))
    if all(p.stem.isdigit() for p in files):
        return sorted(files, key=lambda p: int(p.stem))
    return sorted(files)


def _pad_boxes(boxes: np.ndarray, n: int) -> np.ndarray:
    """Test splits give only the first box: pad the unknown frames with NaN rows."""
    if len(boxes) >= n:
        return boxes[:n]
    return np.vstack([boxes, np.full((n - len(boxes), 4), np.nan)])


def _box_ok(boxes: np.ndarray) -> np.ndarray:
    return np.isfinite(boxes).all(axis=1) & (boxes[:, 2] > 0) & (boxes[:, 3] > 0)


def read_label_png(path: str | Path) -> np.ndarray:
    """Read a mask PNG as an integer label map. Palette PNGs (YouTube-VOS, DAVIS) give their palette
    indices, which OpenCV would expand to colours, so PIL reads them."""
    try:
        from PIL import Image
    except ImportError as exc:  # pragma: no cover - pillow comes with matplotlib
        raise MissingDependencyError("reading mask PNGs needs Pillow: pip install pillow") from exc
    with Image.open(path) as im:
        if im.mode in ("P", "L", "1", "I", "I;16"):
            return np.array(im)
        return np.array(im.convert("L"))


def mask_to_box(mask: np.ndarray) -> np.ndarray:
    """Tight ``[x, y, w, h]`` around the True pixels (pixel-edge convention: a single pixel at (x, y)
    is ``[x, y, 1, 1]``); ``[nan] * 4`` for an empty mask."""
    ys, xs = np.nonzero(mask)
    if xs.size == 0:
        return np.full(4, np.nan)
    return np.array([xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1], dtype=np.float64)


# ---------------------------------------------------------------------------------------------------------
# GOT-10k

_GOT10K_LAYOUT = """  ROOT/<split>/list.txt                       (one sequence name per line; split = train|val|test)
  ROOT/<split>/<seq>/00000001.jpg, 00000002.jpg, ...
  ROOT/<split>/<seq>/groundtruth.txt          (x,y,w,h per frame; test: first frame only)
  ROOT/<split>/<seq>/absence.label, cover.label, cut_by_image.label   (one value per frame; train/val)
  ROOT/<split>/<seq>/meta_info.ini            ([METAINFO] lines 'key: value', incl. 'resolution: (W, H)')
  ROOT/<split>/<seq>/masks/00000001.png ...   (optional, written by siamattn's generator)"""


def read_meta_info(path: Path) -> dict[str, str]:
    """GOT-10k meta_info.ini: a '[METAINFO]' header then 'key: value' lines."""
    meta: dict[str, str] = {}
    for line in path.read_text().splitlines()[1:]:
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
        list_file = _require(split_dir / "list.txt", "GOT-10k", _GOT10K_LAYOUT)
        self.names = [s.strip() for s in list_file.read_text().splitlines() if s.strip()]
        if not self.names:
            raise DatasetLayoutError(f"GOT-10k: '{list_file}' lists no sequences")
        for s in self.names:
            _require(split_dir / s / "groundtruth.txt", "GOT-10k", _GOT10K_LAYOUT)

    def _load(self, i: int) -> Sequence:
        name = self.names[i]
        d = self.root / self.split / name
        frames = _sorted_frames(d)
        if not frames:
            raise DatasetLayoutError(f"GOT-10k: no frames '{d}/00000001.jpg' ... Expected layout:\n"
                                     + _GOT10K_LAYOUT)
        boxes = read_box_file(d / "groundtruth.txt")
        if len(boxes) != len(frames) and not (self.split == "test" and len(boxes) == 1):
            raise DatasetLayoutError(f"GOT-10k: '{d / 'groundtruth.txt'}' has {len(boxes)} boxes for "
                                     f"{len(frames)} frames")
        boxes = _pad_boxes(boxes, len(frames))
        visible = _box_ok(boxes)
        attrs: dict[str, np.ndarray] = {}
        for label in ("absence", "cover", "cut_by_image"):
            f = d / f"{label}.label"
            if f.exists():
                values = _read_flags(f)
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
        return Sequence(name, frames, boxes, visible, mask_paths=masks, image_size=size, attributes=attrs)


# ---------------------------------------------------------------------------------------------------------
# LaSOT

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

    def __init__(self, root: str | Path, names: Seq[str] | None = None, cache_size: int = 2048) -> None:
        super().__init__(root, cache_size)
        _require(self.root, "LaSOT", _LASOT_LAYOUT)
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
            _require(p / "groundtruth.txt", "LaSOT", _LASOT_LAYOUT)
            _require(p / "img", "LaSOT", _LASOT_LAYOUT)
        self._dirs = found
        self.names = [p.name for p in found]

    def _load(self, i: int) -> Sequence:
        d = self._dirs[i]
        frames = _sorted_frames(d / "img")
        boxes = read_box_file(d / "groundtruth.txt")
        if len(boxes) != len(frames):
            raise DatasetLayoutError(f"LaSOT: '{d / 'groundtruth.txt'}' has {len(boxes)} boxes for "
                                     f"{len(frames)} frames in '{d / 'img'}'")
        visible = _box_ok(boxes)
        attrs: dict[str, np.ndarray] = {}
        for label in ("full_occlusion", "out_of_view"):
            f = _require(d / f"{label}.txt", "LaSOT", _LASOT_LAYOUT)
            values = _read_flags(f)
            if len(values) != len(frames):
                raise DatasetLayoutError(f"LaSOT: '{f}' has {len(values)} values for {len(frames)} frames")
            attrs[label] = values
            visible &= values == 0
        return Sequence(self.names[i], frames, boxes, visible, attributes=attrs)


# ---------------------------------------------------------------------------------------------------------
# TrackingNet

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

    def __init__(self, root: str | Path, chunks: Seq[str] | None = None, cache_size: int = 2048) -> None:
        super().__init__(root, cache_size)
        _require(self.root, "TrackingNet", _TRACKINGNET_LAYOUT)
        if chunks is None:
            chunks = sorted((p.name for p in self.root.iterdir() if re.fullmatch(r"TRAIN_\d+", p.name)),
                            key=lambda s: int(s.split("_")[1]))
            if not chunks:
                raise DatasetLayoutError(f"TrackingNet: no 'TRAIN_<i>' chunk folders in '{self.root}'. "
                                         f"Expected layout:\n{_TRACKINGNET_LAYOUT}")
        self._items: list[tuple[str, str]] = []
        for chunk in chunks:
            anno = _require(self.root / chunk / "anno", "TrackingNet", _TRACKINGNET_LAYOUT)
            _require(self.root / chunk / "frames", "TrackingNet", _TRACKINGNET_LAYOUT)
            for f in sorted(anno.glob("*.txt")):
                self._items.append((chunk, f.stem))
        if not self._items:
            raise DatasetLayoutError(f"TrackingNet: no '<chunk>/anno/<seq>.txt' files under '{self.root}'. "
                                     f"Expected layout:\n{_TRACKINGNET_LAYOUT}")
        self.names = [f"{c}/{s}" for c, s in self._items]

    def _load(self, i: int) -> Sequence:
        chunk, seq = self._items[i]
        frame_dir = _require(self.root / chunk / "frames" / seq, "TrackingNet", _TRACKINGNET_LAYOUT)
        frames = _sorted_frames(frame_dir)
        anno = self.root / chunk / "anno" / f"{seq}.txt"
        boxes = read_box_file(anno)
        if len(boxes) != len(frames) and len(boxes) != 1:
            raise DatasetLayoutError(f"TrackingNet: '{anno}' has {len(boxes)} boxes for {len(frames)} frames")
        boxes = _pad_boxes(boxes, len(frames))
        return Sequence(self.names[i], frames, boxes, _box_ok(boxes))


# ---------------------------------------------------------------------------------------------------------
# YouTube-VOS

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
        meta_file = _require(self.root / split / "meta.json", "YouTube-VOS", _YTVOS_LAYOUT)
        _require(self.root / split / "JPEGImages", "YouTube-VOS", _YTVOS_LAYOUT)
        _require(self.root / split / "Annotations", "YouTube-VOS", _YTVOS_LAYOUT)
        try:
            videos = json.loads(meta_file.read_text())["videos"]
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

    def _load(self, i: int) -> Sequence:
        vid, obj_id, stems = self._items[i]
        img_dir = self.root / self.split / "JPEGImages" / vid
        ann_dir = self.root / self.split / "Annotations" / vid
        frames = [_require(img_dir / f"{s}.jpg", "YouTube-VOS", _YTVOS_LAYOUT) for s in stems]
        masks: list[Path | None] = [p if p.exists() else None for p in (ann_dir / f"{s}.png" for s in stems)]
        if all(m is None for m in masks):
            _require(ann_dir / f"{stems[0]}.png", "YouTube-VOS", _YTVOS_LAYOUT)
        boxes = np.full((len(stems), 4), np.nan)
        for k, m in enumerate(masks):
            if m is not None:
                boxes[k] = mask_to_box(read_label_png(m) == obj_id)
        return Sequence(self.names[i], frames, boxes, _box_ok(boxes), mask_paths=masks, mask_value=obj_id)


# ---------------------------------------------------------------------------------------------------------
# COCO

_COCO_LAYOUT = """  ROOT/annotations/instances_<split>.json   (COCO 'instances' format; split e.g. train2017)
  ROOT/<split>/<file_name>                   (images named by the JSON's images[].file_name)"""


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


def _rle_decode(counts: Seq[int], height: int, width: int) -> np.ndarray:
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
        _require(ann, "COCO", _COCO_LAYOUT)
        self.image_dir = _require(self.root / split, "COCO", _COCO_LAYOUT)
        try:
            data = json.loads(ann.read_text())
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

    def _load(self, i: int) -> Sequence:
        img, a = self._items[i]
        path = self.image_dir / img["file_name"]
        mask_fn = None
        if a.get("segmentation"):
            mask_fn = functools.partial(_coco_mask, a["segmentation"], int(img["height"]), int(img["width"]))
        return Sequence(self.names[i], [path], np.array([a["bbox"]], dtype=np.float64), np.array([True]),
                        mask_fn=mask_fn, image_size=(int(img["width"]), int(img["height"])),
                        attributes={"category_id": np.array([a.get("category_id", 0)])})


def _coco_mask(segmentation: object, height: int, width: int, _frame: int) -> np.ndarray:
    return decode_coco_segmentation(segmentation, height, width)


# ---------------------------------------------------------------------------------------------------------
# OTB

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

    def __init__(self, root: str | Path, names: Seq[str] | None = None, cache_size: int = 2048) -> None:
        super().__init__(root, cache_size)
        _require(self.root, "OTB", _OTB_LAYOUT)
        items: list[tuple[str, Path, Path]] = []
        for d in sorted(p for p in self.root.iterdir() if p.is_dir()):
            annos = sorted(f for f in d.glob("groundtruth_rect*.txt") if f.read_text().strip())
            if not annos:
                continue
            _require(d / "img", "OTB", _OTB_LAYOUT)
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

    def _load(self, i: int) -> Sequence:
        name, d, anno = self._items[i]
        frames = _sorted_frames(d / "img")
        boxes = read_box_file(anno)
        start = _OTB_START_FRAME.get(d.name.lower(), 1) - 1
        if len(frames) - start < len(boxes):
            raise DatasetLayoutError(f"OTB: '{anno}' has {len(boxes)} boxes but '{d / 'img'}' has "
                                     f"{len(frames)} frames")
        frames = frames[start:start + len(boxes)]
        return Sequence(name, frames, boxes, _box_ok(boxes))


# ---------------------------------------------------------------------------------------------------------
# VOT

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
        _require(self.root, "VOT", _VOT_LAYOUT)
        list_file = self.root / "list.txt"
        if list_file.exists():
            self.names = [s.strip() for s in list_file.read_text().splitlines() if s.strip()]
        else:
            self.names = sorted(p.name for p in self.root.iterdir() if (p / "groundtruth.txt").exists())
        if not self.names:
            raise DatasetLayoutError(f"VOT: no '<seq>/groundtruth.txt' under '{self.root}'. Expected layout:\n"
                                     + _VOT_LAYOUT)
        for s in self.names:
            _require(self.root / s / "groundtruth.txt", "VOT", _VOT_LAYOUT)

    def _load(self, i: int) -> Sequence:
        d = self.root / self.names[i]
        frames = _sorted_frames(d / "color") if (d / "color").is_dir() else _sorted_frames(d)
        rows = []
        for lineno, line in enumerate((d / "groundtruth.txt").read_text().splitlines(), 1):
            if not line.strip():
                continue
            vals = [float(v) for v in line.replace("\t", ",").split(",") if v.strip()]
            if len(vals) == 4:
                x, y, w, h = vals
                vals = [x, y, x + w, y, x + w, y + h, x, y + h]
            if len(vals) != 8:
                raise InputError(f"{d / 'groundtruth.txt'}:{lineno}: expected 4 or 8 values, got {len(vals)}")
            rows.append(vals)
        polys = np.array(rows, dtype=np.float64).reshape(-1, 8)
        if len(polys) != len(frames):
            raise DatasetLayoutError(f"VOT: '{d / 'groundtruth.txt'}' has {len(polys)} regions for "
                                     f"{len(frames)} frames. Expected layout:\n{_VOT_LAYOUT}")
        xs, ys = polys[:, 0::2], polys[:, 1::2]
        boxes = np.stack([xs.min(1), ys.min(1), xs.max(1) - xs.min(1), ys.max(1) - ys.min(1)], axis=1)
        return Sequence(self.names[i], frames, boxes, _box_ok(boxes), polygons=polys)


# ---------------------------------------------------------------------------------------------------------
# lookup by name

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


# ---------------------------------------------------------------------------------------------------------
# mixing datasets into training pairs


@dataclass(frozen=True)
class FrameRef:
    dataset: int  # index into MixedSampler.datasets
    sequence: int
    frame: int


@dataclass(frozen=True)
class PairIndex:
    """A (template, search) pair; ``positive`` is False when the search frame shows another object."""

    template: FrameRef
    search: FrameRef
    positive: bool


class MixedSampler:
    """Draws (template frame, search frame) pairs from several datasets.

    A dataset is picked with probability proportional to ``weights``, a sequence uniformly in it, a
    template frame uniformly among its visible frames, and the search frame among the visible frames at
    most ``frame_ranges[d]`` frames away (the template's own frame for image datasets). With probability
    ``neg_rate`` the search frame comes from a different sequence (drawn the same way) and the pair is
    negative. Pair ``k`` depends only on ``(seed, k)``, so any worker can draw any index and an epoch
    reproduces exactly.
    """

    def __init__(self, datasets: Seq[VideoDataset], weights: Seq[float] | None = None,
                 frame_ranges: Seq[int] | int = 100, neg_rate: float = 0.2, seed: int = 0,
                 max_tries: int = 100) -> None:
        if not datasets:
            raise InputError("MixedSampler needs at least one dataset")
        self.datasets = list(datasets)
        w = np.ones(len(datasets)) if weights is None else np.asarray(weights, dtype=np.float64)
        if len(w) != len(datasets) or (w < 0).any() or w.sum() <= 0:
            raise InputError(f"MixedSampler: need one non-negative weight per dataset with a positive sum, got {w}")
        for d, wd in zip(self.datasets, w, strict=True):
            if wd > 0 and len(d) == 0:
                raise InputError(f"MixedSampler: dataset '{d.name}' at {d.root} has no sequences")
        self.weights = w / w.sum()
        ranges = [frame_ranges] * len(datasets) if isinstance(frame_ranges, int) else list(frame_ranges)
        if len(ranges) != len(datasets) or min(ranges) < 0:
            raise InputError("MixedSampler: frame_ranges needs one value >= 0 per dataset")
        self.frame_ranges = ranges
        if not 0.0 <= neg_rate <= 1.0:
            raise InputError(f"MixedSampler: neg_rate must be in [0, 1], got {neg_rate}")
        self.neg_rate = neg_rate
        self.seed = seed
        self.max_tries = max_tries

    def _pick_sequence(self, rng: np.random.Generator, exclude: tuple[int, int] | None = None
                       ) -> tuple[int, int, np.ndarray]:
        # The dataset is drawn once, so its share follows the weights even when some of its sequences
        # have no visible frame; only the sequence is re-drawn.
        d = int(rng.choice(len(self.datasets), p=self.weights))
        for _ in range(self.max_tries):
            s = int(rng.integers(len(self.datasets[d])))
            if (d, s) == exclude:
                continue
            vis = np.flatnonzero(self.datasets[d].sequence(s).visible)
            if vis.size:
                return d, s, vis
        raise InputError(f"MixedSampler: no sequence with a visible frame found in {self.max_tries} draws "
                         f"from dataset '{self.datasets[d].name}' at {self.datasets[d].root}")

    def sample(self, k: int) -> PairIndex:
        """The ``k``-th pair of this sampler's stream."""
        rng = np.random.default_rng([self.seed, k])
        d, s, vis = self._pick_sequence(rng)
        t = int(rng.choice(vis))
        template = FrameRef(d, s, t)
        if rng.random() < self.neg_rate and sum(len(x) for x in self.datasets) > 1:
            d2, s2, vis2 = self._pick_sequence(rng, exclude=(d, s))
            return PairIndex(template, FrameRef(d2, s2, int(rng.choice(vis2))), positive=False)
        r = 0 if self.datasets[d].is_image_dataset else self.frame_ranges[d]
        near = vis[np.abs(vis - t) <= r]
        return PairIndex(template, FrameRef(d, s, int(rng.choice(near))), positive=True)

    def epoch(self, num_pairs: int, epoch: int = 0) -> list[PairIndex]:
        """``num_pairs`` pairs for one epoch; epochs draw disjoint index ranges of the stream."""
        start = epoch * num_pairs
        return [self.sample(start + k) for k in range(num_pairs)]

    def sequence_of(self, ref: FrameRef) -> Sequence:
        return self.datasets[ref.dataset].sequence(ref.sequence)

