"""Reference deformable ops against independent formulations (plain loops from the formula, plain convs)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from siamattn.ops import DeformConv2d, DeformRoIPool, deform_conv2d, deform_roi_pool

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
        (5.0, "edgeH"),  # exactly H (=6 rows -> H-1=5 ... use H below)
    ],
)
def test_deform_roi_pool_border_samples(coord, expect):
    # A 1x1 bin with one sample at its centre lets us place the sample exactly: sample = x1*s - 0.5 + 0.5*rw.
    h = w = 6
    feat = torch.arange(h * w, dtype=torch.float64).view(1, 1, h, w) + 1.0
    if coord == 5.0:
        coord = float(h)  # exactly H
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
