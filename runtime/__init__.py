"""Real-time tracking runtime: one backend-independent tracker (numpy + OpenCV) over pluggable backends.

Importing this package does not import torch: an edge device installs the runtime without it.
"""

from .backend import Backend, BackendOutputError
from .postprocess import FrameMask
from .tracker import Tracker, TrackResult

__all__ = ["Backend", "BackendOutputError", "FrameMask", "TrackResult", "Tracker"]
