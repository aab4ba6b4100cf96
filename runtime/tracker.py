"""The tracking loop, backend-agnostic: crops in, boxes/masks out; the networks run in a :class:`Backend`.

Per frame (the authors' inference order, docs/DESIGN.md §3):

1. search crop of ``round(s_x)`` frame pixels around the current centre, resized to 255;
2. ``backend.search`` -> cls/loc; foreground softmax, anchor decode, change penalty, cosine window, argmax;
3. when the model has box refinement and ``tracker.refine_box``: the RPN box (clipped to the crop) as a
   RoI in the 255 crop -> ``backend.refine_box`` -> deltas scaled by ``model.refine.box_stds``;
4. to frame pixels (divide by ``scale_z``, add the centre), centre moves fully, size smoothed with
   ``lr = penalty * score * tracker.lr``, clipped to the frame;
5. when the model has a mask: the smoothed box mapped back into this frame's crop as a RoI ->
   ``backend.refine_mask`` -> pasted into the frame, thresholded, largest contour -> rotated box.

Crop <-> frame mapping, RoIs, clips and the mask paste-back follow ``tracker.geometry``
(:class:`~siamattn.runtime.postprocess.TrackerGeometry`): "pysot": crop pixel ``u`` (centre 127) is frame
``cx + (u - 127) / scale_z``, where ``cx`` is the centre the crop was taken around and ``scale_z =
exemplar_size / s_z`` (s_z unrounded); "authors": the SiamAttn authors' variant
(:class:`~siamattn.runtime.postprocess.AuthorsGeometry`: RPN centre 127.5, frame ``cx - round(s_x)/2 +
u / scale_z``, half-pixel RoI inset, edge-aligned paste-back, clip to W-1/H-1). Everything else is shared.

Box conventions as the reference tracker: the initial box (x, y, w, h) has its centre at
``x + (w-1)/2``; reported boxes are ``(cx - w/2, cy - h/2, w, h)``.

Defined behaviour for awkward input: ``track`` before ``init`` and a frame whose size or channel count
differs from the ``init`` frame raise :class:`~siamattn.errors.InputError` (call ``init`` again for a new
video); a target leaving the frame is kept at the border by the clipping of step 4.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import numpy as np

from siamattn.config import Config
from siamattn.errors import InputError
from siamattn.geometry import context_size, roi_in_crop
from siamattn.runtime.backend import Backend, BackendOutputError, check_backend
from siamattn.runtime.postprocess import (
    CropWindow,
    FrameMask,
    RPNPostprocessor,
    apply_box_deltas,
    mask_polygon,
    paste_mask,
    smooth_and_clip,
    tracker_geometry,
)
from siamattn.runtime.preprocess import FrameInfo, get_subwindow, pad_color, validate_box, validate_frame

__all__ = ["TrackResult", "Tracker"]

_MIN_CONTOUR_AREA = 100.0  # pysot: a mask contour must cover more than 100 px to give the rotated box


@dataclass
class TrackResult:
    """One frame's output."""

    box: tuple[float, float, float, float]  # x, y, w, h in frame pixels (x = cx - w/2)
    score: float  # RPN foreground probability of the chosen anchor (before penalty/window)
    polygon: np.ndarray | None  # (4, 2) float32 rotated box when the model has a mask, else None
    mask: FrameMask | None  # thresholded mask in the frame when the model has a mask, else None
    best_index: int = -1  # chosen anchor, flat index a*S*S + y*S + x
    # wall time per stage: crop (validation + crop), search (network), post (RPN selection + state update),
    # refine (RoI + box network + decode), mask (mask network + paste + rotated box), total
    timings_ms: dict[str, float] = field(default_factory=dict)
    output: str = "polygon"  # tracker.output: which of polygon/box is the frame's reported region

    @property
    def center(self) -> tuple[float, float]:
        x, y, w, h = self.box
        return x + w / 2.0, y + h / 2.0

    @property
    def region(self) -> tuple[float, ...]:
        """What a benchmark records for this frame (tracker.output): the rotated box as 8 numbers
        (x1, y1, ..., x4, y4) when ``output`` is "polygon" and the model has a mask, else the box (x, y, w, h)."""
        if self.output == "polygon" and self.polygon is not None:
            return tuple(float(v) for v in self.polygon.reshape(-1))
        return tuple(float(v) for v in self.box)


class Tracker:
    """SiamAttn tracker; ``init`` then ``track``.

    ``Tracker("exported_model_dir", backend="auto"|"tensorrt"|"onnxruntime"|"torch", device="auto"|"cpu"|
    "cuda")`` opens an export folder (see :mod:`siamattn.runtime.loader`; any other backend or device is an
    :class:`~siamattn.errors.InputError` naming the choices; why ``auto`` did not pick TensorRT is appended
    to ``notes``, or warned without a list); ``Tracker(backend_object, cfg)`` runs any :class:`Backend`.
    """

    def __init__(self, model: Backend | str | os.PathLike[str], cfg: Config | None = None, *,
                 backend: str = "auto", device: str = "auto", notes: list[str] | None = None) -> None:
        self.backend_label = type(model).__name__
        if isinstance(model, (str, os.PathLike)):
            # lazy: the loader reads manifests (siamattn.export); a Backend object needs none of it
            from siamattn.runtime.loader import load_backend

            model, loaded_cfg, self.backend_label = load_backend(model, backend, device, notes)
            cfg = cfg or loaded_cfg
        if cfg is None:
            raise TypeError("Tracker(backend, cfg): a Backend object needs the model's Config")
        check_backend(model)
        self.backend: Backend = model  # type: ignore[assignment]
        self.cfg = cfg
        t = cfg.tracker
        self._exemplar = t.exemplar_size
        self._instance = t.instance_size
        self._context = t.context_amount
        self._lr = t.lr
        self._min_size = t.min_size
        self._mask_threshold = t.mask_threshold
        self._box_stds = tuple(cfg.model.refine.box_stds)
        self._mask_size = cfg.model.refine.mask_size
        self.use_refine = bool(self.backend.has_refine and t.refine_box)
        self.use_mask = bool(self.backend.has_mask)
        self.rpn = RPNPostprocessor(cfg)
        self.geometry = tracker_geometry(cfg)  # crop <-> frame mapping, RoIs, clips, paste-back
        self._output = t.output
        # input buffers reused every frame (the Backend contract says backends copy before returning)
        self._z_buf = np.empty((1, 3, self._exemplar, self._exemplar), dtype=np.float32)
        self._x_buf = np.empty((1, 3, self._instance, self._instance), dtype=np.float32)
        self._info: FrameInfo | None = None
        self._pad: tuple[float, ...] = ()
        self.center = (0.0, 0.0)  # target centre, frame px
        self.size = (0.0, 0.0)  # target w, h, frame px

    @property
    def initialized(self) -> bool:
        return self._info is not None

    # ------------------------------------------------------------------------------------------------

    def init(self, frame: np.ndarray, box_xywh: object) -> None:
        """Start a video: ``box_xywh`` = (x, y, w, h) of the target in ``frame`` (pixels)."""
        self._info = None  # a failed init leaves the tracker uninitialised, never tracking the old target
        img, info = validate_frame(frame)
        x, y, w, h = validate_box(box_xywh, info)
        self.center = (x + (w - 1) / 2.0, y + (h - 1) / 2.0)
        self.size = (w, h)
        s_z = max(1, round(context_size(w, h, self._context)))  # pysot rounds at init (half to even)
        self._pad = pad_color(img)
        z = get_subwindow(img, self.center, self._exemplar, s_z, self._pad, out=self._z_buf)
        self.backend.init_template(z)
        self._info = info

    def track(self, frame: np.ndarray) -> TrackResult:
        """Track the target into ``frame``; returns the new box (and mask/polygon when the model has one)."""
        if self._info is None:
            raise InputError("track() called before init(): call init(first_frame, (x, y, w, h)) first")
        t0 = time.perf_counter()
        img, info = validate_frame(frame)
        if info != self._info:
            raise InputError(
                f"frame changed from {self._info.width}x{self._info.height}x{self._info.channels} to "
                f"{info.width}x{info.height}x{info.channels} mid-video; call init() with the first frame "
                "and box of the new video"
            )
        fw, fh = info.width, info.height
        cx0, cy0 = self.center
        w0, h0 = self.size
        s_z = context_size(w0, h0, self._context)
        scale_z = self._exemplar / s_z
        crop_sz = max(1, round(s_z * self._instance / self._exemplar))
        x_crop = get_subwindow(img, self.center, self._instance, crop_sz, self._pad, out=self._x_buf)
        win = CropWindow(cx0, cy0, scale_z, crop_sz)
        t1 = time.perf_counter()

        cls, loc = self.backend.search(x_crop)
        t2 = time.perf_counter()

        sel = self.rpn.select(np.asarray(cls), np.asarray(loc), w0 * scale_z, h0 * scale_z)
        box = sel.box  # offsets from the geometry's RPN centre, crop px
        t3 = time.perf_counter()

        t_refine = 0.0
        if self.use_refine:
            box = self._refine(box)
            t_refine = time.perf_counter() - t3
        t4 = time.perf_counter()

        new_box = self.geometry.box_to_frame(box, win)
        cx, cy, w, h = smooth_and_clip(self.size, new_box, sel.lr * self._lr, (fw, fh), self._min_size,
                                       self.geometry.frame_margin)
        self.center = (cx, cy)
        self.size = (w, h)
        t5 = time.perf_counter()

        mask = polygon = None
        if self.use_mask:
            mask, polygon = self._mask(win, (fw, fh))
        t6 = time.perf_counter()

        ms = 1000.0
        timings = {
            "crop": (t1 - t0) * ms,
            "search": (t2 - t1) * ms,
            "post": ((t3 - t2) + (t5 - t4)) * ms,
            "refine": t_refine * ms,
            "mask": (t6 - t5) * ms,
            "total": (t6 - t0) * ms,
        }
        return TrackResult((cx - w / 2.0, cy - h / 2.0, w, h), sel.score, polygon, mask, sel.index, timings,
                           self._output)

    # ------------------------------------------------------------------------------------------------

    def _refine(self, box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        """Box refinement on the RPN box (offsets from the RPN centre, crop px); returns the same frame.
        The deltas are decoded on the clipped box the RoI was built from."""
        clipped, roi = self.geometry.box_roi(box)
        deltas = self.backend.refine_box(roi)
        rx, ry, rw, rh = apply_box_deltas(clipped, deltas, self._box_stds)
        c = self.geometry.rpn_centre
        return rx - c, ry - c, rw, rh

    def _mask(self, win: CropWindow, frame_wh: tuple[int, int]) -> tuple[FrameMask, np.ndarray]:
        """Mask on the smoothed, clipped box (mapped into this frame's crop), pasted back; rotated box or
        axis box."""
        cx, cy = self.center
        w, h = self.size
        box_crop = self.geometry.frame_to_crop((cx, cy, w, h), win)
        roi = roi_in_crop(box_crop)
        out = np.asarray(self.backend.refine_mask(roi))
        m = self._mask_size
        if out.shape != (1, 1, m, m) or not np.isfinite(out).all():
            raise BackendOutputError(
                f"backend refine_mask() must return finite (1, 1, {m}, {m}) probabilities, got {out.shape} "
                f"{out.dtype}{'' if np.isfinite(out).all() else ' with NaN/inf'} (model.refine.mask_size "
                "must match the exported model)"
            )
        to_frame = self.geometry.mask_to_frame(roi, box_crop, m, win, frame_wh)  # axis-aligned 2x3
        mask = paste_mask(out[0, 0], to_frame, frame_wh, self._mask_threshold)
        polygon = mask_polygon(mask, _MIN_CONTOUR_AREA)
        if polygon is None:  # no usable mask: the axis-aligned box, corners clockwise from top-left
            x1, y1 = cx - w / 2.0, cy - h / 2.0
            polygon = np.array([[x1, y1], [x1 + w, y1], [x1 + w, y1 + h], [x1, y1 + h]], dtype=np.float32)
        return mask, polygon
