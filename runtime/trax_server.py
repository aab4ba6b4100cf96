"""The TraX server behind ``siamattn vot``: the tracker as the VOT toolkit runs it (docs/EVALUATION.md).

TraX (the VOT committee's tracking protocol) is spoken through the committee's own library, ``vot-trax``
(``trax.Server``): the toolkit's client is built on the same library, so both sides parse and write the same
messages, including masks and multi-object sessions; our code only maps its regions and images to the tracker.

* **Regions in:** a rectangle initialises from itself, a polygon from ``vot_init_box`` (the box ``siamattn eval``
  initialises from, so the two runs coincide), a mask from its bounding box. Anything else (an empty mask, a
  special region) ends the session with one line naming what to send.
* **Regions out** (``--region``): ``auto`` = the mask when the model has a mask head, else the box; ``polygon``
  = what ``siamattn eval`` records (``tracker.output``); ``rectangle`` = the box. A frame whose mask is empty
  reports the box instead (an empty region would count as a failure of the protocol, not of the tracker).
* **Objects:** every session runs a :class:`~siamattn.runtime.tracker.MultiTracker`; one object is the
  single-target case. With ``multiobject`` the handshake offers multi-object sessions (VOTS stacks): several
  objects share its batched search calls and objects the client adds mid-sequence start on the frame that
  brings them. It is off by default because toolkit 0.9's single-object experiments (supervised, multistart)
  take a multi-object tracker's reply list for one region and fail.
* **Stdout** belongs to the protocol: before the server starts, file descriptor 1 is pointed at stderr, so
  nothing any library prints can break a message, and the protocol writes to a private copy of the original
  stdout (``TRAX_OUT``). A quit from the client ends the process with status 0.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from siamattn.errors import InputError
from siamattn.toolkit.metrics import vot_init_box

REGION_CHOICES = ("auto", "mask", "polygon", "rectangle")
REGION_FORMATS = ["rectangle", "polygon", "mask"]  # what we take; the client converts other formats to these
IMAGE_FORMATS = ["path", "memory", "buffer"]


def protect_stdout() -> None:
    """Give the protocol a private copy of stdout and point fd 1 (and ``sys.stdout``) at stderr: stray prints
    of any library (Python or C) then land on stderr instead of inside a TraX message. A socket session
    (``TRAX_SOCKET``) does not use stdout, and the redirection does no harm there."""
    sys.stdout.flush()
    if "TRAX_SOCKET" not in os.environ:
        os.environ["TRAX_OUT"] = str(os.dup(1))  # libtrax reads it on POSIX as the output descriptor
    os.dup2(2, 1)
    sys.stdout = sys.stderr


def init_box(region: Any) -> tuple[float, float, float, float]:
    """The (x, y, w, h) box a TraX region initialises the tracker with."""
    import trax

    if isinstance(region, trax.Rectangle):
        return tuple(float(v) for v in region.bounds())  # type: ignore[return-value]
    if isinstance(region, trax.Polygon):
        points = np.array(list(region), dtype=np.float64)
        if len(points) < 3:
            raise InputError(f"the TraX polygon to initialise from has {len(points)} points; it needs at least 3")
        return tuple(float(v) for v in vot_init_box(points))  # type: ignore[return-value]
    if isinstance(region, trax.Mask):
        ys, xs = np.nonzero(region.array())
        if xs.size == 0:
            raise InputError("the TraX mask region to initialise from is empty; send a mask with the target's "
                             "pixels set, or a rectangle")
        ox, oy = region.offset()
        return float(xs.min() + ox), float(ys.min() + oy), float(xs.max() - xs.min() + 1), float(
            ys.max() - ys.min() + 1)
    kind = getattr(region, "type", type(region).__name__)
    raise InputError(f"TraX region type '{kind}' cannot initialise the tracker; send a rectangle, polygon or mask")


def out_region(result: Any, mode: str) -> Any:
    """A :class:`~siamattn.runtime.tracker.TrackResult` as the TraX region ``mode`` asks for."""
    import trax

    x, y, w, h = (float(v) for v in result.box)
    if mode == "mask" and result.mask is not None and result.mask.patch.any():
        m = result.mask
        return trax.Mask.create(np.ascontiguousarray(m.patch, dtype=np.uint8), x=int(m.x), y=int(m.y))
    if mode == "polygon":
        region = result.region
        if len(region) == 8:
            return trax.Polygon.create([(region[i], region[i + 1]) for i in range(0, 8, 2)])
    return trax.Rectangle.create(x, y, w, h)


def read_frame(images: dict[str, Any]) -> np.ndarray:
    """The colour channel of a TraX frame as a BGR image (path, raw memory or an encoded buffer)."""
    import cv2
    import trax

    image = images.get("color")
    if image is None:
        raise InputError(f"the TraX frame has no colour channel (got {sorted(images)}); this tracker takes colour "
                         "images only")
    if isinstance(image, trax.FileImage):
        frame = cv2.imread(image.path(), cv2.IMREAD_COLOR) if os.path.isfile(image.path()) else None
        if frame is None:
            raise InputError(f"cannot read the frame image '{image.path()}'")
        return frame
    if isinstance(image, trax.MemoryImage):
        arr = image.array()
        if arr.dtype != np.uint8:
            raise InputError("TraX memory images must be 8-bit (RGB or grey)")
        return cv2.cvtColor(arr, cv2.COLOR_RGB2BGR if arr.shape[2] == 3 else cv2.COLOR_GRAY2BGR)
    if isinstance(image, trax.BufferImage):
        frame = cv2.imdecode(np.frombuffer(image.buffer(), dtype=np.uint8), cv2.IMREAD_COLOR)
        if frame is None:
            raise InputError("cannot decode the TraX buffer image (JPEG or PNG expected)")
        return frame
    raise InputError(f"TraX image type '{image.type()}' is not supported; send {', '.join(IMAGE_FORMATS)} images")


class Session:
    """One TraX session's tracker side: the objects of the current sequence in a MultiTracker, their ids in the
    client's order."""

    def __init__(self, tracker: Any, region_mode: str) -> None:
        self.tracker = tracker
        self.mode = region_mode
        self.ids: list[int] = []

    def _add(self, frame: np.ndarray, objects: list[tuple[Any, dict]]) -> list[tuple[Any, dict]]:
        """Start the client's new objects on ``frame``; their reply is the region they came with."""
        for region, _ in objects:
            self.ids.append(self.tracker.add(frame, init_box(region)))
        return [(region, {}) for region, _ in objects]

    def initialize(self, frame: np.ndarray, objects: list[tuple[Any, dict]]) -> list[tuple[Any, dict]]:
        """A new sequence (or a re-initialisation after a failure): drop every object, start the given ones."""
        self.tracker.clear()
        self.ids = []
        if not objects:
            raise InputError("the TraX initialize message holds no object to track")
        return self._add(frame, objects)

    def frame(self, frame: np.ndarray, new: list[tuple[Any, dict]] | None) -> list[tuple[Any, dict]]:
        """Track every object into ``frame``, then start the objects that appear on it."""
        results = self.tracker.track(frame) if self.ids else {}
        reply = [(out_region(results[i], self.mode), {"confidence": float(results[i].score)}) for i in self.ids]
        return reply + self._add(frame, new or [])


def serve(make_tracker: Callable[[], Any], region_mode: str, name: str = "siamattn", multiobject: bool = False) -> int:
    """Run one TraX session on stdin/stdout (or ``TRAX_SOCKET``) until the client quits or closes the connection;
    returns the exit status (0).

    ``make_tracker`` loads the model after stdout is protected and before the handshake, so a bad model fails
    before a client waits on us. A bad request or a protocol error ends the session with one line, sent to the
    client as the quit reason and raised to the CLI."""
    import trax
    from trax.server import Server

    protect_stdout()
    tracker = make_tracker()
    mode = region_mode if region_mode != "auto" else ("mask" if tracker.use_mask else "rectangle")
    session = Session(tracker, mode)
    server = Server(REGION_FORMATS, IMAGE_FORMATS, ["color"], tracker_name=name,
                    tracker_description="SiamAttn (siamattn-trt)", multiobject=multiobject)
    reason = None
    try:
        while True:
            request = _wait(server)
            if request is None or request.type == trax.TraxStatus.QUIT:
                return 0
            frame = read_frame(request.image)
            if request.type == trax.TraxStatus.INITIALIZE:
                reply = session.initialize(frame, request.objects)
            else:
                reply = session.frame(frame, request.objects)
            server.status(reply)
    except InputError as exc:
        reason = str(exc)
        raise
    finally:
        with contextlib.suppress(trax.TraxException):  # the client may be gone already
            server.quit(reason)


def _wait(server: Any) -> Any:
    """The client's next request; None when the connection ended without a quit message (libtrax records no
    error then), an InputError naming a protocol error."""
    import trax

    try:
        return server.wait()
    except trax.TraxException as exc:
        detail = str(exc).rsplit(": ", 1)[-1]
        if detail == "Unknown":
            print("siamattn vot: the TraX client closed the connection", file=sys.stderr)
            return None
        raise InputError(f"TraX protocol error in the client's message: {detail}") from None
