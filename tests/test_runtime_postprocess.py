"""Post-processing against hand-computed cases: softmax, decode, penalties, window, argmax, smoothing,
clipping, refinement deltas, mask paste-back and the rotated box."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from siamattn.config import load_config
from siamattn.geometry import roi_in_crop
from siamattn.runtime.backend import BackendOutputError
from siamattn.runtime.postprocess import (
    AuthorsGeometry,
    CropWindow,
    FrameMask,
    RPNPostprocessor,
    TrackerGeometry,
    apply_box_deltas,
    mask_polygon,
    paste_mask,
    smooth_and_clip,
    tracker_geometry,
)

K, S = 5, 25
N = K * S * S
SQUARE = 2  # anchor index of ratio 1.0: 64 x 64


def idx(a: int, y: int, x: int) -> int:
    return a * S * S + y * S + x


@pytest.fixture(scope="module")
def rpn() -> RPNPostprocessor:
    return RPNPostprocessor(load_config("siamattn_r50"))  # penalty_k 0.10, window_influence 0.25


def maps(fg_bg: dict[int, tuple[float, float]] | None = None, deltas: dict[int, tuple] | None = None):
    """cls/loc maps; every anchor gets background logit 10 / foreground -10 unless listed."""
    cls = np.zeros((1, 2 * K, S, S), np.float32)
    flat = cls.reshape(2, N)
    flat[0], flat[1] = 10.0, -10.0
    for i, (bg, fg) in (fg_bg or {}).items():
        flat[0, i], flat[1, i] = bg, fg
    loc = np.zeros((1, 4 * K, S, S), np.float32)
    lflat = loc.reshape(4, N)
    for i, d in (deltas or {}).items():
        lflat[:, i] = d
    return cls, loc


def test_foreground_softmax_channel_layout(rpn):
    # anchor (a=1, y=3, x=4): background channel 1, foreground channel k+1 = 6
    cls = np.zeros((1, 10, 25, 25), np.float32)
    cls[0, 1, 3, 4] = 1.0
    cls[0, 6, 3, 4] = 3.0
    score = rpn.foreground(cls)
    assert score.shape == (N,)
    assert score[idx(1, 3, 4)] == pytest.approx(math.exp(3) / (math.exp(1) + math.exp(3)))  # 0.880797
    assert score[idx(0, 0, 0)] == pytest.approx(0.5)  # equal logits
    # huge logits neither overflow nor give NaN
    cls[0, 6, 0, 0] = 1e4
    cls[0, 1, 0, 1] = 1e4
    s2 = rpn.foreground(cls)
    assert s2[idx(1, 0, 0)] == 1.0 and s2[idx(1, 0, 1)] == 0.0


def test_decode_box_hand_values(rpn):
    # anchor (a=3: 40 x 80) at y=5, x=20: centre ((20-12)*8, (5-12)*8) = (64, -56)
    _, loc = maps(deltas={idx(3, 5, 20): (0.5, -0.25, math.log(2.0), 0.0)})
    # cx = 0.5*40 + 64 = 84; cy = -0.25*80 - 56 = -76; w = 2*40 = 80; h = 80
    assert rpn.decode_box(loc, idx(3, 5, 20)) == pytest.approx((84.0, -76.0, 80.0, 80.0))
    w, h = rpn.decode_sizes(loc)
    assert w[idx(3, 5, 20)] == pytest.approx(80.0) and h[idx(0, 0, 0)] == pytest.approx(32.0)


def test_penalty_hand_values(rpn):
    # same size and ratio as the target -> no penalty
    assert rpn.penalty(np.array([64.0]), np.array([64.0]), 64.0, 64.0)[0] == pytest.approx(1.0)
    # pred 128 x 64 vs target 64 x 64:
    #   sz(128,64): p = 96, sqrt(224*160) = 189.31455; sz(64,64) = 128 -> scale change 1.4790199
    #   ratio change max(0.5, 2) = 2 -> exp(-(2*1.4790199 - 1) * 0.10) = 0.8221734
    assert rpn.penalty(np.array([128.0]), np.array([64.0]), 64.0, 64.0)[0] == pytest.approx(0.8221734, rel=1e-6)
    # the penalty is symmetric in shrinking/growing (change(r) = max(r, 1/r))
    a = rpn.penalty(np.array([32.0]), np.array([16.0]), 16.0, 16.0)[0]
    b = rpn.penalty(np.array([16.0]), np.array([16.0]), 32.0, 16.0)[0]
    assert a == pytest.approx(b)


def test_cosine_window(rpn):
    w = rpn.window
    assert w.shape == (N,)
    # hanning(25)[i] = 0.5 - 0.5 cos(2 pi i / 24): 1 at 12, 0.5 at 6, 0 at 0, same for every anchor
    for a in range(K):
        assert w[idx(a, 12, 12)] == pytest.approx(1.0)
        assert w[idx(a, 6, 12)] == pytest.approx(0.5)
        assert w[idx(a, 6, 6)] == pytest.approx(0.25)
        assert w[idx(a, 0, 7)] == pytest.approx(0.0)
        assert w[idx(a, 12, 14)] == pytest.approx(0.5 + 0.5 * math.cos(math.pi / 6))  # 0.9330127


def test_select_peak_with_penalty_and_window(rpn):
    best = idx(SQUARE, 12, 14)  # square anchor, two cells right: centre (16, 0)
    cls, loc = maps({best: (0.0, math.log(9.0))}, {best: (0.25, 0.0, math.log(1.25), 0.0)})
    sel = rpn.select(cls, loc, 63.5, 63.5)
    assert sel.index == best
    # score 9/10; box: cx = 0.25*64 + 16 = 32, cy = 0, w = 1.25*64 = 80, h = 64
    assert sel.score == pytest.approx(0.9)
    assert sel.box == pytest.approx((32.0, 0.0, 80.0, 64.0))
    # penalty: sz(80,64) = sqrt(152*136) = 143.77761, sz(63.5,63.5) = 127 -> 1.1321071;
    # ratio change 1.25 -> exp(-(1.25*1.1321071 - 1)*0.1) = 0.9593365
    assert sel.penalty == pytest.approx(0.9593365, rel=1e-6)
    # pscore = 0.9593365*0.9*0.75 + 0.9330127*0.25 = 0.6475521 + 0.2332532
    assert rpn.pscores(cls, loc, 63.5, 63.5)[best] == pytest.approx(0.8808053, rel=1e-6)
    assert sel.lr == pytest.approx(0.9593365 * 0.9, rel=1e-6)


def test_window_beats_a_slightly_better_score_far_away(rpn):
    near, far = idx(SQUARE, 12, 12), idx(SQUARE, 0, 0)
    # near: 0.5*0.75 + 1*0.25 = 0.625; far (window 0): 0.8*0.75 = 0.6 -> near wins despite the lower score
    cls, loc = maps({near: (0.0, 0.0), far: (0.0, math.log(4.0))})
    assert rpn.select(cls, loc, 64.0, 64.0).index == near
    # far with score 0.9: 0.675 > 0.625 -> far wins
    cls, loc = maps({near: (0.0, 0.0), far: (0.0, math.log(9.0))})
    assert rpn.select(cls, loc, 64.0, 64.0).index == far


def test_penalty_beats_a_slightly_better_score_of_the_wrong_shape(rpn):
    right, wrong = idx(SQUARE, 12, 12), idx(0, 12, 12)  # square vs 104 x 32 anchor, same place
    cls, loc = maps({right: (0.0, math.log(4.0)), wrong: (0.0, math.log(4.5))})  # 0.8 vs 0.818
    assert rpn.select(cls, loc, 64.0, 64.0).index == right


def test_select_rejects_bad_backend_outputs(rpn):
    cls, loc = maps()
    with pytest.raises(BackendOutputError, match=r"expected \(1, 10, 25, 25\)"):
        rpn.select(cls[:, :6], loc, 64, 64)
    with pytest.raises(BackendOutputError, match="loc"):
        rpn.select(cls, loc.reshape(1, 20, 625), 64, 64)
    bad = cls.copy()
    bad[0, 7, 3, 3] = np.nan
    with pytest.raises(BackendOutputError, match="NaN"):
        rpn.select(bad, loc, 64, 64)
    bad_loc = loc.copy()
    bad_loc[0, 10:15] = np.nan  # dw of every anchor
    with pytest.raises(BackendOutputError, match="NaN"):
        rpn.select(cls, bad_loc, 64, 64)


def test_select_accepts_float16(rpn):
    best = idx(4, 10, 11)
    cls, loc = maps({best: (0.0, 2.0)})
    sel = rpn.select(cls.astype(np.float16), loc.astype(np.float16), 32.0, 96.0)
    assert sel.index == best


def test_apply_box_deltas_hand_values():
    # cx' = 100 + 1*0.1*40 = 104; cy' = 50 - 2*0.1*20 = 46; w' = 40*exp(0.5*0.2); h' = 20*exp(-1*0.2)
    got = apply_box_deltas((100.0, 50.0, 40.0, 20.0), np.array([[1.0, -2.0, 0.5, -1.0]]), [0.1, 0.1, 0.2, 0.2])
    assert got == pytest.approx((104.0, 46.0, 40 * math.exp(0.1), 20 * math.exp(-0.2)))
    assert apply_box_deltas((1, 2, 3, 4), np.zeros((1, 4)), [0.1, 0.1, 0.2, 0.2]) == (1, 2, 3, 4)
    with pytest.raises(BackendOutputError, match="4 finite deltas"):
        apply_box_deltas((1, 2, 3, 4), np.zeros((1, 5)), [0.1, 0.1, 0.2, 0.2])
    with pytest.raises(BackendOutputError, match="4 finite deltas"):
        apply_box_deltas((1, 2, 3, 4), np.array([[0, np.nan, 0, 0]]), [0.1, 0.1, 0.2, 0.2])
    with pytest.raises(BackendOutputError, match="overflow"):
        apply_box_deltas((1, 2, 3, 4), np.array([[0, 0, 1e6, 0]]), [0.1, 0.1, 0.2, 0.2])


def test_smooth_and_clip_hand_values():
    # centre moves fully; w = 100*(1-0.25) + 140*0.25 = 110, h = 50*0.75 + 30*0.25 = 45
    assert smooth_and_clip((100, 50), (300.5, 200.25, 140, 30), 0.25, (640, 480), 10.0) == pytest.approx(
        (300.5, 200.25, 110.0, 45.0)
    )
    # lr 0 keeps the size, lr 1 takes the new one
    assert smooth_and_clip((100, 50), (1, 2, 140, 30), 0.0, (640, 480), 10.0)[2:] == (100, 50)
    assert smooth_and_clip((100, 50), (1, 2, 140, 30), 1.0, (640, 480), 10.0)[2:] == (140, 30)


def test_clipping_keeps_the_target_at_the_border():
    # cx in [0, W], cy in [0, H], w in [min_size, W], h in [min_size, H]
    assert smooth_and_clip((50, 50), (-30, 700, 50, 50), 0.5, (640, 480), 10) == (0.0, 480.0, 50.0, 50.0)
    assert smooth_and_clip((50, 50), (650, -1, 2, 2), 1.0, (640, 480), 10) == (640.0, 0.0, 10.0, 10.0)
    assert smooth_and_clip((900, 900), (320, 240, 900, 900), 1.0, (640, 480), 10) == (320, 240, 640, 480)
    # min_size comes from the config, not a constant
    assert smooth_and_clip((5, 5), (1, 1, 5, 5), 1.0, (640, 480), 3.0)[2:] == (5.0, 5.0)


def test_authors_frame_clip_is_one_pixel_inside():
    # margin 1 (tracker.geometry authors): cx in [0, W-1], cy in [0, H-1], w in [min, W-1], h in [min, H-1]
    clip = smooth_and_clip((50, 50), (-30, 700, 50, 50), 0.5, (640, 480), 10, margin=1.0)
    assert clip == (0.0, 479.0, 50.0, 50.0)
    assert smooth_and_clip((900, 900), (650, 240, 900, 900), 1.0, (640, 480), 10, margin=1.0) == (
        639.0, 240.0, 639.0, 479.0)
    assert smooth_and_clip((50, 50), (639.5, 2, 3, 3), 1.0, (640, 480), 10, margin=1.0) == (639.0, 2.0, 10.0, 10.0)


# ------------------------------------------------------------------------------------- tracker geometry

WIN = CropWindow(331.5, 231.5, 127 / 128, 257)  # crop of round(128 * 255/127) = 257 px around (331.5, 231.5)


def test_geometry_from_config():
    assert type(tracker_geometry(load_config("tiny"))) is TrackerGeometry  # default: pysot
    g = tracker_geometry(load_config("tiny", ["tracker.geometry=authors"]))
    assert isinstance(g, AuthorsGeometry) and g.name == "authors"
    assert (g.rpn_centre, g.roi_inset, g.frame_margin) == (127.5, 0.5, 1.0)
    p = tracker_geometry(load_config("siamattn_r50", ["tracker.geometry=pysot"]))
    assert (p.rpn_centre, p.roi_inset, p.frame_margin) == (127.0, 0.0, 0.0)


def test_box_to_frame_pysot_centre_127_vs_authors_round_sx():
    box = (32.0, 0.0, 80.0, 64.0)  # offsets from the RPN centre, crop px
    pysot = TrackerGeometry(255, 10.0).box_to_frame(box, WIN)
    assert pysot == pytest.approx((331.5 + 32 * 128 / 127, 231.5, 80 * 128 / 127, 64 * 128 / 127), rel=1e-12)
    # authors: crop px u = offset + 127.5; frame = centre - round(s_x)/2 + u/scale_z = 203 + u * 128/127
    authors = AuthorsGeometry(255, 10.0).box_to_frame(box, WIN)
    want = (203 + 159.5 * 128 / 127, 103 + 127.5 * 128 / 127, 80 * 128 / 127, 64 * 128 / 127)
    assert authors == pytest.approx(want, rel=1e-12)
    # the two differ by 127.5 * 128/127 - 257/2 = 0.0039 px here: (s_x - round(s_x))/2 plus the 0.5 centre
    assert authors[0] - pysot[0] == pytest.approx(127.5 * 128 / 127 - 128.5, abs=1e-9)


def test_frame_to_crop_inverts_box_to_frame():
    for g in (TrackerGeometry(255, 10.0), AuthorsGeometry(255, 10.0)):
        box = (-20.0, 13.0, 50.0, 70.0)
        back = g.frame_to_crop(g.box_to_frame(box, WIN), WIN)
        assert back == pytest.approx((box[0] + g.rpn_centre, box[1] + g.rpn_centre, 50.0, 70.0), abs=1e-9)
    # authors: the mask RoI is (state - crop_box) * scale_z with crop_box = centre - 257/2 = (203, 103)
    got = AuthorsGeometry(255, 10.0).frame_to_crop((300.0, 200.0, 64.0, 32.0), WIN)
    assert got == pytest.approx((97 * 127 / 128, 97 * 127 / 128, 63.5, 31.75), rel=1e-12)


def test_box_roi_clip_and_inset():
    far = (224.0, 224.0, 473.0, 0.43)  # centre 351.5 (authors) / 351 (pysot): off the crop; huge w, tiny h
    clipped, roi = AuthorsGeometry(255, 10.0).box_roi(far)
    assert clipped == (254.0, 254.0, 254.0, 10.0)  # cx, cy <= 254, w, h in [10, 254]
    np.testing.assert_array_equal(roi, [[0, 127.5, 249.5, 380.5, 258.5]])  # [cx -+ w/2 +- 0.5]
    clipped, roi = TrackerGeometry(255, 10.0).box_roi(far)
    assert clipped == (254.0, 254.0, 255.0, 10.0)  # pysot: w up to 255, no inset
    np.testing.assert_array_equal(roi, [[0, 126.5, 249, 381.5, 259]])
    # inside the crop: only the centre and the inset differ
    _, roi = AuthorsGeometry(255, 10.0).box_roi((32.0, 0.0, 80.0, 64.0))
    np.testing.assert_array_equal(roi, [[0, 120, 96, 199, 159]])  # centre (159.5, 127.5)


def _pasted_extent(geometry: TrackerGeometry, frame_wh: tuple[int, int]) -> tuple[int, int, int, int]:
    win = CropWindow(100.0, 80.0, 0.5, 510)  # 510 frame px resized to 255: 2 frame px per crop px
    box_crop = (127.5, 127.3, 64.0, 32.0)  # mask RoI [95.5, 159.5] x [111.3, 143.3] crop px, 1 x 0.5 px cells
    affine = geometry.mask_to_frame(roi_in_crop(box_crop), box_crop, 64, win, frame_wh)
    pasted = paste_mask(np.ones((64, 64), np.float32), affine, frame_wh, 0.25).to_frame()
    ys, xs = np.nonzero(pasted)
    return int(xs.min()), int(xs.max()), int(ys.min()), int(ys.max())


def test_mask_paste_back_authors_edge_aligned_and_shrunk():
    """An all-ones mask pasted with threshold 0.25 covers mask coordinates (-0.75, 63.75) (bilinear ramp to the
    zero border); where that lands in the frame is each geometry's paste-back, computed by hand."""
    g = AuthorsGeometry(255, 10.0)
    win = CropWindow(100.0, 80.0, 0.5, 510)
    box_crop = (127.5, 127.3, 64.0, 32.0)
    affine = g.mask_to_frame(roi_in_crop(box_crop), box_crop, 64, win, (200, 150))
    # crop_box = centre - 510/2 = (-155, -175); s = 510/255 = 2; mask px u at crop 95.5 + u (edge-aligned)
    # -> frame x = 199/200 * (-155 + 2 * (95.5 + u)) = 0.995 * (36 + 2u); y = 149/150 * (47.6 + v)
    np.testing.assert_allclose(affine, [[0.995 * 2, 0, 0.995 * 36], [0, 149 / 150, 149 / 150 * 47.6]], rtol=1e-12)
    # x in 0.995 * (34.5, 163.5) = (34.33, 162.68); y in 149/150 * (46.85, 111.35) = (46.54, 110.61)
    assert _pasted_extent(g, (200, 150)) == (35, 162, 47, 110)
    # pysot on the same crop: centre-aligned cells, 1/scale_z = 2: x = 100 + (96 + u - 127) * 2 = 38 + 2u,
    # y = 80 + (111.55 + 0.5v - 127) * 2 = 49.1 + v: x in (36.5, 165.5), y in (48.35, 112.85), no shrink
    assert _pasted_extent(TrackerGeometry(255, 10.0), (200, 150)) == (37, 165, 49, 112)


# ---------------------------------------------------------------------------------------------- masks


def test_paste_mask_matches_full_frame_warp():
    """The patch equals a straightforward warp of the whole frame (pysot's crop-back), cut to the patch."""
    rng = np.random.default_rng(0)
    mask = cv2.GaussianBlur(rng.random((64, 64)).astype(np.float32), (9, 9), 3)
    mask = (mask - mask.min()) / (mask.max() - mask.min())
    for a, tx, b, ty in [(1.7, 100.3, 1.2, 50.8), (3.1, -40.0, 2.5, 300.0), (0.8, 600.0, 0.9, 440.0)]:
        affine = np.array([[a, 0, tx], [0, b, ty]])
        full = cv2.warpAffine(mask, affine, (640, 480), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        want = (full > 0.3).astype(np.uint8)
        got = paste_mask(mask, affine, (640, 480), 0.3)
        assert got.frame_size == (640, 480)
        np.testing.assert_array_equal(got.to_frame(), want)
        assert want.sum() > 0


def test_paste_mask_outside_frame_is_empty_and_polygon_none():
    mask = np.ones((64, 64), np.float32)
    got = paste_mask(mask, np.array([[1.0, 0, 1000], [0, 1.0, 1000]]), (640, 480), 0.2)
    assert not got.to_frame().any() and got.to_frame().shape == (480, 640)
    assert mask_polygon(got) is None


def test_mask_polygon_rotated_rectangle():
    # a 120 x 40 rectangle rotated by 30 degrees around (300, 200)
    rect = ((300.0, 200.0), (120.0, 40.0), 30.0)
    corners = cv2.boxPoints(rect)
    full = np.zeros((480, 640), np.uint8)
    cv2.fillPoly(full, [np.round(corners).astype(np.int32)], 1)
    mask = FrameMask(full[100:300, 200:420].copy(), 200, 100, (640, 480))
    poly = mask_polygon(mask)
    assert poly.shape == (4, 2) and poly.dtype == np.float32
    (cx, cy), (w, h), _ = cv2.minAreaRect(poly)
    assert (cx, cy) == pytest.approx((300, 200), abs=1.0)
    assert sorted((w, h)) == pytest.approx([40, 120], abs=2.0)
    # every returned corner is near one true corner (in frame coordinates, not patch coordinates)
    for p in poly:
        assert np.min(np.linalg.norm(corners - p, axis=1)) < 2.0


def test_mask_polygon_small_area_gives_none_and_largest_contour_wins():
    small = np.zeros((40, 40), np.uint8)
    small[5:15, 5:15] = 1  # contour area of a 10 x 10 pixel square: 9 x 9 = 81 <= 100
    assert mask_polygon(FrameMask(small, 0, 0, (40, 40))) is None
    two = np.zeros((100, 100), np.uint8)
    two[5:20, 5:20] = 1  # area 196
    two[40:90, 30:60] = 1  # area 49 * 29 = 1421: this one
    poly = mask_polygon(FrameMask(two, 10, 20, (200, 200)))
    xs, ys = sorted(set(poly[:, 0].tolist())), sorted(set(poly[:, 1].tolist()))
    assert xs == [40.0, 69.0] and ys == [60.0, 109.0]  # pixel-centre corners, offset by (10, 20)
