"""What a user sees on the annotated video: the overlay's label fits, scales with and reads on the frame
(issue 11, 'What a new user sees')."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from siamattn.runtime.draw import draw, label_layout

LONG = "onnxruntime cpu fp32  frame 131  score 0.99  250 fps"


@pytest.mark.parametrize("w, h", [(176, 144), (320, 240), (640, 480), (1280, 720), (1920, 1080)])
def test_label_fits_the_frame(w, h):
    layout = label_layout(LONG, w, h)
    x1, y1, x2, y2 = layout.band
    assert x1 >= 0 and x2 < w and y1 >= 0 and y2 < h
    words = []
    for text, (x, y) in layout.lines:
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, layout.scale, layout.thickness)
        assert x1 <= x and x + tw <= x2 and y1 <= y - th and y + base <= y2  # inside the band, so the frame
        assert th >= 8  # legible
        words += text.split()
    assert words == LONG.split()  # nothing dropped by wrapping
    assert len(layout.lines) <= 3
    if w >= 640:
        assert len(layout.lines) == 1
    if w == 176:
        assert len(layout.lines) > 1  # wrapped rather than shrunk below legibility


def test_text_scales_with_the_frame():
    small = label_layout("frame 1", 320, 240).scale
    large = label_layout("frame 1", 1920, 1080).scale
    assert large > 2.5 * small


def test_label_is_drawn_once_inside_a_176x144_frame():
    frame = np.zeros((144, 176, 3), np.uint8)
    out = draw(frame, (60, 40, 48, 40), None, None, LONG, color=(0, 0, 255))
    white = np.argwhere((out > 200).all(axis=2))
    assert white.size, "label not drawn"
    # text pixels end before the right edge: not cut (the old fixed 0.6 scale ran off a 176 px frame)
    assert white[:, 1].max() < 176 - 2
    # no offset shadow copy: white pixels only inside the label's band
    x1, y1, x2, y2 = label_layout(LONG, 176, 144).band
    assert white[:, 0].min() >= y1 and white[:, 0].max() <= y2 and white[:, 1].min() >= x1


def test_label_is_readable_on_a_white_frame():
    frame = np.full((480, 640, 3), 255, np.uint8)
    out = draw(frame, (60, 40, 48, 40), None, None, "frame 1", color=(0, 0, 255))
    x1, y1, x2, y2 = label_layout("frame 1", 640, 480).band
    band = out[y1 : y2 + 1, x1 : x2 + 1].astype(int)
    # the band is darkened behind white text: both dark and white pixels there
    assert (band.max(axis=2) < 128).mean() > 0.3 and (band.min(axis=2) > 200).any()
