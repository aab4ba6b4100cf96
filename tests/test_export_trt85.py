"""The TensorRT 8.5 export profile (JetPack 5.1 on Xavier; export_choices.TRT_PROFILES): graphs its ONNX parser
takes, checked without TensorRT 8.5: opset 17 through the ONNX checker, no DeformConv-19 and no Conv whose
weights are computed (8.5 cannot build either), FP32 graphs whose FP16 islands are listed as layer constraints,
and parity with PyTorch in ONNX Runtime (the reference evaluator for our plugin node)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnx
import pytest

from siamattn import export_choices
from siamattn.config import load_config
from siamattn.errors import ConfigError
from siamattn.export.exporter import ExportOptions, export_model, resolve_profile
from siamattn.plugins import names as plugin_names


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict[str, Any]]]:
    out = {}
    for deform_conv in ("plugin", "gridsample"):
        path = tmp_path_factory.mktemp(f"trt85-{deform_conv}")
        opts = ExportOptions(precision="fp16", engine="none", trt_version="8.5", deform_conv=deform_conv)
        cfg = load_config("tiny", ["export.max_targets=1"])  # the batch graphs are not what this profile tests
        out[deform_conv] = (path, export_model(cfg, path, opts=opts, log=lambda s: None))
    return out


def _initializers(graph: onnx.GraphProto) -> set[str]:
    return {t.name for t in graph.initializer} | {n.output[0] for n in graph.node if n.op_type == "Constant"}


@pytest.mark.parametrize("deform_conv", ["plugin", "gridsample"])
def test_trt85_graphs_are_what_its_parser_takes(exports: dict, deform_conv: str) -> None:
    path, manifest = exports[deform_conv]
    profile = manifest["export"]["trt_profile"]
    assert profile["name"] == "8.5" and profile["opset"] == 17 and manifest["export"]["opset"] == 17
    assert profile["plugin_interface"] == "IPluginV2DynamicExt"
    assert profile["typing"] == "fp16-builder-flag+fp32-layer-constraints"
    assert manifest["export"]["xcorr"] == "shift_add"  # no dynamic-weight Conv before TensorRT 8.6
    assert profile["deform_conv_runs"].startswith("ours" if deform_conv == "plugin" else "none")
    for name in manifest["order"]:
        model = onnx.load(str(path / f"{name}.onnx"))
        onnx.checker.check_model(model, full_check=True)
        assert {o.domain or "": o.version for o in model.opset_import}.get("") == 17
        ops = {(n.domain or "", n.op_type) for n in model.graph.node}
        assert ("", "DeformConv") not in ops, name
        constants = _initializers(model.graph)
        dynamic_conv = [n.name for n in model.graph.node if n.op_type in ("Conv", "ConvTranspose")
                        and n.input[1] not in constants]
        assert not dynamic_conv, f"{name}: Conv with computed weights {dynamic_conv}"
        # FP32 graph types; the FP16 islands are layer precision constraints for the builder.
        assert all(t.data_type != onnx.TensorProto.FLOAT16 for t in model.graph.initializer), name
        entry = manifest["graphs"][name]
        if entry["precision"] == "fp16":
            assert entry["typing"] == "fp16-builder-flag" and entry["fp32_layers"], name
            node_names = {n.name for n in model.graph.node}
            assert set(entry["fp32_layers"]) <= node_names, name
    search_ops = {(n.domain, n.op_type) for n in onnx.load(str(path / "search.onnx")).graph.node}
    plugin_node = (plugin_names.ONNX_DOMAIN, plugin_names.CUSTOM_DEFORM_CONV.name)
    assert (plugin_node in search_ops) == (deform_conv == "plugin")


@pytest.mark.parametrize("deform_conv", ["plugin", "gridsample"])
def test_trt85_graphs_match_pytorch(exports: dict, deform_conv: str) -> None:
    _, manifest = exports[deform_conv]
    for name in manifest["order"]:
        for output, check in manifest["verification"][name].items():
            # FP32 graphs: the tolerance of the FP32 exports (docs/EXPORT.md).
            assert check["rel_err"] < 1e-4, (name, output, check)
            custom = (name == "search" and deform_conv == "plugin") or manifest["graphs"][name]["custom_ops"]
            assert check["runner"] == ("reference" if custom else "onnxruntime"), (name, check)


def test_profile_refuses_what_trt85_cannot_build() -> None:
    with pytest.raises(ConfigError, match=r"--xcorr conv cannot be built by TensorRT 8.5: use shift_add or unfold"):
        resolve_profile(ExportOptions(trt_version="8.5", xcorr="conv"), None)
    with pytest.raises(ConfigError, match=r"--deform-conv onnx cannot be built by TensorRT 8.5: use plugin or grid"):
        resolve_profile(ExportOptions(trt_version="8.5", deform_conv="onnx"), None)
    ten = resolve_profile(ExportOptions(), None)
    assert (ten.trt_version, ten.xcorr, ten.deform_conv) == ("10", "conv", "onnx")
    assert export_choices.trt_profile_for("8.5.2.2") == "8.5" and export_choices.trt_profile_for("11.1.0") == "11"
    why = export_choices.profile_mismatch("8.5", "tensorrt", "10.3.0")
    assert why is not None and "re-export with --trt-version 10" in why
    assert export_choices.profile_mismatch("10", "tensorrt-rtx", "1.7.1") is None


def _resize_model(**attrs: Any) -> onnx.ModelProto:
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 6, 8])
    scales = helper.make_tensor("scales", TensorProto.FLOAT, [4], [1.0, 1.0, 2.0, 2.0])
    node = helper.make_node("Resize", ["x", "", "scales"], ["y"], name="up", mode="linear", **attrs)
    graph = helper.make_graph([node], "g", [x], [y], initializer=[scales])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def test_resize_18_attributes_at_their_defaults_are_dropped_for_opset_17() -> None:
    """Newer torch writes Resize-18's antialias/keep_aspect_ratio_policy even at their defaults; opset 17 has
    neither, and the default values mean exactly Resize-13, so the down-converted graph computes the same."""
    import numpy as np
    import onnxruntime as ort

    from siamattn.export.errors import ExportError
    from siamattn.export.opset import downgrade_opset

    model = _resize_model(antialias=0, keep_aspect_ratio_policy="stretch")
    low = downgrade_opset(model, 17, "t")
    assert low.opset_import[0].version == 17
    assert {a.name for a in low.graph.node[0].attribute} == {"mode"}
    x = np.random.default_rng(0).standard_normal((1, 2, 3, 4)).astype(np.float32)
    run = [ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
           for m in (model, low)]
    np.testing.assert_array_equal(run[0], run[1])
    with pytest.raises(ExportError, match="antialias=1 has no opset 17 form"):
        downgrade_opset(_resize_model(antialias=1), 17, "t")
    with pytest.raises(ExportError, match="keep_aspect_ratio_policy=not_larger has no opset 17 form"):
        downgrade_opset(_resize_model(keep_aspect_ratio_policy="not_larger"), 17, "t")


def test_reshaped_weights_of_any_size_are_folded_into_constants() -> None:
    """A weight `view` feeding a Conv must reach the graph as a constant (TensorRT 8.5 builds no computed Conv
    weights), above onnxscript's folding size limit too; the folded graph computes the same."""
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from siamattn.export.postpass import optimize

    rng = np.random.default_rng(1)
    w = rng.standard_normal((64, 64 * 9)).astype(np.float32)  # 36864 elements: over onnxscript's 8192
    nodes = [helper.make_node("Reshape", ["w", "shape"], ["w4"]), helper.make_node("Conv", ["x", "w4"], ["y"])]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64, 7, 7])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64, 5, 5])],
        initializer=[numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.array([64, 64, 3, 3]), "shape")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    folded = optimize(model)
    assert [n.op_type for n in folded.graph.node] == ["Conv"]
    assert folded.graph.node[0].input[1] in _initializers(folded.graph)
    x = rng.standard_normal((1, 64, 7, 7)).astype(np.float32)
    run = [ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
           for m in (model, folded)]
    np.testing.assert_allclose(run[0], run[1], rtol=1e-6, atol=1e-6)
