"""Drawing a tracked frame (box, rotated box, mask, label sized to the frame) and showing it in a window."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import cv2
import numpy as np

from siamattn.errors import InputError
from siamattn.runtime.postprocess import FrameMask

_FONT = cv2.FONT_HERSHEY_SIMPLEX


_MIN_SCALE = 0.4  # Hershey simplex at 0.4: capitals about 9 px high, the smallest that stays legible


@dataclass
class LabelLayout:
    """Where :func:`draw` puts the label: font scale and thickness, each line's text and baseline origin,
    and the darkened band behind them (x1, y1, x2, y2, inclusive)."""

    scale: float
    thickness: int
    lines: list[tuple[str, tuple[int, int]]]
    band: tuple[int, int, int, int]


def label_layout(label: str, width: int, height: int) -> LabelLayout:
    """Lay ``label`` out at about 1/30 of the frame height; when it is wider than the frame, wrap it at its
    double spaces, and only then shrink it, so it always fits (a 176x144 clip included)."""
    margin = max(2, round(height / 120))
    room = width - 4 * margin
    scale = max(height / 720.0 * 0.8, _MIN_SCALE)
    thickness = 1 if scale < 0.9 else 2

    def text_w(text: str) -> int:
        return cv2.getTextSize(text, _FONT, scale, thickness)[0][0]

    lines = [label]
    if text_w(label) > room:
        lines = []
        for part in (p.strip() for p in label.split("  ") if p.strip()):
            if lines and text_w(lines[-1] + "  " + part) <= room:
                lines[-1] += "  " + part
            else:
                lines.append(part)
    widest = max(text_w(t) for t in lines)
    if widest > room:  # one part alone is too wide: shrink (getTextSize is linear in the scale)
        scale *= room / widest
        thickness = 1
    (_, th), base = cv2.getTextSize("Ag", _FONT, scale, thickness)
    step = th + base + margin
    placed = [(t, (2 * margin, 2 * margin + th + k * step)) for k, t in enumerate(lines)]
    right = 2 * margin + max(cv2.getTextSize(t, _FONT, scale, thickness)[0][0] for t in lines) + margin
    bottom = placed[-1][1][1] + base + margin
    return LabelLayout(scale, thickness, placed, (margin, margin, min(width - 1, right), min(height - 1, bottom)))


def draw(frame: np.ndarray, box: tuple[float, float, float, float], polygon: np.ndarray | None,
         mask: FrameMask | None, label: str, color: tuple[int, int, int] = (0, 220, 0)) -> np.ndarray:
    """Box, rotated polygon and mask overlay (red tint, only over the mask's patch) on a copy of the frame,
    and ``label`` once (wrapped on small frames), white on a darkened band that keeps it readable on any
    background."""
    out = frame.copy()
    _draw_target(out, box, polygon, mask, color, (0, 200, 255), (0, 0, 102.0))
    _draw_label(out, label)
    return out


def target_color(target_id: int) -> tuple[int, int, int]:
    """A distinct, saturated BGR colour per target id (golden-ratio hue steps: neighbours differ most)."""
    hue = int((target_id * 0.618033988749895 % 1.0) * 180)
    bgr = cv2.cvtColor(np.array([[[hue, 230, 255]]], dtype=np.uint8), cv2.COLOR_HSV2BGR)[0, 0]
    return int(bgr[0]), int(bgr[1]), int(bgr[2])


def draw_targets(frame: np.ndarray, targets: list[tuple[int, tuple[float, float, float, float], np.ndarray | None,
                                                        FrameMask | None]], label: str) -> np.ndarray:
    """Several targets ``(id, box, polygon, mask)`` on a copy of the frame, each in its own colour
    (:func:`target_color`) with its id at the box's top-left corner, and ``label`` once."""
    out = frame.copy()
    h = out.shape[0]
    scale = max(h / 720.0 * 0.7, _MIN_SCALE)
    for tid, box, polygon, mask in targets:
        color = target_color(tid)
        _draw_target(out, box, polygon, mask, color, color, tuple(0.4 * c for c in color))
        x, y = max(0, round(box[0])), max(0, round(box[1]))
        text = f"#{tid}"
        (tw, th), base = cv2.getTextSize(text, _FONT, scale, 1)
        y_text = max(th + 2, y - 4)
        cv2.rectangle(out, (x, y_text - th - 2), (x + tw + 4, y_text + base - 1), color, -1)
        cv2.putText(out, text, (x + 2, y_text - 1), _FONT, scale, (0, 0, 0), 1, cv2.LINE_AA)
    _draw_label(out, label)
    return out


def _draw_target(out: np.ndarray, box: tuple[float, float, float, float], polygon: np.ndarray | None,
                 mask: FrameMask | None, color: tuple[int, int, int], polygon_color: tuple[int, int, int],
                 tint: tuple[float, ...]) -> None:
    line = max(1, round(out.shape[0] / 360))
    if mask is not None and mask.patch.size:
        ph, pw = mask.patch.shape
        region = out[mask.y : mask.y + ph, mask.x : mask.x + pw]
        sel = mask.patch.astype(bool)
        region[sel] = (0.6 * region[sel] + np.array(tint)).astype(np.uint8)
    x, y, bw, bh = box
    cv2.rectangle(out, (round(x), round(y)), (round(x + bw), round(y + bh)), color, line)
    if polygon is not None:
        cv2.polylines(out, [np.round(polygon).astype(np.int32).reshape(-1, 1, 2)], True, polygon_color, line)


def _draw_label(out: np.ndarray, label: str) -> None:
    h, w = out.shape[:2]
    layout = label_layout(label, w, h)
    x1, y1, x2, y2 = layout.band
    band = out[y1 : y2 + 1, x1 : x2 + 1]
    band[:] = (band * 0.35).astype(np.uint8)
    for text, origin in layout.lines:
        cv2.putText(out, text, origin, _FONT, layout.scale, (255, 255, 255), layout.thickness, cv2.LINE_AA)


WINDOW = "siamattn"


def check_display() -> None:
    """Refuse ``--show`` before any work where no window can open: no display, or an OpenCV built without a GUI
    (opencv-python-headless). Checked by opening the window the run would use."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        # checked first: GTK ends the whole process when it finds no display
        raise InputError("--show needs a display, and none is set (DISPLAY / WAYLAND_DISPLAY); leave --show out "
                         "and use --save to get the annotated video")
    try:
        cv2.namedWindow(WINDOW)
    except cv2.error as exc:
        raise InputError("--show cannot open a window: this OpenCV has no GUI support (opencv-python-headless); "
                         f"leave --show out and use --save ({str(exc).strip().splitlines()[-1][:120]})") from exc


def window_closed() -> bool:
    """Esc or q in the display window stops the run."""
    return cv2.waitKey(1) & 0xFF in (27, ord("q"))
