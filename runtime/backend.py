"""The interface between the backend-independent tracker and the code that runs the networks.

A backend (PyTorch, ONNX Runtime, TensorRT, or a test fake) only runs graphs; every crop, anchor,
penalty, window, smoothing, RoI and mask step is in :mod:`siamattn.runtime.tracker` and shared by all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from siamattn.errors import InputError, SiamAttnError

__all__ = ["BACKEND_CHOICES", "DEVICE_CHOICES", "Backend", "BackendOutputError", "BatchBackend", "check_backend",
           "check_choice"]

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
    """What :class:`~siamattn.runtime.tracker.MultiTracker` (and :class:`~siamattn.runtime.tracker.Tracker`, its
    one-target case) needs from a backend: the one interface of PyTorch, ONNX Runtime, TensorRT, the check's
    and benches' wrappers and the test fakes. Templates live in numbered slots; one search call takes the
    crops of up to ``max_batch`` targets (docs/DESIGN.md "Many targets").

    Calls: ``set_template`` once per target, then per frame and per chunk of targets ``search_batch``, then
    (if the model has them and the tracker uses them) ``refine_box_batch`` and ``refine_mask_batch``, in that
    order, synchronously.

    Contract:

    * Inputs are C-contiguous float32 host arrays owned by the tracker and **reused on the next call**:
      copy what you need (to the device, or with ``.copy()``) before returning; do not keep references.
    * ``set_template(slot, z_crop)``: z_crop (1, 3, E, E), E = tracker.exemplar_size (127), raw BGR 0..255,
      no normalisation. Compute and keep that slot's template tensors inside the backend (on the device for
      GPU backends), replacing an earlier one in the slot. ``drop_template(slot)`` frees it.
    * ``search_batch(x_crops, slots)``: x_crops (n, 3, I, I), 1 <= n <= ``max_batch``, I =
      tracker.instance_size (255), same encoding; ``slots`` n distinct slots, crop i searched with slot
      ``slots[i]``'s template. Returns ``(cls, loc)`` as host arrays, float32 (float16 is accepted): cls
      (n, 2k, S, S) with channels [0:k] background and [k:2k] foreground logits, loc (n, 4k, S, S) with
      blocks dx [0:k], dy [k:2k], dw [2k:3k], dh [3k:4k]; k = anchors.num, S = tracker.score_size (25).
      Keep the n items' refinement features inside the backend for the calls below. The returned arrays may
      be reused buffers: the tracker reads them before the next call.
    * ``refine_box_batch(rois)``: rois (n, 5) float32, row i ``[i, x1, y1, x2, y2]`` on item i of the last
      search, in 255-crop pixels (:func:`siamattn.geometry.roi_in_crop`). Returns deltas (n, 4): (dx, dy,
      dw, dh) before the ``model.refine.box_stds`` scaling, which the tracker applies. Only called when
      ``has_refine``.
    * ``refine_mask_batch(rois)``: same RoI format (the smoothed boxes); returns (n, 1, M, M) mask
      probabilities in [0, 1] (sigmoid applied), M = model.refine.mask_size (64), tiling the RoI as described
      in :func:`siamattn.geometry.mask_to_crop_affine`. Only called when ``has_mask``.
    * SiamMask (optional attribute ``mask_by_position`` true): ``refine_mask_batch(positions)`` takes (n, 3)
      float32 rows ``[i, row, col]``, the score-map cell of item i's chosen anchor, and returns (n, 1, 127, 127)
      probabilities over that cell's exemplar-sized window of the crop (docs/DESIGN.md "SiamMask").
    """

    has_refine: bool  # the model has the box refinement stage
    has_mask: bool  # the model has the mask stage
    max_batch: int  # the most targets one search call takes (the export's max_targets, 1 without batch graphs)

    def set_template(self, slot: int, z_crop: np.ndarray) -> None: ...

    def drop_template(self, slot: int) -> None: ...

    def search_batch(self, x_crops: np.ndarray, slots: Sequence[int]) -> tuple[np.ndarray, np.ndarray]: ...

    def refine_box_batch(self, rois: np.ndarray) -> np.ndarray: ...

    def refine_mask_batch(self, rois: np.ndarray) -> np.ndarray: ...


BatchBackend = Backend  # its name before the single-target interface was folded into it (issue 24)


def check_backend(backend: object) -> None:
    """Raise TypeError naming what is missing if ``backend`` does not follow :class:`Backend`."""
    missing = [
        name
        for name in ("has_refine", "has_mask", "max_batch", "set_template", "drop_template", "search_batch",
                     "refine_box_batch", "refine_mask_batch")
        if not hasattr(backend, name)
    ]
    if missing:
        raise TypeError(
            f"{type(backend).__name__} is not a siamattn.runtime Backend: missing {', '.join(missing)}"
        )
