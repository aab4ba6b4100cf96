"""Frame sources (video file, image folder, camera), the outputs of a run (annotated video, per-frame JSON)
and the video loop shared by ``siamattn track`` and ``siamattn demo``.

Outputs are never written in place: each goes to a temporary file beside its final path, created before
tracking starts (so an unwritable path fails before any work), and renamed over the final path only when
the run is complete. A run that fails midway leaves no partial file and never touches an existing one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from siamattn.errors import InputError
from siamattn.outputs import StagedFile, check_distinct, check_file_output, held_signals, pause_point
from siamattn.runtime.postprocess import FrameMask
from siamattn.validate import as_path

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


class SourceEndedEarly(InputError):
    """The source stopped before the frames its container (or folder) announced: corrupt or truncated."""


@dataclass
class Source:
    """An opened frame source. ``length`` is None for cameras and streams of unknown length.

    Iterating raises :class:`SourceEndedEarly` after the last good frame when a video yields fewer frames
    than its container announces, or when an image of a folder cannot be read.
    """

    name: str
    length: int | None
    fps: float
    _frames: Iterator[np.ndarray]

    def __iter__(self) -> Iterator[np.ndarray]:
        return self._frames


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


def open_source(source: str | int | os.PathLike[str], max_frames: int | None = None) -> Source:
    """Open a video file, a folder of images (sorted by name) or a camera index ("0" or 0); a path may be
    ``str``, ``bytes`` or ``os.PathLike``."""
    check_max_frames(max_frames)
    if isinstance(source, bool) or not isinstance(source, int):
        source = as_path(source, "source")
    text = str(source)
    if text.isdigit():
        cap = cv2.VideoCapture(int(text))
        if not cap.isOpened():
            raise InputError(f"camera {text} could not be opened (is it connected and free?)")
        return Source(f"camera {text}", max_frames, cap.get(cv2.CAP_PROP_FPS) or 30.0,
                      _video_frames(cap, max_frames, f"camera {text}", None))
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


# ----------------------------------------------------------------------------------------------------
# outputs


def check_outputs(source: str | None, outputs: dict[str, Path | None], overwrite: bool = False,
                  inputs: dict[str, Path | str | None] | None = None) -> None:
    """Refuse outputs that would destroy an input (the source, ``inputs``: label -> path), each other, a
    folder, a non-regular file or (without ``overwrite``) an existing file, and outputs whose folder cannot
    be made (siamattn/outputs.py); ``outputs`` maps an option name to a path. Creates nothing."""
    src = str(source) if source is not None and not str(source).isdigit() else None
    given = {flag: Path(p) for flag, p in outputs.items() if p is not None}
    check_distinct(given)
    for flag, path in given.items():
        check_file_output(flag, path, overwrite=overwrite, inputs={"source": src, **(inputs or {})},
                          example="out" + _suffix(flag))


def _suffix(flag: str) -> str:
    return ".json" if "json" in flag else ".mp4"


VIDEO_FOURCC = "mp4v"


def check_video_output(flag: str, path: Path | None) -> None:
    """Refuse a video output whose suffix OpenCV cannot write with the mp4v codec (``.txt``, no suffix), before
    any work: the writer only opens on the first tracked frame. Probed in a private temporary folder, so the
    answer is this OpenCV's, and nothing appears beside ``path``."""
    if path is None:
        return
    suffix = Path(path).suffix
    ok = False
    if suffix:
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # a refused suffix logs a warning
        try:
            with tempfile.TemporaryDirectory(prefix="siamattn-probe-") as tmp:
                writer = cv2.VideoWriter(str(Path(tmp) / f"probe{suffix}"), cv2.VideoWriter_fourcc(*VIDEO_FOURCC),
                                         10.0, (16, 16))
                ok = writer.isOpened()
                writer.release()
        finally:
            cv2.utils.logging.setLogLevel(level)
    if not ok:
        raise InputError(f"{flag} '{path}': OpenCV cannot write a video with the suffix '{suffix or '(none)'}'; "
                         "use .mp4 (or .avi, .mkv, .mov)")


class VideoWriter:
    """Annotated MP4 writer that opens on the first frame (size known then). OpenCV reports no write error
    (a full disk gives an unreadable file): :meth:`verify` reads the closed file back and checks its frames.
    Errors name ``name`` (the user's path when ``path`` is a staging file)."""

    def __init__(self, path: str | Path, fps: float, flag: str = "--save", name: str | Path | None = None) -> None:
        self.path = Path(path)
        self.name = str(name if name is not None else path)
        self.fps = fps
        self.flag = flag
        self.frames = 0
        self._writer: cv2.VideoWriter | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, frame: np.ndarray) -> None:
        if self._writer is None:
            h, w = frame.shape[:2]
            self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*VIDEO_FOURCC), self.fps, (w, h))
            if not self._writer.isOpened():
                raise InputError(f"cannot write video '{self.name}' (unwritable path or no {VIDEO_FOURCC} encoder)")
        self._writer.write(frame)
        self.frames += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None

    def verify(self, shown: Path) -> None:
        """Raise when the closed file does not hold every frame written (``shown``: the path to name)."""
        cap = cv2.VideoCapture(str(self.path))
        try:
            count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
            ok = count == self.frames
            if ok and count:
                cap.set(cv2.CAP_PROP_POS_FRAMES, count - 1)
                ok = cap.read()[0]
        finally:
            cap.release()
        if not ok:
            free = shutil.disk_usage(self.path.parent).free
            raise InputError(f"{self.flag} '{shown}': the video writer lost frames ({count} of {self.frames} "
                             f"readable; {free // 2**20} MiB free on its disk: full?); nothing was replaced")


# ----------------------------------------------------------------------------------------------------
# drawing

_FONT = cv2.FONT_HERSHEY_SIMPLEX


_MIN_SCALE = 0.4  # Hershey simplex at 0.4: capitals about 9 px high, the smallest that stays legible


@dataclass
class LabelLayout:
    """Where :func:`draw` puts the label: font scale and thickness, each line's text and baseline origin,
    and the darkened band behind them (x1, y1, x2, y2, inclusive)."""

    scale: float
    thickness: int
    lines: list[tuple[str, tuple[int, int]]]
    band: tuple[int, int, int, int]


def label_layout(label: str, width: int, height: int) -> LabelLayout:
    """Lay ``label`` out at about 1/30 of the frame height; when it is wider than the frame, wrap it at its
    double spaces, and only then shrink it, so it always fits (a 176x144 clip included)."""
    margin = max(2, round(height / 120))
    room = width - 4 * margin
    scale = max(height / 720.0 * 0.8, _MIN_SCALE)
    thickness = 1 if scale < 0.9 else 2

    def text_w(text: str) -> int:
        return cv2.getTextSize(text, _FONT, scale, thickness)[0][0]

    lines = [label]
    if text_w(label) > room:
        lines = []
        for part in (p.strip() for p in label.split("  ") if p.strip()):
            if lines and text_w(lines[-1] + "  " + part) <= room:
                lines[-1] += "  " + part
            else:
                lines.append(part)
    widest = max(text_w(t) for t in lines)
    if widest > room:  # one part alone is too wide: shrink (getTextSize is linear in the scale)
        scale *= room / widest
        thickness = 1
    (_, th), base = cv2.getTextSize("Ag", _FONT, scale, thickness)
    step = th + base + margin
    placed = [(t, (2 * margin, 2 * margin + th + k * step)) for k, t in enumerate(lines)]
    right = 2 * margin + max(cv2.getTextSize(t, _FONT, scale, thickness)[0][0] for t in lines) + margin
    bottom = placed[-1][1][1] + base + margin
    return LabelLayout(scale, thickness, placed, (margin, margin, min(width - 1, right), min(height - 1, bottom)))


def draw(frame: np.ndarray, box: tuple[float, float, float, float], polygon: np.ndarray | None,
         mask: FrameMask | None, label: str, color: tuple[int, int, int] = (0, 220, 0)) -> np.ndarray:
    """Box, rotated polygon and mask overlay (red tint, only over the mask's patch) on a copy of the frame,
    and ``label`` once (wrapped on small frames), white on a darkened band that keeps it readable on any
    background."""
    out = frame.copy()
    _draw_target(out, box, polygon, mask, color, (0, 200, 255), (0, 0, 102.0))
    _draw_label(out, label)
    return out


def target_color(target_id: int) -> tuple[int, int, int]:
    """A distinct, saturated BGR colour per target id (golden-ratio hue steps: neighbours differ most)."""
    hue = int((target_id * 0.618033988749895 % 1.0) * 180)
    bgr = cv2.cvtColor(np.array([[[hue, 230, 255]]], dtype=np.uint8), cv2.COLOR_HSV2BGR)[0, 0]
    return int(bgr[0]), int(bgr[1]), int(bgr[2])


def draw_targets(frame: np.ndarray, targets: list[tuple[int, tuple[float, float, float, float], np.ndarray | None,
                                                        FrameMask | None]], label: str) -> np.ndarray:
    """Several targets ``(id, box, polygon, mask)`` on a copy of the frame, each in its own colour
    (:func:`target_color`) with its id at the box's top-left corner, and ``label`` once."""
    out = frame.copy()
    h = out.shape[0]
    scale = max(h / 720.0 * 0.7, _MIN_SCALE)
    for tid, box, polygon, mask in targets:
        color = target_color(tid)
        _draw_target(out, box, polygon, mask, color, color, tuple(0.4 * c for c in color))
        x, y = max(0, round(box[0])), max(0, round(box[1]))
        text = f"#{tid}"
        (tw, th), base = cv2.getTextSize(text, _FONT, scale, 1)
        y_text = max(th + 2, y - 4)
        cv2.rectangle(out, (x, y_text - th - 2), (x + tw + 4, y_text + base - 1), color, -1)
        cv2.putText(out, text, (x + 2, y_text - 1), _FONT, scale, (0, 0, 0), 1, cv2.LINE_AA)
    _draw_label(out, label)
    return out


def _draw_target(out: np.ndarray, box: tuple[float, float, float, float], polygon: np.ndarray | None,
                 mask: FrameMask | None, color: tuple[int, int, int], polygon_color: tuple[int, int, int],
                 tint: tuple[float, ...]) -> None:
    line = max(1, round(out.shape[0] / 360))
    if mask is not None and mask.patch.size:
        ph, pw = mask.patch.shape
        region = out[mask.y : mask.y + ph, mask.x : mask.x + pw]
        sel = mask.patch.astype(bool)
        region[sel] = (0.6 * region[sel] + np.array(tint)).astype(np.uint8)
    x, y, bw, bh = box
    cv2.rectangle(out, (round(x), round(y)), (round(x + bw), round(y + bh)), color, line)
    if polygon is not None:
        cv2.polylines(out, [np.round(polygon).astype(np.int32).reshape(-1, 1, 2)], True, polygon_color, line)


def _draw_label(out: np.ndarray, label: str) -> None:
    h, w = out.shape[:2]
    layout = label_layout(label, w, h)
    x1, y1, x2, y2 = layout.band
    band = out[y1 : y2 + 1, x1 : x2 + 1]
    band[:] = (band * 0.35).astype(np.uint8)
    for text, origin in layout.lines:
        cv2.putText(out, text, origin, _FONT, layout.scale, (255, 255, 255), layout.thickness, cv2.LINE_AA)


# ----------------------------------------------------------------------------------------------------
# the video loop


Box = tuple[float, float, float, float]


def track_video(tracker: Any, name: str, source: Source, box: Box | list[Box],
                save: Path | None = None, json_path: Path | None = None, show: bool = False,
                quiet: bool = False, overwrite: bool = False) -> dict:
    """Track through an opened source; optionally write the annotated video and per-frame JSON.

    ``box``: one box (``tracker`` a :class:`~siamattn.runtime.tracker.Tracker`; JSON ``frames`` hold each
    frame's box) or a list of boxes (a :class:`~siamattn.runtime.tracker.MultiTracker`: all added on the first
    frame; JSON ``tracks`` hold one track per target, ``frames`` each frame's latency; the video shows each
    target's id in its colour).

    Outputs are checked and their temporary files created before the first frame. When the source ends
    early (:class:`SourceEndedEarly`), what was tracked is written and the error is raised again, naming
    the files; any other failure discards the temporary files.
    """
    from tqdm import tqdm

    save = None if save is None else as_path(save, "save")
    json_path = None if json_path is None else as_path(json_path, "json_path")
    check_outputs(None, {"--save": save, "--json": json_path}, overwrite)
    check_video_output("--save", save)
    if show:
        check_display()
    with contextlib.ExitStack() as staged:  # leaving it without the commit in _finish removes the temp files
        pending: dict[str, StagedFile] = {}
        if save is not None:
            pending["video"] = staged.enter_context(StagedFile(save, "--save"))
        if json_path is not None:
            pending["json"] = staged.enter_context(StagedFile(json_path, "--json"))
        writer = VideoWriter(pending["video"].tmp, source.fps, name=save) if "video" in pending else None
        records: list[dict] = []
        tracks: dict[int, dict] | None = {} if isinstance(box, list) else None
        ended_early: SourceEndedEarly | None = None
        bar = tqdm(total=source.length, unit="frame", desc=f"tracking ({name})", disable=quiet)
        try:
            try:
                for i, frame in enumerate(source):
                    if tracks is None:
                        records.append(_track_frame(tracker, i, frame, box, name, writer, show))
                    else:
                        records.append(_track_frame_multi(tracker, i, frame, box, tracks, name, writer, show))
                    ms = records[-1]["latency_ms"]
                    if ms:
                        bar.set_postfix(fps=f"{1000.0 / max(ms['total'], 1e-6):.1f}")
                    bar.update(1)
                    pause_point("track:frame")
                    if show and _window_closed():
                        break
            except SourceEndedEarly as exc:
                ended_early = exc
            finally:
                bar.close()
                if writer is not None:
                    writer.close()
            if not records:
                raise ended_early or InputError(f"source '{source.name}' produced no frames")
        except KeyboardInterrupt:
            # Ctrl-C (or SIGTERM) keeps what was tracked (the usual way to stop a camera); a failure keeps nothing
            if records:
                _finish(records, name, pending, writer, None, tracks)
            raise
        summary = _finish(records, name, pending, writer, ended_early, tracks)
    if ended_early is not None:
        kept = " and ".join(f"'{p.given}'" for p in pending.values())
        raise SourceEndedEarly(f"{ended_early}; the {len(records)} frames read were tracked"
                               + (f" and written to {kept}" if kept else "")) from ended_early
    return summary


def _frame_record(i: int, box: Box, score: float, polygon: np.ndarray | None) -> dict:
    return {"frame": i, "box": [round(float(v), 2) for v in box], "score": round(float(score), 4),
            "polygon": None if polygon is None else np.round(polygon, 2).tolist()}


def _present(render: Callable[[], np.ndarray], writer: VideoWriter | None, show: bool) -> None:
    """Draw the frame only when someone sees it: into the video, into the window."""
    if writer is None and not show:
        return
    out = render()
    if writer is not None:
        writer.write(out)
    if show:
        cv2.imshow(WINDOW, out)


def _fps_label(label: str, ms: dict[str, float]) -> str:
    return f"{label}  {1000.0 / max(ms['total'], 1e-6):.0f} fps" if ms else label


def _track_frame(tracker: Any, i: int, frame: np.ndarray, box: Box, name: str,
                 writer: VideoWriter | None, show: bool) -> dict:
    if i == 0:
        tracker.init(frame, box)
        res_box, polygon, mask, score, ms = box, None, None, 1.0, {}
    else:
        r = tracker.track(frame)
        res_box, polygon, mask, score, ms = r.box, r.reported_polygon, r.mask, r.score, r.timings_ms
    label = _fps_label(f"{name}  frame {i}  score {score:.2f}", ms)
    _present(lambda: draw(frame, res_box, polygon, mask, label), writer, show)
    return {**_frame_record(i, res_box, score, polygon), "latency_ms": {k: round(v, 3) for k, v in ms.items()}}


def _track_frame_multi(tracker: Any, i: int, frame: np.ndarray, boxes: list[Box], tracks: dict[int, dict], name: str,
                       writer: VideoWriter | None, show: bool) -> dict:
    """One frame of several targets: added on frame 0, tracked after; ``tracks`` gets each target's record."""
    ms: dict[str, float] = {}
    drawn = []
    if i == 0:
        for b in boxes:
            tid = tracker.add(frame, b)
            tracks[tid] = {"id": tid, "init": [float(v) for v in b], "frames": [_frame_record(0, b, 1.0, None)]}
            drawn.append((tid, b, None, None))
    else:
        t0 = time.perf_counter()
        results = tracker.track(frame)
        ms = {"total": (time.perf_counter() - t0) * 1000.0}
        for tid, r in results.items():
            drawn.append((tid, r.box, r.reported_polygon, r.mask))
            tracks[tid]["frames"].append(_frame_record(i, r.box, r.score, r.reported_polygon))
    label = _fps_label(f"{name}  frame {i}  {len(drawn)} targets", ms)
    _present(lambda: draw_targets(frame, drawn, label), writer, show)
    return {"frame": i, "targets": len(drawn), "latency_ms": {k: round(v, 3) for k, v in ms.items()}}


def check_display() -> None:
    """Refuse ``--show`` before any work where no window can open: no display, or an OpenCV built without a GUI
    (opencv-python-headless). Checked by opening the window the run would use."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        # checked first: GTK ends the whole process when it finds no display
        raise InputError("--show needs a display, and none is set (DISPLAY / WAYLAND_DISPLAY); leave --show out "
                         "and use --save to get the annotated video")
    try:
        cv2.namedWindow(WINDOW)
    except cv2.error as exc:
        raise InputError("--show cannot open a window: this OpenCV has no GUI support (opencv-python-headless); "
                         f"leave --show out and use --save ({str(exc).strip().splitlines()[-1][:120]})") from exc


WINDOW = "siamattn"


def _window_closed() -> bool:
    """Esc or q in the display window stops the run."""
    return cv2.waitKey(1) & 0xFF in (27, ord("q"))


def _finish(records: list[dict], name: str, pending: dict[str, StagedFile], writer: VideoWriter | None,
            ended_early: SourceEndedEarly | None, tracks: dict[int, dict] | None = None) -> dict:
    """Summary of the run; writes the JSON and moves both outputs into place."""
    totals = [r["latency_ms"]["total"] for r in records[1:]]
    summary: dict[str, Any] = {"backend": name, "frames": len(records), "tracked": len(records) - 1,
                               "median_ms": float(np.median(totals)) if totals else None,
                               "fps": 1000.0 / float(np.mean(totals)) if totals else None}
    if ended_early is not None:
        summary["ended_early"] = str(ended_early)
    if tracks is not None:
        summary["targets"] = len(tracks)
    if "json" in pending:
        doc: dict[str, Any] = {"summary": summary, "frames": records}
        if tracks is not None:
            doc["tracks"] = list(tracks.values())
        pending["json"].tmp.write_text(json.dumps(doc, indent=1))
    if writer is not None:
        writer.verify(pending["video"].given)
    pause_point("track:finish")
    with held_signals():  # both outputs move into place, or (an error before) neither
        for p in pending.values():
            p.commit()
    return summary
