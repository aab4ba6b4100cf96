"""Evaluation metrics on hand-computed cases, the VOT reset protocol with a scripted fake tracker, and a
cross-check against the got10k toolkit (PyPI got10k 0.1.3) on the same result files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from siamattn.errors import InputError
from siamattn.toolkit import evaluate as E
from siamattn.toolkit import metrics as M

# ---------------------------------------------------------------------------------------------------------
# boxes and curves


def test_iou_and_center_errors_hand_computed():
    a = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]], float)
    b = np.array([[5, 0, 10, 10], [20, 20, 5, 5], [0, 0, 10, 10]], float)
    np.testing.assert_allclose(M.iou_xywh_rows(a, b), [50 / 150, 0.0, 1.0])
    # centre x + (w - 1) / 2: (4.5, 4.5) vs (7.5, 8.5) -> 3-4-5 triangle
    assert M.center_errors(np.array([[0, 0, 10, 10.0]]), np.array([[3, 4, 10, 10.0]]))[0] == pytest.approx(5.0)
    # normalized by the ground-truth size per axis: (5 / 10, 0 / 20)
    assert M.normalized_center_errors(np.array([[5, 0, 10, 20.0]]), np.array([[0, 0, 10, 20.0]]))[0] == \
        pytest.approx(0.5)


def test_success_curve_is_strictly_greater_and_auc_is_its_mean():
    curve = M.success_curve(np.array([0.0, 0.5, 1.0]))
    assert curve.shape == (21,)
    assert curve[0] == pytest.approx(2 / 3)  # IoU 0 is not > 0
    assert curve[10] == pytest.approx(1 / 3)  # 0.5 is not > 0.5
    assert curve[20] == 0.0  # nothing is > 1
    # 0.5 beats thresholds 0..0.45 (10 of 21), 1.0 beats 0..0.95 (20 of 21)
    assert curve.mean() == pytest.approx((10 + 20) / 3 / 21)


def test_precision_counts_errors_at_most_the_threshold():
    curve = M.precision_curve(np.array([0.0, 20.0, 20.5]))
    assert curve[M.PRECISION_AT] == pytest.approx(2 / 3)
    assert curve[0] == pytest.approx(1 / 3) and curve[21] == 1.0


def test_ope_sequence_replaces_first_frame_and_skips_invalid_ground_truth():
    gt = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 0, 0], [0, 0, 10, 10]], float)
    pred = np.array([[50, 50, 5, 5], [0, 0, 10, 10], [0, 0, 10, 10], [5, 0, 10, 10]], float)
    s = M.ope_sequence(pred, gt)
    assert s.num_frames == 3  # the (0, 0, 0, 0) frame does not count
    # frames: 0 -> replaced by gt (IoU 1), 1 -> IoU 1, 3 -> IoU 1/3
    expected = M.success_curve(np.array([1.0, 1.0, 1 / 3]))
    np.testing.assert_allclose(s.success_curve, expected)
    # centre errors 0, 0, 5 -> all within 20 px, one beyond 4 px
    assert s.precision == 1.0 and s.precision_curve[4] == pytest.approx(2 / 3)
    # normalized errors 0, 0, 0.5 -> 2/3 within 0.20
    assert s.norm_precision == pytest.approx(2 / 3)
    avg = M.ope_average([s, M.ope_sequence(gt[[0, 1]], gt[[0, 1]])])
    assert avg.success_auc == pytest.approx((s.success_auc + 20 / 21) / 2)


def test_got10k_clips_to_image_skips_first_frame_and_cover_zero():
    gt = np.array([[90, 0, 10, 10]] * 4, float)
    run = np.array([[90, 0, 10, 10], [95, 0, 20, 10], [90, 0, 10, 10], [85, 0, 10, 10]], float)
    cover = np.array([8, 8, 0, 8])
    ious = M.got10k_sequence_ious([run], gt, cover, (100, 100))
    # frame 1: [95,0,20,10] clipped to the 100-px-wide image is [95,0,5,10] -> IoU 50/100 (0.2 unclipped);
    # frame 2 dropped (cover 0); frame 3: IoU 50/150
    np.testing.assert_allclose(ious, [0.5, 1 / 3])
    # got10k's clipping moves x into the image but does not shorten w by the part left of 0
    np.testing.assert_allclose(M.clip_boxes(np.array([[-10, 0, 20, 10.0]]), 100, 100), [[0, 0, 20, 10]])
    s = M.got10k_scores([ious, np.array([0.8])])
    assert s.ao == pytest.approx((0.5 + 1 / 3 + 0.8) / 3)
    assert s.sr50 == pytest.approx(1 / 3) and s.sr75 == pytest.approx(1 / 3)
    assert s.success_curve.shape == (101,)


# ---------------------------------------------------------------------------------------------------------
# VOT


def test_region_overlap_polygons_and_bounds():
    diamond = [5, 0, 10, 5, 5, 10, 0, 5]  # area 50, inside the 10x10 square
    assert M.region_overlap([0, 0, 10, 10], diamond) == pytest.approx(0.5)
    assert M.region_overlap(diamond, [0, 0, 10, 10]) == pytest.approx(0.5)
    assert M.region_overlap([0, 0, 10, 10], [20, 20, 5, 5]) == 0.0
    # clipped to the 100x100 image, [-5, 0, 10, 10] is [0, 0, 5, 10]: IoU with it is 1
    assert M.region_overlap([-5, 0, 10, 10], [0, 0, 5, 10], bounds=(100, 100)) == pytest.approx(1.0)
    assert M.region_overlap([-5, 0, 10, 10], [0, 0, 5, 10]) == pytest.approx(0.5)
    # axis-aligned init box of the diamond keeps its area (50) around its centre (5, 5)
    x, y, w, h = M.vot_init_box(diamond)
    assert w * h == pytest.approx(50.0) and x + w / 2 == pytest.approx(5.0) and y + h / 2 == pytest.approx(5.0)
    np.testing.assert_allclose(M.vot_init_box(M.region_polygon([3, 4, 10, 20]).reshape(-1)), [3, 4, 10, 20])


GT_BOX = np.array([10.0, 10.0, 20.0, 20.0])


def _fake_tracker(fail_at: set[int], calls: list[int]):
    """Perfect until frame 30, half-width box (IoU 0.5) afterwards, a far box (overlap 0) at ``fail_at``.
    Frames are named by their absolute index; yields lazily and records which frames it processed."""

    def track(frames, init_box):
        for path in frames:
            k = int(Path(path).stem)
            calls.append(k)
            if k in fail_at:
                yield [80.0, 80.0, 5.0, 5.0]
            elif k >= 30:
                yield [10.0, 10.0, 10.0, 20.0]
            else:
                yield GT_BOX.tolist()

    return track


def _vot_run(n: int, fail_at: set[int]):
    frames = [f"{k}.jpg" for k in range(n)]
    gt = np.tile(M.region_polygon(GT_BOX).reshape(-1), (n, 1))
    calls: list[int] = []
    traj = M.run_reset_protocol(frames, gt, _fake_tracker(fail_at, calls), (100, 100))
    return traj, gt, calls


def test_reset_protocol_failures_skips_and_reinit():
    traj, _, calls = _vot_run(60, {15, 40})
    flags = {k: int(r[0]) for k, r in enumerate(traj) if len(r) == 1}
    assert flags == {0: 1, 15: 2, 16: 0, 17: 0, 18: 0, 19: 0, 20: 1, 40: 2, 41: 0, 42: 0, 43: 0, 44: 0, 45: 1}
    # the generator was stopped at each failure: frames 16..19 and 41..44 were never tracked
    assert not set(calls) & {16, 17, 18, 19, 41, 42, 43, 44}
    assert M.trajectory_failures(traj) == [15, 40]


def test_reset_protocol_failure_inside_the_skip_window_is_not_counted():
    traj, _, _ = _vot_run(30, {7, 9, 20})  # 9 falls in the frames skipped after 7
    assert M.trajectory_failures(traj) == [7, 20]
    assert [k for k, r in enumerate(traj) if len(r) == 1 and r[0] == 1] == [0, 12, 25]


def test_vot_accuracy_robustness_eao_hand_computed():
    traj, gt, _ = _vot_run(60, {15, 40})
    # accuracy: burn-in hides 0..9, 20..29, 45..54 -> frames 10..14 (IoU 1), 30..39 and 55..59 (IoU 0.5)
    # EAO ranges count frames including the initialisation: lengths 2..10 are curve indices 1..9
    s = M.vot_scores({"s": traj}, {"s": gt}, {"s": (100, 100)}, eao_range=(2, 10))
    assert s.accuracy == pytest.approx((5 * 1.0 + 15 * 0.5) / 20)
    assert s.failures == 2 and s.robustness == pytest.approx(2 / 60 * 100)
    # fragments start at 0, 20, 45. For indices 1..9 all three are known: means 1, 1 and 0.5
    assert s.eao == pytest.approx((1 + 1 + 0.5) / 3)
    phi = s.expected_overlaps
    assert phi[0] == 1.0
    # length 10: fragment 2's 10th frame (frame 30) has IoU 0.5
    assert phi[10] == pytest.approx((1 + (9 + 0.5) / 10 + 0.5) / 3)
    # length 15: the last fragment (15 frames long) is no longer known; fragment 1 covered 14 frames
    # of IoU 1 then failed (0); fragment 2 has 9 x 1 and 6 x 0.5
    assert phi[15] == pytest.approx((14 / 15 + (9 + 3) / 15) / 2)
    assert M.eao_from_curve(phi, (16, 16)) == pytest.approx(phi[15])
    assert M.eao_from_curve(phi, (1, 10)) == pytest.approx((1 + 9 * (1 + 1 + 0.5) / 3) / 10)


def test_vot_perfect_tracker_has_eao_one_and_no_failures():
    traj, gt, _ = _vot_run(30, set())  # frames < 30 are tracked exactly
    s = M.vot_scores({"s": traj}, {"s": gt}, {"s": (100, 100)}, eao_range=(5, 20))
    assert s.failures == 0 and s.robustness == 0.0 and s.accuracy == pytest.approx(1.0)
    assert s.eao == pytest.approx(1.0)


def test_reset_protocol_rejects_short_outputs():
    def short(frames, init_box):
        return [GT_BOX.tolist()] * 2

    with pytest.raises(ValueError, match="fewer boxes"):
        M.run_reset_protocol([f"{k}.jpg" for k in range(5)], np.tile(GT_BOX, (5, 1)), short, (100, 100))


# ---------------------------------------------------------------------------------------------------------
# results folders, plots and the got10k cross-check

OTB_NAMES = ["Basketball", "Bolt", "Jogging"]  # real OTB-2015 names (Jogging has two targets)


def _noisy_results(gt: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Predictions spanning the whole IoU / centre-error range: small jitter, big misses, boxes that
    leave the image."""
    pred = gt.copy()
    n = len(gt)
    pred[:, :2] += rng.normal(0, 6, (n, 2))
    pred[:, 2:] *= rng.uniform(0.6, 1.4, (n, 2))
    far = rng.random(n) < 0.2
    pred[far, :2] += rng.uniform(-80, 80, (far.sum(), 2))
    return np.round(pred, 3)


def _gt_track(n: int, rng: np.random.Generator, size=(160, 120)) -> np.ndarray:
    xy = np.cumsum(rng.normal(0, 3, (n, 2)), axis=0) + np.array([size[0] / 3, size[1] / 3])
    wh = np.abs(rng.normal([40, 30], 4, (n, 2))) + 5
    return np.round(np.hstack([xy, wh]), 2)


def _tiny_jpg(path: Path, size=(160, 120)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((size[1], size[0], 3), 90, np.uint8))


def _make_otb(root: Path, rng: np.random.Generator) -> dict[str, np.ndarray]:
    gts = {}
    for name in OTB_NAMES:
        n = int(rng.integers(12, 30))
        for k in range(n):
            _tiny_jpg(root / name / "img" / f"{k + 1:04d}.jpg")
        if name == "Jogging":
            for t in (1, 2):
                gt = _gt_track(n, rng)
                np.savetxt(root / name / f"groundtruth_rect.{t}.txt", gt, fmt="%.2f", delimiter="\t")
                gts[f"Jogging.{t}"] = gt
        else:
            gt = _gt_track(n, rng)
            np.savetxt(root / name / "groundtruth_rect.txt", gt, fmt="%.2f", delimiter=",")
            gts[name] = gt
    return gts


def _make_got10k_val(root: Path, rng: np.random.Generator, size=(160, 120)) -> dict[str, np.ndarray]:
    gts = {}
    names = [f"GOT-10k_Val_{k:06d}" for k in range(1, 4)]
    (root / "val").mkdir(parents=True)
    (root / "val" / "list.txt").write_text("\n".join(names) + "\n")
    for name in names:
        d = root / "val" / name
        n = int(rng.integers(12, 30))
        for k in range(n):
            _tiny_jpg(d / f"{k + 1:08d}.jpg", size)
        gt = _gt_track(n, rng, size)
        gt[rng.random(n) < 0.15, 0] = -12.0  # some boxes hang off the image: the bound clipping matters
        np.savetxt(d / "groundtruth.txt", gt, fmt="%.4f", delimiter=",")
        cover = rng.integers(0, 9, n)
        cover[0] = 8
        absence = (cover == 0).astype(int)
        for label, values in (("cover", cover), ("absence", absence), ("cut_by_image", np.zeros(n, int))):
            np.savetxt(d / f"{label}.label", values, fmt="%d")
        (d / "meta_info.ini").write_text(
            "[METAINFO]\nurl: https://example.invalid/v\nobject_class: test\nmotion_class: test\n"
            f"resolution: ({size[0]}, {size[1]})\n")
        gts[name] = gt
    return gts


@pytest.fixture(scope="module")
def otb_case(tmp_path_factory):
    rng = np.random.default_rng(1)
    root = tmp_path_factory.mktemp("otb")
    gts = _make_otb(root / "data", rng)
    results = root / "results" / "T"
    results.mkdir(parents=True)
    for name, gt in gts.items():
        np.savetxt(results / f"{name}.txt", _noisy_results(gt, rng), fmt="%.3f", delimiter=",")
    return root, gts


def test_evaluate_results_otb_writes_summary_and_plots(otb_case, tmp_path):
    root, gts = otb_case
    summary = E.evaluate_results("otb", root / "data", root / "results" / "T", tmp_path, tracker_name="T")
    assert set(summary["sequences"]) == set(gts)
    stored = json.loads((tmp_path / "summary.json").read_text())
    assert stored["overall"]["success_auc"] == pytest.approx(summary["overall"]["success_auc"])
    assert 0.0 < summary["overall"]["success_auc"] < 1.0
    for png in ("success_plot.png", "precision_plot.png"):
        img = cv2.imread(str(tmp_path / png))
        assert img is not None and img.shape[0] > 100 and img.std() > 5  # a real, non-blank figure
    # the same numbers directly from the metric functions
    direct = M.ope_average(M.ope_sequence(np.loadtxt(root / "results" / "T" / f"{n}.txt", delimiter=","), g)
                           for n, g in gts.items())
    assert summary["overall"]["success_auc"] == pytest.approx(direct.success_auc, abs=1e-12)


_NO_TORCH = """
import importlib, json, pkgutil, sys

class _BlockTorch:  # as if torch were not installed
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)", name=name)

sys.meta_path.insert(0, _BlockTorch())
import siamattn.toolkit.datasets as D
mods = ["siamattn.toolkit.metrics", "siamattn.toolkit.evaluate",
        *(f"siamattn.toolkit.datasets.{m.name}" for m in pkgutil.iter_modules(D.__path__))]
for m in mods:
    importlib.import_module(m)
from siamattn.toolkit.evaluate import evaluate_results
s = evaluate_results("otb", sys.argv[1], sys.argv[2], sys.argv[3], tracker_name="T")
print(json.dumps({"modules": mods, "auc": s["overall"]["success_auc"], "torch": "torch" in sys.modules}))
"""


def test_toolkit_imports_and_scores_without_torch(otb_case, tmp_path):
    """The toolkit installs with the torch-free core: every module imports and a benchmark is scored (plots
    included) with torch unimportable."""
    root, _ = otb_case
    run = subprocess.run([sys.executable, "-c", _NO_TORCH, str(root / "data"), str(root / "results" / "T"),
                          str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert not out["torch"]
    assert {"siamattn.toolkit.datasets.got10k", "siamattn.toolkit.datasets.coco"} <= set(out["modules"])
    assert (tmp_path / "success_plot.png").is_file()
    with_torch = E.evaluate_results("otb", root / "data", root / "results" / "T", None, tracker_name="T", plots=False)
    assert out["auc"] == pytest.approx(with_torch["overall"]["success_auc"], abs=1e-12)


def test_evaluate_results_reports_missing_result_file(otb_case, tmp_path):
    root, _ = otb_case
    with pytest.raises(InputError, match=r"Basketball\.txt"):
        E.evaluate_results("otb", root / "data", tmp_path, None)


def _import_got10k():
    try:
        import got10k.datasets
        import got10k.experiments
    except ImportError as exc:
        pytest.skip(f"got10k toolkit not installed (pip install got10k==0.1.3 six): {exc}")
    return got10k.datasets, got10k.experiments


def test_otb_matches_got10k_toolkit(otb_case, tmp_path):
    datasets, experiments = _import_got10k()
    root, gts = otb_case
    exp = experiments.ExperimentOTB.__new__(experiments.ExperimentOTB)  # __init__ would download OTB
    exp.dataset = datasets.OTB(str(root / "data"), 2015, download=False)
    exp.result_dir, exp.report_dir = str(root / "results"), str(tmp_path / "reports")
    exp.nbins_iou, exp.nbins_ce = 21, 51
    exp.plot_curves = lambda names: None  # its 300-dpi figures only cost time here
    assert sorted(exp.dataset.seq_names) == sorted(gts)
    theirs = exp.report(["T"])["T"]
    ours = E.evaluate_results("otb", root / "data", root / "results" / "T", None, tracker_name="T")
    assert ours["overall"]["success_auc"] == pytest.approx(theirs["overall"]["success_score"], abs=1e-6)
    assert ours["overall"]["precision"] == pytest.approx(theirs["overall"]["precision_score"], abs=1e-6)
    assert ours["overall"]["success_rate"] == pytest.approx(theirs["overall"]["success_rate"], abs=1e-6)
    np.testing.assert_allclose(ours["overall"]["success_curve"], theirs["overall"]["success_curve"], atol=1e-6)
    np.testing.assert_allclose(ours["overall"]["precision_curve"], theirs["overall"]["precision_curve"], atol=1e-6)
    for name, seq in theirs["seq_wise"].items():
        assert ours["sequences"][name]["success_auc"] == pytest.approx(seq["success_score"], abs=1e-6)
        assert ours["sequences"][name]["precision"] == pytest.approx(seq["precision_score"], abs=1e-6)


def test_got10k_matches_got10k_toolkit(tmp_path):
    datasets, experiments = _import_got10k()
    rng = np.random.default_rng(2)
    gts = _make_got10k_val(tmp_path / "data", rng)
    results = tmp_path / "results" / "GOT-10k" / "T"
    for name, gt in gts.items():
        for rep in (1, 2):  # two repetitions, as a non-deterministic tracker would write
            d = results / name
            d.mkdir(parents=True, exist_ok=True)
            np.savetxt(d / f"{name}_{rep:03d}.txt", _noisy_results(gt, rng), fmt="%.3f", delimiter=",")
        np.savetxt(results / name / f"{name}_time.txt", np.full(len(gt), 0.01), fmt="%.8f")
    exp = experiments.ExperimentGOT10k(str(tmp_path / "data"), subset="val", result_dir=str(tmp_path / "results"),
                                       report_dir=str(tmp_path / "reports"))
    exp.plot_curves = lambda files, names: None
    theirs = exp.report(["T"])["T"]
    ours = E.evaluate_results("got10k", tmp_path / "data", results, tmp_path / "ours", tracker_name="T")
    assert ours["overall"]["ao"] == pytest.approx(theirs["overall"]["ao"], abs=1e-6)
    assert ours["overall"]["sr50"] == pytest.approx(theirs["overall"]["sr"], abs=1e-6)
    np.testing.assert_allclose(ours["overall"]["success_curve"], theirs["overall"]["succ_curve"], atol=1e-6)
    assert ours["overall"]["sr75"] == pytest.approx(theirs["overall"]["succ_curve"][75], abs=1e-6)
    for name, seq in theirs["seq_wise"].items():
        assert ours["sequences"][name]["ao"] == pytest.approx(seq["ao"], abs=1e-6)
        assert ours["sequences"][name]["sr50"] == pytest.approx(seq["sr"], abs=1e-6)
    assert (tmp_path / "ours" / "success_plot.png").exists()
    # and the toolkit's own dataset class reads the same folder as our reader
    ds = datasets.GOT10k(str(tmp_path / "data"), subset="val", return_meta=True)
    for name, gt in gts.items():
        files, anno, meta = ds[name]
        np.testing.assert_allclose(anno, gt, atol=1e-4)
        assert meta["resolution"] == "(160, 120)"


def test_evaluate_runs_a_tracker_end_to_end(otb_case, tmp_path):
    root, gts = otb_case
    seen = []

    def tracker(frames, init_box):  # never moves: the baseline the demo model must beat
        seen.append(len(frames))
        return [init_box] * len(frames)

    summary = E.evaluate("otb", root / "data", tracker, tmp_path, tracker_name="static", progress=False)
    assert sorted(seen) == sorted(len(g) for g in gts.values())
    for name, gt in gts.items():
        written = np.loadtxt(tmp_path / "results" / "static" / f"{name}.txt", delimiter=",")
        np.testing.assert_allclose(written, np.tile(gt[0], (len(gt), 1)), atol=1e-4)
    assert (tmp_path / "summary.json").exists() and (tmp_path / "success_plot.png").exists()
    assert 0.0 < summary["overall"]["success_auc"] < 1.0


def test_evaluate_vot_writes_flags_and_scores(tmp_path):
    root = tmp_path / "vot"
    n = 40
    for k in range(n):
        _tiny_jpg(root / "seq" / "color" / f"{k + 1:08d}.jpg", (100, 100))
    poly = M.region_polygon(GT_BOX).reshape(-1)
    np.savetxt(root / "seq" / "groundtruth.txt", np.tile(poly, (n, 1)), fmt="%.2f", delimiter=",")
    (root / "list.txt").write_text("seq\n")
    calls: list[int] = []

    def tracker(frames, init_box):
        for path in frames:
            k = int(Path(path).stem) - 1
            calls.append(k)
            yield [80.0, 80.0, 5.0, 5.0] if k == 15 else GT_BOX.tolist()

    summary = E.evaluate("vot2018", root, tracker, tmp_path / "out", progress=False)
    lines = (tmp_path / "out" / "results" / "siamattn" / "baseline" / "seq" / "seq_001.txt").read_text().split()
    assert lines[0] == "1" and lines[15] == "2" and lines[16:20] == ["0"] * 4 and lines[20] == "1"
    assert summary["overall"]["failures"] == 1
    assert summary["overall"]["robustness"] == pytest.approx(100 / 40)
    assert (tmp_path / "out" / "expected_overlap_plot.png").exists()


def test_evaluate_results_lasot_has_normalized_precision(tmp_path):
    d = tmp_path / "lasot" / "cat" / "cat-1"
    gt = np.array([[10, 10, 20, 40]] * 4, float)
    for k in range(4):
        _tiny_jpg(d / "img" / f"{k + 1:08d}.jpg")
    np.savetxt(d / "groundtruth.txt", gt, fmt="%.1f", delimiter=",")
    (d / "full_occlusion.txt").write_text("0,0,0,0")
    (d / "out_of_view.txt").write_text("0,0,0,0")
    pred = gt.copy()
    pred[2, 0] += 4  # offset 4 px on a 20-px-wide target: normalized 0.2 -> still within 0.20
    pred[3, 1] += 10  # offset 10 px on a 40-px-high target: normalized 0.25 -> a miss at 0.20
    (tmp_path / "res").mkdir()
    np.savetxt(tmp_path / "res" / "cat-1.txt", pred, fmt="%.1f", delimiter=",")
    s = E.evaluate_results("lasot", tmp_path / "lasot", tmp_path / "res", tmp_path / "out")["overall"]
    assert s["norm_precision"] == pytest.approx(3 / 4)
    assert s["precision"] == 1.0  # both offsets are within 20 px
    assert (tmp_path / "out" / "norm_precision_plot.png").exists()
