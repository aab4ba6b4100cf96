"""siamattn.geometry against hand-computed anchors, boxes, IoUs and the RoI/mask conventions."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from siamattn.config import load_config
from siamattn.geometry import (
    anchor_shapes,
    box_iou,
    clip_cxcywh,
    crop_center,
    cxcywh_to_xywh,
    cxcywh_to_xyxy,
    generate_anchors,
    mask_to_crop_affine,
    roi_in_crop,
    xywh_to_cxcywh,
    xywh_to_xyxy,
    xyxy_to_cxcywh,
    xyxy_to_xywh,
)

RATIOS = [0.33, 0.5, 1.0, 2.0, 3.0]


def test_anchor_shapes_match_pysot_truncation():
    # base area 64: r=0.33 -> ws=int(sqrt(193.9))=13, hs=int(4.29)=4; r=0.5 -> 11, int(5.5)=5; r=1 -> 8, 8;
    # r=2 -> int(5.66)=5, 10; r=3 -> int(4.62)=4, 12; all times scale 8
    expected = [[104, 32], [88, 40], [64, 64], [40, 80], [32, 96]]
    np.testing.assert_array_equal(anchor_shapes(8, RATIOS, [8.0]), expected)


def test_anchor_shapes_ratio_major_then_scale():
    got = anchor_shapes(8, [1.0, 2.0], [4.0, 8.0])
    np.testing.assert_array_equal(got, [[32, 32], [64, 64], [20, 40], [40, 80]])


def test_generate_anchors_grid_and_order():
    anchors = generate_anchors(8, RATIOS, [8.0], 25)
    assert anchors.shape == (4, 5 * 25 * 25)
    assert anchors.dtype == np.float32
    cx, cy, w, h = anchors
    # index = a*625 + y*25 + x; centre = (x - 12) * 8, (y - 12) * 8
    assert tuple(anchors[:, 0]) == (-96, -96, 104, 32)
    assert tuple(anchors[:, 624]) == (96, 96, 104, 32)
    assert tuple(anchors[:, 2 * 625 + 12 * 25 + 12]) == (0, 0, 64, 64)
    assert tuple(anchors[:, 3 * 625 + 3 * 25 + 20]) == (64, -72, 40, 80)
    assert tuple(anchors[:, 4 * 625 + 1]) == (-88, -96, 32, 96)
    assert sorted(set(cx.tolist())) == list(range(-96, 97, 8))
    assert sorted(set(cy.tolist())) == list(range(-96, 97, 8))


def test_generate_anchors_match_rpn_head_memory_layout():
    """An RPN map (1, 4k, S, S) reshaped to (4, k*S*S) must line up with the anchors column by column."""
    k, s = 5, 25
    anchors = generate_anchors(8, RATIOS, [8.0], s)
    head = np.zeros((1, 4 * k, s, s), dtype=np.float32)
    a, y, x = 3, 7, 19
    head[0, 0 * k + a, y, x] = 1.0  # dx block, anchor a
    flat = head.reshape(4, -1)
    idx = int(np.argmax(flat[0]))
    assert idx == a * s * s + y * s + x
    assert anchors[0, idx] == (x - 12) * 8 and anchors[1, idx] == (y - 12) * 8


def test_generate_anchors_from_config_values():
    cfg = load_config("siamattn_r50")
    anchors = generate_anchors(cfg.anchors.stride, cfg.anchors.ratios, cfg.anchors.scales, cfg.tracker.score_size)
    assert cfg.tracker.score_size == 25
    assert anchors.shape == (4, cfg.anchors.num * 625)


def test_box_conversions_hand_values():
    np.testing.assert_allclose(xywh_to_xyxy([10, 20, 30, 40]), [10, 20, 40, 60])
    np.testing.assert_allclose(xyxy_to_xywh([10, 20, 40, 60]), [10, 20, 30, 40])
    np.testing.assert_allclose(cxcywh_to_xyxy([50, 50, 20, 10]), [40, 45, 60, 55])
    np.testing.assert_allclose(xyxy_to_cxcywh([40, 45, 60, 55]), [50, 50, 20, 10])
    np.testing.assert_allclose(xywh_to_cxcywh([40, 45, 20, 10]), [50, 50, 20, 10])
    np.testing.assert_allclose(cxcywh_to_xywh([50, 50, 21, 11]), [39.5, 44.5, 21, 11])


def test_box_conversions_batched_and_integer_input():
    boxes = np.array([[[0, 0, 3, 3], [1, 1, 2, 5]]])  # int, shape (1, 2, 4)
    out = xywh_to_cxcywh(boxes)
    assert out.shape == (1, 2, 4) and out.dtype == np.float64
    np.testing.assert_allclose(out[0, 1], [2.0, 3.5, 2, 5])  # no integer truncation of the halves
    rng = np.random.default_rng(0)
    b = rng.uniform(0, 100, (50, 4))
    np.testing.assert_allclose(xyxy_to_xywh(xywh_to_xyxy(b)), b)
    np.testing.assert_allclose(xyxy_to_cxcywh(cxcywh_to_xyxy(b)), b)
    with pytest.raises(ValueError, match="4 numbers"):
        xywh_to_xyxy([1, 2, 3])


def test_box_iou_hand_values():
    # identical -> 1; disjoint -> 0; [0,0,2,2] vs [1,1,3,3]: inter 1, union 7
    assert box_iou([0, 0, 2, 2], [0, 0, 2, 2]) == pytest.approx(1.0)
    assert box_iou([0, 0, 2, 2], [5, 5, 6, 6]) == 0.0
    assert box_iou([0, 0, 2, 2], [1, 1, 3, 3]) == pytest.approx(1 / 7)
    # touching edges: zero intersection, not negative
    assert box_iou([0, 0, 2, 2], [2, 0, 4, 2]) == 0.0
    # contained: 4 / 16
    assert box_iou([0, 0, 4, 4], [1, 1, 3, 3]) == pytest.approx(0.25)


def test_box_iou_degenerate_and_broadcast():
    assert box_iou([1, 1, 1, 1], [1, 1, 1, 1]) == 0.0  # zero area: 0, not NaN
    a = np.array([[0, 0, 2, 2], [1, 1, 3, 3]], dtype=float)
    b = np.array([[0, 0, 2, 2], [1, 1, 3, 3], [10, 10, 11, 11]], dtype=float)
    pair = box_iou(a[:, None], b[None])
    assert pair.shape == (2, 3)
    np.testing.assert_allclose(pair, [[1, 1 / 7, 0], [1 / 7, 1, 0]])


def test_crop_center():
    assert crop_center(255) == 127.0
    assert crop_center(127) == 63.0
    assert crop_center(64) == 31.5


def test_roi_in_crop_convention():
    # an RPN box at offset (+16, -8) from the crop centre, 40 x 20: centre at crop px (143, 119)
    roi = roi_in_crop((127 + 16, 127 - 8, 40, 20))
    assert roi.shape == (1, 5) and roi.dtype == np.float32
    np.testing.assert_array_equal(roi, [[0, 123, 109, 163, 129]])
    many = roi_in_crop(np.array([[127, 127, 255, 255], [0, 0, 10, 10]]), batch_index=np.array([3, 5]))
    np.testing.assert_array_equal(many, [[3, -0.5, -0.5, 254.5, 254.5], [5, -5, -5, 5, 5]])
    # the whole crop as a box is exactly the crop's extent [-0.5, 254.5]


def test_mask_to_crop_affine_tiles_the_roi():
    roi = [0, 100.0, 50.0, 164.0, 82.0]  # 64 x 32 crop px, mask 16 x 16: cells 4 x 2 px
    m = mask_to_crop_affine(roi, 16)
    # mask pixel i centre -> x1 + (i + 0.5) * 4
    np.testing.assert_allclose(m @ [0, 0, 1], [102.0, 51.0])
    np.testing.assert_allclose(m @ [15, 15, 1], [162.0, 81.0])
    # the mask's extent [-0.5, 15.5] maps to the RoI's corners
    np.testing.assert_allclose(m @ [-0.5, -0.5, 1], [100.0, 50.0])
    np.testing.assert_allclose(m @ [15.5, 15.5, 1], [164.0, 82.0])


def test_mask_to_crop_affine_roundtrip_with_warp():
    """Training samples targets with WARP_INVERSE_MAP; pasting back with the same matrix restores them."""
    crop_mask = np.zeros((255, 255), np.float32)
    crop_mask[60:140, 80:200] = 1.0  # a 120 x 80 target
    roi = roi_in_crop((139.5, 99.5, 120, 80))[0]  # its exact extent [79.5, 199.5] x [59.5, 139.5]
    m = mask_to_crop_affine(roi, 64)
    target = cv2.warpAffine(crop_mask, m, (64, 64), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    assert target.min() > 0.99  # the RoI covers only target pixels
    back = cv2.warpAffine(target, m, (255, 255), flags=cv2.INTER_LINEAR)
    assert math.isclose(float((back > 0.5).sum()), 120 * 80, rel_tol=0.02)
    assert back[100, 140] > 0.99 and back[50, 140] == 0.0


def test_roi_in_crop_inset_moves_every_side_half_a_pixel_in():
    # the SiamAttn authors' box RoI: (127.5, 127.5, 20, 10) -> [117.5, 122.5, 137.5, 132.5] inset by 0.5
    np.testing.assert_array_equal(roi_in_crop((127.5, 127.5, 20, 10), inset=0.5), [[0, 118, 123, 137, 132]])
    # (159.5, 127.5, 80, 64): continuous extent [119.5, 199.5] x [95.5, 159.5] -> [120, 199] x [96, 159]
    np.testing.assert_array_equal(roi_in_crop((159.5, 127.5, 80, 64), inset=0.5), [[0, 120, 96, 199, 159]])
    np.testing.assert_array_equal(roi_in_crop((159.5, 127.5, 80, 64)), [[0, 119.5, 95.5, 199.5, 159.5]])


def test_mask_to_crop_affine_edge_alignment():
    roi = [0, 100.0, 50.0, 164.0, 82.0]  # 64 x 32 crop px, mask 16 x 16: cells 4 x 2 px
    edge = mask_to_crop_affine(roi, 16, align="edge")
    centre = mask_to_crop_affine(roi, 16)
    # edge: mask pixel i at x1 + i * 4 (pixel 0 on the RoI's left/top edge); centre: half a cell further in
    np.testing.assert_allclose(edge, [[4.0, 0, 100.0], [0, 2.0, 50.0]])
    np.testing.assert_allclose(edge @ [15, 15, 1], [160.0, 80.0])
    np.testing.assert_allclose(centre - edge, [[0, 0, 2.0], [0, 0, 1.0]])
    with pytest.raises(ValueError, match="align"):
        mask_to_crop_affine(roi, 16, align="corner")


def test_clip_cxcywh_hand_values():
    # centre in [0, X], size in [lo, S] per axis
    assert clip_cxcywh((-3, 300, 5, 400), (254, 254), 10.0, (254, 255)) == (0.0, 254.0, 10.0, 255.0)
    assert clip_cxcywh((12.5, 7.25, 30, 40), (254, 254), 10.0, (254, 254)) == (12.5, 7.25, 30.0, 40.0)
    assert clip_cxcywh((700, 500, 900, 900), (639, 479), 10.0, (639, 479)) == (639.0, 479.0, 639.0, 479.0)
