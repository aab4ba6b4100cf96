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


def test_two_checkpoints_and_the_static_box_in_one_table(tmp_path, monkeypatch):
    G = pytest.importorskip("siamattn.training.generator")
    try:
        G.check_sources()
    except MissingDependencyError as exc:  # pragma: no cover - depends on the environment
        pytest.skip(f"generator imagery not installed: {exc}")
    G.generate(tmp_path / "gen", num_sequences=1, length=4, size=(128, 96), seed=0, split="val", progress=False)
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
