"""assets/demo/evaluate_demo.py: one table for several checkpoints and the static box, with the mask IoU
against the generated masks beside the IoU of the tracker's filled box."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from siamattn.errors import MissingDependencyError

SCRIPT = Path(__file__).resolve().parents[1] / "assets" / "demo" / "evaluate_demo.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("evaluate_demo", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_iou_of_masks():
    ev = _load_script()
    a = np.zeros((10, 10), bool)
    b = np.zeros((10, 10), bool)
    a[:, :5] = True
    b[:, 3:8] = True
    assert ev._iou(a, b) == pytest.approx(20 / 80)
    assert ev._iou(a, a) == 1.0 and ev._iou(a, ~a) == 0.0


def _tiny_split(tmp_path: Path, length: int = 5, split: str = "tune") -> Path:
    """One generated sequence (real imagery) under tmp_path/gen/<split>."""
    G = pytest.importorskip("siamattn.training.generator")
    try:
        G.check_sources()
    except MissingDependencyError as exc:  # pragma: no cover - depends on the environment
        pytest.skip(f"generator imagery not installed: {exc}")
    G.generate(tmp_path / "gen", num_sequences=1, length=length, size=(128, 96), seed=0, split=split, progress=False)
    return tmp_path / "gen"


def test_two_checkpoints_and_the_static_box_in_one_table(tmp_path, monkeypatch):
    _tiny_split(tmp_path, length=4, split="val")
    ck = SCRIPT.parent / "model.pt"  # the shipped demo model: real weights, so real tracks and masks
    out = tmp_path / "eval"
    ev = _load_script()
    monkeypatch.setattr(sys, "argv", ["evaluate_demo.py", "--checkpoint", f"a={ck}", "--checkpoint", f"b={ck}",
                                      "--root", str(tmp_path / "gen"), "--out", str(out), "--threads", "1"])
    ev.main()
    res = json.loads((out / "comparison.json").read_text())
    assert list(res) == ["static", "a", "b"]
    assert "mask_iou" not in res["static"]
    for name in ("a", "b"):
        assert 0.0 <= res[name]["mask_iou"] <= 1.0 and 0.0 <= res[name]["box_fill_iou"] <= 1.0
        assert res[name]["mask_frames"] == 3  # frames 2..4, the target visible in each
    assert res["a"] == {**res["b"], "wall_seconds": res["a"]["wall_seconds"]}  # same weights, same numbers
    table = (out / "comparison.md").read_text()
    assert table.count("\n") == 5 and "| a |" in table and "| static |" in table


def test_set_overrides_the_checkpoints_tracker(tmp_path, monkeypatch):
    """--set reaches the tracker: with tracker.lr=0 the box never changes size (pysot's size update is
    size*(1-lr*penalty*score) + new*lr*penalty*score)."""
    root = _tiny_split(tmp_path)
    ev = _load_script()
    out = tmp_path / "eval"
    monkeypatch.setattr(sys, "argv", ["evaluate_demo.py", "--checkpoint", f"m={SCRIPT.parent / 'model.pt'}",
                                      "--root", str(root), "--split", "tune", "--out", str(out), "--threads", "1",
                                      "--no-static", "--set", "tracker.lr=0.0"])
    ev.main()
    boxes = np.loadtxt(next((out / "m").rglob("*_001.txt")), delimiter=",")
    assert len(boxes) == 5
    np.testing.assert_allclose(boxes[:, 2:], np.broadcast_to(boxes[0, 2:], boxes[:, 2:].shape), atol=1e-3)
    assert np.abs(boxes[1:, :2] - boxes[0, :2]).max() > 0.0  # it still moves: only the size is frozen


def test_tune_ranks_every_grid_point(tmp_path, monkeypatch):
    root = _tiny_split(tmp_path)
    spec = importlib.util.spec_from_file_location("tune_demo", SCRIPT.parent / "tune_demo.py")
    tune = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tune)
    monkeypatch.setattr(tune, "GRID", {"penalty_k": [0.1], "window_influence": [0.25, 0.9], "lr": [0.45]})
    monkeypatch.setattr(sys, "argv", ["tune_demo.py", "--checkpoint", str(SCRIPT.parent / "model.pt"),
                                      "--root", str(root), "--out", str(tmp_path / "tune"), "--workers", "1"])
    tune.main()
    res = json.loads((tmp_path / "tune" / "tune.json").read_text())
    pts = res["points"]
    assert sorted(p["window_influence"] for p in pts) == [0.25, 0.9]
    assert [p["success_auc"] for p in pts] == sorted((p["success_auc"] for p in pts), reverse=True)
    assert all(0.0 <= p["success_auc"] <= 1.0 and 0.0 <= p["got10k_ao"] <= 1.0 for p in pts)


def test_real_clip_scores_against_hand_labels():
    spec = importlib.util.spec_from_file_location("real_clips", SCRIPT.parent / "real_clips.py")
    rc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rc)
    labels = {0: (0.0, 0.0, 10.0, 10.0), 5: (10.0, 10.0, 10.0, 10.0), 9: (0.0, 0.0, 20.0, 10.0)}
    boxes = {0: (0.0, 0.0, 10.0, 10.0), 5: (15.0, 10.0, 10.0, 10.0), 9: (0.0, 0.0, 40.0, 20.0)}
    s = rc.score(boxes, labels)
    assert [f["frame"] for f in s["frames"]] == [5, 9]  # the init frame is not scored
    assert s["frames"][0]["iou"] == pytest.approx(50 / 150)
    assert s["frames"][0]["centre_error"] == pytest.approx(0.5)  # 5 px off a 10 px box
    assert s["frames"][1]["iou"] == pytest.approx(200 / 800) and s["frames"][1]["area_ratio"] == pytest.approx(4.0)
    assert s["min_iou"] == pytest.approx(0.25) and s["area_ratio_max"] == pytest.approx(4.0)
    # the shipped labels: every built-in clip has its init box, labelled frames inside its range; the bunny
    # starts from the demo's own box
    from siamattn.runtime.demo import DEMO_INIT

    clips = rc.load_clips()
    assert tuple(float(v) for v in clips["bunny"]["boxes"]["0"]) == DEMO_INIT
    for name, clip in clips.items():
        frames = sorted(int(k) for k in clip["boxes"])
        assert frames[0] == clip["start"] and frames[-1] <= clip["end"], name
        assert all(len(b) == 4 and b[2] > 0 and b[3] > 0 for b in clip["boxes"].values()), name


def test_size_probe_steps_from_scaled_ground_truth(tmp_path):
    import subprocess

    root = _tiny_split(tmp_path, length=4, split="val")
    out = tmp_path / "size.json"
    r = subprocess.run([sys.executable, str(SCRIPT.parent / "size_probe.py"), "--checkpoint",
                        str(SCRIPT.parent / "model.pt"), "--root", str(root), "--scales", "0.5", "2",
                        "--threads", "1", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    rows = json.loads(out.read_text())["rows"]
    assert [(x["box"], x["state_scale"]) for x in rows] == [("refined", 0.5), ("refined", 2.0), ("rpn", 0.5),
                                                           ("rpn", 2.0)]
    assert all(x["frames"] == 3 for x in rows)
    # the state's size reaches the model: a 4x larger state gives a larger box (no model reads sizes 4x apart
    # identically from crops that differ 4x in scale)
    for box in ("refined", "rpn"):
        small, large = (x for x in rows if x["box"] == box)
        assert large["median_log_w"] > small["median_log_w"] and large["median_log_h"] > small["median_log_h"]
    assert "| refined | 0.50 |" in r.stdout


def test_template_probe_reruns_from_a_relit_init_frame_and_from_labelled_frames():
    spec = importlib.util.spec_from_file_location("template_probe", SCRIPT.parent / "template_probe.py")
    tp = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tp)
    rng = np.random.default_rng(0)
    frames = []
    for k in range(7):  # a textured square sliding over noise
        f = rng.integers(0, 80, (120, 160, 3), dtype=np.uint8)
        f[40:80, 30 + 8 * k:70 + 8 * k] = 200 - 10 * k
        frames.append(f)
    labels = {k: (30.0 + 8 * k, 40.0, 40.0, 40.0) for k in (0, 3, 6)}
    out = tp.probe(str(SCRIPT.parent / "model.pt"), frames, labels, [1.0, 3.0])
    assert list(out) == ["as is", "init frame x1 light", "init frame x3 light", "init at labelled frame 3"]
    assert out["init frame x1 light"] == out["as is"]  # a gain of 1 is the plain run
    assert [f["frame"] for f in out["as is"]["frames"]] == [3, 6]
    assert [f["frame"] for f in out["init at labelled frame 3"]["frames"]] == [6]  # its own init not scored
    assert all(0.0 <= f["iou"] <= 1.0 for s in out.values() for f in s["frames"])


@pytest.mark.parametrize("script", ["ship_demo.py", "evaluate_demo.py", "tune_demo.py", "real_clips.py",
                                    "size_probe.py", "template_probe.py"])
def test_demo_scripts_say_a_missing_checkpoint_in_one_line(script, tmp_path):
    import subprocess

    args = {"ship_demo.py": ["--checkpoint", str(tmp_path / "no.pt"), "--out", str(tmp_path / "m.pt")],
            "evaluate_demo.py": ["--checkpoint", str(tmp_path / "no.pt"), "--root", str(tmp_path), "--out",
                                 str(tmp_path / "e"), "--no-static"],
            "tune_demo.py": ["--checkpoint", str(tmp_path / "no.pt"), "--root", str(tmp_path), "--out",
                             str(tmp_path / "t"), "--workers", "1"],
            "real_clips.py": ["--checkpoint", f"a={tmp_path / 'no.pt'}", "--out", str(tmp_path / "s.png")],
            "size_probe.py": ["--checkpoint", str(tmp_path / "no.pt"), "--root", str(tmp_path)],
            "template_probe.py": ["--checkpoint", str(tmp_path / "no.pt")]}[script]
    r = subprocess.run([sys.executable, str(SCRIPT.parent / script), *args], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines() == [f"error: checkpoint '{tmp_path / 'no.pt'}' does not exist"], r.stderr
    assert not (tmp_path / "m.pt").exists()
