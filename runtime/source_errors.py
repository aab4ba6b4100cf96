"""What a frame source raises when it stops early; the video loop writes what was tracked before it, then
raises it again (runtime/video.py). Its own module: the file and the live sources both raise these."""

from __future__ import annotations

from siamattn.errors import InputError


class SourceEndedEarly(InputError):
    """The source stopped before the frames its container (or folder) announced: corrupt or truncated."""


class StreamLost(SourceEndedEarly):
    """A live stream stopped and could not be reopened: the frames tracked so far are kept and written."""
