"""Backend wrappers of ``siamattn check`` (and the benches that compare trackers): each is a
:class:`~siamattn.runtime.backend.Backend` around another, or stands in for a tracker's RPN selection, and
keeps what passed through it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from siamattn.runtime.backend import Backend
from siamattn.runtime.postprocess import RPNPostprocessor, RPNSelection


class CallRecorder:
    """Wraps a backend and records every call's input and output: the check compares the two sides' outputs
    and gives the deployed backend the reference's RoIs."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.has_refine, self.has_mask, self.max_batch = inner.has_refine, inner.has_mask, inner.max_batch
        self.calls: list[tuple[str, np.ndarray, Any]] = []
        self.set_template, self.drop_template = inner.set_template, inner.drop_template
        self.search_sizes = getattr(inner, "search_sizes", None)
        self.mask_by_position = getattr(inner, "mask_by_position", False)  # the long-term check of the tracker

    def search_batch(self, x: np.ndarray, slots: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        cls, loc = self.inner.search_batch(x, slots)
        self.calls.append(("search", x.copy(), (np.array(cls, np.float32), np.array(loc, np.float32))))
        return cls, loc

    def refine_box_batch(self, rois: np.ndarray) -> np.ndarray:
        out = self.inner.refine_box_batch(rois)
        self.calls.append(("refine_box", rois.copy(), np.array(out, np.float32)))
        return out

    def refine_mask_batch(self, rois: np.ndarray) -> np.ndarray:
        out = self.inner.refine_mask_batch(rois)
        self.calls.append(("refine_mask", rois.copy(), np.array(out, np.float32)))
        return out

    def last(self, call: str) -> tuple[np.ndarray, Any] | None:
        for name, inp, out in reversed(self.calls):
            if name == call:
                return inp, out
        return None


class CropWatch:
    """The free-running tracker's backend, unchanged, keeping a reference to the last search crop (the
    tracker's own buffer, read right after ``track`` returns) so the check can tell when the two trackers'
    inputs first differ; nothing is copied, so the measured latency is the backend's."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.has_refine, self.has_mask, self.max_batch = inner.has_refine, inner.has_mask, inner.max_batch
        self.x: np.ndarray | None = None
        self.set_template, self.drop_template = inner.set_template, inner.drop_template
        self.search_sizes = getattr(inner, "search_sizes", None)
        self.mask_by_position = getattr(inner, "mask_by_position", False)
        self.refine_box_batch, self.refine_mask_batch = inner.refine_box_batch, inner.refine_mask_batch

    def search_batch(self, x: np.ndarray, slots: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        self.x = x
        return self.inner.search_batch(x, slots)


class SelectionRecorder:
    """Stands in for a tracker's :class:`RPNPostprocessor` (both of them in the long-term mode: ``lost`` is the
    lost window's, picked by the score map's shape): the same selection, with its inputs kept so the check can
    read the whole penalised score map of the last frame (no second post-processing)."""

    def __init__(self, inner: RPNPostprocessor, lost: RPNPostprocessor | None = None) -> None:
        self.inner, self.lost = inner, lost
        self.used = inner
        self.args: tuple[np.ndarray, np.ndarray, float, float] | None = None

    def select(self, cls: np.ndarray, loc: np.ndarray, target_w: float, target_h: float) -> RPNSelection:
        self.args = (cls, loc, target_w, target_h)
        lost = self.lost is not None and cls.shape == self.lost.cls_shape
        self.used = self.lost if lost and self.lost is not None else self.inner
        return self.used.select(cls, loc, target_w, target_h)

    def last_pscores(self) -> np.ndarray:
        assert self.args is not None, "no selection yet"
        return self.used.pscores(*self.args)
