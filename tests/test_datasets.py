"""Dataset readers on tiny folders written in each dataset's real layout, broken layouts, and the
mixing pair sampler."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from siamattn.errors import InputError
from siamattn.toolkit import datasets as D
from siamattn.training.sampling import MixedSampler


def _touch_frames(folder: Path, names: list[str]) -> None:
    """Readers only list frames, so empty files stand in for JPEGs."""
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        (folder / n).write_bytes(b"")


def _save_boxes(path: Path, boxes: np.ndarray, sep: str = ",") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(path, boxes, fmt="%.2f", delimiter=sep)


BOXES = np.array([[10, 20, 30, 40], [11, 21, 30, 41], [12, 22, 31, 42], [13, 23, 32, 43]], float)


# ---------------------------------------------------------------------------------------------------------
# GOT-10k


def _got10k(root: Path, split: str = "train") -> None:
    d = root / split / "GOT-10k_Train_000001"
    _touch_frames(d, [f"{k:08d}.jpg" for k in range(1, 5)])
    _save_boxes(d / "groundtruth.txt", BOXES)
    (d / "absence.label").write_text("0\n0\n1\n0\n")
    (d / "cover.label").write_text("8\n0\n0\n5\n")
    (d / "cut_by_image.label").write_text("0\n0\n0\n1\n")
    (d / "meta_info.ini").write_text("[METAINFO]\nurl: https://www.youtube.com/watch?v=x\n"
                                     "object_class: quokka\nresolution: (640, 360)\n")
    (root / split / "list.txt").write_text("GOT-10k_Train_000001\n")


def test_got10k_reads_boxes_labels_and_resolution(tmp_path):
    _got10k(tmp_path)
    ds = D.GOT10k(tmp_path, "train")
    assert len(ds) == 1 and ds.names == ["GOT-10k_Train_000001"]
    seq = ds.sequence(0)
    assert [p.name for p in seq.frame_paths] == [f"{k:08d}.jpg" for k in range(1, 5)]
    np.testing.assert_allclose(seq.boxes_xywh, BOXES)
    # frame 1 has cover 0, frame 2 is absent
    assert seq.visible.tolist() == [True, False, False, True]
    assert seq.image_size == (640, 360)
    assert seq.attributes["cut_by_image"].tolist() == [0, 0, 0, 1]
    assert not seq.has_masks


def test_got10k_test_split_has_only_the_first_box(tmp_path):
    d = tmp_path / "test" / "GOT-10k_Test_000001"
    _touch_frames(d, [f"{k:08d}.jpg" for k in range(1, 4)])
    _save_boxes(d / "groundtruth.txt", BOXES[:1])
    (tmp_path / "test" / "list.txt").write_text("GOT-10k_Test_000001\n")
    seq = D.GOT10k(tmp_path, "test").sequence(0)
    assert np.isfinite(seq.boxes_xywh[0]).all() and np.isnan(seq.boxes_xywh[1:]).all()
    assert seq.visible.tolist() == [True, False, False]


def test_got10k_broken_layouts_name_the_missing_file(tmp_path):
    with pytest.raises(D.DatasetLayoutError, match=r"train[/\\]list\.txt") as err:
        D.GOT10k(tmp_path, "train")
    assert "groundtruth.txt" in str(err.value)  # the message shows the expected layout
    _got10k(tmp_path)
    (tmp_path / "train" / "GOT-10k_Train_000001" / "groundtruth.txt").unlink()
    with pytest.raises(D.DatasetLayoutError, match=r"GOT-10k_Train_000001[/\\]groundtruth\.txt"):
        D.GOT10k(tmp_path, "train")
    _save_boxes(tmp_path / "train" / "GOT-10k_Train_000001" / "groundtruth.txt", BOXES[:3])
    with pytest.raises(D.DatasetLayoutError, match="3 boxes for 4 frames"):
        D.GOT10k(tmp_path, "train").sequence(0)


# ---------------------------------------------------------------------------------------------------------
# LaSOT


def _lasot(root: Path) -> Path:
    d = root / "airplane" / "airplane-1"
    _touch_frames(d / "img", [f"{k:08d}.jpg" for k in range(1, 5)])
    _save_boxes(d / "groundtruth.txt", BOXES)
    (d / "full_occlusion.txt").write_text("0,1,0,0")
    (d / "out_of_view.txt").write_text("0,0,1,0")
    (d / "nlp.txt").write_text("white airplane")
    d2 = root / "airplane" / "airplane-10"
    _touch_frames(d2 / "img", ["00000001.jpg"])
    _save_boxes(d2 / "groundtruth.txt", BOXES[:1])
    (d2 / "full_occlusion.txt").write_text("0")
    (d2 / "out_of_view.txt").write_text("0")
    return d


def test_lasot_visibility_from_occlusion_and_out_of_view(tmp_path):
    _lasot(tmp_path)
    ds = D.LaSOT(tmp_path)
    assert ds.names == ["airplane-1", "airplane-10"]  # numeric order
    seq = ds.sequence(0)
    np.testing.assert_allclose(seq.boxes_xywh, BOXES)
    assert seq.visible.tolist() == [True, False, False, True]
    assert D.LaSOT(tmp_path, names=["airplane-10"]).names == ["airplane-10"]


def test_lasot_broken_layouts(tmp_path):
    d = _lasot(tmp_path)
    (d / "out_of_view.txt").unlink()
    with pytest.raises(D.DatasetLayoutError, match=r"airplane-1[/\\]out_of_view\.txt"):
        D.LaSOT(tmp_path).sequence(0)
    with pytest.raises(D.DatasetLayoutError, match=r"airplane[/\\]airplane-7"):
        D.LaSOT(tmp_path, names=["airplane-7"])
    with pytest.raises(D.DatasetLayoutError, match="img"):
        D.LaSOT(tmp_path / "airplane")  # one level too deep: no <category>/<category>-<n> folders


# ---------------------------------------------------------------------------------------------------------
# TrackingNet


def test_trackingnet_numeric_frame_order_and_chunks(tmp_path):
    frames = tmp_path / "TRAIN_0" / "frames" / "a1b2"
    _touch_frames(frames, [f"{k}.jpg" for k in range(12)])
    boxes = np.tile(BOXES[:1], (12, 1)) + np.arange(12)[:, None]
    _save_boxes(tmp_path / "TRAIN_0" / "anno" / "a1b2.txt", boxes)
    _touch_frames(tmp_path / "TRAIN_2" / "frames" / "zz", ["0.jpg", "1.jpg"])
    _save_boxes(tmp_path / "TRAIN_2" / "anno" / "zz.txt", BOXES[:2])
    ds = D.TrackingNet(tmp_path)
    assert ds.names == ["TRAIN_0/a1b2", "TRAIN_2/zz"]
    seq = ds.sequence(0)
    assert [p.stem for p in seq.frame_paths] == [str(k) for k in range(12)]  # 10, 11 after 9
    np.testing.assert_allclose(seq.boxes_xywh, boxes)


def test_trackingnet_broken_layouts(tmp_path):
    with pytest.raises(D.DatasetLayoutError, match="TRAIN_<i>"):
        D.TrackingNet(tmp_path)
    _save_boxes(tmp_path / "TRAIN_0" / "anno" / "a1b2.txt", BOXES)
    with pytest.raises(D.DatasetLayoutError, match=r"TRAIN_0[/\\]frames"):
        D.TrackingNet(tmp_path)
    (tmp_path / "TRAIN_0" / "frames").mkdir()
    with pytest.raises(D.DatasetLayoutError, match=r"frames[/\\]a1b2"):
        D.TrackingNet(tmp_path).sequence(0)


# ---------------------------------------------------------------------------------------------------------
# YouTube-VOS


def _palette_png(path: Path, labels: np.ndarray) -> None:
    from PIL import Image

    im = Image.fromarray(labels.astype(np.uint8), mode="P")
    im.putpalette([0, 0, 0, 236, 95, 103, 249, 145, 87] + [0] * (256 * 3 - 9))
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path)


def test_youtubevos_boxes_from_palette_masks(tmp_path):
    root = tmp_path / "train"
    meta = {"videos": {"003234408d": {"objects": {
        "1": {"category": "penguin", "frames": ["00000", "00005", "00010"]},
        "2": {"category": "penguin", "frames": ["00000", "00005", "00010"]}}}}}
    root.mkdir()
    (root / "meta.json").write_text(json.dumps(meta))
    _touch_frames(root / "JPEGImages" / "003234408d", ["00000.jpg", "00005.jpg", "00010.jpg"])
    for k, stem in enumerate(["00000", "00005", "00010"]):
        lab = np.zeros((40, 60), np.uint8)
        lab[5 + k:15 + k, 10:30] = 1  # object 1: rows 5+k..14+k, cols 10..29
        if stem != "00005":
            lab[30:35, 40:58] = 2  # object 2 leaves the scene in the middle frame
        _palette_png(root / "Annotations" / "003234408d" / f"{stem}.png", lab)
    ds = D.YouTubeVOS(tmp_path, "train")
    assert ds.names == ["003234408d/1", "003234408d/2"]
    s1, s2 = ds.sequence(0), ds.sequence(1)
    np.testing.assert_allclose(s1.boxes_xywh, [[10, 5, 20, 10], [10, 6, 20, 10], [10, 7, 20, 10]])
    assert s1.visible.all()
    assert s2.visible.tolist() == [True, False, True]
    np.testing.assert_allclose(s2.boxes_xywh[0], [40, 30, 18, 5])
    m = s1.mask(1)
    assert m.dtype == bool and m.sum() == 200 and not m[30:35, 40:58].any()  # only object 1's pixels


def test_youtubevos_broken_layout(tmp_path):
    (tmp_path / "train" / "JPEGImages").mkdir(parents=True)
    with pytest.raises(D.DatasetLayoutError, match=r"train[/\\]meta\.json"):
        D.YouTubeVOS(tmp_path)
    (tmp_path / "train" / "meta.json").write_text("{}")
    (tmp_path / "train" / "Annotations").mkdir()
    with pytest.raises(D.DatasetLayoutError, match="'videos' map"):
        D.YouTubeVOS(tmp_path)


# ---------------------------------------------------------------------------------------------------------
# COCO


def test_coco_rle_decoding_hand_computed():
    # counts alternate background/foreground in column-major order over a 2x3 image
    expected = np.array([[0, 1, 1], [0, 1, 0]], bool)
    seg = {"size": [2, 3], "counts": [2, 3, 1]}
    np.testing.assert_array_equal(D.decode_coco_segmentation(seg, 2, 3), expected)
    # compressed: '2', '3', then the third count is stored as 1 - 2 = -1 -> 'O' (31 + 48)
    np.testing.assert_array_equal(D.decode_coco_segmentation({"size": [2, 3], "counts": "23O"}, 2, 3), expected)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pycocotools' numpy-2 copy= notice
def test_coco_compressed_rle_matches_pycocotools():
    mask_util = pytest.importorskip("pycocotools.mask", reason="pycocotools not installed")
    rng = np.random.default_rng(0)
    m = np.zeros((57, 83), np.uint8)
    for _ in range(6):
        x, y = rng.integers(0, 70), rng.integers(0, 45)
        m[y:y + rng.integers(3, 20), x:x + rng.integers(3, 30)] = 1
    rle = mask_util.encode(np.asfortranarray(m))
    rle["counts"] = rle["counts"].decode()
    np.testing.assert_array_equal(D.decode_coco_segmentation(rle, 57, 83), m.astype(bool))
    poly = [[10.0, 10.0, 60.0, 12.0, 40.0, 50.0]]
    ref = mask_util.decode(mask_util.merge(mask_util.frPyObjects(poly, 57, 83))).astype(bool)
    ours = D.decode_coco_segmentation(poly, 57, 83)
    assert (ours != ref).sum() <= 0.02 * ref.sum()  # at most a few border pixels differ
    rect = [[10.0, 8.0, 30.0, 8.0, 30.0, 18.0, 10.0, 18.0]]
    ref = mask_util.decode(mask_util.merge(mask_util.frPyObjects(rect, 57, 83))).astype(bool)
    np.testing.assert_array_equal(D.decode_coco_segmentation(rect, 57, 83), ref)


def _coco(root: Path) -> None:
    (root / "train2017").mkdir(parents=True)
    (root / "train2017" / "000000000009.jpg").write_bytes(b"")
    data = {
        "images": [{"id": 9, "file_name": "000000000009.jpg", "width": 64, "height": 48}],
        "annotations": [
            {"id": 1, "image_id": 9, "category_id": 3, "bbox": [10, 8, 20, 10], "iscrowd": 0, "area": 200,
             "segmentation": [[10, 8, 30, 8, 30, 18, 10, 18]]},
            {"id": 2, "image_id": 9, "category_id": 1, "bbox": [0, 0, 64, 48], "iscrowd": 1, "area": 1,
             "segmentation": {"size": [48, 64], "counts": [0, 3072]}},
            {"id": 3, "image_id": 9, "category_id": 2, "bbox": [40, 30, 0.5, 4], "iscrowd": 0, "area": 2,
             "segmentation": [[40, 30, 40.5, 30, 40.5, 34]]},
        ],
        "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "b"}, {"id": 3, "name": "car"}],
    }
    (root / "annotations").mkdir()
    (root / "annotations" / "instances_train2017.json").write_text(json.dumps(data))


def test_coco_objects_are_one_frame_sequences_with_masks(tmp_path):
    _coco(tmp_path)
    ds = D.COCO(tmp_path, "train2017")
    assert len(ds) == 1  # the crowd region and the sub-pixel box are skipped
    seq = ds.sequence(0)
    assert len(seq) == 1 and seq.frame_paths[0].name == "000000000009.jpg"
    np.testing.assert_allclose(seq.boxes_xywh, [[10, 8, 20, 10]])
    m = seq.mask(0)
    assert m.shape == (48, 64)
    np.testing.assert_allclose(D.mask_to_box(m), [10, 8, 20, 10])  # pixels whose centres are inside
    assert len(D.COCO(tmp_path, "train2017", include_crowd=True)) == 2


def test_coco_broken_layout(tmp_path):
    with pytest.raises(D.DatasetLayoutError, match=r"annotations[/\\]instances_val2017\.json"):
        D.COCO(tmp_path, "val2017")
    _coco(tmp_path)
    (tmp_path / "train2017" / "000000000009.jpg").unlink()
    (tmp_path / "train2017").rmdir()
    with pytest.raises(D.DatasetLayoutError, match="train2017'"):
        D.COCO(tmp_path, "train2017")


# ---------------------------------------------------------------------------------------------------------
# OTB and VOT


def test_otb_separators_two_targets_and_david_offset(tmp_path):
    _touch_frames(tmp_path / "Bolt" / "img", [f"{k:04d}.jpg" for k in range(1, 5)])
    (tmp_path / "Bolt" / "groundtruth_rect.txt").write_text(
        "10,20,30,40\n11\t21\t30\t41\n12 22 31 42\n13, 23, 32, 43\n")
    _touch_frames(tmp_path / "Jogging" / "img", [f"{k:04d}.jpg" for k in range(1, 3)])
    _save_boxes(tmp_path / "Jogging" / "groundtruth_rect.1.txt", BOXES[:2])
    _save_boxes(tmp_path / "Jogging" / "groundtruth_rect.2.txt", BOXES[2:])
    _touch_frames(tmp_path / "David" / "img", [f"{k:04d}.jpg" for k in range(1, 303)])
    _save_boxes(tmp_path / "David" / "groundtruth_rect.txt", BOXES[:3])
    ds = D.OTB(tmp_path)
    assert ds.names == ["Bolt", "David", "Jogging.1", "Jogging.2"]
    np.testing.assert_allclose(ds.sequence(0).boxes_xywh, BOXES)
    assert [p.name for p in ds.sequence(1).frame_paths] == ["0300.jpg", "0301.jpg", "0302.jpg"]
    np.testing.assert_allclose(ds.sequence(3).boxes_xywh, BOXES[2:])


def test_otb_broken_layout(tmp_path):
    with pytest.raises(D.DatasetLayoutError, match=r"groundtruth_rect\.txt"):
        D.OTB(tmp_path)
    _save_boxes(tmp_path / "Bolt" / "groundtruth_rect.txt", BOXES)
    with pytest.raises(D.DatasetLayoutError, match=r"Bolt[/\\]img"):
        D.OTB(tmp_path)
    _touch_frames(tmp_path / "Bolt" / "img", ["0001.jpg"])
    with pytest.raises(D.DatasetLayoutError, match="4 boxes"):
        D.OTB(tmp_path).sequence(0)


def test_vot_polygons_and_boxes(tmp_path):
    _touch_frames(tmp_path / "ball" / "color", ["00000001.jpg", "00000002.jpg"])
    (tmp_path / "ball" / "groundtruth.txt").write_text("5,0,10,5,5,10,0,5\n2,3,4,5\n")
    _touch_frames(tmp_path / "old", ["00000001.jpg"])  # VOT2016 style: frames next to groundtruth.txt
    (tmp_path / "old" / "groundtruth.txt").write_text("1,1,3,1,3,4,1,4\n")
    (tmp_path / "list.txt").write_text("ball\nold\n")
    ds = D.VOT(tmp_path)
    seq = ds.sequence(0)
    np.testing.assert_allclose(seq.boxes_xywh, [[0, 0, 10, 10], [2, 3, 4, 5]])
    np.testing.assert_allclose(seq.polygons[1], [2, 3, 6, 3, 6, 8, 2, 8])
    assert len(ds.sequence(1)) == 1
    (tmp_path / "list.txt").write_text("ball\nmissing\n")
    with pytest.raises(D.DatasetLayoutError, match=r"missing[/\\]groundtruth\.txt"):
        D.VOT(tmp_path)


# ---------------------------------------------------------------------------------------------------------
# malformed annotation files: one line naming the file and line, found before any training starts


def _lasot_flags(root: Path) -> Path:
    _lasot(root)
    return root


def _vot(root: Path) -> Path:
    _touch_frames(root / "ball" / "color", ["00000001.jpg", "00000002.jpg"])
    (root / "ball" / "groundtruth.txt").write_text("5,0,10,5,5,10,0,5\n2,3,4,5\n")
    return root


# (reader, layout writer, annotation file under the root, its new content, the line the error must name)
MALFORMED = [
    (D.GOT10k, _got10k, "train/GOT-10k_Train_000001/groundtruth.txt", "1,2,3,4\n5,6,7\n1,1,1,1\n1,1,1,1\n", 2),
    (D.GOT10k, _got10k, "train/GOT-10k_Train_000001/groundtruth.txt", "1,2,3,4\n1,1,1,1\n1,1,x,1\n1,1,1,1\n", 3),
    (D.GOT10k, _got10k, "train/GOT-10k_Train_000001/cover.label", "8\n0\nseven\n5\n", 3),
    (D.LaSOT, _lasot_flags, "airplane/airplane-1/full_occlusion.txt", "0,1,?,0", 1),
    (D.VOT, _vot, "ball/groundtruth.txt", "5,0,10,5,5,10,0,5\n2,3,four,5\n", 2),
    # issue 23: infinite values (NaN stays "no box on this frame")
    (D.GOT10k, _got10k, "train/GOT-10k_Train_000001/groundtruth.txt", "1,2,3,4\n1,1,inf,1\n1,1,1,1\n1,1,1,1\n", 2),
    (D.GOT10k, _got10k, "train/GOT-10k_Train_000001/cover.label", "8\n0\ninf\n5\n", 3),
    (D.LaSOT, _lasot_flags, "airplane/airplane-1/full_occlusion.txt", "0,1,-inf,0", 1),
    (D.VOT, _vot, "ball/groundtruth.txt", "5,0,10,5,5,10,0,5\n2,3,inf,5\n", 2),
]


@pytest.mark.parametrize(("reader", "write", "rel", "content", "line"), MALFORMED,
                         ids=["got10k-short-row", "got10k-word", "got10k-label", "lasot-flag", "vot", "got10k-inf",
                              "got10k-label-inf", "lasot-flag-inf", "vot-inf"])
def test_check_annotations_names_the_malformed_file_and_line(tmp_path, reader, write, rel, content, line):
    write(tmp_path)
    ds = reader(tmp_path)  # opening checks only the layout, not every file's content
    (tmp_path / rel).write_text(content)
    with pytest.raises(InputError) as err:
        ds.check_annotations()
    msg = str(err.value)
    assert msg.startswith(f"{tmp_path / rel}:{line}: ") and "\n" not in msg, msg


def test_check_annotations_rejects_binary_files(tmp_path):
    _got10k(tmp_path)
    gt = tmp_path / "train" / "GOT-10k_Train_000001" / "groundtruth.txt"
    gt.write_bytes(b"\xff\xd8\xff\xe0 a JPEG by mistake")
    with pytest.raises(InputError, match=r"groundtruth\.txt: not a text annotation file") as err:
        D.GOT10k(tmp_path, "train").check_annotations()
    assert "\n" not in str(err.value)


def test_binary_list_file_is_one_line(tmp_path):
    _got10k(tmp_path)
    (tmp_path / "train" / "list.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff")
    with pytest.raises(InputError, match=r"list\.txt: not a text annotation file") as err:
        D.GOT10k(tmp_path, "train")
    assert "\n" not in str(err.value)


def test_check_annotations_passes_on_good_folders_and_youtubevos_checks_frames(tmp_path):
    for reader, write in {r: w for r, w, *_ in MALFORMED}.items():
        write(tmp_path / reader.name)
        reader(tmp_path / reader.name).check_annotations()  # no error on the well-formed layouts
    root = tmp_path / "ytvos"
    (root / "train" / "Annotations" / "v").mkdir(parents=True)
    (root / "train" / "meta.json").write_text(json.dumps({"videos": {"v": {"objects": {"1": {"frames": ["0", "5"]}}}}}))
    _touch_frames(root / "train" / "JPEGImages" / "v", ["0.jpg"])
    ds = D.YouTubeVOS(root)
    with pytest.raises(D.DatasetLayoutError, match=r"JPEGImages[/\\]v[/\\]5\.jpg"):
        ds.check_annotations()
    (root / "train" / "JPEGImages" / "v" / "5.jpg").write_bytes(b"")
    ds.check_annotations()
    (root / "train" / "Annotations" / "v" / "0.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match=r"could not read mask '.*0\.png'"):
        ds.sequence(0)


def test_sampler_checks_the_annotations_of_weighted_datasets(tmp_path):
    _got10k(tmp_path)
    gt = tmp_path / "train" / "GOT-10k_Train_000001" / "groundtruth.txt"
    gt.write_text("1,2,3,4\nnot a box\n")
    broken = D.GOT10k(tmp_path, "train")
    with pytest.raises(InputError, match=rf"{re.escape(str(gt))}:2: "):
        MixedSampler([broken])
    MixedSampler([_Fake("v", [3]), broken], weights=[1, 0])  # never drawn from, so not read
    MixedSampler([broken], check_annotations=False)  # the caller opted out: fails only when drawn


def test_open_dataset_by_name(tmp_path):
    _got10k(tmp_path, "val")
    assert isinstance(D.open_dataset("GOT-10k", tmp_path, split="val"), D.GOT10k)
    with pytest.raises(InputError, match="unknown dataset"):
        D.open_dataset("imagenet", tmp_path)


# ---------------------------------------------------------------------------------------------------------
# MixedSampler


class _Fake(D.VideoDataset):
    """In-memory dataset: sequence i has ``lengths[i]`` frames; frames listed in ``hidden`` are invisible."""

    def __init__(self, name: str, lengths: list[int], hidden: dict[int, set[int]] | None = None,
                 image: bool = False) -> None:
        super().__init__(Path("/nonexistent") / name)
        self.name, self.is_image_dataset = name, image
        self.lengths, self.hidden = lengths, hidden or {}
        self.names = [f"{name}{i}" for i in range(len(lengths))]

    def _load(self, i: int) -> D.VideoSequence:
        n = self.lengths[i]
        vis = np.array([k not in self.hidden.get(i, set()) for k in range(n)])
        return D.VideoSequence(self.names[i], [Path(f"{k}.jpg") for k in range(n)], np.ones((n, 4)), vis)


def _sampler(seed: int = 0, neg_rate: float = 0.2) -> MixedSampler:
    videos = _Fake("vid", [200, 150, 5], hidden={0: set(range(50, 200, 2)), 2: set(range(5))})
    images = _Fake("img", [1] * 30, image=True)
    return MixedSampler([videos, images], weights=[3, 1], frame_ranges=[10, 100], neg_rate=neg_rate, seed=seed)


def test_sampler_is_deterministic_and_order_independent():
    a, b = _sampler(seed=7), _sampler(seed=7)
    first = a.epoch(300)
    assert first == b.epoch(300)
    assert [b.sample(k) for k in reversed(range(300))] == first[::-1]  # pair k depends only on (seed, k)
    assert _sampler(seed=8).epoch(300) != first
    assert a.epoch(300, epoch=1) != first


def test_sampler_respects_visibility_range_weights_and_negative_rate():
    s = _sampler(seed=3, neg_rate=0.25)
    pairs = s.epoch(4000)
    neg = [p for p in pairs if not p.positive]
    assert 0.21 < len(neg) / len(pairs) < 0.29
    for p in neg:
        assert (p.template.dataset, p.template.sequence) != (p.search.dataset, p.search.sequence)
    for p in pairs:
        for ref in (p.template, p.search):
            assert s.sequence_of(ref).visible[ref.frame]  # never an invisible frame
            assert not (ref.dataset == 0 and ref.sequence == 2)  # the all-hidden sequence is never used
        if p.positive:
            assert p.search.sequence == p.template.sequence
            if p.template.dataset == 0:
                assert abs(p.search.frame - p.template.frame) <= 10
            else:
                assert p.search.frame == p.template.frame == 0
    share_videos = np.mean([p.template.dataset == 0 for p in pairs])
    assert 0.70 < share_videos < 0.80  # weights 3:1


def test_sampler_rejects_bad_configuration():
    with pytest.raises(InputError, match="weight"):
        MixedSampler([_Fake("v", [3])], weights=[1, 2])
    with pytest.raises(InputError, match="neg_rate"):
        MixedSampler([_Fake("v", [3])], neg_rate=1.5)
    with pytest.raises(InputError, match=r"no sequence with a visible frame.*dataset 'v'"):
        MixedSampler([_Fake("v", [3], hidden={0: {0, 1, 2}})], max_tries=5).sample(0)


@pytest.mark.parametrize("reader", [D.GOT10k, D.VOT, D.OTB, D.LaSOT])
def test_a_broken_layout_is_one_line_that_still_shows_the_layout(tmp_path, reader):
    with pytest.raises(D.DatasetLayoutError) as err:
        reader(tmp_path)
    msg = str(err.value)
    assert "\n" not in msg and "ROOT/" in msg and "; ROOT/" in msg, msg  # issue 23: every error is one line
