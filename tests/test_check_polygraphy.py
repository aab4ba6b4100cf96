"""``siamattn check --polygraphy DIR`` (issue 13): per graph, real-frame inputs and PyTorch reference outputs in
polygraphy's formats; polygraphy's own ONNX Runtime runner compares the export with them (as its TensorRT runner
does on a device), and a planted change of the reference fails that comparison."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("polygraphy", reason="polygraphy is part of the export extra: pip install '.[export]'")

from test_runtime_check import BUNNY_INIT, _bunny, _demo_export

GRAPHS = ("template", "search", "refine_box", "refine_mask")


def _polygraphy() -> list[str]:
    exe = Path(sys.executable).with_name("polygraphy")
    if not exe.is_file():
        pytest.skip(f"polygraphy's command is not next to {sys.executable}")
    return [str(exe)]


def _compare(model_dir: Path, data: Path, graph: str) -> subprocess.CompletedProcess:
    # FP32 export vs PyTorch FP32: the check's FP32 graph errors are ~1e-5 of range (docs/CHECK.md)
    cmd = [*_polygraphy(), "run", str(model_dir / f"{graph}.onnx"), "--onnxrt",
           "--load-inputs", str(data / f"{graph}_inputs.json"), "--load-outputs", str(data / f"{graph}_outputs.json"),
           "--atol", "1e-4", "--rtol", "1e-3"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    import cv2

    from siamattn.cli import main

    model_dir = _demo_export()
    tmp = tmp_path_factory.mktemp("poly")
    clip = tmp / "clip"
    clip.mkdir()
    for i, frame in enumerate(_bunny(4)):
        cv2.imwrite(str(clip / f"{i:04d}.png"), frame)
    init = ",".join(str(int(v)) for v in BUNNY_INIT)
    rc = main(["check", "--model", str(model_dir), "--source", str(clip), "--init", init, "--backend", "onnxruntime",
               "--device", "cpu", "--out", str(tmp / "report"), "--polygraphy", str(tmp / "poly"), "--quiet"])
    assert rc == 0
    return model_dir, tmp / "poly", json.loads((tmp / "poly" / "index.json").read_text())


def test_files_hold_every_graph_call_of_the_recorded_frames(written):
    from polygraphy.comparator import RunResults
    from polygraphy.json import load_json

    _, data, index = written
    assert set(index["graphs"]) == set(GRAPHS)
    calls = {g: index["graphs"][g]["calls"] for g in GRAPHS}
    assert calls["template"] == 1 and calls["search"] == 2  # 3 frames by default: one initialises, two track
    feeds = load_json(str(data / "search_inputs.json"))
    assert len(feeds) == 2 and feeds[0]["x"].shape == (1, 3, 255, 255)
    assert not np.array_equal(feeds[0]["x"], feeds[1]["x"])  # two real frames' crops
    results = RunResults.load(str(data / "search_outputs.json"))
    ((runner, iterations),) = list(results.items())
    assert runner == "pytorch-fp32" and len(iterations) == 2 and {"cls", "loc"} <= set(iterations[0].keys())
    assert load_json(str(data / "refine_box_inputs.json"))[0]["rois"].shape == (1, 5)


@pytest.mark.parametrize("graph", GRAPHS)
def test_polygraphy_onnxruntime_runner_compares_clean(written, graph):
    model_dir, data, _ = written
    run = _compare(model_dir, data, graph)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "PASSED" in run.stdout + run.stderr


def test_a_changed_reference_fails_polygraphy(written, tmp_path):
    from polygraphy.comparator import RunResults

    model_dir, data, _ = written
    bad = tmp_path / "bad"
    shutil.copytree(data, bad)
    results = RunResults.load(str(bad / "search_outputs.json"))
    for _, iterations in results.items():
        for it in iterations:
            it["loc"] = it["loc"] * np.float32(1.03)
    results.save(str(bad / "search_outputs.json"))
    run = _compare(model_dir, bad, "search")
    assert run.returncode != 0 and "FAILED" in run.stdout + run.stderr
