"""The TensorRT plugin library inside TensorRT-RTX: load it, parse ONNX graphs with a standard DeformConv node
and a custom DeformRoIPool node, build engines ahead of time (no GPU needed), FP32 and FP16 (strongly typed).

Attributes are shown to arrive by their effects: output shapes that depend on pads/strides/output size, and
builds that fail with the plugin's own message when an attribute contradicts the tensors.
Skips, naming what is missing, when the TensorRT headers (so the plugin library) or TensorRT-RTX are absent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from siamattn.plugins.testing import trt_plugin_library_or_skip  # noqa: E402

F32, F16 = TensorProto.FLOAT, TensorProto.FLOAT16


@pytest.fixture(scope="module")
def plugin_library() -> Path:
    try:
        import tensorrt_rtx_bindings  # noqa: F401
    except ImportError:
        pytest.skip("TensorRT-RTX is not installed (pip install 'siamattn-trt[tensorrt-rtx]')")
    return trt_plugin_library_or_skip()


def _np(dt: int):
    return np.float16 if dt == F16 else np.float32


def _model(nodes, inputs, outputs, inits=(), domains=()) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(*i) for i in inputs],
                              [helper.make_tensor_value_info(o, dt, None) for o, dt in outputs],
                              initializer=list(inits))
    opsets = [helper.make_opsetid("", 19)] + [helper.make_opsetid(d, 1) for d in domains]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 9
    return model


def _deform_conv(dt, n, c, h, w, m, *, op="DeformConv", domain="", mask=False, **attrs) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    kh, kw = attrs.get("kernel_shape", (3, 3)) if "weight_kernel" not in attrs else attrs.pop("weight_kernel")
    pads = attrs.get("pads", [0, 0, 0, 0])
    sh, sw = attrs.get("strides", [1, 1])
    dh, dw = attrs.get("dilations", [1, 1])
    og = attrs.pop("offset_channels_group", attrs.get("offset_group", 1))
    oh = (h + pads[0] + pads[2] - dh * (kh - 1) - 1) // sh + 1
    ow = (w + pads[1] + pads[3] - dw * (kw - 1) - 1) // sw + 1
    weight = numpy_helper.from_array(rng.standard_normal((m, c // attrs.get("group", 1), kh, kw)).astype(_np(dt)), "W")
    bias = numpy_helper.from_array(rng.standard_normal(m).astype(_np(dt)), "B")
    names = ["X", "W", "offset", "B"] + (["mask"] if mask else [])
    inputs = [("X", dt, [n, c, h, w]), ("offset", dt, [n, og * 2 * kh * kw, oh, ow])]
    if mask:
        inputs.append(("mask", dt, [n, og * kh * kw, oh, ow]))
    node = helper.make_node(op, names, ["Y"], domain=domain, **attrs)
    return _model([node], inputs, [("Y", dt)], [weight, bias], [domain] if domain else [])


def _roi_pool(feat_dt, rois_dt, *, with_offset=True, ph=4, pw=3, **attrs) -> onnx.ModelProto:
    names = ["feat", "rois"] + (["offset"] if with_offset else [])
    inputs = [("feat", feat_dt, [2, 16, 25, 25]), ("rois", rois_dt, [6, 5])]
    if with_offset:
        inputs.append(("offset", feat_dt, [6, 2, ph, pw]))
    node = helper.make_node("DeformRoIPool", names, ["out"], domain="siamattn", output_height=ph, output_width=pw,
                            **attrs)
    return _model([node], inputs, [("out", feat_dt)], domains=["siamattn"])


def _refinement_graph() -> onnx.ModelProto:
    """FP16 DeformConv on a 31x31 map feeding DeformRoIPool, as in the tracker's refinement stage."""
    rng = np.random.default_rng(1)
    weight = numpy_helper.from_array((rng.standard_normal((256, 256, 3, 3)) * 0.01).astype(np.float16), "W")
    bias = numpy_helper.from_array(np.zeros(256, np.float16), "B")
    conv = helper.make_node("DeformConv", ["X", "W", "offset", "B"], ["F"], pads=[1, 1, 1, 1], kernel_shape=[3, 3])
    pool = helper.make_node("DeformRoIPool", ["F", "rois", "roi_offset"], ["out"], domain="siamattn",
                            output_height=4, output_width=4, spatial_scale=25 / 255, sampling_ratio=0, gamma=0.1)
    inputs = [("X", F16, [1, 256, 31, 31]), ("offset", F16, [1, 18, 31, 31]), ("rois", F32, [1, 5]),
              ("roi_offset", F16, [1, 2, 4, 4])]
    return _model([conv, pool], inputs, [("out", F16)], [weight, bias], ["siamattn"])


CASES = {
    # Output [1,8,5,8] only if pads=[1,0,2,1] and strides=[2,1] reached the plugin (defaults give 7x7).
    "conv_fp32_asym": (_deform_conv(F32, 1, 4, 9, 9, 8, pads=[1, 0, 2, 1], strides=[2, 1], offset_group=2,
                                    kernel_shape=[3, 3]), True, [([1, 8, 5, 8], "FLOAT")]),
    "conv_fp16_mask_dilated": (_deform_conv(F16, 2, 4, 9, 9, 8, mask=True, pads=[2, 2, 2, 2], dilations=[2, 2],
                                            group=2), True, [([2, 8, 9, 9], "HALF")]),
    "conv_fp16_tracker": (_deform_conv(F16, 1, 256, 31, 31, 256, pads=[1, 1, 1, 1]), True,
                          [([1, 256, 31, 31], "HALF")]),
    "conv_custom_name_fp32": (_deform_conv(F32, 1, 8, 7, 7, 8, op="SiamAttnDeformConv", domain="siamattn",
                                           pads=[1, 1, 1, 1]), True, [([1, 8, 7, 7], "FLOAT")]),
    "conv_bad_kernel_shape": (_deform_conv(F16, 1, 4, 7, 7, 8, kernel_shape=[5, 5], weight_kernel=(3, 3),
                                           pads=[1, 1, 1, 1]), False, "kernel_shape=[5,5] does not match W"),
    "conv_bad_offset_group": (_deform_conv(F32, 1, 4, 7, 7, 8, offset_group=2, offset_channels_group=1,
                                           pads=[1, 1, 1, 1]), False, "for offset_group=2"),
    "pool_fp32": (_roi_pool(F32, F32, spatial_scale=25 / 255, sampling_ratio=0, gamma=0.1), True,
                  [([6, 16, 4, 3], "FLOAT")]),
    "pool_fp16_rois_fp32": (_roi_pool(F16, F32, spatial_scale=0.5, sampling_ratio=2, gamma=0.1), True,
                            [([6, 16, 4, 3], "HALF")]),
    "pool_fp16_rois_fp16_no_offset": (_roi_pool(F16, F16, with_offset=False, ph=7, pw=7, spatial_scale=0.25),
                                      True, [([6, 16, 7, 7], "HALF")]),
    "pool_bad_scale": (_roi_pool(F32, F32, spatial_scale=-1.0), False, "'spatial_scale' must be one finite float > 0"),
    "pool_bad_sampling_ratio": (_roi_pool(F32, F32, sampling_ratio=-2), False, "'sampling_ratio' must be"),
    # mode 1 = mmdet_v1 (the authors' pooling), FP16 features with FP32 rois as the FP16 export writes it.
    "pool_mmdet_v1_fp16_rois_fp32": (_roi_pool(F16, F32, ph=4, pw=4, spatial_scale=25 / 255, sampling_ratio=4,
                                               gamma=0.1, mode=1), True, [([6, 16, 4, 4], "HALF")]),
    "pool_mmdet_v1_fp32_no_offset": (_roi_pool(F32, F32, with_offset=False, ph=16, pw=16, spatial_scale=63 / 255,
                                               sampling_ratio=4, mode=1), True, [([6, 16, 16, 16], "FLOAT")]),
    "pool_bad_mode": (_roi_pool(F32, F32, sampling_ratio=2, mode=3), False, "'mode' must be 0 (mmcv) or 1 (mmdet_v1)"),
    "pool_mmdet_v1_adaptive": (_roi_pool(F32, F32, sampling_ratio=0, mode=1), False,
                               "needs a fixed sampling_ratio >= 1"),
    "refinement_fp16": (_refinement_graph(), True, [([1, 256, 4, 4], "HALF")]),
}


@pytest.fixture(scope="module")
def engine_results(plugin_library: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    # The project's one engine builder (the one 'siamattn export' uses), one child process per graph.
    from siamattn.export.engine import EngineBuildError, build_engine_subprocess
    from siamattn.tensorrt_env import resolve_flavour

    rtx = resolve_flavour("tensorrt-rtx")
    tmp = tmp_path_factory.mktemp("engines")
    results = {}
    for name, (model, _, _) in CASES.items():
        path = tmp / f"{name}.onnx"
        path.write_bytes(model.SerializeToString())
        try:
            res = build_engine_subprocess(rtx, path, tmp / f"{name}.engine", label=name,
                                          plugin_library=str(plugin_library))
            results[name] = (True, res.bytes, res.outputs, "")
        except EngineBuildError as exc:
            results[name] = (False, 0, [], str(exc))
    return results


@pytest.mark.parametrize("name", list(CASES))
def test_engine_build(engine_results: dict, name: str) -> None:
    _, should_build, expect = CASES[name]
    built, engine_bytes, outputs, log = engine_results[name]
    if should_build:
        assert built and engine_bytes > 0, log
        assert [(list(s), t) for s, t in outputs] == [(s, t) for s, t in expect], log
    else:
        assert not built, f"{name} should have been rejected"
        assert expect in log, log


def test_creators_expose_every_attribute(plugin_library: Path, tmp_path: Path) -> None:
    """getFieldNames must list each ONNX attribute, or the parser silently drops it; names, versions and the
    namespace TensorRT's registry sees are those the Python side reads from siamattn_plugin_names.h."""
    import json
    import subprocess
    import sys

    script = (
        "import json, sys, tensorrt_rtx_bindings as trt\n"
        "b = trt.Builder(trt.Logger(trt.Logger.ERROR)); r = b.get_plugin_registry()\n"
        "r.load_library(sys.argv[1])\n"
        "print(json.dumps({c.name: [c.plugin_version, c.plugin_namespace, sorted(f.name for f in c.field_names)]\n"
        "  for c in r.all_creators if c.name in sys.argv[2:]}))\n"
    )
    from siamattn.plugins import names

    out = subprocess.run([sys.executable, "-c", script, str(plugin_library), *(p.name for p in names.ALL)],
                         capture_output=True, text=True, check=True).stdout
    creators = json.loads(out.strip().splitlines()[-1])
    conv_fields = sorted(["dilations", "group", "kernel_shape", "offset_group", "pads", "strides"])
    pool_fields = sorted(["output_height", "output_width", "spatial_scale", "sampling_ratio", "gamma", "mode"])
    assert creators == {
        names.DEFORM_CONV.name: [names.DEFORM_CONV.version, names.NAMESPACE, conv_fields],
        names.CUSTOM_DEFORM_CONV.name: [names.CUSTOM_DEFORM_CONV.version, names.NAMESPACE, conv_fields],
        names.DEFORM_ROI_POOL.name: [names.DEFORM_ROI_POOL.version, names.NAMESPACE, pool_fields],
    }
    # and the node names the exporter writes are the ones this registry resolves
    assert {names.DEFORM_CONV.name, names.CUSTOM_DEFORM_CONV.name, names.DEFORM_ROI_POOL.name} == {
        "DeformConv", "SiamAttnDeformConv", "DeformRoIPool"}
