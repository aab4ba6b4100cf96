"""Box and anchor geometry shared by training and the runtime (numpy only, no torch, no OpenCV).

Coordinate conventions
----------------------
*Pixel frame.* Every image (a video frame, the 127 template crop, the 255 search crop) uses coordinates
whose **pixel centres are integers**: pixel ``(u, v)`` is centred at ``(u, v)`` and covers
``[u-0.5, u+0.5] x [v-0.5, v+0.5]``. An image of ``S`` pixels spans ``[-0.5, S-0.5]``; its centre is at
``(S-1)/2`` (127 for the 255 search crop, 63 for the 127 template).

*Boxes.* ``xyxy`` = (x1, y1, x2, y2) continuous corners, ``cxcywh`` = (centre x, centre y, width, height),
``xywh`` = (left, top, width, height) with ``left = cx - w/2``. The helpers below are plain continuous
conversions; the tracker's pysot-specific centre rule for the *initial* box (``cx = x + (w-1)/2``) lives in
the tracker, not here.

*Anchors and RPN boxes* are (cx, cy, w, h) with the centre given as an **offset from the crop centre**
(pysot): anchor centres lie on a ``score_size`` x ``score_size`` grid with step ``stride`` centred on 0
(offsets -96..96 for 25 x 8). Add :func:`crop_center` to get crop pixel coordinates.

*Refinement RoIs* (see :func:`roi_in_crop`) are ``[batch, x1, y1, x2, y2]`` in search-crop pixels, in the
frame above (crop centre 127). The RoI poolers (mmcv semantics, docs/DESIGN.md §4.2) map a coordinate ``x`` to
the feature grid as ``x * spatial_scale - 0.5``; training and inference both build RoIs with
:func:`roi_in_crop`, so whatever that implies is learned once and used consistently.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = [
    "anchor_shapes",
    "box_iou",
    "clip_cxcywh",
    "context_size",
    "crop_center",
    "cxcywh_to_xywh",
    "cxcywh_to_xyxy",
    "generate_anchors",
    "mask_to_crop_affine",
    "roi_in_crop",
    "xywh_to_cxcywh",
    "xywh_to_xyxy",
    "xyxy_to_cxcywh",
    "xyxy_to_xywh",
]


# ----------------------------------------------------------------------------------------------------
# anchors


def anchor_shapes(stride: int, ratios: Sequence[float], scales: Sequence[float]) -> np.ndarray:
    """Anchor (w, h) pairs, shape (k, 2), ratio-major then scale (pysot order).

    With base area ``stride**2``: ``ws = int(sqrt(stride**2 / r))``, ``hs = int(ws * r)``, then both times
    the scale. The ``int`` truncations are deliberate: they give pysot's exact anchors (e.g. r=0.33 ->
    ws=13, hs=4 -> 104 x 32 at scale 8), which trained weights depend on.
    """
    area = float(stride * stride)
    shapes = []
    for r in ratios:
        ws = int(math.sqrt(area / r))
        hs = int(ws * r)
        for s in scales:
            shapes.append((ws * s, hs * s))
    return np.asarray(shapes, dtype=np.float32).reshape(-1, 2)


def generate_anchors(
    stride: int, ratios: Sequence[float], scales: Sequence[float], score_size: int
) -> np.ndarray:
    """All anchors of the score map as a (4, k*score_size*score_size) float32 array: rows cx, cy, w, h.

    Order is anchor-major, then row (y), then column (x): index ``a*S*S + y*S + x``, which is the memory
    order of an RPN head output (1, k*C, S, S) reshaped to (C, k*S*S). Centres are offsets from the crop
    centre: ``cx = (x - S//2) * stride``.
    """
    shapes = anchor_shapes(stride, ratios, scales)
    k = shapes.shape[0]
    offsets = (np.arange(score_size, dtype=np.float32) - score_size // 2) * stride
    grid_y, grid_x = np.meshgrid(offsets, offsets, indexing="ij")  # [y, x]
    out = np.empty((4, k, score_size, score_size), dtype=np.float32)
    out[0] = grid_x
    out[1] = grid_y
    out[2] = shapes[:, 0, None, None]
    out[3] = shapes[:, 1, None, None]
    return out.reshape(4, -1)


# ----------------------------------------------------------------------------------------------------
# box conversions (last axis holds the 4 numbers; any leading shape)


def _as_boxes(boxes: np.ndarray | Sequence[float]) -> np.ndarray:
    arr = np.asarray(boxes)
    if arr.shape[-1:] != (4,):
        raise ValueError(f"boxes need 4 numbers on the last axis, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)  # integer boxes would truncate halves
    return arr


def xywh_to_xyxy(boxes: np.ndarray | Sequence[float]) -> np.ndarray:
    b = _as_boxes(boxes)
    return np.concatenate([b[..., :2], b[..., :2] + b[..., 2:]], axis=-1)


def xyxy_to_xywh(boxes: np.ndarray | Sequence[float]) -> np.ndarray:
    b = _as_boxes(boxes)
    return np.concatenate([b[..., :2], b[..., 2:] - b[..., :2]], axis=-1)


def cxcywh_to_xyxy(boxes: np.ndarray | Sequence[float]) -> np.ndarray:
    b = _as_boxes(boxes)
    half = b[..., 2:] * 0.5
    return np.concatenate([b[..., :2] - half, b[..., :2] + half], axis=-1)


def xyxy_to_cxcywh(boxes: np.ndarray | Sequence[float]) -> np.ndarray:
    b = _as_boxes(boxes)
    return np.concatenate([(b[..., :2] + b[..., 2:]) * 0.5, b[..., 2:] - b[..., :2]], axis=-1)


def xywh_to_cxcywh(boxes: np.ndarray | Sequence[float]) -> np.ndarray:
    b = _as_boxes(boxes)
    return np.concatenate([b[..., :2] + b[..., 2:] * 0.5, b[..., 2:]], axis=-1)


def cxcywh_to_xywh(boxes: np.ndarray | Sequence[float]) -> np.ndarray:
    b = _as_boxes(boxes)
    return np.concatenate([b[..., :2] - b[..., 2:] * 0.5, b[..., 2:]], axis=-1)


def box_iou(a: np.ndarray | Sequence[float], b: np.ndarray | Sequence[float]) -> np.ndarray:
    """IoU of xyxy boxes, element-wise with numpy broadcasting over the leading axes.

    Pairwise (N, M) IoU: ``box_iou(a[:, None], b[None])``. Degenerate boxes (zero or negative area) have
    IoU 0 with everything, including themselves, instead of a 0/0 NaN.
    """
    a = _as_boxes(a)
    b = _as_boxes(b)
    iw = np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0])
    ih = np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    area_a = np.clip(a[..., 2] - a[..., 0], 0, None) * np.clip(a[..., 3] - a[..., 1], 0, None)
    area_b = np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)
    union = area_a + area_b - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)
    return out


# ----------------------------------------------------------------------------------------------------
# crops and refinement RoIs


def context_size(w: float, h: float, context_amount: float) -> float:
    """Side ``s_z`` of the square template window around a ``w x h`` target: the box grown by
    ``context_amount * (w + h)`` on each axis, then the geometric mean of the two sides (SiamFC/pysot)."""
    extra = context_amount * (w + h)
    return math.sqrt((w + extra) * (h + extra))


def crop_center(size: int) -> float:
    """Centre of a ``size``-pixel crop in its own pixel frame (pixel centres at integers): (size-1)/2."""
    return (size - 1) / 2.0


def clip_cxcywh(
    box: Sequence[float], centre_max: tuple[float, float], size_min: float, size_max: tuple[float, float]
) -> tuple[float, float, float, float]:
    """Clip one (cx, cy, w, h): cx in [0, centre_max[0]], cy in [0, centre_max[1]], w in [size_min,
    size_max[0]], h in [size_min, size_max[1]] (the trackers' crop and frame clips, docs/DESIGN.md §3)."""
    cx, cy, w, h = box
    return (
        max(0.0, min(float(cx), float(centre_max[0]))),
        max(0.0, min(float(cy), float(centre_max[1]))),
        max(size_min, min(float(w), float(size_max[0]))),
        max(size_min, min(float(h), float(size_max[1]))),
    )


def roi_in_crop(
    boxes_cxcywh: np.ndarray | Sequence[float], batch_index: int | np.ndarray = 0, inset: float = 0.0
) -> np.ndarray:
    """Refinement RoIs ``[batch, x1, y1, x2, y2]`` (float32, shape (N, 5)) for boxes in search-crop pixels.

    ``boxes_cxcywh`` is (cx, cy, w, h) or (N, 4) in the 255-crop pixel frame: pixel centres at integers,
    the crop centre at ``crop_center(255) = 127`` (so an RPN/anchor box, whose centre is an offset from the
    crop centre, needs ``+ 127`` first). The RoI is the box's continuous extent, ``x1 = cx - w/2``,
    ``x2 = cx + w/2`` (no +-0.5 inset), in the same frame. The PyTorch RoI poolers, the exported graphs,
    the training RoIs and the runtime all take RoIs from here; :func:`mask_to_crop_affine` states where
    the refinement mask lies relative to the RoI.

    ``inset`` moves every side inwards (``x1 = cx - w/2 + inset``, ``x2 = cx + w/2 - inset``): the SiamAttn
    authors' tracker builds its box RoI with ``inset=0.5`` (tracker.geometry "authors").
    """
    b = _as_boxes(boxes_cxcywh).reshape(-1, 4)
    out = np.empty((b.shape[0], 5), dtype=np.float32)
    out[:, 0] = batch_index
    xyxy = cxcywh_to_xyxy(b)  # a new array, in the input's precision
    if inset:
        xyxy[:, :2] += inset
        xyxy[:, 2:] -= inset
    out[:, 1:] = xyxy
    return out


MASK_ALIGNMENTS = ("center", "edge")


def mask_to_crop_affine(
    roi_xyxy: np.ndarray | Sequence[float], mask_size: int, align: str = "center"
) -> np.ndarray:
    """2x3 affine matrix mapping refinement-mask pixel coordinates to search-crop pixel coordinates.

    The ``mask_size`` x ``mask_size`` mask tiles the RoI ``[x1, x2] x [y1, y2]`` uniformly: mask pixel
    ``i`` covers ``[x1 + i*bw, x1 + (i+1)*bw]`` with ``bw = (x2-x1)/mask_size``, so its centre is at
    ``x1 + (i + 0.5) * bw``. The runtime pastes masks back with this matrix; training builds mask targets
    by sampling the crop's ground-truth mask with it (``cv2.warpAffine(gt, M, (m, m),
    flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)``), so both sides agree by construction.

    ``align="edge"`` is the SiamAttn authors' paste-back instead: mask pixel ``i`` sits at ``x1 + i*bw``
    (pixel 0 on the RoI's left/top edge, half a mask pixel left of the centred tiling).
    """
    if align not in MASK_ALIGNMENTS:
        raise ValueError(f"align must be one of {MASK_ALIGNMENTS}, got {align!r}")
    x1, y1, x2, y2 = (float(v) for v in np.asarray(roi_xyxy, dtype=np.float64).reshape(-1)[-4:])
    bw = (x2 - x1) / mask_size
    bh = (y2 - y1) / mask_size
    half = 0.5 if align == "center" else 0.0
    return np.array([[bw, 0.0, x1 + half * bw], [0.0, bh, y1 + half * bh]], dtype=np.float64)
