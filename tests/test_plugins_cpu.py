"""CPU implementation of the plugin kernels (same per-element math as the CUDA kernels) against independent
references: torchvision.ops.deform_conv2d, ONNX Runtime's DeformConv, siamattn.ops.deform_roi_pool, numpy's
float16 conversion and hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.ops import deform_conv2d as tv_deform_conv2d

from siamattn.errors import InputError
from siamattn.ops import deform_roi_pool as ref_deform_roi_pool
from siamattn.plugins.build import LIB_FILES
from siamattn.plugins.library import DeformLibrary
from siamattn.plugins.testing import libraries_for_tests


@pytest.fixture(scope="module")
def lib() -> DeformLibrary:
    return DeformLibrary(libraries_for_tests() / LIB_FILES["cpu"])


def _tv(x, w, off, b=None, m=None, stride=1, padding=0, dilation=1) -> np.ndarray:
    """torchvision in float64 on the given (possibly FP16-rounded) values: the 'exact' answer."""
    t = [None if a is None else torch.from_numpy(np.asarray(a, dtype=np.float64)) for a in (x, w, off, b, m)]
    return tv_deform_conv2d(t[0], t[2], t[1], t[3], stride=stride, padding=padding, dilation=dilation,
                            mask=t[4]).numpy()


def _random_conv_case(rng: np.random.Generator, n, c, h, w, m, k, stride, pad, dil, groups, og, mask, bias,
                      offset_scale=2.5):
    kh, kw = k
    oh = (h + 2 * pad[0] - dil[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (w + 2 * pad[1] - dil[1] * (kw - 1) - 1) // stride[1] + 1
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = (rng.standard_normal((m, c // groups, kh, kw)) / np.sqrt(c // groups * kh * kw)).astype(np.float32)
    # Offsets of a few pixels push many taps across the border, exercising the zero rule and corner masking.
    off = (rng.standard_normal((n, og * 2 * kh * kw, oh, ow)) * offset_scale).astype(np.float32)
    msk = rng.uniform(0, 1, (n, og * kh * kw, oh, ow)).astype(np.float32) if mask else None
    b = rng.standard_normal(m).astype(np.float32) if bias else None
    return x, wt, off, b, msk


# (n, c, h, w, m, kernel, stride, pad, dilation, groups, offset_groups, mask, bias)
CONV_CASES = [
    (1, 4, 9, 9, 6, (3, 3), (1, 1), (1, 1), (1, 1), 1, 1, False, True),
    (2, 8, 11, 7, 8, (3, 3), (2, 1), (1, 0), (1, 2), 2, 4, True, True),
    (2, 6, 8, 10, 9, (2, 3), (1, 2), (0, 2), (2, 1), 3, 2, True, False),
    (1, 4, 5, 6, 4, (1, 1), (1, 1), (0, 0), (1, 1), 4, 1, False, False),
    (2, 3, 7, 7, 5, (3, 2), (3, 2), (2, 1), (1, 1), 1, 3, True, True),
    (1, 16, 7, 7, 16, (3, 3), (1, 1), (1, 1), (1, 1), 1, 1, False, True),  # the tracker's 7x7 map, narrowed
]


@pytest.mark.parametrize("case", CONV_CASES)
def test_deform_conv_fp32_matches_torchvision(lib: DeformLibrary, case) -> None:
    n, c, h, w, m, k, stride, pad, dil, groups, og, use_mask, use_bias = case
    rng = np.random.default_rng(hash(case) % 2**32)
    x, wt, off, b, msk = _random_conv_case(rng, n, c, h, w, m, k, stride, pad, dil, groups, og, use_mask, use_bias)
    got = lib.deform_conv2d(x, wt, off, b, msk, stride=stride, padding=pad, dilation=dil, groups=groups)
    ref = _tv(x, wt, off, b, msk, stride, pad, dil)
    assert got.shape == ref.shape and got.dtype == np.float32
    # FP32 sums of at most C/g*kh*kw = 72 terms of magnitude <= ~3: a few ulps of the partial sums.
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=2e-5)


def test_deform_conv_fp32_tracker_shape(lib: DeformLibrary) -> None:
    """256 -> 256 channels, 3x3, 7x7 map (the template branch), DCNv1 as in SiamAttn."""
    rng = np.random.default_rng(7)
    x, wt, off, b, _ = _random_conv_case(rng, 1, 256, 7, 7, 256, (3, 3), (1, 1), (1, 1), (1, 1), 1, 1, False, True)
    got = lib.deform_conv2d(x, wt, off, b, padding=1)
    np.testing.assert_allclose(got, _tv(x, wt, off, b, padding=1), rtol=1e-4, atol=1e-4)


def test_deform_conv_fp16(lib: DeformLibrary) -> None:
    """FP16 tensors against the exact result on the same FP16 values.

    Tolerance: every sampled value is stored once in half (the GPU's FP16 column buffer: relative error
    <= 2^-11) and the output is rounded to half (<= 2^-11 of |y|); sums are FP32. With K = 72 terms of size
    ~1/sqrt(K) the column rounding adds up to ~1e-3 in the worst case, so 2e-3 + 2^-10 |y| is tight enough to
    catch FP16 accumulation or half-precision coordinates (see the next test) yet never flake."""
    rng = np.random.default_rng(3)
    x, wt, off, b, msk = _random_conv_case(rng, 2, 8, 10, 9, 6, (3, 3), (1, 2), (1, 1), (1, 1), 1, 2, True, True)
    h = [None if a is None else a.astype(np.float16) for a in (x, wt, off, b, msk)]
    got = lib.deform_conv2d(*h, stride=(1, 2), padding=1)
    assert got.dtype == np.float16
    ref = _tv(*h, stride=(1, 2), padding=1)
    err = np.abs(got.astype(np.float64) - ref)
    assert np.all(err <= 2e-3 + np.abs(ref) * 2**-10), f"max error {err.max()}"


def test_deform_conv_fp16_keeps_coordinates_in_fp32(lib: DeformLibrary) -> None:
    """Sample at x = 200 + 0.3: half-precision coordinates have 1/8 px steps at 128..256 and would land on
    200.25. On a ramp image (value = column - 200, exact in half) the output is the sample position itself."""
    width = 256
    x = (np.arange(width, dtype=np.float32) - 200.0)[None, None, None, :].repeat(2, axis=2).astype(np.float16)
    wt = np.ones((1, 1, 1, 1), dtype=np.float16)
    off = np.zeros((1, 2, 2, width), dtype=np.float16)
    off[:, 1] = 0.3  # dx
    got = lib.deform_conv2d(x, wt, off).astype(np.float64)
    expected = float(np.float16(0.3))  # the offset itself is an FP16 tensor
    assert got[0, 0, 0, 200] == pytest.approx(expected, abs=2.5e-4)  # half ulp of the output at 0.3
    assert abs(got[0, 0, 0, 200] - 0.25) > 0.04


def test_deform_conv_border_rule_hand_computed(lib: DeformLibrary) -> None:
    """All-ones 3x3 image, 1x1 kernel of weight 1: the output is the bilinear sample itself. DeformConv rule:
    0 at p <= -1 and p >= H; in (-1, 0) and (H-1, H) only the inside corner contributes."""
    x = np.ones((1, 1, 3, 3), dtype=np.float32)
    wt = np.ones((1, 1, 1, 1), dtype=np.float32)
    dys = [-1.0, -1.5, -0.25, 0.0, 2.0, 2.5, 3.0, 2.999]
    # Output pixel (0, 1) sampled at y = 0 + dy, x = 1.
    expect = [0.0, 0.0, 0.75, 1.0, 1.0, 0.5, 0.0, 0.001]
    for dy, e in zip(dys, expect, strict=True):
        off = np.zeros((1, 2, 3, 3), dtype=np.float32)
        off[0, 0, 0, 1] = dy
        got = lib.deform_conv2d(x, wt, off)[0, 0, 0, 1]
        assert got == pytest.approx(e, abs=1e-6), f"dy={dy}"
        assert _tv(x, wt, off)[0, 0, 0, 1] == pytest.approx(e, abs=1e-6)


@pytest.mark.parametrize("pads", [(0, 1, 2, 0), (2, 0, 1, 3), (1, 2, 0, 1)])
def test_deform_conv_asymmetric_pads_equal_padded_input(lib: DeformLibrary, pads) -> None:
    """ONNX pads (h_begin, w_begin, h_end, w_end) == zero-padding the input and convolving unpadded: the zero
    border reproduces the corner rule exactly (a sample in (-1, 0) mixes a zero and an inside pixel)."""
    hb, wb, he, we = pads
    rng = np.random.default_rng(sum(pads))
    x = rng.standard_normal((2, 4, 7, 8)).astype(np.float32)
    wt = rng.standard_normal((6, 2, 3, 3)).astype(np.float32) / 4
    b = rng.standard_normal(6).astype(np.float32)
    xp = np.pad(x, ((0, 0), (0, 0), (hb, he), (wb, we)))
    oh, ow = xp.shape[2] - 2, xp.shape[3] - 2
    off = (rng.standard_normal((2, 2 * 2 * 9, oh, ow)) * 2).astype(np.float32)
    msk = rng.uniform(0, 1, (2, 2 * 9, oh, ow)).astype(np.float32)
    got = lib.deform_conv2d(x, wt, off, b, msk, padding=pads, groups=2)
    ref = _tv(xp, wt, off, b, msk)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=2e-5)


def _ort_deform_conv(x, wt, off, b, msk, pads, strides, dilations, group, offset_group) -> np.ndarray:
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper

    names = ["X", "W", "offset", "B" if b is not None else "", "mask" if msk is not None else ""]
    while names[-1] == "":
        names.pop()
    node = helper.make_node("DeformConv", names, ["Y"], pads=list(pads), strides=list(strides),
                            dilations=list(dilations), group=group, offset_group=offset_group,
                            kernel_shape=list(wt.shape[2:]))
    feeds = {"X": x, "W": wt, "offset": off}
    if b is not None:
        feeds["B"] = b
    if msk is not None:
        feeds["mask"] = msk
    inputs = [helper.make_tensor_value_info(k, TensorProto.FLOAT, list(v.shape)) for k, v in feeds.items()]
    graph = helper.make_graph([node], "g", inputs, [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    model.ir_version = 9  # ONNX Runtime 1.31 rejects IR 14
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)[0]


@pytest.mark.parametrize("pads", [(1, 1, 1, 1), (0, 2, 1, 0)])
def test_deform_conv_matches_onnxruntime(lib: DeformLibrary, pads) -> None:
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 6, 9, 8)).astype(np.float32)
    wt = (rng.standard_normal((4, 3, 3, 3)) / 5).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    oh = (9 + pads[0] + pads[2] - 3) // 2 + 1
    ow = (8 + pads[1] + pads[3] - 3) // 1 + 1
    off = (rng.standard_normal((2, 3 * 18, oh, ow)) * 2).astype(np.float32)
    msk = rng.uniform(0, 1, (2, 3 * 9, oh, ow)).astype(np.float32)
    ref = _ort_deform_conv(x, wt, off, b, msk, pads, (2, 1), (1, 1), 2, 3)
    got = lib.deform_conv2d(x, wt, off, b, msk, stride=(2, 1), padding=pads, groups=2)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=3e-5)


def test_deform_conv_errors_say_what_is_wrong(lib: DeformLibrary) -> None:
    x = np.zeros((1, 6, 5, 5), np.float32)
    w = np.zeros((4, 3, 3, 3), np.float32)
    off = np.zeros((1, 18, 3, 3), np.float32)
    with pytest.raises(InputError, match="group=2 must divide both in_channels=6 and out_channels=5"):
        lib.deform_conv2d(x, np.zeros((5, 3, 3, 3), np.float32), off, groups=2)
    with pytest.raises(InputError, match="offset spatial size"):
        lib.deform_conv2d(x, w, off, groups=2, padding=1)
    with pytest.raises(InputError, match="must all be float32 or all float16"):
        lib.deform_conv2d(x, w.astype(np.float16), off, groups=2)
    with pytest.raises(InputError, match="offset_group=4 must divide in_channels=6"):
        lib.deform_conv2d(x, w, np.zeros((1, 72, 3, 3), np.float32), groups=2)


# ------------------------------------------------------------------------------------------ DeformRoIPool


def _ref_pool(feat, rois, off, size, scale, ratio, gamma) -> np.ndarray:
    t = [None if a is None else torch.from_numpy(np.asarray(a, dtype=np.float64)) for a in (feat, rois, off)]
    return ref_deform_roi_pool(t[0], t[1], t[2], output_size=size, spatial_scale=scale, sampling_ratio=ratio,
                               gamma=gamma).numpy()


def _random_rois(rng: np.random.Generator, k: int, n: int, img: float) -> np.ndarray:
    x1 = rng.uniform(-0.3 * img, img, k)
    y1 = rng.uniform(-0.3 * img, img, k)
    w = rng.uniform(0, 0.8 * img, k)
    h = rng.uniform(0, 0.8 * img, k)
    rois = np.stack([rng.integers(0, n, k), x1, y1, x1 + w, y1 + h], axis=1).astype(np.float32)
    rois[0, 3] = rois[0, 1]  # zero width
    rois[1, 4] = rois[1, 2] - 5  # negative height
    rois[2, 1:] = [1.3 * img, 1.2 * img, 1.5 * img, 1.4 * img]  # entirely outside
    rois[3, 1:] = [-0.6 * img, -0.5 * img, 1.4 * img, 1.5 * img]  # larger than the image
    return rois


@pytest.mark.parametrize(
    ("size", "scale", "ratio", "with_offset"),
    [((4, 4), 25 / 255, 0, True), ((4, 4), 25 / 255, 2, False), ((3, 5), 1.0, 0, True), ((7, 7), 0.5, 1, True)],
)
def test_deform_roi_pool_fp32_matches_reference(lib: DeformLibrary, size, scale, ratio, with_offset) -> None:
    rng = np.random.default_rng(int(scale * 1000) + ratio)
    feat = rng.standard_normal((2, 5, 25, 23)).astype(np.float32)
    img = 25 / scale
    rois = _random_rois(rng, 12, 2, img)
    off = (rng.standard_normal((12, 2, *size)) * 1.5).astype(np.float32) if with_offset else None
    got = lib.deform_roi_pool(feat, rois, off, output_size=size, spatial_scale=scale, sampling_ratio=ratio,
                              gamma=0.1)
    ref = _ref_pool(feat, rois, off, size, scale, ratio, 0.1)
    assert got.shape == (12, 5, *size)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
    assert np.all(got[2] == 0)  # outside RoI
    if ratio == 0:
        assert np.all(got[1] == 0)  # negative height, adaptive grid of 0 samples


def test_deform_roi_pool_fp16(lib: DeformLibrary) -> None:
    """FP16 features/offsets, rois FP32 or FP16. Samples and means are FP32; only the output is rounded to
    half, so the error is <= 2^-11 |y| plus FP32 noise. FP16 rois (1/8 px steps at 128..255 px) move sample
    positions by up to 1/16 px * spatial scale, so that case is compared on the FP16-rounded rois."""
    rng = np.random.default_rng(5)
    feat = rng.standard_normal((1, 8, 25, 25)).astype(np.float16)
    rois = _random_rois(rng, 10, 1, 255.0)
    off = (rng.standard_normal((10, 2, 4, 4))).astype(np.float16)
    for rois_in in (rois, rois.astype(np.float16)):
        got = lib.deform_roi_pool(feat, rois_in, off, output_size=4, spatial_scale=25 / 255, sampling_ratio=0)
        assert got.dtype == np.float16
        ref = _ref_pool(feat, rois_in.astype(np.float32), off, (4, 4), 25 / 255, 0, 0.1)
        err = np.abs(got.astype(np.float64) - ref)
        assert np.all(err <= 1e-5 + np.abs(ref) * 2**-11 * 1.01), f"max error {err.max()}"


def _hand_feat() -> np.ndarray:
    # v(y, x) = 10 y + x: bilinear interpolation of a linear function is exact, so each expected value below
    # is the (clamped) sample position itself.
    yy, xx = np.mgrid[0:4, 0:5]
    return (10.0 * yy + xx).astype(np.float32)[None, None]


@pytest.mark.parametrize(
    ("y1", "y2", "expected"),
    [
        (-1.0, 0.0, 1.0),   # sample exactly at y = -1: inside, clamps to row 0
        (-1.2, 0.0, 0.0),   # y = -1.1 < -1: zero
        (-0.5, 0.5, 1.0),   # y = -0.5 in (-1, 0): clamps to row 0 (not a zero-weighted corner)
        (1.5, 2.0, 13.5),   # y = 1.25: interior, plain interpolation
        (3.5, 4.5, 31.0),   # y = 3.5 in [H-1, H): clamps to the last row
        (4.0, 5.0, 31.0),   # y = H exactly: inside, clamps to the last row
        (4.2, 5.0, 0.0),    # y = 4.1 > H: zero
    ],
)
def test_deform_roi_pool_border_rule_hand_computed(lib: DeformLibrary, y1, y2, expected) -> None:
    """One 1x1 bin, one sample (sampling_ratio=1), scale 1: sample at y = (y1+y2)/2 - 0.5, x = 1.5 - 0.5 = 1."""
    feat = _hand_feat()
    rois = np.array([[0, 1.0, y1, 2.0, y2]], np.float32)
    got = lib.deform_roi_pool(feat, rois, output_size=1, spatial_scale=1.0, sampling_ratio=1)
    assert got[0, 0, 0, 0] == pytest.approx(expected, abs=1e-5)
    assert _ref_pool(feat, rois, None, (1, 1), 1.0, 1, 0.1)[0, 0, 0, 0] == pytest.approx(expected, abs=1e-5)


def test_deform_roi_pool_hand_computed_offsets_and_grids(lib: DeformLibrary) -> None:
    feat = _hand_feat()
    # RoI 2 px wide and tall at scale 1: start (0.5, 0.5); one bin; offset (dx, dy) = (0.5, -1.0) shifts the
    # start by gamma * size * offset = (0.1, -0.2).
    rois = np.array([[0, 1.0, 1.0, 3.0, 3.0]], np.float32)
    off = np.array([0.5, -1.0], np.float32).reshape(1, 2, 1, 1)
    got = lib.deform_roi_pool(feat, rois, off, output_size=1, spatial_scale=1.0, sampling_ratio=1, gamma=0.1)
    assert got[0, 0, 0, 0] == pytest.approx(10 * (1.5 - 0.2) + (1.5 + 0.1), abs=1e-5)
    # Adaptive grid on a 3 px bin: ceil(3) = 3 samples per side; interior, so the mean is the bin center.
    rois = np.array([[0, 0.5, 0.5, 3.5, 3.5]], np.float32)
    got = lib.deform_roi_pool(feat, rois, output_size=1, spatial_scale=1.0, sampling_ratio=0)
    assert got[0, 0, 0, 0] == pytest.approx(10 * 1.5 + 1.5, abs=1e-5)
    # Zero-size RoI: adaptive grid of 0 samples -> 0; a fixed grid samples the single point (x, y) = (1.5, 1.5).
    rois = np.array([[0, 2.0, 2.0, 2.0, 2.0]], np.float32)
    assert lib.deform_roi_pool(feat, rois, output_size=1, sampling_ratio=0)[0, 0, 0, 0] == 0.0
    assert lib.deform_roi_pool(feat, rois, output_size=1, sampling_ratio=2)[0, 0, 0, 0] == pytest.approx(16.5)


def test_deform_roi_pool_invalid_batch_index_gives_zeros(lib: DeformLibrary) -> None:
    feat = np.ones((2, 3, 6, 6), np.float32)
    rois = np.array([[2, 0, 0, 4, 4], [-1, 0, 0, 4, 4], [1, 0, 0, 4, 4]], np.float32)
    got = lib.deform_roi_pool(feat, rois, output_size=2, sampling_ratio=2)
    assert np.all(got[:2] == 0) and np.allclose(got[2], 1.0)


def test_deform_roi_pool_empty_and_errors(lib: DeformLibrary) -> None:
    feat = np.ones((1, 3, 6, 6), np.float32)
    assert lib.deform_roi_pool(feat, np.zeros((0, 5), np.float32), output_size=2).shape == (0, 3, 2, 2)
    with pytest.raises(InputError, match="spatial_scale must be > 0"):
        lib.deform_roi_pool(feat, np.zeros((1, 5), np.float32), spatial_scale=0.0)
    with pytest.raises(InputError, match="sampling_ratio must be >= 0"):
        lib.deform_roi_pool(feat, np.zeros((1, 5), np.float32), sampling_ratio=-1)
    with pytest.raises(InputError, match=r"offset must be \[K, 2, 7, 7\]"):
        lib.deform_roi_pool(feat, np.zeros((1, 5), np.float32), np.zeros((1, 2, 3, 3), np.float32))


# ------------------------------------------------------------------- DeformRoIPool, mode mmdet_v1


def _ref_pool_v1(feat, rois, off, size, scale, ratio, gamma, dtype=torch.float32) -> np.ndarray:
    """The reference op in mode mmdet_v1; in FP32 by default, the precision the C code computes in, so that
    the border decisions (float operations in the same order) are the same ones."""
    t = [None if a is None else torch.from_numpy(np.asarray(a, dtype=np.float32)).to(dtype) for a in (feat, rois, off)]
    return ref_deform_roi_pool(t[0], t[1], t[2], size, scale, ratio, gamma, "mmdet_v1").double().numpy()


def _tie_rois(rng: np.random.Generator, k: int, n: int, img: float) -> np.ndarray:
    rois = _random_rois(rng, k, n, img)
    rois[4:8, 1:] = np.round(rois[4:8, 1:] * 2) / 2 + 0.5 * (np.round(rois[4:8, 1:] * 2) % 2 == 0)  # x.5 ties
    rois[6, 1] = -2.5  # a negative tie
    rois[8, 1:] = [0.4 * img, 0.4 * img, 0.4 * img + 0.2, 0.3 * img]  # tiny and inverted: min size 0.1
    return rois


@pytest.mark.parametrize(
    ("size", "scale", "ratio", "with_offset"),
    [((4, 4), 25 / 255, 4, True), ((4, 4), 25 / 255, 4, False), ((16, 16), 63 / 255, 4, True),
     ((3, 5), 1.0, 2, True), ((7, 7), 0.5, 1, False)],
)
def test_deform_roi_pool_mmdet_v1_fp32_matches_reference(lib: DeformLibrary, size, scale, ratio, with_offset) -> None:
    rng = np.random.default_rng(int(scale * 1000) + ratio + 7)
    h = 63 if size == (16, 16) else 25
    feat = rng.standard_normal((2, 5, h, h - 2)).astype(np.float32)
    img = h / scale
    rois = _tie_rois(rng, 12, 2, img)
    off = (rng.standard_normal((12, 2, *size)) * 1.5).astype(np.float32) if with_offset else None
    got = lib.deform_roi_pool(feat, rois, off, output_size=size, spatial_scale=scale, sampling_ratio=ratio,
                              gamma=0.1, mode="mmdet_v1")
    ref = _ref_pool_v1(feat, rois, off, size, scale, ratio, 0.1)
    assert got.shape == (12, 5, *size)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
    assert np.all(got[2] == 0)  # outside RoI
    assert not np.all(got[8] == 0)  # the tiny RoI samples its 0.1 px box
    # The mode is honoured: mmcv semantics give other numbers for the same call.
    mmcv = lib.deform_roi_pool(feat, rois, off, output_size=size, spatial_scale=scale, sampling_ratio=ratio, gamma=0.1)
    assert np.abs(mmcv - got).max() > 1e-2


def test_deform_roi_pool_mmdet_v1_fp16(lib: DeformLibrary) -> None:
    """FP16 features/offsets, FP32 rois: coordinates and sums in FP32, only the output rounds to half."""
    rng = np.random.default_rng(6)
    feat = rng.standard_normal((1, 8, 25, 25)).astype(np.float16)
    rois = _tie_rois(rng, 10, 1, 255.0)
    off = (0.6 * rng.standard_normal((10, 2, 4, 4))).astype(np.float16)
    got = lib.deform_roi_pool(feat, rois, off, output_size=4, spatial_scale=25 / 255, sampling_ratio=4,
                              mode="mmdet_v1")
    assert got.dtype == np.float16
    ref = _ref_pool_v1(feat, rois, off, (4, 4), 25 / 255, 4, 0.1)
    err = np.abs(got.astype(np.float64) - ref)
    assert np.all(err <= 1e-5 + np.abs(ref) * 2**-11 * 1.01), f"max error {err.max()}"


@pytest.mark.parametrize(
    ("x1", "dx", "expected"),
    [
        (0.0, 0.0, 15.0),        # sample x = -0.5 exactly: valid, clamps to column 0
        (0.0, -1e-3, 0.0),       # x = -0.501: skipped, the bin has no valid sample -> 0
        (-0.5, 0.0, 0.0),        # C round(-0.5) = -1: x = -1.5, skipped (torch.round would give 0 -> valid)
        (2.5, 0.0, 17.5),        # C round(2.5) = 3: x = 2.5 (ties to even would give 2 -> x = 1.5)
        (5.0, 0.0, 19.0),        # x = W - 0.5 = 4.5 exactly: valid, clamps to column 4
        (5.0, 1e-3, 0.0),        # x = 4.501: skipped
    ],
)
def test_deform_roi_pool_mmdet_v1_border_hand_computed(lib: DeformLibrary, x1, dx, expected) -> None:
    """v(y, x) = 10 y + x on a 4x5 map; a zero-size RoI is 1 px after rounding (far corner + 1), so with one bin,
    one sample and gamma 1 the sample sits at x = round(x1) - 0.5 + dx, y = round(2.4) - 0.5 = 1.5."""
    feat = _hand_feat()
    rois = np.array([[0, x1, 2.4, x1, 2.4]], np.float32)
    off = np.array([dx, 0.0], np.float32).reshape(1, 2, 1, 1)
    got = lib.deform_roi_pool(feat, rois, off, output_size=1, spatial_scale=1.0, sampling_ratio=1, gamma=1.0,
                              mode="mmdet_v1")
    assert got[0, 0, 0, 0] == pytest.approx(expected, abs=1e-5)
    if expected == 0.0:
        assert got[0, 0, 0, 0] == 0.0
    ref = _ref_pool_v1(feat, rois, off, (1, 1), 1.0, 1, 1.0)
    assert ref[0, 0, 0, 0] == pytest.approx(float(got[0, 0, 0, 0]), abs=1e-5)


def test_deform_roi_pool_mmdet_v1_means_over_valid_samples(lib: DeformLibrary) -> None:
    # Constant map: a bin with any valid sample pools to the constant (mmcv would average in zeros).
    feat = np.full((1, 1, 6, 6), 2.0, np.float32)
    rois = np.array([[0, -4.0, 1.0, 1.0, 2.0]], np.float32)  # x from -4.5: 2 of 4 sample columns valid
    got = lib.deform_roi_pool(feat, rois, output_size=1, sampling_ratio=4, mode="mmdet_v1")
    assert got[0, 0, 0, 0] == pytest.approx(2.0)
    assert lib.deform_roi_pool(feat, rois, output_size=1, sampling_ratio=4)[0, 0, 0, 0] < 2.0 - 1e-3


def test_deform_roi_pool_mode_errors(lib: DeformLibrary) -> None:
    feat = np.ones((1, 3, 6, 6), np.float32)
    with pytest.raises(InputError, match="mode must be one of"):
        lib.deform_roi_pool(feat, np.zeros((1, 5), np.float32), mode="psroi")
    with pytest.raises(InputError, match=r"mode 1 \(mmdet_v1\) needs a fixed sampling_ratio >= 1"):
        lib.deform_roi_pool(feat, np.zeros((1, 5), np.float32), sampling_ratio=0, mode="mmdet_v1")


# ------------------------------------------------------------------------------------ FP16 conversion


def test_half_to_float_exhaustive(lib: DeformLibrary) -> None:
    bits = np.arange(1 << 16, dtype=np.uint16)
    expected = bits.view(np.float16).astype(np.float32)
    got = np.array([lib.half_to_float(int(b)) for b in bits], dtype=np.float32)
    finite = ~np.isnan(expected)
    assert np.array_equal(got[finite].view(np.uint32), expected[finite].view(np.uint32))
    assert np.all(np.isnan(got[~finite]))


def test_float_to_half_rounds_to_nearest_even(lib: DeformLibrary) -> None:
    rng = np.random.default_rng(0)
    # Random bit patterns cover every exponent; the specials are ties, overflow and subnormal boundaries.
    vals = rng.integers(0, 1 << 32, 20000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    specials = np.array([0.0, -0.0, 65504.0, 65519.99, 65520.0, 1e9, -1e9, np.inf, -np.inf, 2.0**-24,
                         2.0**-25, 2.0**-25 * 1.0001, 3 * 2.0**-25, 2.0**-14, 2.0**-14 * (1 - 2**-12),
                         1 + 2.0**-11, 1 + 3 * 2.0**-11, 0.3], dtype=np.float32)
    vals = np.concatenate([vals, specials, -specials])
    with np.errstate(over="ignore"):
        expected = vals.astype(np.float16)
    got = np.array([lib.float_to_half(float(v)) for v in vals], dtype=np.uint16).view(np.float16)
    nan = np.isnan(vals)
    assert np.all(np.isnan(got[nan]))
    assert np.array_equal(got[~nan].view(np.uint16), expected[~nan].view(np.uint16))



def test_batch_items_equal_each_item_alone(lib: DeformLibrary) -> None:
    """What the batch graphs of MultiTracker rely on (docs/DESIGN.md "Many targets"): DeformConv on N stacked
    targets gives each target exactly its batch-1 output, and DeformRoIPool with several RoIs per batch item
    reads only its own item's features (bit-identical to pooling that item alone)."""
    rng = np.random.default_rng(12)
    n = 3
    x, wt, off, b, msk = _random_conv_case(rng, n, 8, 9, 9, 8, (3, 3), (1, 1), (1, 1), (1, 1), 1, 1, True, True)
    batched = lib.deform_conv2d(x, wt, off, b, msk, stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1)
    for i in range(n):
        alone = lib.deform_conv2d(x[i : i + 1], wt, off[i : i + 1], b, msk[i : i + 1], stride=(1, 1),
                                  padding=(1, 1), dilation=(1, 1), groups=1)
        np.testing.assert_array_equal(batched[i : i + 1], alone)
    feat = rng.standard_normal((n, 5, 25, 25)).astype(np.float32)
    rois = _random_rois(rng, 3 * n, n, 255.0)
    rois[:, 0] = np.repeat(np.arange(n), 3)  # three RoIs on each item
    pool_off = (rng.standard_normal((3 * n, 2, 7, 7)) * 1.5).astype(np.float32)
    pooled = lib.deform_roi_pool(feat, rois, pool_off, output_size=(7, 7), spatial_scale=25 / 255, sampling_ratio=2,
                                 gamma=0.1)
    ref = _ref_pool(feat, rois, pool_off, (7, 7), 25 / 255, 2, 0.1)
    np.testing.assert_allclose(pooled, ref, rtol=1e-5, atol=1e-5)
    for i in range(n):
        own = rois[rois[:, 0] == i].copy()
        own[:, 0] = 0
        alone = lib.deform_roi_pool(feat[i : i + 1], own, pool_off[rois[:, 0] == i], output_size=(7, 7),
                                    spatial_scale=25 / 255, sampling_ratio=2, gamma=0.1)
        np.testing.assert_array_equal(pooled[rois[:, 0] == i], alone)
