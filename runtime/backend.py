"""The interface between the backend-independent tracker and the code that runs the networks.

A backend (PyTorch, ONNX Runtime, TensorRT, or a test fake) only runs graphs; every crop, anchor,
penalty, window, smoothing, RoI and mask step is in :mod:`siamattn.runtime.tracker` and shared by all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from siamattn.errors import InputError, SiamAttnError

__all__ = ["BACKEND_CHOICES", "DEVICE_CHOICES", "Backend", "BackendOutputError", "BatchBackend", "as_batch_backend",
           "check_backend", "check_choice"]

# What ``Tracker(path, backend=..., device=...)`` and the CLI's --backend/--device accept.
BACKEND_CHOICES = ("auto", "tensorrt", "onnxruntime", "torch")
DEVICE_CHOICES = ("auto", "cpu", "cuda")


def check_choice(what: str, value: str, choices: tuple[str, ...]) -> None:
    """Raise :class:`InputError` naming the valid choices when ``value`` is not one of them."""
    if value not in choices:
        raise InputError(f"unknown {what} '{value}': choose one of {', '.join(choices)}")


class BackendOutputError(SiamAttnError, RuntimeError):
    """A backend returned arrays of the wrong shape or non-finite values (model/engine/config mismatch)."""


@runtime_checkable
class Backend(Protocol):
    """What :class:`~siamattn.runtime.tracker.Tracker` needs from a backend.

    Calls per video: ``init_template`` once, then per frame ``search``, then (if the model has them and the
    tracker uses them) ``refine_box`` and ``refine_mask``, in that order, synchronously.

    Contract:

    * Inputs are C-contiguous float32 host arrays owned by the tracker and **reused on the next call**:
      copy what you need (to the device, or with ``.copy()``) before returning; do not keep references.
    * ``init_template(z_crop)``: z_crop (1, 3, E, E), E = tracker.exemplar_size (127), raw BGR 0..255, no
      normalisation. Compute and keep the template tensors inside the backend (on the device for GPU
      backends); a new call replaces them (a new video).
    * ``search(x_crop)``: x_crop (1, 3, I, I), I = tracker.instance_size (255), same encoding. Returns
      ``(cls, loc)`` as host arrays, float32 (float16 is accepted): cls (1, 2k, S, S) with channels [0:k]
      background and [k:2k] foreground logits, loc (1, 4k, S, S) with blocks dx [0:k], dy [k:2k],
      dw [2k:3k], dh [3k:4k]; k = anchors.num, S = tracker.score_size (25). Keep the refinement features
      of this search inside the backend for the calls below. The returned arrays may be reused buffers:
      the tracker reads them before the next call.
    * ``refine_box(roi)``: roi (1, 5) float32 ``[0, x1, y1, x2, y2]`` in 255-crop pixels
      (:func:`siamattn.geometry.roi_in_crop`). Returns deltas (1, 4): (dx, dy, dw, dh) before the
      ``model.refine.box_stds`` scaling, which the tracker applies. Only called when ``has_refine``.
    * ``refine_mask(roi)``: same RoI format (the smoothed box); returns (1, 1, M, M) mask probabilities in
      [0, 1] (sigmoid applied), M = model.refine.mask_size (64), tiling the RoI as described in
      :func:`siamattn.geometry.mask_to_crop_affine`. Only called when ``has_mask``.
    """

    has_refine: bool  # the model has the box refinement stage
    has_mask: bool  # the model has the mask stage

    def init_template(self, z_crop: np.ndarray) -> None: ...

    def search(self, x_crop: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...

    def refine_box(self, roi: np.ndarray) -> np.ndarray: ...

    def refine_mask(self, roi: np.ndarray) -> np.ndarray: ...


def check_backend(backend: object) -> None:
    """Raise TypeError naming what is missing if ``backend`` does not follow :class:`Backend`."""
    missing = [
        name
        for name in ("has_refine", "has_mask", "init_template", "search", "refine_box", "refine_mask")
        if not hasattr(backend, name)
    ]
    if missing:
        raise TypeError(
            f"{type(backend).__name__} is not a siamattn.runtime Backend: missing {', '.join(missing)}"
        )


@runtime_checkable
class BatchBackend(Backend, Protocol):
    """A :class:`Backend` that also runs several targets per call (``MultiTracker``, docs/DESIGN.md "Many
    targets"). Templates live in numbered slots; one search call takes the crops of up to ``max_batch``
    targets, stacked along the batch axis, with the slots whose templates they are matched against.

    * ``set_template(slot, z_crop)``: z_crop (1, 3, E, E); computes and keeps that slot's template cache
      (replacing an earlier one in the slot). ``drop_template(slot)`` frees it.
    * ``search_batch(x_crops, slots)``: x_crops (n, 3, I, I), 1 <= n <= ``max_batch``, ``slots`` n distinct
      slots. Returns cls (n, 2k, S, S) and loc (n, 4k, S, S); crop i is searched with slot ``slots[i]``'s
      template. Keeps the n items' refinement features for the two calls below.
    * ``refine_box_batch(rois)`` / ``refine_mask_batch(rois)``: rois (n, 5), row i ``[i, x1, y1, x2, y2]``
      on item i of the last ``search_batch``; return (n, 4) deltas / (n, 1, M, M) probabilities.

    The single-target methods of :class:`Backend` are slot 0 of the same implementation. Inputs follow the
    :class:`Backend` contract (copied before returning, outputs read before the next call).
    """

    max_batch: int  # the most targets one search call takes (the export's max_targets, 1 without batch graphs)

    def set_template(self, slot: int, z_crop: np.ndarray) -> None: ...

    def drop_template(self, slot: int) -> None: ...

    def search_batch(self, x_crops: np.ndarray, slots: Sequence[int]) -> tuple[np.ndarray, np.ndarray]: ...

    def refine_box_batch(self, rois: np.ndarray) -> np.ndarray: ...

    def refine_mask_batch(self, rois: np.ndarray) -> np.ndarray: ...


class SlotZeroBackend:
    """Mixin for a :class:`BatchBackend`: the plain :class:`Backend` methods as its slot 0, so one implementation
    serves ``Tracker`` and ``MultiTracker``."""

    def init_template(self, z_crop: np.ndarray) -> None:
        self.set_template(0, z_crop)  # type: ignore[attr-defined]

    def search(self, x_crop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.search_batch(x_crop, (0,))  # type: ignore[attr-defined]

    def refine_box(self, roi: np.ndarray) -> np.ndarray:
        return self.refine_box_batch(roi)  # type: ignore[attr-defined]

    def refine_mask(self, roi: np.ndarray) -> np.ndarray:
        return self.refine_mask_batch(roi)  # type: ignore[attr-defined]


class _OneTarget:
    """A plain :class:`Backend` (one template at a time, e.g. a test fake or ``siamattn check``'s recorders)
    seen as a :class:`BatchBackend` with a single slot: enough for ``Tracker``; a second live target is an
    :class:`InputError`."""

    max_batch = 1

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.has_refine, self.has_mask = inner.has_refine, inner.has_mask
        self._slot: int | None = None

    def set_template(self, slot: int, z_crop: np.ndarray) -> None:
        if self._slot is not None and self._slot != slot:
            raise InputError(f"{type(self.inner).__name__} tracks one target at a time; several targets need a "
                             "backend with batch support (ONNX Runtime, TensorRT or torch)")
        self._slot = None
        self.inner.init_template(z_crop)
        self._slot = slot

    def drop_template(self, slot: int) -> None:
        if self._slot == slot:
            self._slot = None

    def search_batch(self, x_crops: np.ndarray, slots: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        assert len(slots) == 1 and slots[0] == self._slot, "one target, in the slot of its template"
        return self.inner.search(x_crops)

    def refine_box_batch(self, rois: np.ndarray) -> np.ndarray:
        return self.inner.refine_box(rois)

    def refine_mask_batch(self, rois: np.ndarray) -> np.ndarray:
        return self.inner.refine_mask(rois)

    # the plain Backend methods, so the adapter is itself a Backend
    def init_template(self, z_crop: np.ndarray) -> None:
        self.inner.init_template(z_crop)

    def search(self, x_crop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.inner.search(x_crop)

    def refine_box(self, roi: np.ndarray) -> np.ndarray:
        return self.inner.refine_box(roi)

    def refine_mask(self, roi: np.ndarray) -> np.ndarray:
        return self.inner.refine_mask(roi)


_BATCH_METHODS = ("set_template", "drop_template", "search_batch", "refine_box_batch", "refine_mask_batch")


def as_batch_backend(backend: Backend) -> BatchBackend:
    """``backend`` itself when it runs batches, else a one-slot adapter around it."""
    if all(hasattr(backend, m) for m in _BATCH_METHODS) and int(getattr(backend, "max_batch", 0)) >= 1:
        return backend  # type: ignore[return-value]
    return _OneTarget(backend)  # type: ignore[return-value]
