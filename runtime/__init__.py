"""Real-time tracking runtime: one backend-independent tracker (numpy + OpenCV) over pluggable backends.

Importing this package does not import torch: an edge device installs the runtime without it.
"""

from siamattn.runtime.backend import Backend, BackendOutputError, BatchBackend
from siamattn.runtime.postprocess import FrameMask
from siamattn.runtime.tracker import MultiTracker, Tracker, TrackResult

__all__ = ["Backend", "BackendOutputError", "BatchBackend", "FrameMask", "MultiTracker", "TrackResult", "Tracker"]
