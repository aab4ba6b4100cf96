"""Frame/box validation and the search crop against a slow, straightforward pysot-style reference."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from siamattn.errors import InputError
from siamattn.runtime.preprocess import (
    FrameInfo,
    get_subwindow,
    pad_color,
    subwindow_bounds,
    validate_box,
    validate_frame,
)


def reference_crop(frame: np.ndarray, center, out_size: int, crop_size: int, pad) -> np.ndarray:
    """The obvious implementation: paste the frame into a big mean-coloured canvas, slice, resize."""
    h, w, c = frame.shape
    half = (crop_size + 1) / 2.0
    xmin = math.floor(center[0] - half + 0.5)
    ymin = math.floor(center[1] - half + 0.5)
    margin = crop_size + 2
    canvas = np.empty((h + 2 * margin, w + 2 * margin, c), dtype=np.uint8)
    canvas[:] = np.array(pad, dtype=np.float64).astype(np.uint8)  # float mean into uint8: truncation
    canvas[margin : margin + h, margin : margin + w] = frame
    window = canvas[ymin + margin : ymin + margin + crop_size, xmin + margin : xmin + margin + crop_size]
    assert window.shape[:2] == (crop_size, crop_size)
    if crop_size != out_size:
        window = cv2.resize(window, (out_size, out_size))
    return window.transpose(2, 0, 1)[None].astype(np.float32)


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)  # noise: any misplaced pixel shows


# ---------------------------------------------------------------------------------------------- frames


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (None, "None"),
        ([[1, 2], [3, 4]], "numpy array"),
        (np.zeros((0, 0, 3), np.uint8), "empty"),
        (np.zeros((10, 10, 3), np.float32), "uint8.*astype"),
        (np.full((10, 10, 3), np.nan, np.float64), "uint8"),
        (np.zeros((10, 10, 3), np.uint16), "uint8"),
        (np.zeros((10, 10, 3), bool), "uint8"),
        (np.zeros((2, 10, 10, 3), np.uint8), "one frame at a time"),
        (np.zeros((10, 10, 2), np.uint8), "1, 3 or 4 channels"),
        (np.zeros((10,), np.uint8), "shape"),
    ],
)
def test_validate_frame_rejects_with_clear_message(bad, match):
    with pytest.raises(InputError, match=match):
        validate_frame(bad)


def test_validate_frame_accepts_bgr_gray_bgra_without_copy(frame):
    img, info = validate_frame(frame)
    assert img is frame and info == FrameInfo(120, 160, 3)
    gray = frame[:, :, 0].copy()
    img, info = validate_frame(gray)
    assert info == (120, 160, 1) and img.shape == (120, 160, 1) and np.shares_memory(img, gray)
    bgra = np.dstack([frame, np.full((120, 160), 7, np.uint8)])
    img, info = validate_frame(bgra)
    assert info.channels == 4 and img is bgra


def test_validate_frame_makes_flipped_views_usable(frame):
    flipped = frame[::-1, ::-1]
    img, _ = validate_frame(flipped)
    assert img.strides[0] > 0 and img.strides[1] == 3
    np.testing.assert_array_equal(img, flipped)


# ---------------------------------------------------------------------------------------------- boxes


INFO = FrameInfo(100, 200, 3)


@pytest.mark.parametrize(
    ("box", "match"),
    [
        ((10, 10, 0, 5), "positive width and height"),
        ((10, 10, 5, -3), "positive width and height"),
        ((10, float("nan"), 5, 5), "NaN"),
        ((10, 10, float("inf"), 5), "NaN or infinite"),
        ((10, 10, 5), "4 numbers"),
        (("a", "b", "c", "d"), "4 numbers"),
        (None, "4 numbers"),
        ((200, 10, 5, 5), "outside the 200x100 frame"),
        ((-5, 10, 5, 5), "outside"),
        ((10, -20, 5, 20), "outside"),
        ((10, 100, 5, 5), "outside"),
    ],
)
def test_validate_box_rejects(box, match):
    with pytest.raises(InputError, match=match):
        validate_box(box, INFO)


def test_validate_box_accepts_partly_outside_and_arrays():
    assert validate_box((-3, -3, 10, 10), INFO) == (-3.0, -3.0, 10.0, 10.0)
    assert validate_box(np.array([[1, 2, 3, 4]]), INFO) == (1.0, 2.0, 3.0, 4.0)
    assert validate_box([199.5, 99.5, 1, 1], INFO) == (199.5, 99.5, 1.0, 1.0)


# ---------------------------------------------------------------------------------------------- crop


def test_subwindow_bounds_hand_values():
    # c = (sz+1)/2; xmin = floor(cx - c + 0.5): cx=50, sz=11 -> floor(50 - 6 + 0.5) = 44 (window 44..54)
    assert subwindow_bounds((50.0, 50.0), 11) == (44, 44)
    # sz=10: floor(50 - 5.5 + 0.5) = 45 (45..54); cx=50.4 -> floor(45.4) = 45; cx=49.6 -> floor(44.6) = 44
    assert subwindow_bounds((50.0, 49.6), 10) == (45, 44)
    assert subwindow_bounds((50.4, -3.0), 10) == (45, -8)


def test_pad_color_truncates_like_a_uint8_canvas():
    img = np.zeros((2, 2, 3), np.uint8)
    img[0, 0] = (3, 1, 255)  # means 0.75, 0.25, 63.75
    assert pad_color(img) == (0.0, 0.0, 63.0)
    assert pad_color(np.full((3, 3, 1), 9, np.uint8)) == (9.0,)
    bgra = np.dstack([np.full((2, 2, 3), 10, np.uint8), np.full((2, 2), 200, np.uint8)])
    assert pad_color(bgra) == (10.0, 10.0, 10.0)  # alpha ignored


@pytest.mark.parametrize(
    ("center", "crop_size"),
    [
        ((80.0, 60.0), 61),  # inside, upscaled
        ((80.3, 59.7), 100),  # inside, even size
        ((80.0, 60.0), 255),  # inside? no: 255 > frame -> padded, same size (no resize)
        ((5.2, 7.9), 40),  # top-left corner, padded, upscaled
        ((158.0, 118.0), 90),  # bottom-right corner, padded, upscaled
        ((80.0, 60.0), 127),  # exemplar-sized: no resize
        ((40.0, 60.0), 120),  # inside, upscaled
        ((0.0, 0.0), 11),  # centre on the corner
    ],
)
def test_crop_bit_exact_where_promised(frame, center, crop_size):
    for out_size in (127, 255):
        if crop_size >= out_size and not _inside(frame, center, crop_size):
            continue  # the warp path, checked with its tolerance below
        got = get_subwindow(frame, center, out_size, crop_size, (10.7, 20.2, 30.9))
        want = reference_crop(frame, center, out_size, crop_size, (10.7, 20.2, 30.9))
        assert got.shape == (1, 3, out_size, out_size) and got.dtype == np.float32
        np.testing.assert_array_equal(got, want)


def _inside(frame, center, crop_size) -> bool:
    x0, y0 = subwindow_bounds(center, crop_size)
    return x0 >= 0 and y0 >= 0 and x0 + crop_size <= frame.shape[1] and y0 + crop_size <= frame.shape[0]


def test_crop_inside_downscale_bit_exact():
    rng = np.random.default_rng(1)
    big = rng.integers(0, 256, (600, 800, 3), dtype=np.uint8)
    for center, size in (((400.5, 300.2), 561), ((300.0, 280.0), 300), ((400, 300), 256)):
        np.testing.assert_array_equal(
            get_subwindow(big, center, 255, size, (1, 2, 3)), reference_crop(big, center, 255, size, (1, 2, 3))
        )


def test_crop_padded_downscale_is_bit_exact():
    """Windows partly outside the frame and larger than the output (the case a warpAffine shortcut would
    round differently) equal pad-then-resize exactly, on pixel noise."""
    rng = np.random.default_rng(2)
    img = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    pad = (90.4, 127.9, 200.0)
    for _ in range(60):
        size = int(rng.integers(255, 900))
        center = (rng.uniform(-20, 340), rng.uniform(-20, 260))
        assert not _inside(img, center, size)
        np.testing.assert_array_equal(get_subwindow(img, center, 255, size, pad),
                                      reference_crop(img, center, 255, size, pad), err_msg=f"{size} {center}")


def test_crop_window_entirely_outside_is_all_padding(frame):
    got = get_subwindow(frame, (-500.0, -500.0), 127, 50, (1.9, 2.5, 3.1))
    assert got[0, 0].min() == got[0, 0].max() == 1 and got[0, 2].max() == 3


def test_crop_gray_and_bgra_match_bgr(frame):
    gray = frame[:, :, 1].copy()
    gray3 = np.dstack([gray, gray, gray])
    for center, size in (((80, 60), 100), ((10, 10), 80), ((80, 60), 400)):
        np.testing.assert_array_equal(
            get_subwindow(gray[:, :, None], center, 255, size, (77.0,)),
            get_subwindow(gray3, center, 255, size, (77.0, 77.0, 77.0)),
        )
        bgra = np.dstack([frame, np.full(frame.shape[:2], 255, np.uint8)])
        np.testing.assert_array_equal(
            get_subwindow(bgra, center, 255, size, (5.0, 6.0, 7.0)),
            get_subwindow(frame, center, 255, size, (5.0, 6.0, 7.0)),
        )


def test_crop_writes_into_given_buffer_and_checks_it(frame):
    buf = np.full((1, 3, 127, 127), -1.0, np.float32)
    out = get_subwindow(frame, (80, 60), 127, 90, (0, 0, 0), out=buf)
    assert out is buf and buf.min() >= 0
    with pytest.raises(ValueError, match="float32"):
        get_subwindow(frame, (80, 60), 127, 90, (0, 0, 0), out=np.empty((1, 3, 255, 255), np.float32))
    with pytest.raises(InputError, match="crop size"):
        get_subwindow(frame, (80, 60), 127, 0, (0, 0, 0))


def test_crop_is_bgr_chw_no_normalisation():
    img = np.zeros((50, 50, 3), np.uint8)
    img[..., 0], img[..., 1], img[..., 2] = 10, 20, 250
    out = get_subwindow(img, (25, 25), 127, 31, (0, 0, 0))
    assert (out[0, 0] == 10).all() and (out[0, 1] == 20).all() and (out[0, 2] == 250).all()
