"""The output files of a run checked before any work (:func:`check_outputs`, :func:`check_video_output`) and the
annotated video written and verified (:class:`VideoWriter`). Outputs are never written in place: each goes to a
temporary file beside its final path, created before tracking starts (so an unwritable path fails before any
work), and renamed over the final path only when the run is complete."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np

from siamattn.errors import InputError
from siamattn.outputs import check_distinct, check_file_output


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
