"""The tracking loop, backend-agnostic: crops in, boxes/masks out; the networks run in a :class:`Backend`.

Per frame (the authors' inference order, docs/DESIGN.md §3):

1. search crop of ``round(s_x)`` frame pixels around the current centre, resized to 255;
2. ``backend.search_batch`` -> cls/loc; foreground softmax, anchor decode, change penalty, cosine window, argmax;
3. when the model has box refinement and ``tracker.refine_box``: the RPN box (clipped to the crop) as a
   RoI in the 255 crop -> ``backend.refine_box_batch`` -> deltas scaled by ``model.refine.box_stds``;
4. to frame pixels (divide by ``scale_z``, add the centre), centre moves fully, size smoothed with
   ``lr = penalty * score * tracker.lr``, clipped to the frame;
5. when the model has a mask: the smoothed box mapped back into this frame's crop as a RoI ->
   ``backend.refine_mask_batch`` -> pasted into the frame, thresholded, largest contour -> rotated box.
   SiamMask (``backend.mask_by_position``): the chosen anchor's score-map position instead of a RoI, and its
   127x127 mask covers that position's exemplar-sized window of the crop (docs/DESIGN.md "SiamMask").

Crop <-> frame mapping, RoIs, clips and the mask paste-back are asked of ``tracker.geometry``
(:class:`~siamattn.runtime.postprocess.TrackerGeometry`, docs/DESIGN.md §3); everything else is shared.

Box conventions as the reference tracker: the initial box (x, y, w, h) has its centre at
``x + (w-1)/2``; reported boxes are ``(cx - w/2, cy - h/2, w, h)``.

Many targets (:class:`MultiTracker`, docs/DESIGN.md "Many targets"): every target keeps its own state and
template slot in the backend; per frame the targets' search crops are stacked and run through one
``search_batch`` call per chunk of ``backend.max_batch`` targets, then one ``refine_box_batch`` and one
``refine_mask_batch`` call per chunk; the steps above run per target on its row of the outputs.
:class:`Tracker` is a :class:`MultiTracker` holding one target: the same code, batch size 1.

Defined behaviour for awkward input: ``track`` before ``init`` and a frame whose size or channel count
differs from the ``init`` frame raise :class:`~siamattn.errors.InputError` (call ``init`` again for a new
video); a target leaving the frame is kept at the border by the clipping of step 4.

Long-term mode (``tracker.long_term``, pysot's SiamRPNLTTracker; docs/DESIGN.md "Long-term search"): each target
is in the normal or the lost mode. A chosen anchor scoring below ``tracker.confidence_low`` leaves the target's
state unchanged and searches it in the ``tracker.lost_instance_size`` window from the next frame on (its own
anchors, a cosine window of weight ``tracker.lost_window_influence``, the lost-window graphs); a score above
``tracker.confidence_high`` brings it back. As in pysot's long-term tracker, the state is kept unclipped and only
the reported box is clipped to the frame. Lost-mode targets are searched one per call.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from siamattn.config import SIAMMASK_OUTPUT, Config, with_long_term
from siamattn.errors import InputError
from siamattn.geometry import context_size, roi_in_crop
from siamattn.runtime.backend import Backend, BackendOutputError, check_backend
from siamattn.runtime.postprocess import (
    CropWindow,
    FrameMask,
    LongTermRule,
    RPNPostprocessor,
    SearchWindow,
    apply_box_deltas,
    clip_to_frame,
    mask_polygon,
    paste_mask,
    smooth_box,
)
from siamattn.runtime.preprocess import FrameInfo, get_subwindow, has_bool, pad_color, validate_box, validate_frame
from siamattn.validate import as_path

__all__ = ["MultiTracker", "TrackResult", "Tracker"]

_F = TypeVar("_F", bound=Callable[..., Any])


def _serialized(method: _F) -> _F:
    """Run ``method`` under the tracker's lock: one tracker used from several threads does one call at a time
    (its state, template slots and reused crop buffers are shared by every call)."""
    @functools.wraps(method)
    def locked(self: MultiTracker, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return method(self, *args, **kwargs)
    return locked  # type: ignore[return-value]


class _StageClock:
    """Wall time per stage of one step, in ms: ``with clock.stage("search"): ...``; a stage timed twice adds
    up. ``carried_ms`` (time spent before the clock started) counts toward the first stage and the total."""

    def __init__(self, carried_ms: float = 0.0) -> None:
        self.ms: dict[str, float] = {}
        self._carried = self._carry = carried_ms
        self._start = time.perf_counter()

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        t = time.perf_counter()
        yield
        self.ms[name] = self.ms.get(name, 0.0) + (time.perf_counter() - t) * 1000.0 + self._carry
        self._carry = 0.0

    def finish(self) -> dict[str, float]:
        """The stages and their ``total``, start to now."""
        self.ms["total"] = (time.perf_counter() - self._start) * 1000.0 + self._carried
        return self.ms


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
    lost: bool = False  # long-term mode: this frame was searched in the lost window

    @property
    def center(self) -> tuple[float, float]:
        x, y, w, h = self.box
        return x + w / 2.0, y + h / 2.0

    @property
    def reported_polygon(self) -> np.ndarray | None:
        """The rotated box when ``output`` is "polygon" (None without a mask), None when it is "box"."""
        return self.polygon if self.output == "polygon" else None

    @property
    def region(self) -> tuple[float, ...]:
        """What a benchmark records for this frame (tracker.output): the rotated box as 8 numbers
        (x1, y1, ..., x4, y4) when ``output`` is "polygon" and the model has a mask, else the box (x, y, w, h)."""
        polygon = self.reported_polygon
        return tuple(float(v) for v in (self.box if polygon is None else polygon.reshape(-1)))


@dataclass
class _Target:
    """One tracked object: its state between frames and its template slot in the backend."""

    id: int
    center: tuple[float, float]  # frame px
    size: tuple[float, float]  # w, h frame px
    pad: tuple[float, ...]  # crop padding colour (mean of the frame it was added on)
    lost: bool = False  # long-term mode: the next search uses the lost window


class MultiTracker:
    """SiamAttn tracker for any number of targets in one stream: ``add`` / ``remove`` / ``track``.

    ``MultiTracker("exported_model_dir", backend="auto"|"tensorrt"|"onnxruntime"|"torch", device=...)`` or
    ``MultiTracker(backend_object, cfg)`` as :class:`Tracker`. ``track(frame)`` returns ``{id: TrackResult}``
    for every target added before this frame; each target's boxes are those a lone :class:`Tracker` would
    give (its own state, crop and template; only the network calls are shared). Targets may be added and
    removed between any two frames; all frames must have the size of the first one added on.

    Thread safety: a tracker may be shared by threads; its calls are serialized (a lock), so each call sees
    the state the previous one left. For parallel tracking give each thread its own tracker.
    """

    def __init__(self, model: Backend | str | os.PathLike[str], cfg: Config | None = None, *,
                 backend: str = "auto", device: str = "auto", notes: list[str] | None = None,
                 long_term: bool | None = None) -> None:
        """``long_term``: switch the long-term mode on or off (None: the config's ``tracker.long_term``)."""
        self._lock = threading.RLock()
        self.backend_label = type(model).__name__
        if isinstance(model, (str, bytes, os.PathLike)):
            model = as_path(model, "model folder")
            # lazy: the loader reads manifests and opens runtimes; a Backend object needs none of it
            from siamattn.runtime.loader import load_backend

            model, loaded_cfg, self.backend_label = load_backend(model, backend, device, notes)
            cfg = cfg or loaded_cfg
        if cfg is None:
            raise TypeError(f"{type(self).__name__}(backend, cfg): a Backend object needs the model's Config")
        check_backend(model)
        self.backend: Backend = model  # type: ignore[assignment]
        self.max_batch = max(1, int(self.backend.max_batch))
        self.cfg = cfg = with_long_term(cfg, long_term)
        t = cfg.tracker
        self.long_term = t.long_term
        self._rule = LongTermRule(t.confidence_low, t.confidence_high)
        self._windows = (SearchWindow.of(cfg),) + ((SearchWindow.of(cfg, lost=True),) if t.long_term else ())
        if t.long_term:
            _check_lost_window(self.backend, t.lost_instance_size)
        self._exemplar = t.exemplar_size
        self._context = t.context_amount
        self._lr = t.lr
        self._min_size = t.min_size
        self._mask_threshold = t.mask_threshold
        self._box_stds = tuple(cfg.model.refine.box_stds)
        self.use_refine = bool(self.backend.has_refine and t.refine_box)
        self.use_mask = bool(self.backend.has_mask)
        self._mask_by_position = bool(getattr(self.backend, "mask_by_position", False))
        self._mask_size = SIAMMASK_OUTPUT if self._mask_by_position else cfg.model.refine.mask_size
        self.rpn = RPNPostprocessor(cfg)
        # the lost window's anchors, window and score-map size (long-term mode)
        self.rpn_lost = RPNPostprocessor(cfg, lost=True) if t.long_term else None
        self.geometry = self._windows[0].geometry  # crop <-> frame mapping, RoIs, clips, paste-back
        self._output = t.output
        # input buffers reused every frame (the Backend contract says backends copy before returning); the lost
        # window's on its first use
        self._z_buf = np.empty((1, 3, self._exemplar, self._exemplar), dtype=np.float32)
        i = t.instance_size
        self._x_bufs = {False: np.empty((self.max_batch, 3, i, i), dtype=np.float32)}
        self._info: FrameInfo | None = None  # frame size of the stream, set by the first add
        self._targets: dict[int, _Target] = {}
        self._next_id = 0

    @property
    def ids(self) -> list[int]:
        """The live targets' ids, in the order they were added."""
        return list(self._targets)

    def _target_of(self, target_id: object, call: str) -> _Target:
        """The live target ``target_id``, or an InputError naming it and the live ids."""
        try:  # bool is no id (True == 1); an unhashable value is none either
            found = None if isinstance(target_id, (bool, np.bool_)) else self._targets.get(target_id)  # type: ignore
        except TypeError:
            found = None
        if found is None:
            raise InputError(f"{call}(): no target with id {target_id!r} (live: {self.ids})")
        return found

    def __len__(self) -> int:
        return len(self._targets)

    @_serialized
    def add(self, frame: np.ndarray, box_xywh: object) -> int:
        """Start tracking a target: ``box_xywh`` = (x, y, w, h) in ``frame`` (pixels). Returns its id (ids
        are never reused). ``track`` follows it from the next frame on."""
        img, info = validate_frame(frame)
        if self._info is not None and self._targets and info != self._info:
            raise InputError(self._size_changed(info))
        x, y, w, h = validate_box(box_xywh, info)
        target = _Target(self._next_id, (x + (w - 1) / 2.0, y + (h - 1) / 2.0), (w, h), pad_color(img))
        s_z = max(1, round(context_size(w, h, self._context)))  # pysot rounds at init (half to even)
        z = get_subwindow(img, target.center, self._exemplar, s_z, target.pad, out=self._z_buf)
        self.backend.set_template(target.id, z)
        self._next_id += 1
        self._targets[target.id] = target
        self._info = info
        return target.id

    @_serialized
    def remove(self, target_id: int) -> None:
        """Stop tracking ``target_id`` and free its template."""
        self._target_of(target_id, "remove")
        del self._targets[target_id]
        self.backend.drop_template(target_id)

    @_serialized
    def clear(self) -> None:
        """Remove every target (a new video may then have another frame size)."""
        for tid in list(self._targets):
            self.remove(tid)
        self._info = None

    @_serialized
    def state(self, target_id: int) -> tuple[tuple[float, float], tuple[float, float]]:
        """(centre, size) of a target in frame px: where its next search crop is cut."""
        t = self._target_of(target_id, "state")
        return t.center, t.size

    @_serialized
    def set_state(self, target_id: int, center: object, size: object, lost: bool | None = None) -> None:
        """Move a target to ``center`` (x, y) with ``size`` (w, h), frame px, keeping its template: its next
        search crop is cut there (e.g. a detector's correction, or stepping in lock with another tracker's
        states). The inverse of :meth:`state`. ``lost`` (long-term mode): search it next in the lost window
        (True) or the normal one (False); None keeps its mode."""
        self._target_of(target_id, "set_state")
        if has_bool(center) or has_bool(size):
            raise InputError(f"set_state(): centre and size must be numbers, not True/False; got {center!r}, {size!r}")
        try:
            c = np.asarray(center, dtype=np.float64).reshape(-1)
            s = np.asarray(size, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError) as exc:
            raise InputError(f"set_state(): centre and size must be 2 numbers each; got {center!r}, {size!r}") from exc
        if c.size != 2 or s.size != 2 or not (np.all(np.isfinite(c)) and np.all(np.isfinite(s))):
            raise InputError(f"set_state(): centre and size must be 2 finite numbers each; got {center!r}, {size!r}")
        if s[0] <= 0 or s[1] <= 0:
            raise InputError(f"set_state(): size must be positive, got w={s[0]:g}, h={s[1]:g}")
        assert self._info is not None  # set by the add() that made the target
        if not (c[0] + s[0] / 2 > 0 and c[0] - s[0] / 2 < self._info.width and
                c[1] + s[1] / 2 > 0 and c[1] - s[1] / 2 < self._info.height):
            raise InputError(f"set_state(): the box (centre {c[0]:g}, {c[1]:g}, size {s[0]:g} x {s[1]:g}) lies outside "
                             f"the {self._info.width}x{self._info.height} frame; give frame pixels")
        if lost and not self.long_term:
            raise InputError("set_state(lost=True) needs the long-term mode (tracker.long_term / long_term=True)")
        t = self._targets[target_id]
        t.center, t.size = (float(c[0]), float(c[1])), (float(s[0]), float(s[1]))
        if lost is not None:
            t.lost = bool(lost)

    def _size_changed(self, info: FrameInfo) -> str:
        assert self._info is not None
        return (f"frame changed from {self._info.width}x{self._info.height}x{self._info.channels} to "
                f"{info.width}x{info.height}x{info.channels} mid-video; call init() with the first frame "
                "and box of the new video" + ("" if isinstance(self, Tracker) else " (or clear() the targets)"))

    @_serialized
    def track(self, frame: np.ndarray) -> dict[int, TrackResult]:
        """Track every target into ``frame``: ``{id: TrackResult}`` in the order the targets were added."""
        if not self._targets:
            raise InputError("track() called before init(): call init(first_frame, (x, y, w, h)) first"
                             if isinstance(self, Tracker) else "track() called with no targets: add() one first")
        t0 = time.perf_counter()
        img, info = validate_frame(frame)
        if info != self._info:
            raise InputError(self._size_changed(info))
        t_valid = time.perf_counter() - t0
        results: dict[int, TrackResult] = {}
        targets = list(self._targets.values())
        normal = [t for t in targets if not t.lost]
        chunks = [normal[i : i + self.max_batch] for i in range(0, len(normal), self.max_batch)]
        chunks += [[t] for t in targets if t.lost]  # lost targets one per call (the lost graphs have batch 1)
        for chunk in chunks:
            results.update(self._track_chunk(img, info, chunk, t_valid))
            t_valid = 0.0
        return {t.id: results[t.id] for t in targets}

    # ------------------------------------------------------------------------------------------------

    def _track_chunk(self, img: np.ndarray, info: FrameInfo, chunk: list[_Target],
                     t_valid: float) -> dict[int, TrackResult]:
        """One batch: n crops -> one search call -> per-target RPN selection -> one refine_box call ->
        per-target state update -> one refine_mask call -> per-target paste-back. Timings are the batch's
        (the same dict for its targets); ``crop`` includes the frame validation of the first batch."""
        clock = _StageClock(t_valid * 1000.0)
        frame_wh = (info.width, info.height)
        n = len(chunk)
        window = self._windows[int(chunk[0].lost)]  # every target of a chunk is in the same mode
        with clock.stage("crop"):
            x_crops, wins = self._search_crops(img, chunk, window)
        with clock.stage("search"):
            cls, loc = self.backend.search_batch(x_crops, [t.id for t in chunk])
            cls, loc = np.asarray(cls), np.asarray(loc)
        with clock.stage("post"):
            rpn = self.rpn_lost if window.lost else self.rpn
            assert rpn is not None  # a lost target implies the long-term mode
            sels = [rpn.select(cls[i : i + 1], loc[i : i + 1], t.size[0] * win.scale, t.size[1] * win.scale)
                    for i, (t, win) in enumerate(zip(chunk, wins, strict=True))]
            boxes = [s.box for s in sels]  # offsets from the geometry's RPN centre, crop px
        with clock.stage("refine"):
            if self.use_refine:
                boxes = self._refine(boxes, window)
        with clock.stage("post"):
            shown = [self._update(t, sel, window.geometry.box_to_frame(box, win), frame_wh, window)
                     for t, sel, box, win in zip(chunk, sels, boxes, wins, strict=True)]
        with clock.stage("mask"):
            masks: list[tuple[FrameMask | None, np.ndarray | None]] = (
                self._masks(shown, wins, frame_wh, window, [s.index for s in sels]) if self.use_mask
                else [(None, None)] * n)
        timings = clock.finish()
        if n > 1:
            timings["batch"] = float(n)
        out: dict[int, TrackResult] = {}
        for t, sel, (cx, cy, w, h), (mask, polygon) in zip(chunk, sels, shown, masks, strict=True):
            out[t.id] = TrackResult((cx - w / 2.0, cy - h / 2.0, w, h), sel.score, polygon, mask, sel.index,
                                    timings if n == 1 else dict(timings), self._output, window.lost)
        return out

    def _update(self, t: _Target, sel: Any, new_box: tuple[float, float, float, float], frame_wh: tuple[int, int],
                window: SearchWindow) -> tuple[float, float, float, float]:
        """The state update of one target; returns the box it reports (cx, cy, w, h frame px, clipped).
        Normal mode: smoothed, clipped, and that is the state. Long-term mode (pysot's long-term tracker): the
        state follows the smoothed box only when the score reaches confidence_low and stays unclipped; the mode
        for the next frame follows the confidence rules."""
        margin = window.geometry.frame_margin
        smoothed = smooth_box(t.size, new_box, sel.lr * self._lr)
        if not self.long_term:
            cx, cy, w, h = clip_to_frame(smoothed, frame_wh, self._min_size, margin)
            t.center, t.size = (cx, cy), (w, h)
            return cx, cy, w, h
        if self._rule.follows(sel.score):
            t.center, t.size = _bounded(smoothed, frame_wh, self._min_size)
        t.lost = self._rule.next_lost(t.lost, sel.score)
        return clip_to_frame((*t.center, *t.size), frame_wh, self._min_size, margin)

    def _search_crops(self, img: np.ndarray, chunk: list[_Target],
                      window: SearchWindow) -> tuple[np.ndarray, list[CropWindow]]:
        """Each target's search crop, stacked in the reused input buffer, and the window it was cut from."""
        size = window.instance_size
        buf = self._x_bufs.get(window.lost)
        if buf is None:
            buf = self._x_bufs[window.lost] = np.empty((1, 3, size, size), dtype=np.float32)
        x_crops = buf[: len(chunk)]
        wins: list[CropWindow] = []
        for i, t in enumerate(chunk):
            s_z = context_size(*t.size, self._context)
            crop_sz = max(1, round(s_z * size / self._exemplar))
            get_subwindow(img, t.center, size, crop_sz, t.pad, out=x_crops[i : i + 1])
            wins.append(CropWindow(t.center[0], t.center[1], self._exemplar / s_z, crop_sz))
        return x_crops, wins

    def _refine(self, boxes: list[tuple[float, float, float, float]],
                window: SearchWindow) -> list[tuple[float, float, float, float]]:
        """Box refinement on the RPN boxes (offsets from the RPN centre, crop px), one call for the batch;
        returns the same frame. The deltas are decoded on the clipped box each RoI was built from."""
        clipped, rois = [], np.empty((len(boxes), 5), dtype=np.float32)
        for i, box in enumerate(boxes):
            c_box, roi = window.geometry.box_roi(box)
            clipped.append(c_box)
            rois[i] = roi[0]
            rois[i, 0] = i  # batch item i of the last search
        deltas = np.asarray(self.backend.refine_box_batch(rois))
        if deltas.size != 4 * len(boxes):
            raise BackendOutputError(f"backend refine_box() must return 4 finite deltas per target (shape "
                                     f"({len(boxes)}, 4)), got {deltas.shape}")
        deltas = deltas.reshape(len(boxes), 4)
        c = window.geometry.rpn_centre
        out = []
        for c_box, d in zip(clipped, deltas, strict=True):
            rx, ry, rw, rh = apply_box_deltas(c_box, d, self._box_stds)
            out.append((rx - c, ry - c, rw, rh))
        return out

    def _masks(self, shown: list[tuple[float, float, float, float]], wins: list[CropWindow], frame_wh: tuple[int, int],
               window: SearchWindow, anchors: list[int]) -> list[tuple[FrameMask | None, np.ndarray | None]]:
        """Masks on the reported (smoothed, clipped) boxes (mapped into this frame's crops), or SiamMask's at the
        chosen ``anchors``' positions; one call for the batch, each pasted back; rotated box or axis box."""
        n = len(shown)
        geometry = window.geometry
        if self._mask_by_position:
            side = self.cfg.tracker.score_size_at(window.instance_size)
            cells = [divmod(a % (side * side), side) for a in anchors]  # (row, col) of each chosen anchor
            inputs = np.array([(i, r, c) for i, (r, c) in enumerate(cells)], dtype=np.float32).reshape(n, 3)
            t = self.cfg.tracker
            to_frames = [geometry.window_mask_to_frame(r, c, self._mask_size, win, t.exemplar_size, t.base_size,
                                                       frame_wh) for (r, c), win in zip(cells, wins, strict=True)]
        else:
            to_frames, inputs = [], np.empty((n, 5), dtype=np.float32)
            for i, (box, win) in enumerate(zip(shown, wins, strict=True)):
                box_crop = geometry.frame_to_crop(box, win)
                inputs[i] = roi_in_crop(box_crop)[0]
                inputs[i, 0] = i
                # axis-aligned 2x3 from mask px to frame px
                to_frames.append(geometry.mask_to_frame(inputs[i : i + 1], box_crop, self._mask_size, win, frame_wh))
        return self._paste_masks(np.asarray(self.backend.refine_mask_batch(inputs)), shown, to_frames, frame_wh)

    def _paste_masks(self, out: np.ndarray, shown: list[tuple[float, float, float, float]], to_frames: list[np.ndarray],
                     frame_wh: tuple[int, int]) -> list[tuple[FrameMask | None, np.ndarray | None]]:
        """The backend's masks pasted into the frame, thresholded; each one's rotated box, or the reported box."""
        n = len(shown)
        m = self._mask_size
        if out.shape != (n, 1, m, m) or not np.isfinite(out).all():
            raise BackendOutputError(
                f"backend refine_mask() must return finite ({n}, 1, {m}, {m}) probabilities, got {out.shape} "
                f"{out.dtype}{'' if np.isfinite(out).all() else ' with NaN/inf'} (model.refine.mask_size "
                "must match the exported model)"
            )
        result: list[tuple[FrameMask | None, np.ndarray | None]] = []
        for i, (box, to_frame) in enumerate(zip(shown, to_frames, strict=True)):
            mask = paste_mask(out[i, 0], to_frame, frame_wh, self._mask_threshold)
            polygon = mask_polygon(mask)
            if polygon is None:  # no usable mask: the axis-aligned box, corners clockwise from top-left
                cx, cy, w, h = box
                x1, y1 = cx - w / 2.0, cy - h / 2.0
                polygon = np.array([[x1, y1], [x1 + w, y1], [x1 + w, y1 + h], [x1, y1 + h]], dtype=np.float32)
            result.append((mask, polygon))
        return result


def _bounded(box: tuple[float, float, float, float], frame_wh: tuple[int, int],
             min_size: float) -> tuple[tuple[float, float], tuple[float, float]]:
    """The long-term state, unclipped as pysot's long-term tracker keeps it, but within a frame's width and height
    around the frame and no larger than the frame: pysot lets a runaway box (a wild size delta) grow until its
    crop no longer fits in memory; inside these bounds the two are the same (docs/DESIGN.md "Long-term search")."""
    cx, cy, w, h = box
    fw, fh = frame_wh
    return ((min(max(cx, -fw), 2.0 * fw), min(max(cy, -fh), 2.0 * fh)),
            (min(max(w, min_size), fw), min(max(h, min_size), fh)))


def _check_lost_window(backend: Backend, size: int) -> None:
    """An InputError when ``backend`` cannot search the lost window (an export without the lost-window
    graphs); a backend that does not list its ``search_sizes`` (PyTorch, test fakes) runs any size."""
    sizes = getattr(backend, "search_sizes", None)
    if sizes is not None and size not in sizes:
        raise InputError(f"long-term mode needs a search graph for the {size} px lost window, but the export has "
                         f"{', '.join(map(str, sizes))} only; re-export with --set tracker.long_term=true "
                         "(and tracker.lost_instance_size if it differs)")


class Tracker(MultiTracker):
    """SiamAttn tracker for one target; ``init`` then ``track``: a :class:`MultiTracker` holding one target.

    ``Tracker("exported_model_dir", backend="auto"|"tensorrt"|"onnxruntime"|"torch", device="auto"|"cpu"|
    "cuda")`` opens an export folder (see :mod:`siamattn.runtime.loader`; any other backend or device is an
    :class:`~siamattn.errors.InputError` naming the choices; why ``auto`` did not pick TensorRT is appended
    to ``notes``, or warned without a list); ``Tracker(backend_object, cfg)`` runs any :class:`Backend`.
    """

    @property
    def _target(self) -> _Target:
        if not self._targets:
            raise InputError("the tracker has not been initialised: call init(first_frame, (x, y, w, h)) first")
        return next(iter(self._targets.values()))

    @property
    def center(self) -> tuple[float, float]:
        """Target centre, frame px ((0, 0) before ``init``)."""
        return self._target.center if self._targets else (0.0, 0.0)

    @property
    def size(self) -> tuple[float, float]:
        """Target w, h, frame px ((0, 0) before ``init``)."""
        return self._target.size if self._targets else (0.0, 0.0)

    @_serialized
    def follow(self, other: Tracker) -> None:
        """Take ``other``'s state (centre, size, pad colour, frame size): the next ``track`` starts from the
        same place and crops the same pixels. ``siamattn check`` steps a deployed backend in lock step with
        the reference this way (docs/CHECK.md); the template stays this tracker's own."""
        if not other._targets:
            raise InputError("follow(): the other tracker has not been initialised")
        if not self._targets:
            raise InputError("follow(): init() this tracker first (its template stays its own)")
        mine, theirs = self._target, other._target
        mine.center, mine.size, mine.pad, mine.lost = theirs.center, theirs.size, theirs.pad, theirs.lost
        self._info = other._info

    @_serialized
    def init(self, frame: np.ndarray, box_xywh: object) -> None:
        """Start a video: ``box_xywh`` = (x, y, w, h) of the target in ``frame`` (pixels)."""
        self.clear()  # a failed init leaves the tracker uninitialised, never tracking the old target
        self.add(frame, box_xywh)

    def track(self, frame: np.ndarray) -> TrackResult:  # type: ignore[override]
        """Track the target into ``frame``; returns the new box (and mask/polygon when the model has one)."""
        (result,) = super().track(frame).values()
        return result
