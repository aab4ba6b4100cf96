"""Training targets on hand-made boxes: anchor labels where the IoU rules put them, capped counts, deltas
that the runtime decoders turn back into the gt box, RoIs above the IoU bound, mask targets sampled as the
runtime pastes masks, and training crops that match the tracker's crop."""

from __future__ import annotations

import numpy as np
import pytest

from siamattn.config import load_config
from siamattn.geometry import box_iou, cxcywh_to_xyxy
from siamattn.runtime.postprocess import RPNPostprocessor, apply_box_deltas
from siamattn.runtime.preprocess import get_subwindow
from siamattn.training.pairs import _box_to_crop, crop_affine
from siamattn.training.targets import AnchorTargeter, encode_refine, mask_targets, sample_rois

C = 127.0  # search-crop centre


@pytest.fixture(scope="module")
def cfg():
    return load_config("tiny")


def _iou_all(t: AnchorTargeter, gt) -> np.ndarray:
    return box_iou(t.anchors_xyxy, cxcywh_to_xyxy(np.asarray(gt, dtype=np.float64))[None]).reshape(t.k, 25, 25)


def test_square_target_on_the_centre_anchor(cfg):
    t = AnchorTargeter(cfg)
    gt = np.array([C, C, 64.0, 64.0])  # exactly the 1:1 anchor (8 * 8 px) at the map centre
    out = t(gt, True, np.random.default_rng(0))
    ratio_1 = cfg.anchors.ratios.index(1.0)
    assert out.labels.shape == (5, 25, 25) and out.labels.dtype == np.int8
    assert out.labels[ratio_1, 12, 12] == 1  # IoU 1
    iou = _iou_all(t, gt)
    pos, neg = out.labels == 1, out.labels == 0
    assert pos.sum() <= cfg.train.max_pos and pos.sum() >= 1
    assert pos.sum() + neg.sum() == cfg.train.anchors_per_pair
    assert (iou[pos] > cfg.train.pos_iou).all() and (iou[neg] < cfg.train.neg_iou).all()
    # a corner anchor is far from the target: if labelled, it can only be negative
    assert out.labels[ratio_1, 0, 0] in (-1, 0)
    # the in-between band (0.3 <= IoU <= 0.6) is never sampled
    assert (out.labels[(iou >= 0.3) & (iou <= 0.6)] == -1).all()


def test_positive_cap_and_shifted_target(cfg):
    t = AnchorTargeter(cfg)
    gt = np.array([C + 40.0, C - 24.0, 70.0, 60.0])  # 5 and 3 cells off centre
    iou = _iou_all(t, gt)
    assert (iou > 0.6).sum() > 2  # several candidates
    capped = load_config("tiny", ["train.max_pos=2"])
    out = AnchorTargeter(capped)(gt, True, np.random.default_rng(1))
    assert (out.labels == 1).sum() == 2 and (out.labels == 0).sum() == capped.train.anchors_per_pair - 2
    # positives sit on the target's cell (+-1), not at the map centre
    _, ys, xs = np.nonzero(out.labels == 1)
    assert np.all(np.abs(xs - 17) <= 1) and np.all(np.abs(ys - 9) <= 1)


def test_no_positive_when_no_anchor_fits(cfg):
    # a 200 x 12 sliver matches no anchor shape (ratios 0.33..3): no positives, pysot's rule
    out = AnchorTargeter(cfg)(np.array([C, C, 200.0, 12.0]), True, np.random.default_rng(0))
    assert (out.labels == 1).sum() == 0 and (out.labels == 0).sum() == cfg.train.anchors_per_pair


def test_negative_pair_samples_around_the_distractor(cfg):
    t = AnchorTargeter(cfg)
    gt = np.array([C - 32.0, C + 16.0, 60.0, 60.0])  # distractor 4 cells left, 2 down
    out = t(gt, False, np.random.default_rng(0))
    assert (out.labels == 1).sum() == 0
    _, ys, xs = np.nonzero(out.labels == 0)
    assert len(xs) == cfg.train.neg_pair_anchors
    assert np.all(np.abs(xs - 8) <= 3) and np.all(np.abs(ys - 14) <= 3)


def test_rpn_deltas_decode_to_the_gt_with_the_runtime_decoder(cfg):
    t = AnchorTargeter(cfg)
    gt = np.array([C + 13.5, C - 7.25, 81.0, 47.0])
    deltas = t.encode(gt)  # [4, k, 25, 25]
    post = RPNPostprocessor(cfg)
    loc = deltas.reshape(1, 4 * t.k, 25, 25)
    for index in (0, 7 * 625 // 7 + 300, 4 * 625 + 624):
        cx, cy, w, h = post.decode_box(loc, index)
        np.testing.assert_allclose([cx + C, cy + C, w, h], gt, rtol=1e-5, atol=1e-3)


def test_rois_keep_the_iou_bound_and_refine_targets_invert(cfg):
    gt = np.array([120.0, 140.0, 70.0, 40.0])
    rois = sample_rois(gt, 16, 0.5, np.random.default_rng(3), limit=255.0)
    assert rois.shape == (16, 4)
    iou = box_iou(cxcywh_to_xyxy(rois), cxcywh_to_xyxy(gt)[None])
    assert (iou > 0.5).all() and iou.min() < 0.9  # jittered, not copies of the gt
    stds = cfg.model.refine.box_stds
    d = encode_refine(rois, gt, stds)
    for r, dd in zip(rois, d, strict=True):
        np.testing.assert_allclose(apply_box_deltas(tuple(r), dd, stds), gt, rtol=1e-5, atol=1e-3)
    # an impossible bound still gives num boxes (the gt itself fills in)
    tight = sample_rois(gt, 4, 0.999, np.random.default_rng(0))
    np.testing.assert_allclose(tight, np.repeat(gt[None], 4, 0))


def test_mask_targets_follow_the_roi(cfg):
    crop = np.zeros((255, 255), np.float32)
    crop[100:140, 60:140] = 1.0  # pixels 60..139 x 100..139: continuous extent [59.5, 139.5] x [99.5, 139.5]
    exact = np.array([[99.5, 119.5, 80.0, 40.0]])
    m = mask_targets(crop, exact, 64)
    assert m.shape == (1, 64, 64) and m.dtype == np.uint8
    assert m.mean() > 0.97  # the RoI is the object: all foreground (edge pixels may round either way)
    double = np.array([[99.5, 119.5, 160.0, 80.0]])  # twice the size, same centre
    m2 = mask_targets(crop, double, 64)[0]
    assert abs(m2.mean() - 0.25) < 0.02
    assert m2[16:48, 16:48].all() and not m2[:14].any() and not m2[:, :14].any()


def test_training_crop_matches_the_tracker_crop():
    import cv2

    from siamattn.runtime.preprocess import subwindow_bounds

    rng = np.random.default_rng(0)
    frame = cv2.resize((rng.random((60, 80, 3)) * 255).astype(np.uint8), (320, 240), interpolation=cv2.INTER_CUBIC)
    box = np.array([150.0, 90.0, 41.0, 31.0])  # x, y, w, h
    centre = (box[0] + (box[2] - 1) / 2, box[1] + (box[3] - 1) / 2)
    side = 200
    # the tracker's integer window (pysot rounding) has its centre at xmin + (side-1)/2, within 1 px of centre
    x0, y0 = subwindow_bounds(centre, side)
    window_centre = (x0 + (side - 1) / 2, y0 + (side - 1) / 2)
    assert abs(window_centre[0] - centre[0]) <= 1 and abs(window_centre[1] - centre[1]) <= 1
    m = crop_affine(window_centre, (side, side), 255)
    ours = cv2.warpAffine(frame, m, (255, 255), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    ref = get_subwindow(frame, centre, 255, side, (0, 0, 0))[0].transpose(1, 2, 0)
    diff = np.abs(ours.astype(np.float32) - ref)
    # same window and bilinear resampling: equal up to OpenCV's fixed-point weights (mean 0.15 level here;
    # a quarter-pixel shift of the window would give a mean of 5 levels on this image)
    assert diff.mean() < 0.5 and diff.max() <= 8.0
    # boxes map with the tracker's rule: crop u = 127 + (x - centre) * 255 / side
    gt = _box_to_crop(box, crop_affine(centre, (side, side), 255))
    np.testing.assert_allclose(gt, [127.0, 127.0, 41 * 255 / side, 31 * 255 / side], atol=1e-9)
    flipped = _box_to_crop(box + np.array([10.0, 0, 0, 0]), crop_affine(centre, (side, side), 255, flip=True))
    assert flipped[0] == pytest.approx(127.0 - 10 * 255 / side)
