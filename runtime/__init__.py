"""Real-time tracking runtime: one backend-independent tracker (numpy + OpenCV) over pluggable backends.

Importing this package does not import torch: an edge device installs the runtime without it.
"""

from siamattn.runtime.backend import Backend, BackendOutputError
from siamattn.runtime.postprocess import FrameMask
from siamattn.runtime.tracker import Tracker, TrackResult

__all__ = ["Backend", "BackendOutputError", "FrameMask", "TrackResult", "Tracker"]
