"""Reference deformable ops against independent formulations (plain loops from the formula, plain convs)."""

from __future__ import annotations

import decimal
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from siamattn.ops import DeformConv2d, DeformRoIPool, deform_conv2d, deform_roi_pool, dispatch
from siamattn.ops.deform_roi_pool import cround, mode_id

# ----------------------------------------------------------------------------------------------------
# deform_roi_pool: a scalar loop written straight from docs/DESIGN.md §4.2 (mmcv semantics)


def _bilinear(img: torch.Tensor, y: float, x: float) -> float:
    h, w = img.shape
    if y < -1.0 or y > h or x < -1.0 or x > w:
        return 0.0
    y, x = max(y, 0.0), max(x, 0.0)
    yl, xl = math.floor(y), math.floor(x)
    if yl >= h - 1:
        yl = yh = h - 1
        y = float(yl)
    else:
        yh = yl + 1
    if xl >= w - 1:
        xl = xh = w - 1
        x = float(xl)
    else:
        xh = xl + 1
    ly, lx = y - yl, x - xl
    hy, hx = 1 - ly, 1 - lx
    v = img.double()
    return float(hy * hx * v[yl, xl] + hy * lx * v[yl, xh] + ly * hx * v[yh, xl] + ly * lx * v[yh, xh])


def naive_deform_roi_pool(feat, rois, offset, out, scale, ratio, gamma):
    n, c, h, w = feat.shape
    k = rois.shape[0]
    res = torch.zeros(k, c, out, out, dtype=torch.float64)
    for r in range(k):
        b = int(rois[r, 0])
        sx, sy = float(rois[r, 1]) * scale - 0.5, float(rois[r, 2]) * scale - 0.5
        rw = float(rois[r, 3]) * scale - 0.5 - sx
        rh = float(rois[r, 4]) * scale - 0.5 - sy
        bw, bh = rw / out, rh / out
        gw = ratio if ratio > 0 else math.ceil(bw)
        gh = ratio if ratio > 0 else math.ceil(bh)
        for ph in range(out):
            for pw in range(out):
                x0, y0 = sx, sy
                if offset is not None:
                    x0 += gamma * rw * float(offset[r, 0, ph, pw])
                    y0 += gamma * rh * float(offset[r, 1, ph, pw])
                cnt = max(gh * gw, 1)
                for ch in range(c):
                    acc = 0.0
                    for iy in range(max(gh, 0)):
                        y = y0 + ph * bh + (iy + 0.5) * bh / gh
                        for ix in range(max(gw, 0)):
                            x = x0 + pw * bw + (ix + 0.5) * bw / gw
                            acc += _bilinear(feat[b, ch], y, x)
                    res[r, ch, ph, pw] = acc / cnt
    return res


ROIS = torch.tensor(
    [
        [0, 2.0, 3.0, 17.0, 12.0],  # inside
        [1, -6.0, -4.0, 5.0, 6.0],  # partly outside (top-left)
        [0, 14.0, 9.0, 30.0, 25.0],  # partly outside (bottom-right)
        [1, 40.0, 40.0, 50.0, 55.0],  # wholly outside
        [0, 5.0, 5.0, 5.0, 5.0],  # zero size
        [1, 9.0, 4.0, 3.0, 2.0],  # negative size
        [0, 0.0, 0.0, 20.0, 16.0],  # whole map
    ]
)


@pytest.mark.parametrize("ratio", [0, 1, 2, 3])
@pytest.mark.parametrize("with_offset", [False, True])
def test_deform_roi_pool_matches_naive_loop(ratio, with_offset):
    g = torch.Generator().manual_seed(ratio * 2 + with_offset)
    feat = torch.randn(2, 3, 8, 10, generator=g, dtype=torch.float64)
    offset = torch.randn(len(ROIS), 2, 3, 3, generator=g, dtype=torch.float64) if with_offset else None
    got = deform_roi_pool(feat, ROIS.double(), offset, 3, 0.5, ratio, 0.1)
    ref = naive_deform_roi_pool(feat, ROIS, offset, 3, 0.5, ratio, 0.1)
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-12)


def test_deform_roi_pool_zero_size_rois_pool_to_zero_only_when_adaptive():
    feat = torch.randn(1, 2, 6, 6, dtype=torch.float64) + 5.0
    rois = torch.tensor([[0, 3.0, 3.0, 3.0, 3.0]], dtype=torch.float64)
    assert torch.all(deform_roi_pool(feat, rois, None, 2, 1.0, 0) == 0)
    # With a fixed grid the zero-size RoI samples one point repeatedly: the value at (2.5, 2.5).
    fixed = deform_roi_pool(feat, rois, None, 2, 1.0, 2)
    expect = feat[0, :, 2:4, 2:4].mean(dim=(1, 2))
    torch.testing.assert_close(fixed[0, :, 0, 0], expect)


@pytest.mark.parametrize(
    "coord, expect",
    [
        (-1.0, "edge0"),  # exactly -1 is inside the RoIAlign rule: clamps to row 0
        (-1.0 - 1e-6, "zero"),  # just beyond -1: contributes 0
        (-0.4, "edge0"),  # (-1, 0) clamps to 0
        (6.0, "edgeH"),  # exactly H (6 rows): clamps to the last row
    ],
)
def test_deform_roi_pool_border_samples(coord, expect):
    # A 1x1 bin with one sample at its centre lets us place the sample exactly: sample = x1*s - 0.5 + 0.5*rw.
    h = w = 6
    feat = torch.arange(h * w, dtype=torch.float64).view(1, 1, h, w) + 1.0
    # choose rois so that the sample y = coord and x = 2.0
    y1 = coord + 0.5 - 0.5  # rh = 1 -> sample at sy + 0.5 = y1 - 0.5 + 0.5
    rois = torch.tensor([[0, 2.0, y1, 3.0, y1 + 1.0]], dtype=torch.float64)
    out = deform_roi_pool(feat, rois, None, 1, 1.0, 1)[0, 0, 0, 0].item()
    if expect == "zero":
        assert out == 0.0
    elif expect == "edge0":
        assert out == pytest.approx(feat[0, 0, 0, 2].item())
    else:
        assert out == pytest.approx(feat[0, 0, h - 1, 2].item())


def test_deform_roi_pool_last_cell_interpolates_to_edge():
    # A sample in [H-1, H) takes the last row's value (no interpolation past the edge).
    feat = torch.randn(1, 1, 5, 5, dtype=torch.float64)
    rois = torch.tensor([[0, 1.0, 4.7, 2.0, 5.7]], dtype=torch.float64)  # sample y = 4.7 in [4, 5)
    out = deform_roi_pool(feat, rois, None, 1, 1.0, 1)[0, 0, 0, 0]
    torch.testing.assert_close(out, feat[0, 0, 4, 1])


def test_deform_roi_pool_offsets_shift_by_gamma_times_roi_size():
    # An offset of +1 in x with gamma 0.25 moves every sample by rw/4 pixels: same as shifting the RoI.
    feat = torch.randn(1, 4, 16, 16, dtype=torch.float64)
    rois = torch.tensor([[0, 2.0, 3.0, 10.0, 9.0]], dtype=torch.float64)  # rw = 8
    offset = torch.zeros(1, 2, 2, 2, dtype=torch.float64)
    offset[:, 0] = 1.0
    shifted = deform_roi_pool(feat, rois, offset, 2, 1.0, 2, gamma=0.25)
    moved = rois.clone()
    moved[0, 1] += 2.0
    moved[0, 3] += 2.0
    torch.testing.assert_close(shifted, deform_roi_pool(feat, moved, None, 2, 1.0, 2))


def test_deform_roi_pool_gradcheck():
    g = torch.Generator().manual_seed(0)
    feat = torch.randn(2, 2, 6, 7, generator=g, dtype=torch.float64, requires_grad=True)
    rois = torch.tensor([[0, 1.3, 0.7, 9.1, 8.2], [1, -2.2, 1.1, 5.3, 14.6]], dtype=torch.float64)
    offset = (0.3 * torch.randn(2, 2, 2, 2, generator=g, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(
        lambda f, o: deform_roi_pool(f, rois, o, 2, 0.7, 2, 0.1), (feat, offset), eps=1e-6, atol=1e-6
    )


def test_deform_roi_pool_rejects_bad_shapes():
    feat = torch.randn(1, 2, 4, 4)
    with pytest.raises(ValueError, match="rois must be"):
        deform_roi_pool(feat, torch.zeros(3, 4))
    with pytest.raises(ValueError, match="offset must be"):
        deform_roi_pool(feat, torch.zeros(1, 5), torch.zeros(1, 2, 3, 3), 2)


def test_deform_roi_pool_module_starts_as_plain_pool():
    feat = torch.randn(2, 8, 12, 12)
    rois = torch.tensor([[0, 3.0, 4.0, 40.0, 30.0], [1, 10.0, 0.0, 30.0, 20.0]])
    m = DeformRoIPool(8, 4, 0.25, sampling_ratio=2, hidden=32)
    plain = deform_roi_pool(feat, rois, None, 4, 0.25, 2)
    torch.testing.assert_close(m(feat, rois), plain)
    with torch.no_grad():
        m.offset_fc[-1].bias.fill_(0.5)
    assert not torch.allclose(m(feat, rois), plain)


# ----------------------------------------------------------------------------------------------------
# deform_conv2d


def test_deform_conv_zero_offsets_equal_plain_conv():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 6, 9, 11, generator=g, dtype=torch.float64)
    w = torch.randn(4, 3, 3, 3, generator=g, dtype=torch.float64)  # groups = 2
    b = torch.randn(4, generator=g, dtype=torch.float64)
    oh, ow = (9 + 2 - 2 * 2 - 1) // 2 + 1, (11 + 2 - 2 * 2 - 1) // 2 + 1
    off = torch.zeros(2, 2 * 2 * 9, oh, ow, dtype=torch.float64)  # 2 offset groups
    got = deform_conv2d(x, off, w, b, stride=2, padding=1, dilation=2)
    ref = F.conv2d(x, w, b, stride=2, padding=1, dilation=2, groups=2)
    torch.testing.assert_close(got, ref)


def test_deform_conv_integer_offsets_equal_shifted_conv():
    # Offset (dy, dx) = (1, -2) for every tap samples x[y+1, x-2]: a plain conv on the shifted input,
    # with zeros where the shift leaves the image.
    g = torch.Generator().manual_seed(2)
    x = torch.randn(1, 3, 10, 10, generator=g, dtype=torch.float64)
    w = torch.randn(5, 3, 3, 3, generator=g, dtype=torch.float64)
    off = torch.zeros(1, 18, 10, 10, dtype=torch.float64)
    off[:, 0::2] = 1.0
    off[:, 1::2] = -2.0
    got = deform_conv2d(x, off, w, None, padding=1)
    # Tap (i, j) of output (oy, ox) reads x[oy - 1 + i + 1, ox - 1 + j - 2] = xp[oy + i + 3, ox + j] when x is
    # zero-padded by 3 on every side: a valid conv over a shifted window of the padded input.
    xp = F.pad(x, (3, 3, 3, 3))
    torch.testing.assert_close(got, F.conv2d(xp[:, :, 3:15, 0:12], w))


def test_deform_conv_modulation_scales_taps():
    x = torch.randn(1, 2, 5, 5, dtype=torch.float64)
    w = torch.randn(3, 2, 3, 3, dtype=torch.float64)
    off = torch.zeros(1, 18, 5, 5, dtype=torch.float64)
    mask = torch.full((1, 9, 5, 5), 0.5, dtype=torch.float64)
    got = deform_conv2d(x, off, w, None, padding=1, mask=mask)
    torch.testing.assert_close(got, 0.5 * F.conv2d(x, w, padding=1))


def test_deform_conv_rejects_bad_offset_shape():
    with pytest.raises(ValueError, match="offset must be"):
        deform_conv2d(torch.randn(1, 2, 5, 5), torch.zeros(1, 18, 4, 4), torch.randn(3, 2, 3, 3), padding=1)


def test_deform_conv_module_starts_as_plain_conv_and_learns_offsets():
    m = DeformConv2d(4, 6, 3, padding=1).double()
    x = torch.randn(2, 4, 7, 7, dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(m(x), F.conv2d(x, m.weight, m.bias, padding=1))
    m(x).square().sum().backward()
    assert m.offset.weight.grad is not None and m.offset.weight.grad.abs().sum() > 0


def test_deform_roi_pool_fp16_features_keep_fp32_coordinates():
    # RoIs near 200 px: FP16 coordinates would be off by up to 1/16 px; only the feature values may round.
    g = torch.Generator().manual_seed(5)
    feat = torch.randn(1, 8, 25, 25, generator=g)
    rois = torch.tensor([[0, 100.3, 120.7, 180.1, 200.9], [0, 201.13, 7.9, 254.2, 90.05]])
    offset = 0.3 * torch.randn(2, 2, 4, 4, generator=g)
    ref = deform_roi_pool(feat.double(), rois.double(), offset.double(), 4, 25 / 255, 2)
    half = deform_roi_pool(feat.half(), rois, offset.half(), 4, 25 / 255, 2)
    assert half.dtype == torch.float16
    # Feature rounding (2^-11 relative) and output rounding bound the error; coordinate rounding would not.
    bound = 2 * 2**-11 * float(feat.abs().max())
    assert float((half.double() - ref).abs().max()) < bound


@pytest.mark.parametrize("dy, expect", [(-5.5, "edge0"), (-5.5 - 1e-9, "zero"), (-5.0, "edge0"), (1.5, "edgeH"),
                                        (1.5 + 1e-9, "zero"), (0.7, "lastrow")])
def test_deform_roi_pool_offsets_push_samples_to_the_borders(dy, expect):
    # RoI y in [3, 7] at scale 1 -> sy = 2.5, rh = 4, one 1x1 bin with one sample at sy + 2 = 4.5; gamma * rh = 1,
    # so the offset moves the sample by exactly dy pixels: 4.5 + dy is -1, just below -1, -0.5, H=6, just past
    # H, and 5.2 in [H-1, H).
    h = w = 6
    feat = torch.arange(h * w, dtype=torch.float64).view(1, 1, h, w) + 1.0
    rois = torch.tensor([[0, 1.5, 3.0, 2.5, 7.0]], dtype=torch.float64)  # sample x = 1.0 + 0.5 = 1.5
    offset = torch.tensor([[[[0.0]], [[dy]]]], dtype=torch.float64)
    out = deform_roi_pool(feat, rois, offset, 1, 1.0, 1, gamma=0.25)[0, 0, 0, 0].item()
    row = {"edge0": 0, "edgeH": h - 1, "lastrow": h - 1}
    if expect == "zero":
        assert out == 0.0
    else:
        x_interp = 0.5 * (feat[0, 0, row[expect], 1] + feat[0, 0, row[expect], 2]).item()  # x = 1.5
        assert out == pytest.approx(x_interp)
    ref = naive_deform_roi_pool(feat, rois, offset, 1, 1.0, 1, 0.25)[0, 0, 0, 0].item()
    assert out == pytest.approx(ref)


# ----------------------------------------------------------------------------------------------------
# deform_roi_pool mode="mmdet_v1": a scalar loop written from docs/DESIGN.md §4.3, every float operation in the
# dtype under test (numpy scalars round each step like the C kernel does), C rounding through decimal.


def _c_round(v: float) -> float:
    """C round() of a float: decimal's ROUND_HALF_UP rounds halves away from zero, exactly."""
    return float(decimal.Decimal(v).quantize(decimal.Decimal(1), rounding=decimal.ROUND_HALF_UP))


def naive_mmdet_v1(feat, rois, offset, out, scale, g, gamma, ftype=np.float64):
    f = ftype
    d = feat.detach().numpy().astype(f)
    r_ = rois.numpy().astype(f)
    o_ = None if offset is None else offset.detach().numpy().astype(f)
    _, c, h, w = d.shape
    ph_n, pw_n = out
    res = np.zeros((len(r_), c, ph_n, pw_n), np.float64)
    s, gm, half = f(scale), f(gamma), f(0.5)
    for r in range(len(r_)):
        b = int(r_[r, 0])
        x1, y1, x2, y2 = (f(_c_round(float(v))) for v in r_[r, 1:])
        sx, sy = x1 * s - half, y1 * s - half
        ex, ey = (x2 + f(1)) * s - half, (y2 + f(1)) * s - half
        rw, rh = max(ex - sx, f(0.1)), max(ey - sy, f(0.1))
        bw, bh = rw / f(pw_n), rh / f(ph_n)
        sw, sh = bw / f(g), bh / f(g)
        for ph in range(ph_n):
            for pw in range(pw_n):
                x0, y0 = f(pw) * bw + sx, f(ph) * bh + sy
                if o_ is not None:
                    x0 = x0 + (o_[r, 0, ph, pw] * gm) * rw
                    y0 = y0 + (o_[r, 1, ph, pw] * gm) * rh
                pts = []
                for iy in range(g):
                    y = y0 + f(iy) * sh
                    for ix in range(g):
                        x = x0 + f(ix) * sw
                        if x < -0.5 or x > w - 0.5 or y < -0.5 or y > h - 0.5:
                            continue  # skipped: not counted
                        pts.append((min(max(float(y), 0.0), h - 1.0), min(max(float(x), 0.0), w - 1.0)))
                for ch in range(c):
                    img = d[b, ch].astype(np.float64)
                    acc = 0.0
                    for y, x in pts:
                        yl, yh, xl, xh = math.floor(y), math.ceil(y), math.floor(x), math.ceil(x)
                        dy, dx = y - yl, x - xl
                        acc += ((1 - dy) * (1 - dx) * img[yl, xl] + (1 - dy) * dx * img[yl, xh]
                                + dy * (1 - dx) * img[yh, xl] + dy * dx * img[yh, xh])
                    res[r, ch, ph, pw] = acc / len(pts) if pts else 0.0
    return torch.from_numpy(res)


ROIS_V1 = torch.tensor(
    [
        [0, 2.0, 3.0, 17.0, 12.0],  # inside
        [1, -6.0, -4.0, 5.0, 6.0],  # partly outside (top-left)
        [0, 14.0, 9.0, 30.0, 25.0],  # partly outside (bottom-right)
        [1, 40.0, 40.0, 50.0, 55.0],  # wholly outside: every bin 0
        [0, 5.0, 5.0, 5.0, 5.0],  # zero size -> (1 px + 1) * scale
        [1, 9.0, 4.0, 3.0, 2.0],  # negative size -> min 0.1
        [0, 2.5, -2.5, 12.5, 7.5],  # .5 ties, one negative
        [1, -0.5, 3.49, 18.51, -1.5],  # ties at -0.5/-1.5 and near-ties
        [0, 0.0, 0.0, 19.0, 15.0],  # whole map
    ]
)


@pytest.mark.parametrize("ratio", [1, 2, 4])
@pytest.mark.parametrize("with_offset", [False, True])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_mmdet_v1_matches_scalar_loop(ratio, with_offset, dtype):
    g = torch.Generator().manual_seed(ratio * 2 + with_offset)
    feat = torch.randn(2, 3, 8, 10, generator=g, dtype=dtype)
    offset = 0.8 * torch.randn(len(ROIS_V1), 2, 3, 4, generator=g, dtype=dtype) if with_offset else None
    got = deform_roi_pool(feat, ROIS_V1.to(dtype), offset, (3, 4), 0.5, ratio, 0.1, "mmdet_v1")
    ref = naive_mmdet_v1(feat, ROIS_V1, offset, (3, 4), 0.5, ratio, 0.1,
                         np.float64 if dtype == torch.float64 else np.float32)
    tol = 1e-12 if dtype == torch.float64 else 2e-6  # FP32: only the summation order differs
    torch.testing.assert_close(got.double(), ref, rtol=tol, atol=tol)
    assert torch.all(got[3] == 0)  # the RoI outside the map has no valid sample in any bin


def test_cround_rounds_halves_away_from_zero_exactly():
    x = torch.tensor([0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 2.4999998, -3.5000002, 0.49999997, -0.49999997, 7.0])
    expect = torch.tensor([1.0, -1.0, 2.0, -2.0, 3.0, -3.0, 2.0, -4.0, 0.0, -0.0, 7.0])
    assert torch.equal(cround(x), expect)
    assert torch.equal(cround(x.double()), expect.double())
    # Not torch.round (ties to even) and not floor(|x| + 0.5) (rounds 0.49999997f up to 1).
    assert not torch.equal(torch.round(x), expect)
    assert float(torch.floor(torch.tensor(0.49999997) + 0.5)) == 1.0


def _linear_map(h: int, w: int, a: float = 1.0, b: float = 100.0) -> torch.Tensor:
    """f(y, x) = a*x + b*y: bilinear interpolation is exact on it, so a pooled bin is a*mean(x) + b*mean(y)."""
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64),
                            indexing="ij")
    return (a * xs + b * ys).view(1, 1, h, w)


@pytest.mark.parametrize("x1, expect_x", [
    (0.0, 0.0),  # sample at exactly -0.5: valid, clamps to column 0
    (-1e-9, 0.0),  # rounds to 0, same sample
    (-0.5, None),  # C round -> -1: sample at -1.5, skipped -> bin 0
    (11.0, 10.5),  # interior: interpolated between columns 10 and 11
    (12.0, 11.0),  # sample at W-0.5 = 11.5 (W = 12): valid, clamps to column 11
    (12.5, None),  # C round -> 13: sample at 12.5 > W-0.5, skipped
    (12.4999, 11.0),  # rounds down to 12
])
def test_mmdet_v1_sample_validity_at_minus_half_and_w_minus_half(x1, expect_x):
    # One bin, one sample at x = cround(x1) - 0.5 (scale 1); y = 3 - 0.5 = 2.5 (inside).
    feat = _linear_map(6, 12)
    rois = torch.tensor([[0, x1, 3.0, x1 + 0.2, 3.0]], dtype=torch.float64)
    out = deform_roi_pool(feat, rois, None, 1, 1.0, 1, 0.1, "mmdet_v1")[0, 0, 0, 0].item()
    if expect_x is None:
        assert out == 0.0
    else:
        assert out == pytest.approx(expect_x + 100.0 * 2.5, abs=1e-12)


@pytest.mark.parametrize("dx, valid", [(0.0, True), (-1e-7, False), (12.0, True), (12.0 + 1e-7, False)])
def test_mmdet_v1_offsets_move_samples_across_the_validity_border(dx, valid):
    # RoI x in [0, 0] at scale 1: sx = -0.5, rw = 1; gamma 1 -> an offset of dx moves the sample by dx pixels,
    # to exactly -0.5 / just below / exactly W-0.5 / just past (W = 12).
    feat = _linear_map(6, 12)
    rois = torch.tensor([[0, 0.0, 2.0, 0.0, 2.0]], dtype=torch.float64)
    offset = torch.tensor([[[[dx]], [[0.0]]]], dtype=torch.float64)
    out = deform_roi_pool(feat, rois, offset, 1, 1.0, 1, 1.0, "mmdet_v1")[0, 0, 0, 0].item()
    expect = min(max(-0.5 + dx, 0.0), 11.0) + 100.0 * 1.5 if valid else 0.0
    assert out == pytest.approx(expect, abs=1e-12)


def test_mmdet_v1_averages_over_valid_samples_only():
    # A constant map pools to the constant in every bin that has at least one valid sample (the mean skips
    # samples outside instead of counting them as 0, unlike mode="mmcv") and to 0 elsewhere.
    feat = torch.full((1, 2, 10, 10), 3.0, dtype=torch.float64)
    rois = torch.tensor([[0, -12.0, 3.0, 3.0, 18.0]], dtype=torch.float64)
    out = deform_roi_pool(feat, rois, None, 4, 1.0, 4, 0.1, "mmdet_v1")[0, 0]
    # x: sx = -12.5, rw = 16, bins 4 px, samples at -12.5 + 4*pw + {0, 1, 2, 3}: bins 0..2 lie below -0.5,
    # bin 3 (-0.5 .. 2.5) is valid. y: sy = 2.5, bins at 2.5 + 4*ph + {0..3}: bin 0 (2.5 .. 5.5) valid,
    # bin 1 (6.5 .. 9.5) valid, bins 2 and 3 (from 10.5) lie past H-0.5 = 9.5.
    expect = torch.zeros(4, 4, dtype=torch.float64)
    expect[:2, 3] = 3.0
    torch.testing.assert_close(out, expect, rtol=0, atol=1e-12)
    # Bin (ph=1, pw=2) straddles nothing, but mmcv's bin (0, 3) zero-counts its samples outside [-1, W]:
    part = torch.tensor([[0, -1.2, 3.0, 2.0, 9.0]], dtype=torch.float64)
    assert float(deform_roi_pool(feat, part, None, 1, 1.0, 4, 0.1, "mmdet_v1")[0, 0, 0, 0]) == pytest.approx(3.0)
    assert float(deform_roi_pool(feat, part, None, 1, 1.0, 4, 0.1, "mmcv")[0, 0, 0, 0]) < 3.0 - 1e-6


def test_mmdet_v1_tiny_and_negative_rois_use_the_minimum_size():
    # spatial_scale 0.05: x1 = x2 = 40 -> sx = 1.5, ex = 41*0.05 - 0.5 = 1.55, rw = 0.05 -> 0.1; y2 < y1 -> 0.1.
    # On f = x + 100 y bin (ph, pw) with 2 samples per side at + {0, 0.025} pools to
    # x = sx + pw*0.05 + 0.0125, y = sy + ph*0.05 + 0.0125.
    feat = _linear_map(8, 8)
    rois = torch.tensor([[0, 40.0, 60.0, 40.0, 10.0]], dtype=torch.float64)
    out = deform_roi_pool(feat, rois, None, 2, 0.05, 2, 0.1, "mmdet_v1")[0, 0]
    sx, sy = 40 * 0.05 - 0.5, 60 * 0.05 - 0.5
    expect = torch.tensor([[sx + pw * 0.05 + 0.0125 + 100 * (sy + ph * 0.05 + 0.0125) for pw in range(2)]
                           for ph in range(2)], dtype=torch.float64)
    torch.testing.assert_close(out, expect, rtol=0, atol=1e-9)


def test_mmdet_v1_rounds_rois_half_away_from_zero():
    g = torch.Generator().manual_seed(3)
    feat = torch.randn(1, 2, 12, 12, generator=g, dtype=torch.float64)

    def pool(x1: float, y1: float, x2: float, y2: float) -> torch.Tensor:
        r = torch.tensor([[0, x1, y1, x2, y2]], dtype=torch.float64)
        return deform_roi_pool(feat, r, None, 3, 1.0, 2, 0.1, "mmdet_v1")

    assert torch.equal(pool(2.5, 1.5, 8.5, 9.5), pool(3.0, 2.0, 9.0, 10.0))  # torch.round: 2, 2, 8, 10
    assert not torch.equal(pool(2.5, 1.5, 8.5, 9.5), pool(2.0, 2.0, 8.0, 10.0))
    assert torch.equal(pool(-2.5, -1.5, 6.0, 7.0), pool(-3.0, -2.0, 6.0, 7.0))  # negative ties away from 0
    assert not torch.equal(pool(-2.5, -1.5, 6.0, 7.0), pool(-2.0, -2.0, 6.0, 7.0))
    # The rounding applies in input pixels, before the scale: a 0.4 px move changes nothing.
    assert torch.equal(pool(3.4, 2.0, 8.6, 10.4), pool(3.0, 2.0, 9.0, 10.0))


def test_mmdet_v1_offsets_shift_by_gamma_times_rounded_roi_size():
    # RoI [2, 9] at scale 1: sx = 1.5, rw = 8 (far corner + 1). offset +1 with gamma 0.25 moves samples by 2 px.
    feat = _linear_map(16, 16)
    rois = torch.tensor([[0, 2.0, 3.0, 9.0, 8.0]], dtype=torch.float64)
    offset = torch.zeros(1, 2, 2, 2, dtype=torch.float64)
    offset[:, 0] = 1.0
    plain = deform_roi_pool(feat, rois, None, 2, 1.0, 4, 0.25, "mmdet_v1")
    shifted = deform_roi_pool(feat, rois, offset, 2, 1.0, 4, 0.25, "mmdet_v1")
    torch.testing.assert_close(shifted - plain, torch.full_like(plain, 2.0))


def test_mmdet_v1_gradcheck():
    g = torch.Generator().manual_seed(0)
    feat = torch.randn(2, 2, 6, 7, generator=g, dtype=torch.float64, requires_grad=True)
    rois = torch.tensor([[0, 1.3, 0.7, 9.1, 8.2], [1, -2.2, 1.1, 5.3, 14.6]], dtype=torch.float64)
    offset = (0.3 * torch.randn(2, 2, 2, 2, generator=g, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(
        lambda f, o: deform_roi_pool(f, rois, o, 2, 0.7, 3, 0.1, "mmdet_v1"), (feat, offset), eps=1e-6, atol=1e-6
    )
    out = deform_roi_pool(feat, rois, offset, 2, 0.7, 3, 0.1, "mmdet_v1")
    (go,) = torch.autograd.grad(out.square().sum(), offset)
    assert go.abs().sum() > 0  # the offsets are trained, not only the features


def test_mmdet_v1_fp16_features_keep_fp32_coordinates():
    # The authors' case: 25x25 box features, RoIs near 200 px, scale 25/255, 4x4 bins of 4x4 samples.
    g = torch.Generator().manual_seed(5)
    feat = torch.randn(1, 8, 25, 25, generator=g)
    rois = torch.tensor([[0, 100.3, 120.7, 180.1, 200.9], [0, 201.13, 7.9, 254.2, 90.05]])
    offset = 0.6 * torch.randn(2, 2, 4, 4, generator=g)
    ref = deform_roi_pool(feat.double(), rois.double(), offset.half().double(), 4, 25 / 255, 4, 0.1, "mmdet_v1")
    half = deform_roi_pool(feat.half(), rois, offset.half(), 4, 25 / 255, 4, 0.1, "mmdet_v1")
    assert half.dtype == torch.float16
    # Feature rounding (2^-11 relative) and output rounding bound the error; coordinate rounding would not.
    bound = 2 * 2**-11 * float(feat.abs().max())
    assert float((half.double() - ref).abs().max()) < bound


def test_mmdet_v1_module_and_dispatch_pass_the_mode():
    feat = torch.randn(2, 8, 12, 12)
    rois = torch.tensor([[0, 3.0, 4.0, 40.0, 30.0], [1, 10.0, 0.0, 30.0, 20.0]])
    m = DeformRoIPool(8, 4, 0.25, sampling_ratio=4, hidden=32, mode="mmdet_v1")
    assert "mode='mmdet_v1'" in repr(m)
    plain = deform_roi_pool(feat, rois, None, 4, 0.25, 4, 0.1, "mmdet_v1")
    torch.testing.assert_close(m(feat, rois), plain)
    assert not torch.allclose(plain, deform_roi_pool(feat, rois, None, 4, 0.25, 4, 0.1, "mmcv"))
    seen: list[tuple] = []

    def spy(*args):
        seen.append(args)
        return deform_roi_pool(*args)

    with torch.no_grad():
        m.offset_fc[-1].bias.fill_(0.5)
    with dispatch.use(deform_roi_pool=spy):
        out = m(feat, rois)
    assert [a[7] for a in seen] == ["mmdet_v1", "mmdet_v1"]  # the 8th positional argument, both passes
    assert seen[1][2] is not None and not torch.allclose(out, plain)


def test_deform_roi_pool_rejects_bad_modes():
    feat = torch.randn(1, 2, 4, 4)
    rois = torch.zeros(1, 5)
    assert (mode_id("mmcv"), mode_id("mmdet_v1")) == (0, 1)
    with pytest.raises(ValueError, match="mode must be one of"):
        deform_roi_pool(feat, rois, None, 2, 1.0, 2, 0.1, "psroi")
    with pytest.raises(ValueError, match="sampling_ratio >= 1"):
        deform_roi_pool(feat, rois, None, 2, 1.0, 0, 0.1, "mmdet_v1")
    with pytest.raises(ValueError, match="mode must be one of"):
        DeformRoIPool(2, 2, 1.0, mode="mmdet")
    with pytest.raises(ValueError, match="sampling_ratio >= 1"):
        DeformRoIPool(2, 2, 1.0, sampling_ratio=0, mode="mmdet_v1")


@pytest.mark.parametrize("modulated", [False, True])
def test_deform_conv_training_path_matches_torchvision_values_and_gradients(modulated):
    # With gradients on CPU deform_conv2d samples with grid_sample (fast backward); it must be the same function
    # as torchvision's kernel, gradients included, also for taps far outside the map. (At integer sample
    # positions, e.g. all-zero offsets, bilinear sampling has no derivative and the two may pick different
    # one-sided differences: random offsets avoid them.)
    from torchvision.ops import deform_conv2d as tv_deform_conv2d

    g = torch.Generator().manual_seed(7)
    x = torch.randn(2, 6, 9, 11, generator=g, dtype=torch.float64)
    w = torch.randn(4, 3, 3, 3, generator=g, dtype=torch.float64)  # groups = 2
    b = torch.randn(4, generator=g, dtype=torch.float64)
    oh, ow = 4, 5  # (9 + 2 - 4 - 1) // 2 + 1, (11 + 2 - 4 - 1) // 2 + 1
    off = 3.0 * torch.randn(2, 2 * 2 * 9, oh, ow, generator=g, dtype=torch.float64)  # 2 offset groups
    mask = torch.rand(2, 2 * 9, oh, ow, generator=g, dtype=torch.float64) if modulated else None
    leaves = (x, off, w, b) + ((mask,) if modulated else ())
    inputs = [t.clone().requires_grad_() for t in leaves]
    refs = [t.clone().requires_grad_() for t in leaves]
    got = deform_conv2d(*inputs[:4], stride=2, padding=1, dilation=2, mask=inputs[4] if modulated else None)
    ref = tv_deform_conv2d(refs[0], refs[1], refs[2], refs[3], stride=2, padding=1, dilation=2,
                           mask=refs[4] if modulated else None)
    torch.testing.assert_close(got, ref)
    seed = torch.randn(ref.shape, generator=g, dtype=torch.float64)
    got.backward(seed)
    ref.backward(seed)
    for a, r in zip(inputs, refs, strict=True):
        torch.testing.assert_close(a.grad, r.grad)
