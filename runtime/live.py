"""Live frame sources: network streams (rtsp, http(s), udp, tcp URLs), GStreamer pipelines and cameras.

A live source does not wait for its reader. In real-time mode (the default for live sources) a reader thread
takes every frame the moment it arrives and keeps only the newest one: a tracker slower than the camera
tracks the newest frame and the frames it never saw are counted as dropped, instead of queueing in the
stream's buffers and lagging further behind with every frame. Without it (``realtime=False``) every frame is
tracked in order. Each frame carries its capture time (when it was read off the stream), so the loop can
report the latency from capture to result.

A stream that stalls (no frame for ``stall_timeout`` seconds) or drops is reopened up to ``reconnect`` times
in a row, with a doubling pause; when it cannot be reopened the run ends with :class:`StreamLost` (one line,
what was tracked is kept). A stream that cannot be opened at all is one :class:`InputError` line.
"""

from __future__ import annotations

import atexit
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from siamattn.errors import InputError
from siamattn.runtime.source_errors import StreamLost as StreamLost  # re-exported: raised here

# the URL schemes OpenCV's FFmpeg backend reads live
STREAM_SCHEMES = ("rtsp", "http", "https", "udp", "tcp")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
FIRST_BACKOFF_S = 0.5  # the pause before the first reopening; doubled each try, at most MAX_BACKOFF_S
MAX_BACKOFF_S = 8.0


@dataclass
class LiveStats:
    """What the frame just yielded by a live source went through; updated by the source as it yields."""

    realtime: bool
    captured: float = 0.0  # time.monotonic() when the frame was read off the stream
    captured_wall: float = 0.0  # time.time() of the same moment (the JSON's capture timestamp)
    index: int = -1  # the frame's number in the stream, dropped frames counted
    dropped: int = 0  # frames read off the stream that were never yielded (real-time mode)
    reconnects: int = 0
    ended: str | None = None  # why the stream ended, when it ended by itself


def stream_kind(text: str) -> str | None:
    """'url' for a network stream, 'gstreamer' for a pipeline, None for anything else (a file, a folder, a
    camera index); a URL of another scheme is refused in one line."""
    m = _SCHEME.match(text)
    if m:
        scheme = m.group(1).lower()
        if scheme not in STREAM_SCHEMES:
            raise InputError(f"source '{text}': the scheme '{scheme}://' is not supported; give a file, a folder, a "
                             f"camera index, a {', '.join(s + '://' for s in STREAM_SCHEMES)} URL or a GStreamer "
                             "pipeline (... ! appsink)")
        return "url"
    if "!" in text and not os.path.exists(text):  # gst-launch syntax: elements joined by '!'
        return "gstreamer"
    return None


def has_gstreamer() -> bool:
    """Whether this OpenCV was built with GStreamer (JetPack's is; the PyPI wheels are not)."""
    return re.search(r"GStreamer:\s*YES", cv2.getBuildInformation()) is not None


def _quiet_ffmpeg() -> None:
    # FFmpeg logs every refused connection and stream end on stderr; our own one line says it instead.
    # Read by OpenCV when its FFmpeg backend first loads, so set before the first capture.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")


def capture_opener(text: str, kind: str, timeout_s: float) -> Callable[[], cv2.VideoCapture | None]:
    """A function that opens the stream (None when it cannot), with open and read timeouts of ``timeout_s``."""
    if kind == "gstreamer" and not has_gstreamer():
        raise InputError(f"source '{text}' is a GStreamer pipeline, but this OpenCV ({cv2.__version__}) was built "
                         "without GStreamer: use the OpenCV of JetPack or one built with GStreamer "
                         "(docs/JETSON.md), or give an rtsp:// or http:// URL")
    _quiet_ffmpeg()
    ms = int(timeout_s * 1000)

    def open_capture() -> cv2.VideoCapture | None:
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # 'can't capture by name' warnings
        try:
            if kind == "gstreamer":
                cap = cv2.VideoCapture(text, cv2.CAP_GSTREAMER)
            else:
                cap = cv2.VideoCapture(text, cv2.CAP_FFMPEG,
                                       [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms])
        finally:
            cv2.utils.logging.setLogLevel(level)
        if cap.isOpened():
            return cap
        cap.release()
        return None

    return open_capture


class _Feed:
    """Frames of one capture, reopened up to ``reconnect`` times in a row when the stream stalls or ends;
    ``read()`` gives (frame, monotonic time, wall time) or None once the stream is over."""

    def __init__(self, name: str, cap: cv2.VideoCapture, reopen: Callable[[], cv2.VideoCapture | None] | None,
                 reconnect: int, stats: LiveStats, stop: threading.Event, timeout_s: float) -> None:
        self.name, self.cap, self.reopen, self.reconnect = name, cap, reopen, reconnect
        self.stats, self.stop, self.timeout_s = stats, stop, timeout_s
        self.read_count = 0

    def read(self) -> tuple[np.ndarray, float, float] | None:
        tries = 0
        while not self.stop.is_set():
            ok, frame = self.cap.read() if self.cap is not None else (False, None)
            if ok:
                self.read_count += 1
                return frame, time.monotonic(), time.time()
            if self.reopen is None or self.reconnect == 0:
                self.stats.ended = f"the stream ended after {self.read_count} frames"
                return None
            if tries == self.reconnect:
                tried = f"{self.reconnect} tr{'y' if self.reconnect == 1 else 'ies'}"
                raise StreamLost(f"stream '{self.name}' stopped after {self.read_count} frames and could not be "
                                 f"reopened in {tried} (--reconnect)")
            self.close()
            self.stop.wait(min(FIRST_BACKOFF_S * 2 ** tries, MAX_BACKOFF_S))
            tries += 1
            self.cap = self.reopen()
            if self.cap is not None:
                self.stats.reconnects += 1
                tries = 0  # the stream is back: a later drop gets its own tries
        return None

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()
            self.cap = None


def live_frames(feed: _Feed, stats: LiveStats, limit: int | None) -> Iterator[np.ndarray]:
    """Yield the feed's frames (every one, or in real-time mode the newest), filling ``stats`` as they go."""
    frames = _newest(feed) if stats.realtime else _every(feed)
    n = 0
    try:
        for index, (frame, mono, wall) in frames:
            stats.dropped += index - stats.index - 1
            stats.index, stats.captured, stats.captured_wall = index, mono, wall
            yield frame
            n += 1
            if limit is not None and n >= limit:
                return
    finally:
        frames.close()  # stops and joins the reader thread, which releases the capture


def _every(feed: _Feed) -> Iterator[tuple[int, tuple[np.ndarray, float, float]]]:
    try:
        index = 0
        while (got := feed.read()) is not None:
            yield index, got
            index += 1
    finally:
        feed.close()


class _Newest:
    """The reader thread's one-frame slot: the newest frame and its number, or the reason it stopped."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.item: tuple[int, tuple[np.ndarray, float, float]] | None = None
        self.done = False
        self.error: BaseException | None = None

    def run(self, feed: _Feed) -> None:
        try:
            index = 0
            while (got := feed.read()) is not None:
                with self.cond:
                    self.item = (index, got)  # an unread older frame is replaced: it is dropped
                    self.cond.notify()
                index += 1
        except BaseException as exc:  # handed to the consumer, raised there
            self.error = exc
        finally:
            feed.close()  # the capture is released by the thread that reads it
            with self.cond:
                self.done = True
                self.cond.notify()

    def take(self) -> tuple[int, tuple[np.ndarray, float, float]] | None:
        with self.cond:
            while self.item is None and not self.done:
                self.cond.wait(0.1)  # a timeout: Ctrl-C reaches the main thread while it waits
            item, self.item = self.item, None
        if item is None and self.error is not None:
            raise self.error
        return item


# Readers still running when Python exits: stopped and joined first, since a daemon thread that leaves a
# capture's C++ read during interpreter shutdown aborts the process ("exception not rethrown").
_READERS: dict[threading.Thread, _Feed] = {}


@atexit.register
def _stop_readers() -> None:
    for thread, feed in list(_READERS.items()):
        feed.stop.set()
        thread.join(timeout=feed.timeout_s + 1.0)


def _newest(feed: _Feed) -> Iterator[tuple[int, tuple[np.ndarray, float, float]]]:
    slot = _Newest()
    reader = threading.Thread(target=slot.run, args=(feed,), name="siamattn-live-reader", daemon=True)
    _READERS[reader] = feed
    reader.start()
    try:
        while (item := slot.take()) is not None:
            yield item
    finally:
        feed.stop.set()
        reader.join(timeout=feed.timeout_s + 1.0)  # a read blocked in a stalled stream ends by its read timeout
        _READERS.pop(reader, None)


def open_live(text: str, kind: str, realtime: bool, reconnect: int, stall_timeout: float, limit: int | None,
              cap: cv2.VideoCapture | None = None) -> tuple[Iterator[np.ndarray], LiveStats, float]:
    """Open a stream (``kind`` 'url'/'gstreamer') or wrap an opened camera ``cap``: its frames (at most
    ``limit``), their stats and its nominal fps."""
    if reconnect < 0:
        raise InputError(f"reconnect must be 0 or more tries, got {reconnect}")
    if stall_timeout <= 0:
        raise InputError(f"stall_timeout must be a positive number of seconds, got {stall_timeout}")
    reopen = None
    if cap is None:
        reopen = capture_opener(text, kind, stall_timeout)
        cap = reopen()
        if cap is None:
            raise InputError(f"stream '{text}' could not be opened within {stall_timeout:g} s (unreachable, refused "
                             "or not a video stream): check the address and that the camera or server is up")
    fps = cap.get(cv2.CAP_PROP_FPS)
    stats = LiveStats(realtime=realtime)
    feed = _Feed(text, cap, reopen, reconnect, stats, threading.Event(), stall_timeout)
    return live_frames(feed, stats, limit), stats, fps if 0 < fps < 1000 else 30.0
