"""The backend-agnostic Tracker over a fake numpy backend whose outputs make every step predictable by hand."""

from __future__ import annotations

import math
import subprocess
import sys
import tracemalloc

import cv2
import numpy as np
import pytest

from siamattn.config import load_config
from siamattn.errors import InputError
from siamattn.geometry import context_size
from siamattn.runtime import Backend, BackendOutputError, FrameMask, Tracker, TrackResult

K, S = 5, 25
N = K * S * S
SQUARE = 2  # ratio 1.0 anchor: 64 x 64
LOG9 = math.log(9.0)  # foreground logit vs background 0: score 0.9
PEAK_DELTAS = (0.25, 0.0, math.log(1.25), 0.0)  # on the square anchor two cells right: box (32, 0, 80, 64)


def idx(a: int, y: int, x: int) -> int:
    return a * S * S + y * S + x


class FakeBackend:
    """cls/loc with one peak at a chosen anchor; records what the tracker sends."""

    max_batch = 1  # one template slot

    def drop_template(self, slot):
        pass

    def __init__(self, peak=(SQUARE, 12, 14), fg_logit=LOG9, deltas=PEAK_DELTAS, refine=False, mask=False,
                 refine_deltas=(0.0, 0.0, 0.0, 0.0), mask_value=None):
        self.has_refine = refine
        self.has_mask = mask
        self.cls = np.zeros((1, 2 * K, S, S), np.float32)
        flat = self.cls.reshape(2, N)
        flat[0], flat[1] = 10.0, -10.0  # everything else: background
        i = idx(*peak)
        flat[0, i], flat[1, i] = 0.0, fg_logit
        self.loc = np.zeros((1, 4 * K, S, S), np.float32)
        self.loc.reshape(4, N)[:, i] = deltas
        self.refine_deltas = np.array([refine_deltas], np.float32)
        self.mask = np.ones((1, 1, 64, 64), np.float32) if mask_value is None else mask_value
        self.calls: list[str] = []
        self.template = None
        self.last_x = None
        self.rois: dict[str, np.ndarray] = {}

    def set_template(self, slot, z_crop):
        self.calls.append("template")
        self.template = z_crop.copy()

    def search_batch(self, x_crop, slots):
        self.calls.append("search")
        self.last_x = x_crop  # tests look at it before the next call
        return self.cls, self.loc

    def refine_box_batch(self, roi):
        self.calls.append("box")
        self.rois["box"] = roi.copy()
        return self.refine_deltas

    def refine_mask_batch(self, roi):
        self.calls.append("mask")
        self.rois["mask"] = roi.copy()
        return self.mask


def pysot_cfg(*overrides: str):
    """siamattn_r50's tracker settings (penalty_k 0.10, window_influence 0.25, lr 0.45, mask 0.2) with
    tracker.geometry pinned: the hand computations below are pysot's unless a test names "authors"."""
    return load_config("siamattn_r50", ["tracker.geometry=pysot", "tracker.output=polygon", *overrides])


@pytest.fixture(scope="module")
def cfg():
    return pysot_cfg()


@pytest.fixture
def frame():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)


INIT = (300.0, 200.0, 64.0, 64.0)  # centre (331.5, 231.5); s_z = round(sqrt(128 * 128)) = 128
SCALE_Z = 127 / 128
PENALTY = 0.9593365  # see test_runtime_postprocess: 80x64 prediction vs a 63.5 x 63.5 target
LR = PENALTY * 0.9 * 0.45


def expected_state(dx_crop: float, dy_crop: float, w_crop: float, h_crop: float):
    """pysot's update by hand: centre moves by offset/scale_z, size smoothed with lr, no clipping needed."""
    cx = 331.5 + dx_crop / SCALE_Z
    cy = 231.5 + dy_crop / SCALE_Z
    w = 64 * (1 - LR) + (w_crop / SCALE_Z) * LR
    h = 64 * (1 - LR) + (h_crop / SCALE_Z) * LR
    return cx, cy, w, h


def test_backend_protocol_is_runtime_checkable():
    assert isinstance(FakeBackend(), Backend)
    with pytest.raises(TypeError, match="missing"):
        Tracker(object(), load_config("tiny"))


def test_rpn_only_step_by_hand(cfg, frame):
    be = FakeBackend()
    tr = Tracker(be, cfg)
    tr.init(frame, INIT)
    assert be.template.shape == (1, 3, 127, 127) and be.template.dtype == np.float32
    res = tr.track(frame)
    # search crop: round(128 * 255/127) = round(257.0079) = 257 px; xmin = floor(331.5 - 129 + 0.5) = 203,
    # ymin = 103; inside the frame, so exactly cv2.resize of frame[103:360, 203:460]
    want_x = cv2.resize(frame[103:360, 203:460], (255, 255)).transpose(2, 0, 1)[None].astype(np.float32)
    np.testing.assert_array_equal(be.last_x, want_x)
    # peak: square anchor at (y=12, x=14) -> centre (16, 0); deltas -> (32, 0, 80, 64) in the crop
    cx, cy, w, h = expected_state(32.0, 0.0, 80.0, 64.0)
    assert res.box == pytest.approx((cx - w / 2, cy - h / 2, w, h), rel=1e-6)
    assert res.score == pytest.approx(0.9)
    assert res.best_index == idx(SQUARE, 12, 14)
    assert res.polygon is None and res.mask is None
    assert tr.center == pytest.approx((cx, cy)) and tr.size == pytest.approx((w, h))
    assert be.calls == ["template", "search"]
    assert set(res.timings_ms) == {"crop", "search", "post", "refine", "mask", "total"}
    assert all(v >= 0 for v in res.timings_ms.values()) and res.timings_ms["total"] > 0


def test_refinement_roi_and_decode_by_hand(cfg, frame):
    be = FakeBackend(refine=True, refine_deltas=(1.0, -0.5, math.log(1.1) / 0.2, 0.0))
    tr = Tracker(be, cfg)
    tr.init(frame, INIT)
    res = tr.track(frame)
    # RPN box (32, 0, 80, 64) -> crop px centre (159, 127) -> RoI [0, 119, 95, 199, 159]
    np.testing.assert_allclose(be.rois["box"], [[0, 119, 95, 199, 159]])
    assert be.rois["box"].dtype == np.float32
    # deltas x stds (0.1, 0.1, 0.2, 0.2): cx = 159 + 1*0.1*80 = 167, cy = 127 - 0.5*0.1*64 = 123.8,
    # w = 80 * 1.1 = 88, h = 64 -> offsets (40, -3.2); lr still from the RPN's penalty * score
    cx, cy, w, h = expected_state(40.0, -3.2, 88.0, 64.0)
    assert res.box == pytest.approx((cx - w / 2, cy - h / 2, w, h), rel=1e-6)
    assert be.calls == ["template", "search", "box"]


def test_refine_box_switch_in_config(frame):
    cfg = pysot_cfg("tracker.refine_box=false")
    be = FakeBackend(refine=True, refine_deltas=(5.0, 5.0, 5.0, 5.0))
    tr = Tracker(be, cfg)
    tr.init(frame, INIT)
    res = tr.track(frame)
    cx, cy, w, h = expected_state(32.0, 0.0, 80.0, 64.0)
    assert res.box == pytest.approx((cx - w / 2, cy - h / 2, w, h), rel=1e-6)
    assert "box" not in be.calls


def test_rpn_box_is_clipped_to_the_crop_before_refinement(frame):
    # no penalty and no window, so the far peak wins whatever its shape
    cfg = pysot_cfg("tracker.penalty_k=0", "tracker.window_influence=0")
    # peak at the far corner with a huge size: centre offset 96 + 2*64 = 224 -> crop px 351 > 254
    be = FakeBackend(peak=(SQUARE, 24, 24), fg_logit=20.0, deltas=(2.0, 2.0, 2.0, -5.0), refine=True)
    tr = Tracker(be, cfg)
    tr.init(frame, INIT)
    tr.track(frame)
    # centre clipped to 254 (last crop pixel), w = 64 e^2 = 473 -> 255, h = 64 e^-5 = 0.43 -> min_size 10
    np.testing.assert_allclose(be.rois["box"], [[0, 254 - 127.5, 254 - 5, 254 + 127.5, 254 + 5]], atol=1e-4)


def test_mask_on_the_smoothed_box_and_rotated_box(cfg, frame):
    be = FakeBackend(refine=True, mask=True, refine_deltas=(1.0, -0.5, math.log(1.1) / 0.2, 0.0))
    tr = Tracker(be, cfg)
    tr.init(frame, INIT)
    res = tr.track(frame)
    assert be.calls == ["template", "search", "box", "mask"]
    cx, cy, w, h = expected_state(40.0, -3.2, 88.0, 64.0)
    # the smoothed box mapped into this frame's crop (centre 127 <-> previous centre (331.5, 231.5))
    mcx, mcy = 127 + (cx - 331.5) * SCALE_Z, 127 + (cy - 231.5) * SCALE_Z
    mw, mh = w * SCALE_Z, h * SCALE_Z
    np.testing.assert_allclose(
        be.rois["mask"], [[0, mcx - mw / 2, mcy - mh / 2, mcx + mw / 2, mcy + mh / 2]], rtol=1e-6
    )
    # an all-ones mask tiles exactly the smoothed box: the mask and its rotated box are that box
    assert isinstance(res.mask, FrameMask)
    full = res.mask.to_frame()
    ys, xs = np.nonzero(full)
    x1, y1 = cx - w / 2, cy - h / 2
    assert abs(xs.min() - x1) <= 1 and abs(xs.max() - (x1 + w)) <= 1
    assert abs(ys.min() - y1) <= 1 and abs(ys.max() - (y1 + h)) <= 1
    (pcx, pcy), (pw, ph), _ = cv2.minAreaRect(res.polygon)
    assert (pcx, pcy) == pytest.approx((cx, cy), abs=1.0)
    assert sorted((pw, ph)) == pytest.approx(sorted((w, h)), abs=2.0)


def test_empty_mask_falls_back_to_the_axis_aligned_box(cfg, frame):
    be = FakeBackend(refine=True, mask=True, mask_value=np.full((1, 1, 64, 64), 0.1, np.float32))  # < 0.2
    tr = Tracker(be, cfg)
    tr.init(frame, INIT)
    res = tr.track(frame)
    x, y, w, h = res.box
    np.testing.assert_allclose(res.polygon, [[x, y], [x + w, y], [x + w, y + h], [x, y + h]], rtol=1e-6)
    assert not res.mask.patch.any()


def test_target_leaving_the_frame_stays_at_the_border(cfg, frame):
    # the peak keeps pushing right by 96 + 64 crop px a frame
    be = FakeBackend(peak=(SQUARE, 12, 24), fg_logit=20.0, deltas=(1.0, 0.0, 0.0, 0.0), refine=True, mask=True)
    tr = Tracker(be, cfg)
    tr.init(frame, (560, 200, 64, 64))
    for _ in range(30):
        res = tr.track(frame)
    cx, cy = tr.center
    assert cx == 640.0  # clipped to the frame width, as the reference does
    assert 0 < cy < 480 and tr.size[0] >= cfg.tracker.min_size
    x, _, w, _ = res.box
    assert x == pytest.approx(640 - w / 2)
    assert np.isfinite(res.polygon).all()


def test_track_before_init_and_frame_changes(cfg, frame):
    tr = Tracker(FakeBackend(), cfg)
    with pytest.raises(InputError, match="before init"):
        tr.track(frame)
    tr.init(frame, INIT)
    tr.track(frame)
    with pytest.raises(InputError, match=r"640x480x3 to 320x240x3 mid-video.*init\(\)"):
        tr.track(frame[:240, :320])
    with pytest.raises(InputError, match="640x480x3 to 640x480x1"):
        tr.track(frame[:, :, 0])
    with pytest.raises(InputError, match="None"):
        tr.track(None)
    with pytest.raises(InputError, match="uint8"):
        tr.track(frame.astype(np.float32))
    tr.track(frame)  # still usable after rejected frames


def test_failed_init_leaves_tracker_uninitialised(cfg, frame):
    tr = Tracker(FakeBackend(), cfg)
    tr.init(frame, INIT)
    with pytest.raises(InputError, match="outside"):
        tr.init(frame, (1000, 1000, 10, 10))
    with pytest.raises(InputError, match="before init"):
        tr.track(frame)
    with pytest.raises(InputError, match="positive"):
        tr.init(frame, (10, 10, 0, 10))
    with pytest.raises(InputError, match="NaN"):
        tr.init(frame, (10, float("nan"), 10, 10))


def test_new_video_with_another_size_needs_only_init(cfg, frame):
    tr = Tracker(FakeBackend(), cfg)
    tr.init(frame, INIT)
    tr.track(frame)
    small = np.ascontiguousarray(frame[:240, :320])
    tr.init(small, (100, 100, 40, 40))
    assert isinstance(tr.track(small), TrackResult)


def test_gray_and_bgra_videos(cfg, frame):
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    be_gray, be_bgr = FakeBackend(), FakeBackend()
    t_gray, t_bgr = Tracker(be_gray, cfg), Tracker(be_bgr, cfg)
    t_gray.init(gray, INIT)
    t_bgr.init(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR), INIT)
    np.testing.assert_array_equal(be_gray.template, be_bgr.template)
    assert t_gray.track(gray).box == t_bgr.track(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)).box
    be_bgra, be_color = FakeBackend(), FakeBackend()
    Tracker(be_bgra, cfg).init(cv2.cvtColor(frame, cv2.COLOR_BGR2BGRA), INIT)  # alpha ignored
    Tracker(be_color, cfg).init(frame, INIT)
    np.testing.assert_array_equal(be_bgra.template, be_color.template)


def test_bad_backend_outputs_are_clear_errors(cfg, frame):
    be = FakeBackend()
    be.cls = be.cls[:, :, :24]
    tr = Tracker(be, cfg)
    tr.init(frame, INIT)
    with pytest.raises(BackendOutputError, match="re-export"):
        tr.track(frame)
    be = FakeBackend(refine=True, mask=True, mask_value=np.ones((1, 1, 32, 32), np.float32))
    tr = Tracker(be, cfg)
    tr.init(frame, INIT)
    with pytest.raises(BackendOutputError, match=r"\(1, 1, 64, 64\)"):
        tr.track(frame)
    be = FakeBackend(refine=True, mask=True, mask_value=np.full((1, 1, 64, 64), np.nan, np.float32))
    tr = Tracker(be, cfg)
    tr.init(frame, INIT)
    with pytest.raises(BackendOutputError, match="NaN"):
        tr.track(frame)


def test_backend_outputs_are_not_modified(cfg, frame):
    be = FakeBackend(refine=True, mask=True)
    cls, loc, mask = be.cls.copy(), be.loc.copy(), be.mask.copy()
    tr = Tracker(be, cfg)
    tr.init(frame, INIT)
    tr.track(frame)
    np.testing.assert_array_equal(be.cls, cls)
    np.testing.assert_array_equal(be.loc, loc)
    np.testing.assert_array_equal(be.mask, mask)


@pytest.mark.parametrize("geometry", ["pysot", "authors"])
def test_memory_stays_flat_over_2000_frames(geometry):
    """Per-frame work allocates only transient arrays: traced memory after 2,000 frames equals the start."""
    cfg = pysot_cfg(f"tracker.geometry={geometry}")
    rng = np.random.default_rng(0)
    frame = cv2.GaussianBlur(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8), (5, 5), 0)
    # a peak that circles around and a real-looking mask, so crops, padding and contours all vary
    backends = [
        FakeBackend(peak=(SQUARE, 12 + dy, 12 + dx), deltas=(0.1, 0.1, 0.0, 0.0), refine=True, mask=True,
                    refine_deltas=(0.2, -0.2, 0.1, -0.1))
        for dx, dy in ((2, 0), (0, 2), (-2, 0), (0, -2))
    ]
    yy, xx = np.mgrid[0:64, 0:64]
    blob = np.exp(-(((xx - 32) / 20.0) ** 2 + ((yy - 32) / 12.0) ** 2)).astype(np.float32)[None, None]
    for be in backends:
        be.mask = blob

    class Cycling(FakeBackend):
        has_refine = True
        has_mask = True

        def __init__(self):
            self.i = 0

        def set_template(self, slot, z):
            pass

        def search_batch(self, x, slots):
            self.i += 1
            return backends[self.i % 4].search_batch(x, slots)

        def refine_box_batch(self, roi):
            return backends[0].refine_box_batch(roi)

        def refine_mask_batch(self, roi):
            return backends[0].refine_mask_batch(roi)

    for be in backends:  # the recorder lists would grow; this test is about the tracker
        be.calls = _NoList()
    tr = Tracker(Cycling(), cfg)
    tr.init(frame, (140, 100, 40, 30))
    for _ in range(100):
        tr.track(frame)
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for _ in range(2000):
            res = tr.track(frame)
        assert res.polygon is not None
        del res
        end, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert end - base < 16 * 1024, f"grew by {end - base} bytes over 2000 frames"
    # The largest temporary is the padded canvas of the search window (pad-then-resize, as the reference
    # trackers do): at most the window of a box as large as the frame. Nothing else frame-sized may pile up.
    s_x = context_size(320, 240, cfg.tracker.context_amount) * cfg.tracker.instance_size / cfg.tracker.exemplar_size
    canvas = math.ceil(s_x) ** 2 * 3
    assert peak - base < canvas + 1024 * 1024, f"peak {peak - base} bytes vs a {canvas}-byte search canvas"


class _NoList(list):
    def append(self, item):
        pass


def test_runtime_imports_without_torch():
    code = "import sys, siamattn.runtime, siamattn.geometry; sys.exit(1 if 'torch' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def _reference_rpn_step(cls, loc, center, size, frame_wh, t):
    """pysot's RPN step written out anchor by anchor, from the docs/DESIGN.md §3 description (slow, scalar)."""
    box, scale, ps_raw, _ = reference_rpn_choice(cls, loc, size, t)
    lr = ps_raw * t.lr
    cx, cy = center[0] + box[0] / scale, center[1] + box[1] / scale
    w0, h0 = size
    w = w0 * (1 - lr) + box[2] / scale * lr
    h = h0 * (1 - lr) + box[3] / scale * lr
    fw, fh = frame_wh
    return (min(max(cx, 0), fw), min(max(cy, 0), fh)), (min(max(w, 10), fw), min(max(h, 10), fh))


def reference_rpn_choice(cls, loc, size, t, s=S, window_influence=None):
    """The anchor pysot picks on an ``s`` x ``s`` map (cosine window weight ``window_influence``, default the
    config's): (box in crop px as offsets from the centre, scale_z, penalty * score, score); scalar loops."""
    window_influence = t.window_influence if window_influence is None else window_influence
    shapes = [(104, 32), (88, 40), (64, 64), (40, 80), (32, 96)]
    hann = [0.5 - 0.5 * math.cos(2 * math.pi * i / (s - 1)) for i in range(s)]
    w0, h0 = size
    ctx = t.context_amount * (w0 + h0)
    s_z = math.sqrt((w0 + ctx) * (h0 + ctx))
    scale = t.exemplar_size / s_z
    tw, th = w0 * scale, h0 * scale

    def sz(w, h):
        p = (w + h) / 2
        return math.sqrt((w + p) * (h + p))

    best = None
    c = s // 2
    for a in range(K):
        wa, ha = shapes[a]
        for y in range(s):
            for x in range(s):
                bg, fg = float(cls[0, a, y, x]), float(cls[0, K + a, y, x])
                score = 1.0 / (1.0 + math.exp(bg - fg))
                dx, dy, dw, dh = (float(loc[0, c4 * K + a, y, x]) for c4 in range(4))
                box = (dx * wa + (x - c) * 8, dy * ha + (y - c) * 8, math.exp(dw) * wa, math.exp(dh) * ha)
                s_c = max(sz(box[2], box[3]) / sz(tw, th), sz(tw, th) / sz(box[2], box[3]))
                r = (tw / th) / (box[2] / box[3])
                pen = math.exp(-(max(r, 1 / r) * s_c - 1) * t.penalty_k)
                ps = pen * score * (1 - window_influence) + hann[y] * hann[x] * window_influence
                if best is None or ps > best[0]:
                    best = (ps, box, pen * score, score)
    return best[1], scale, best[2], best[3]


def test_rpn_tracking_matches_a_scalar_reference_over_random_outputs(cfg, frame):
    """Random cls/loc every frame: the vectorised tracker and the anchor-by-anchor reference agree."""
    rng = np.random.default_rng(3)

    class RandomBackend(FakeBackend):
        has_refine = has_mask = False

        def __init__(self):
            pass

        def set_template(self, slot, z):
            pass

        def search_batch(self, x, slots):
            self.cls = rng.normal(0, 2, (1, 2 * K, S, S)).astype(np.float32)
            self.loc = rng.normal(0, 0.3, (1, 4 * K, S, S)).astype(np.float32)
            return self.cls, self.loc

        def refine_box_batch(self, roi):
            raise AssertionError("not called")

        refine_mask_batch = refine_box_batch

    be = RandomBackend()
    tr = Tracker(be, cfg)
    tr.init(frame, (500.0, 30.0, 90.0, 40.0))  # near the top-right border: padded crops, clipping
    center, size = tr.center, tr.size
    for _ in range(6):
        res = tr.track(frame)
        center, size = _reference_rpn_step(be.cls, be.loc, center, size, (640, 480), cfg.tracker)
        assert tr.center == pytest.approx(center, rel=1e-9) and tr.size == pytest.approx(size, rel=1e-9)
        assert res.box == pytest.approx((center[0] - size[0] / 2, center[1] - size[1] / 2, *size), rel=1e-9)


# ---------------------------------------------------------------------------------------------------------
# tracker.geometry "authors" (the SiamAttn authors' tracker, docs/DESIGN.md §3), by hand on the same frames:
# crop of round(s_x) = 257 px around (331.5, 231.5) -> crop box origin (331.5 - 128.5, 231.5 - 128.5)


@pytest.fixture(scope="module")
def cfg_authors():
    return load_config("siamattn_r50", ["tracker.geometry=authors"])


ORIGIN = (203.0, 103.0)


def authors_state(u: float, v: float, w_crop: float, h_crop: float):
    """Crop px (u, v) measured from the crop's top-left pixel (RPN centre 127.5) -> frame via the crop box."""
    cx = ORIGIN[0] + u / SCALE_Z
    cy = ORIGIN[1] + v / SCALE_Z
    w = 64 * (1 - LR) + (w_crop / SCALE_Z) * LR
    h = 64 * (1 - LR) + (h_crop / SCALE_Z) * LR
    return cx, cy, w, h


def test_authors_rpn_only_step_by_hand(cfg_authors, frame):
    be = FakeBackend()
    tr = Tracker(be, cfg_authors)
    tr.init(frame, INIT)
    res = tr.track(frame)
    # the same crop as pysot's; the RPN box (32, 0, 80, 64) is at crop px (159.5, 127.5)
    want_x = cv2.resize(frame[103:360, 203:460], (255, 255)).transpose(2, 0, 1)[None].astype(np.float32)
    np.testing.assert_array_equal(be.last_x, want_x)
    cx, cy, w, h = authors_state(159.5, 127.5, 80.0, 64.0)
    # abs 1e-5 px: the PENALTY constant has 7 digits; the geometry differences tested are >= 0.0039 px
    assert res.box == pytest.approx((cx - w / 2, cy - h / 2, w, h), abs=1e-5)
    assert res.score == pytest.approx(0.9)  # score[best]: no penalty, no window
    # pysot puts the centre 0.0039 px to the left: 331.5 + 32 * 128/127 vs 203 + 159.5 * 128/127
    assert cx - (331.5 + 32 * 128 / 127) == pytest.approx(0.5 * 128 / 127 - 0.5, abs=1e-9)


def test_authors_refinement_roi_inset_and_decode_by_hand(cfg_authors, frame):
    be = FakeBackend(refine=True, refine_deltas=(1.0, -0.5, math.log(1.1) / 0.2, 0.0))
    tr = Tracker(be, cfg_authors)
    tr.init(frame, INIT)
    res = tr.track(frame)
    # RPN box at crop px (159.5, 127.5), 80 x 64 -> [119.5, 95.5, 199.5, 159.5] inset by 0.5
    np.testing.assert_array_equal(be.rois["box"], [[0, 120, 96, 199, 159]])
    # decoded on the clipped box: cx = 159.5 + 1*0.1*80 = 167.5, cy = 127.5 - 0.5*0.1*64 = 124.3, w = 88
    cx, cy, w, h = authors_state(167.5, 124.3, 88.0, 64.0)
    assert res.box == pytest.approx((cx - w / 2, cy - h / 2, w, h), abs=1e-5)


def test_authors_rpn_box_clip_before_refinement(frame):
    cfg = load_config("siamattn_r50", ["tracker.geometry=authors", "tracker.penalty_k=0",
                                       "tracker.window_influence=0"])
    be = FakeBackend(peak=(SQUARE, 24, 24), fg_logit=20.0, deltas=(2.0, 2.0, 2.0, -5.0), refine=True)
    tr = Tracker(be, cfg)
    tr.init(frame, INIT)
    tr.track(frame)
    # centre 224 + 127.5 -> 254, w = 64 e^2 -> 254 (pysot: 255), h = 64 e^-5 -> 10; inset 0.5
    np.testing.assert_allclose(be.rois["box"], [[0, 254 - 127 + 0.5, 254 - 5 + 0.5, 254 + 127 - 0.5,
                                                  254 + 5 - 0.5]], atol=1e-4)


def test_authors_mask_roi_and_paste_back(cfg_authors, frame):
    be = FakeBackend(refine=True, mask=True, refine_deltas=(1.0, -0.5, math.log(1.1) / 0.2, 0.0))
    tr = Tracker(be, cfg_authors)
    tr.init(frame, INIT)
    res = tr.track(frame)
    cx, cy, w, h = authors_state(167.5, 124.3, 88.0, 64.0)
    # the new state in this frame's crop: (state - crop box origin) * scale_z, no inset
    mcx, mcy = (cx - ORIGIN[0]) * SCALE_Z, (cy - ORIGIN[1]) * SCALE_Z
    mw, mh = w * SCALE_Z, h * SCALE_Z
    np.testing.assert_allclose(be.rois["mask"], [[0, mcx - mw / 2, mcy - mh / 2, mcx + mw / 2, mcy + mh / 2]],
                               rtol=1e-6)
    # all-ones mask, edge-aligned cells of mw/64 crop px, 257/255 frame px per crop px, shrunk by 639/640,
    # 479/480: frame x of mask coordinate u = 639/640 * (203 + (mcx - mw/2 + u * mw/64) * 257/255);
    # bilinear with a zero border is > 0.2 for u in (-0.8, 63.8)
    k = 257 / 255

    def fx(u):
        return 639 / 640 * (ORIGIN[0] + (mcx - mw / 2 + u * mw / 64) * k)

    def fy(v):
        return 479 / 480 * (ORIGIN[1] + (mcy - mh / 2 + v * mh / 64) * k)

    ys, xs = np.nonzero(res.mask.to_frame())
    assert (xs.min(), xs.max()) == (math.floor(fx(-0.8)) + 1, math.floor(fx(63.8)))
    assert (ys.min(), ys.max()) == (math.floor(fy(-0.8)) + 1, math.floor(fy(63.8)))


def test_authors_target_leaving_the_frame_stays_one_pixel_inside(frame):
    cfg = load_config("siamattn_r50", ["tracker.geometry=authors"])
    be = FakeBackend(peak=(SQUARE, 12, 24), fg_logit=20.0, deltas=(1.0, 0.0, 0.0, 0.0), refine=True, mask=True)
    tr = Tracker(be, cfg)
    tr.init(frame, (560, 200, 64, 64))
    for _ in range(30):
        res = tr.track(frame)
    assert tr.center[0] == 639.0  # [0, W-1]
    assert res.box[0] == pytest.approx(639 - tr.size[0] / 2)
    be = FakeBackend(deltas=(0.0, 0.0, 3.0, 3.0), fg_logit=20.0)
    tr = Tracker(be, load_config("siamattn_r50", ["tracker.geometry=authors", "tracker.lr=1",
                                                  "tracker.penalty_k=0"]))
    tr.init(frame, (100, 100, 400, 400))
    tr.track(frame)
    assert tr.size == (639.0, 479.0)  # w in [10, W-1], h in [10, H-1]


def test_output_switch_picks_the_reported_region(frame):
    tr = Tracker(FakeBackend(refine=True, mask=True), pysot_cfg())
    tr.init(frame, INIT)
    res = tr.track(frame)
    assert res.output == "polygon" and len(res.region) == 8
    np.testing.assert_allclose(res.region, res.polygon.reshape(-1))
    tr = Tracker(FakeBackend(refine=True, mask=True), pysot_cfg("tracker.output=box"))
    tr.init(frame, INIT)
    res = tr.track(frame)
    assert res.polygon is not None and res.region == res.box  # the mask still runs; the box is reported
    tr = Tracker(FakeBackend(), pysot_cfg())  # no mask: the box whatever the setting
    tr.init(frame, INIT)
    res = tr.track(frame)
    assert res.polygon is None and res.region == res.box


@pytest.mark.parametrize("output", ["polygon", "box"])
def test_track_json_record_honours_output(frame, output):
    from siamattn.runtime.video import _track_frame

    tr = Tracker(FakeBackend(refine=True, mask=True), pysot_cfg(f"tracker.output={output}"))
    _track_frame(tr, 0, frame, INIT, "fake", None, False)
    rec = _track_frame(tr, 1, frame, INIT, "fake", None, False)
    assert len(rec["box"]) == 4
    assert (rec["polygon"] is None) == (output == "box")
