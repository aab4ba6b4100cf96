"""Frame sources (video file, image folder, camera) and the annotated-video writer used by the CLI."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError
from .postprocess import FrameMask

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


@dataclass
class Source:
    """An opened frame source. ``length`` is None for cameras and streams of unknown length."""

    name: str
    length: int | None
    fps: float
    _frames: Iterator[np.ndarray]

    def __iter__(self) -> Iterator[np.ndarray]:
        return self._frames


def _video_frames(cap: cv2.VideoCapture, limit: int | None) -> Iterator[np.ndarray]:
    try:
        n = 0
        while limit is None or n < limit:
            ok, frame = cap.read()
            if not ok:
                return
            n += 1
            yield frame
    finally:
        cap.release()


def _image_frames(paths: list[Path]) -> Iterator[np.ndarray]:
    for p in paths:
        frame = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if frame is None:
            raise InputError(f"image '{p}' could not be read (corrupt or not an image)")
        yield frame


def open_source(source: str | int, max_frames: int | None = None) -> Source:
    """Open a video file, a folder of images (sorted by name) or a camera index ("0")."""
    text = str(source)
    if text.isdigit():
        cap = cv2.VideoCapture(int(text))
        if not cap.isOpened():
            raise InputError(f"camera {text} could not be opened (is it connected and free?)")
        return Source(f"camera {text}", max_frames, cap.get(cv2.CAP_PROP_FPS) or 30.0, _video_frames(cap, max_frames))
    path = Path(text)
    if path.is_dir():
        paths = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not paths:
            raise InputError(f"folder '{path}' has no images ({', '.join(IMAGE_SUFFIXES)})")
        paths = paths[:max_frames] if max_frames else paths
        return Source(str(path), len(paths), 30.0, _image_frames(paths))
    if not path.exists():
        raise InputError(f"source '{path}' does not exist (give a video file, an image folder or a camera index)")
    cap = cv2.VideoCapture(str(path))
    ok = cap.isOpened()
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if ok else 0
    if not ok or count <= 0:
        cap.release()
        raise InputError(f"video '{path}' could not be read (unsupported codec or corrupt file)")
    length = min(count, max_frames) if max_frames else count
    return Source(str(path), length, cap.get(cv2.CAP_PROP_FPS) or 30.0, _video_frames(cap, length))


def parse_box(text: str) -> tuple[float, float, float, float]:
    """'x,y,w,h' -> floats, with a clear error for anything else."""
    parts = text.replace(" ", "").split(",")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 4:
        raise InputError(f"--init must be x,y,w,h (four numbers), got '{text}'")
    return values  # type: ignore[return-value]


class VideoWriter:
    """Annotated MP4 writer that opens on the first frame (size known then)."""

    def __init__(self, path: str | Path, fps: float) -> None:
        self.path = Path(path)
        self.fps = fps
        self._writer: cv2.VideoWriter | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, frame: np.ndarray) -> None:
        if self._writer is None:
            h, w = frame.shape[:2]
            self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
            if not self._writer.isOpened():
                raise InputError(f"cannot write video '{self.path}' (unwritable path or no mp4v encoder)")
        self._writer.write(frame)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()


def draw(frame: np.ndarray, box: tuple[float, float, float, float], polygon: np.ndarray | None,
         mask: FrameMask | None, label: str, color: tuple[int, int, int] = (0, 220, 0)) -> np.ndarray:
    """Box, rotated polygon and mask overlay (red tint, only over the mask's patch) on a copy of the frame."""
    out = frame.copy()
    if mask is not None and mask.patch.size:
        ph, pw = mask.patch.shape
        region = out[mask.y : mask.y + ph, mask.x : mask.x + pw]
        sel = mask.patch.astype(bool)
        region[sel] = (0.6 * region[sel] + np.array([0, 0, 102.0])).astype(np.uint8)
    x, y, w, h = box
    cv2.rectangle(out, (round(x), round(y)), (round(x + w), round(y + h)), color, 2)
    if polygon is not None:
        cv2.polylines(out, [np.round(polygon).astype(np.int32).reshape(-1, 1, 2)], True, (0, 200, 255), 2)
    cv2.putText(out, label, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(out, label, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    return out
