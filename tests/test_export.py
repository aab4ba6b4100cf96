"""Export stage: op lowerings against the reference ops, ONNX Runtime parity of every exported graph with
the PyTorch stages, plugin vs portable agreement, FP16 islands, TensorRT-RTX AOT builds, the manifest,
and one-line CLI errors. ``tiny`` everywhere; the full-size parity check is in test_export_r50.py."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnx.reference
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto

from siamattn.cli import main
from siamattn.config import load_config
from siamattn.export import lowering
from siamattn.export.engine import EngineBuildError, build_engine_subprocess, build_engines
from siamattn.export.errors import ManifestError
from siamattn.export.exporter import ExportOptions, export_model
from siamattn.export.fp16 import convert_to_fp16, find_islands
from siamattn.export.graphs import Stage, export_stage, stages
from siamattn.export.manifest import Manifest
from siamattn.export.postpass import finalize, optimize
from siamattn.export.random_model import random_images, random_model, random_rois
from siamattn.export.verify import compare, rounding_noise, run_onnx
from siamattn.manifest import ManifestDraft
from siamattn.ops import deform_conv2d, deform_roi_pool, xcorr_depthwise
from siamattn.plugins.testing import trt_plugin_library_or_skip
from siamattn.tensorrt_env import resolve_flavour
from siamattn.training.model import save_checkpoint

HAS_RTX = importlib.util.find_spec("tensorrt_rtx_bindings") is not None
needs_rtx = pytest.mark.skipif(not HAS_RTX, reason="tensorrt_rtx_bindings is not installed "
                               "(pip install 'siamattn-trt[tensorrt-rtx]')")
FP32_TOL = 1e-4  # max abs error / output range


def _onnx_of(fn, inputs: dict[str, torch.Tensor], outputs: list[str]) -> onnx.ModelProto:
    class M(torch.nn.Module):
        def forward(self, *args):
            return fn(*args)

    stage = Stage("op", M().eval(), inputs, outputs)
    return finalize(optimize(export_stage(stage, 19, {})), 10, "op")


def _ort(model: onnx.ModelProto, feeds: dict[str, torch.Tensor]) -> list[np.ndarray]:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {k: v.numpy() for k, v in feeds.items()})


# ------------------------------------------------------------------------------------------- lowerings


def _border_rois(h: int, w: int) -> torch.Tensor:
    """Zero-size RoIs whose single sample (scale 1, 1x1 output, 1 sample) lands exactly on a border case:
    below -1, exactly -1, in (-1,0), 0, in [H-2,H-1), H-1, in (H-1,H), exactly H, beyond H."""
    ys = [-1.5, -1.0, -0.5, 0.0, h - 1.5, h - 1.0, h - 0.5, float(h), h + 0.5]
    xs = [-1.5, -1.0, -0.25, 3.0, w - 1.0, w - 0.75, float(w), w + 0.25]
    rows = [[0.0, x + 0.5, y + 0.5, x + 0.5, y + 0.5] for y in ys for x in xs]
    return torch.tensor(rows)


def test_portable_roi_pool_border_rule_matches_reference_in_onnx_runtime():
    g = torch.Generator().manual_seed(1)
    feat = torch.randn(1, 3, 6, 7, generator=g) + 2.0  # offset so a wrongly zeroed sample shows
    rois = _border_rois(6, 7)

    def pool(f, r):
        return lowering.deform_roi_pool_portable(f, r, None, 1, 1.0, 1, 0.1)

    ref = deform_roi_pool(feat, rois, None, 1, 1.0, 1, 0.1)
    (got,) = _ort(_onnx_of(pool, {"feat": feat, "rois": rois}, ["out"]), {"feat": feat, "rois": rois})
    np.testing.assert_allclose(got, ref.numpy(), atol=1e-5, rtol=0)
    # The cases really cover both rules: some samples are zeroed (outside), some clamped (inside, at the edge).
    assert (ref.abs().sum(dim=(1, 2, 3)) == 0).sum() > 0
    assert (ref.abs().sum(dim=(1, 2, 3)) > 0).sum() > 0


@pytest.mark.parametrize("batch", [1, 2])
def test_portable_roi_pool_with_offsets_matches_reference(batch):
    g = torch.Generator().manual_seed(batch)
    feat = torch.randn(batch, 5, 25, 25, generator=g)
    rois = torch.tensor([[0, 10.0, 20, 200, 230], [batch - 1, -30, -20, 30, 40], [0, 200, 210, 300, 290],
                         [batch - 1, 50, 50, 40, 40]])
    offset = torch.randn(4, 2, 4, 4, generator=g)
    ref = deform_roi_pool(feat, rois, offset, 4, 25 / 255, 2, 0.1)
    eager = lowering.deform_roi_pool_portable(feat, rois, offset, 4, 25 / 255, 2, 0.1)
    torch.testing.assert_close(eager, ref, atol=1e-5, rtol=0)

    def pool(f, r, o):
        return lowering.deform_roi_pool_portable(f, r, o, 4, 25 / 255, 2, 0.1)

    inputs = {"feat": feat, "rois": rois, "offset": offset}
    model = _onnx_of(pool, inputs, ["out"])
    assert {n.op_type for n in model.graph.node} >= {"GridSample", "AveragePool"}
    (got,) = _ort(model, inputs)
    np.testing.assert_allclose(got, ref.numpy(), atol=1e-5, rtol=0)


def _mmdet_v1_border_rois(h: int, w: int) -> torch.Tensor:
    """RoIs (scale 1, 1x1 output, 1 sample at x = cround(x1) - 0.5, shifted by offsets later) on the mmdet_v1
    border cases: C-round ties (also negative), samples at exactly -0.5 and W-0.5, and beyond."""
    xs = [-1.0, -0.5, -0.49999997, 0.0, 0.5, 2.5, w - 1.5, w - 0.5, float(w), w + 0.5]
    ys = [-0.5, 0.0, 1.5, h - 0.5, float(h), h + 0.5]
    return torch.tensor([[0.0, x, y, x + 0.4, y + 0.4] for y in ys for x in xs])


def test_portable_mmdet_v1_border_rule_matches_reference_in_onnx_runtime():
    g = torch.Generator().manual_seed(1)
    feat = torch.randn(1, 3, 6, 7, generator=g) + 2.0  # offset so a wrongly zeroed sample shows
    rois = _mmdet_v1_border_rois(6, 7)
    # Offsets 0 and +-1e-3 px (gamma 1, rw = 1): each sample also lands just inside / just outside the border.
    offset = torch.tensor([0.0, 1e-3, -1e-3]).repeat(len(rois) // 3 + 1)[: len(rois)]
    offset = torch.stack([offset, offset.flip(0)], 1).view(-1, 2, 1, 1)

    def pool(f, r, o):
        return lowering.deform_roi_pool_portable(f, r, o, 1, 1.0, 1, 1.0, "mmdet_v1")

    ref = deform_roi_pool(feat, rois, offset, 1, 1.0, 1, 1.0, "mmdet_v1")
    inputs = {"feat": feat, "rois": rois, "offset": offset}
    torch.testing.assert_close(pool(feat, rois, offset), ref, atol=1e-6, rtol=0)
    model = _onnx_of(pool, inputs, ["out"])
    assert "Round" not in {n.op_type for n in model.graph.node}  # ONNX Round rounds halves to even
    (got,) = _ort(model, inputs)
    np.testing.assert_allclose(got, ref.numpy(), atol=1e-5, rtol=0)
    empty = ref.abs().sum(dim=(1, 2, 3)) == 0
    assert 0 < int(empty.sum()) < len(rois)  # both skipped and clamped samples are covered
    assert np.all(got[empty.numpy()] == 0)


@pytest.mark.parametrize("batch, size, out", [(1, 25, 4), (2, 25, 4), (1, 63, 16)])
def test_portable_mmdet_v1_matches_reference(batch, size, out):
    # The authors' two poolings: 25x25 -> 4x4 and 63x63 -> 16x16, 4 x 4 samples per bin, scale size / 255.
    g = torch.Generator().manual_seed(batch + size)
    feat = torch.randn(batch, 5, size, size, generator=g)
    rois = torch.tensor([[0, 10.3, 20.5, 200.5, 230.0], [batch - 1, -30.5, -20.0, 30.0, 40.5],
                         [0, 200.0, 210.0, 300.0, 290.0], [batch - 1, 50.0, 50.0, 40.0, 40.0],
                         [0, 400.0, 400.0, 420.0, 420.0]])
    offset = 0.6 * torch.randn(5, 2, out, out, generator=g)
    ref = deform_roi_pool(feat, rois, offset, out, size / 255, 4, 0.1, "mmdet_v1")
    assert torch.all(ref[4] == 0) and not torch.all(ref[1] == 0)

    def pool(f, r, o):
        return lowering.deform_roi_pool_portable(f, r, o, out, size / 255, 4, 0.1, "mmdet_v1")

    inputs = {"feat": feat, "rois": rois, "offset": offset}
    model = _onnx_of(pool, inputs, ["out"])
    assert {n.op_type for n in model.graph.node} >= {"GridSample", "ReduceSum"}
    (got,) = _ort(model, inputs)
    np.testing.assert_allclose(got, ref.numpy(), atol=1e-5, rtol=0)
    # FP16 graph: the coordinate math (C round included), the validity mask and the per-bin sums stay FP32.
    island = find_islands(model, ("roi",))["roi"]
    assert {"GridSample", "Floor", "Ceil", "GreaterOrEqual", "LessOrEqual", "ReduceSum"} <= {
        model.graph.node[i].op_type for i in island}
    compares = [i for i, n in enumerate(model.graph.node) if n.op_type in ("GreaterOrEqual", "LessOrEqual")]
    assert set(compares) <= island
    half, _ = convert_to_fp16(model, ("roi",))
    (got16,) = _ort(half, inputs)
    np.testing.assert_allclose(got16, ref.numpy(), atol=4e-3 * float(feat.abs().max()), rtol=0)


def test_plugin_node_carries_the_mode_and_the_reference_evaluator_honours_it():
    g = torch.Generator().manual_seed(4)
    feat = torch.randn(1, 4, 25, 25, generator=g)
    rois = torch.tensor([[0, 10.5, 20.0, 200.5, 230.0], [0, -30.0, -20.5, 30.0, 40.0]])
    offset = 0.6 * torch.randn(2, 2, 4, 4, generator=g)
    inputs = {"feat": feat, "rois": rois, "offset": offset}
    for mode in ("mmcv", "mmdet_v1"):
        def pool(f, r, o, mode=mode):
            return lowering.deform_roi_pool_plugin(f, r, o, 4, 25 / 255, 4, 0.1, mode)

        model = _onnx_of(pool, inputs, ["out"])
        (node,) = [n for n in model.graph.node if n.op_type == "DeformRoIPool"]
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        assert attrs["mode"] == {"mmcv": 0, "mmdet_v1": 1}[mode]
        outs, runner = run_onnx(model, {k: v.numpy() for k, v in inputs.items()})
        assert runner == "reference"
        ref = deform_roi_pool(feat, rois, offset, 4, 25 / 255, 4, 0.1, mode)
        np.testing.assert_allclose(outs["out"], ref.numpy(), atol=1e-6, rtol=0)


def test_mmdet_v1_module_exports_in_both_modes_and_agrees():
    # DeformRoIPool(mode="mmdet_v1") passes the mode through the dispatch to whichever lowering is active.
    from siamattn.ops import DeformRoIPool
    from siamattn.ops import dispatch as ops_dispatch

    g = torch.Generator().manual_seed(6)
    m = DeformRoIPool(4, 4, 25 / 255, sampling_ratio=4, hidden=16, mode="mmdet_v1").eval()
    with torch.no_grad():
        m.offset_fc[-1].weight.normal_(0, 0.05, generator=g)
    feat = torch.randn(1, 4, 25, 25, generator=g)
    rois = torch.tensor([[0, 10.5, 20.0, 200.5, 230.0], [0, -30.0, -20.5, 30.0, 40.0]])
    with torch.no_grad():
        ref = m(feat, rois)
    for ops in ("portable", "plugin"):
        with ops_dispatch.use(deform_roi_pool=lowering.ROI_POOL[ops]):
            model = _onnx_of(m, {"feat": feat, "rois": rois}, ["out"])
        nodes = [n for n in model.graph.node if n.op_type == "DeformRoIPool"]
        if ops == "plugin":
            modes = [onnx.helper.get_attribute_value(a) for n in nodes for a in n.attribute if a.name == "mode"]
            assert modes == [1, 1]
        outs, _ = run_onnx(model, {"feat": feat.numpy(), "rois": rois.numpy()})
        np.testing.assert_allclose(outs["out"], ref.numpy(), atol=2e-5, rtol=0)


def test_gridsample_deform_conv_matches_torchvision():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 6, 13, 11, generator=g)
    weight = torch.randn(4, 6, 3, 3, generator=g)
    bias = torch.randn(4, generator=g)
    offset = 3 * torch.randn(1, 18, 13, 11, generator=g)  # many samples beyond the borders
    ref = deform_conv2d(x, offset, weight, bias, 1, 1, 1)

    def dcn(a, o):
        return lowering.deform_conv2d_gridsample(a, o, weight, bias, 1, 1, 1)

    torch.testing.assert_close(dcn(x, offset), ref, atol=1e-4, rtol=1e-5)
    model = _onnx_of(dcn, {"x": x, "offset": offset}, ["y"])
    assert "DeformConv" not in {n.op_type for n in model.graph.node}
    (got,) = _ort(model, {"x": x, "offset": offset})
    np.testing.assert_allclose(got, ref.numpy(), atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("name", sorted(lowering.XCORR))
def test_xcorr_lowerings_match_reference_in_onnx_runtime(name):
    g = torch.Generator().manual_seed(0)
    x, k = torch.randn(1, 8, 29, 29, generator=g), torch.randn(1, 8, 5, 5, generator=g)
    ref = xcorr_depthwise(x, k)
    (got,) = _ort(_onnx_of(lowering.XCORR[name], {"x": x, "kernel": k}, ["y"]), {"x": x, "kernel": k})
    np.testing.assert_allclose(got, ref.numpy(), atol=1e-4, rtol=0)


def _dynamic_weight_conv_groups(model: onnx.ModelProto) -> list[int]:
    """The ``group`` of every Conv whose weight is computed in the graph (the depth-wise xcorr), not stored."""
    stored = {t.name for t in model.graph.initializer}
    return sorted(onnx.helper.get_attribute_value(a) for n in model.graph.node if n.op_type == "Conv"
                  and n.input[1] not in stored for a in n.attribute if a.name == "group")


def test_padded_conv_xcorr_is_exact_at_every_target_count_in_onnx_runtime():
    # one graph with a symbolic target axis (traced on 2 targets, at most 4), run at 1, 3 and 4 targets
    g = torch.Generator().manual_seed(2)
    x, k = torch.randn(2, 8, 29, 29, generator=g), torch.randn(2, 8, 5, 5, generator=g)

    class M(torch.nn.Module):
        def forward(self, x, kernel):
            return lowering.xcorr_conv_padded(4)(x, kernel)

    axes = {"x": {0: "targets"}, "kernel": {0: "targets"}}
    model = finalize(optimize(export_stage(Stage("op", M().eval(), {"x": x, "kernel": k}, ["y"], axes, 4), 19, {})),
                     10, "op")
    assert _dynamic_weight_conv_groups(model) == [4 * 8]  # one grouped Conv over the padded targets
    for n in (1, 3, 4):
        x, k = torch.randn(n, 8, 29, 29, generator=g), torch.randn(n, 8, 5, 5, generator=g)
        (got,) = _ort(model, {"x": x, "kernel": k})
        assert got.shape == (n, 8, 25, 25)
        np.testing.assert_allclose(got, xcorr_depthwise(x, k).numpy(), atol=1e-4, rtol=0)


def test_adaptive_sampling_is_rejected_with_the_config_key():
    with pytest.raises(Exception, match="sampling_ratio"):
        lowering.deform_roi_pool_portable(torch.zeros(1, 1, 4, 4), torch.zeros(1, 5), None, 2, 1.0, 0, 0.1)


# ------------------------------------------------------------------------------------ tiny exports


# exports whose tests do not run the batch graphs skip them (a third of the export time)
SINGLE = ["export.max_targets=1"]


@pytest.fixture(scope="module")
def tiny_model():
    return random_model(load_config("tiny"), seed=0)


@pytest.fixture(scope="module")
def tiny_stages(tiny_model):
    return {s.name: s for s in stages(tiny_model)}


def _shared(tmp_path_factory, name: str, make) -> Path:
    """One export per test session even with pytest-xdist: workers share the session's base temp folder
    and take turns through a file lock; the first one exports, the others reuse its folder."""
    from filelock import FileLock

    root = tmp_path_factory.getbasetemp()
    root = root.parent if root.name.startswith("popen-gw") else root
    out = root / f"export-{name}"
    with FileLock(str(out) + ".lock"):
        if not (out / "manifest.json").is_file():
            shutil.rmtree(out, ignore_errors=True)
            make(out)
    return out


@pytest.fixture(scope="module")
def portable32(tmp_path_factory) -> Path:
    """tiny, portable, FP32, through the CLI (engines with TensorRT-RTX when installed)."""

    def make(out: Path) -> None:
        assert main(["export", "--config", "tiny", "--out", str(out), "--ops", "portable", "--precision", "fp32",
                     "--engine", "auto"]) == 0

    return _shared(tmp_path_factory, "portable32", make)


@pytest.fixture(scope="module")
def portable16(tmp_path_factory) -> Path:
    def make(out: Path) -> None:
        export_model(load_config("tiny", SINGLE), out,
                     opts=ExportOptions(precision="fp16", engine="auto", verify=False),
                     log=lambda m: None)

    return _shared(tmp_path_factory, "portable16", make)


def _fresh_inputs(model, seed: int = 7) -> dict[str, dict[str, torch.Tensor]]:
    """Inputs of every stage from other images/RoIs than the ones the export traced."""
    cfg = model.cfg
    z, x = random_images(cfg, seed=seed)
    rois = random_rois(cfg, seed=seed)
    with torch.no_grad():
        cache = model.template(z)
        out = model.search(x, cache)
    return {"template": {"z": z}, "search": {"x": x, **cache},
            "refine_box": {"box_feat": out["box_feat"], "rois": rois},
            "refine_mask": {"mask_feat": out["mask_feat"], "rois": rois}}


def _pytorch(stage: Stage, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The PyTorch stage on other inputs than the ones it was traced with."""
    return Stage(stage.name, stage.module, inputs, stage.output_names).reference()


def test_portable_fp32_graphs_match_pytorch_stages_in_onnx_runtime(portable32, tiny_model, tiny_stages):
    manifest = Manifest.load(portable32)
    assert manifest.order == ["template", "search", "refine_box", "refine_mask", "search_multi", "refine_box_multi",
                              "refine_mask_multi"]
    assert manifest.max_targets == 8
    fresh = _fresh_inputs(tiny_model)
    # the batch graphs on three targets (traced on two): three templates and crops, two RoIs on target 0 and
    # one on target 2, against the PyTorch stages on the same batch
    multi = [_fresh_inputs(tiny_model, seed) for seed in (3, 4, 5)]
    rois = torch.cat([multi[0]["refine_box"]["rois"], multi[1]["refine_box"]["rois"], multi[2]["refine_box"]["rois"]])
    rois[:, 0] = torch.tensor([0.0, 0.0, 2.0])
    for name in ("search", "refine_box", "refine_mask"):
        fresh[name + "_multi"] = {k: rois if k == "rois" else torch.cat([m[name][k] for m in multi])
                                  for k in multi[0][name]}
    for name, inputs in fresh.items():
        model = onnx.load(str(manifest.onnx_path(name)))
        got, runner = run_onnx(model, {k: v.numpy() for k, v in inputs.items()})
        assert runner == "onnxruntime"
        for out, v in compare(_pytorch(tiny_stages[name.removesuffix("_multi")], inputs), got).items():
            assert v["range"] > 0, f"{name}.{out} is constant: the parity check would be vacuous"
            assert v["rel_err"] < FP32_TOL, f"{name}.{out}: {v}"


def test_search_multi_gives_each_target_the_batch_1_search_graphs_outputs(portable32, tiny_model):
    m = Manifest.load(portable32)
    graphs = {n: onnx.load(str(m.onnx_path(n))) for n in ("search", "search_multi")}
    # the batch graph's xcorr is the batch-1 graph's grouped Conv over max_targets padded targets
    groups = _dynamic_weight_conv_groups(graphs["search"])
    assert groups and _dynamic_weight_conv_groups(graphs["search_multi"]) == [g * m.max_targets for g in groups]
    assert m.data["export"]["xcorr"] == "conv"
    assert m.data["graphs"]["search_multi"]["xcorr"] == "conv (target axis padded to max_batch)"
    assert m.data["graphs"]["search_multi"]["max_batch"] == m.max_targets == 8
    single, multi = (ort.InferenceSession(g.SerializeToString(), providers=["CPUExecutionProvider"])
                     for g in graphs.values())
    names = [o.name for o in single.get_outputs()]
    for n in (1, 3, m.max_targets):  # no padding at max_targets
        per_target = [_fresh_inputs(tiny_model, seed=20 + i)["search"] for i in range(n)]
        batch = multi.run(names, {k: torch.cat([t[k] for t in per_target]).numpy() for k in per_target[0]})
        for i, feeds in enumerate(per_target):
            alone = dict(zip(names, single.run(names, {k: v.numpy() for k, v in feeds.items()}), strict=True))
            for out, v in compare(alone, {k: b[i:i + 1] for k, b in zip(names, batch, strict=True)}).items():
                assert v["range"] > 0 and v["rel_err"] < FP32_TOL, f"{n} targets, target {i}, {out}: {v}"


def test_exported_graphs_are_standard_checked_and_versioned(portable32):
    manifest = Manifest.load(portable32)
    for name in manifest.order:
        model = onnx.load(str(manifest.onnx_path(name)))
        onnx.checker.check_model(model, full_check=True)
        assert model.ir_version == 10
        assert {o.domain: o.version for o in model.opset_import}.get("", 0) == 19
        assert all(n.domain in ("", "ai.onnx") for n in model.graph.node), name
        assert manifest.graph(name).custom_ops == ()
    ops = {name: {n.op_type for n in onnx.load(str(manifest.onnx_path(name))).graph.node} for name in manifest.order}
    assert "DeformConv" in ops["search"]
    assert {"GridSample", "AveragePool"} <= ops["refine_box"]
    assert {"GridSample", "AveragePool"} <= ops["refine_mask"]


def test_manifest_describes_io_config_versions_and_weights(portable32):
    data = json.loads((portable32 / "manifest.json").read_text())
    m = Manifest.load(portable32)
    assert data["weights"]["source"] == "random-init" and "RANDOM-INIT" in data["weights"]["note"]
    assert m.random_init and m.precision == "fp32" and m.ops == "portable"
    assert m.config().to_dict() == load_config("tiny", ["export.precision=fp32"]).to_dict()
    assert data["config"]["tracker"]["penalty_k"] == pytest.approx(0.10)
    assert data["export"]["opset"] == 19 and data["export"]["ir_version"] == 10
    assert data["versions"]["torch"] == torch.__version__ and data["versions"]["onnx"] == onnx.__version__
    t, s = m.graph("template"), m.graph("search")
    assert [x.name for x in t.inputs] == ["z"] and t.inputs[0].shape == (1, 3, 127, 127)
    assert [x.name for x in s.inputs] == ["x", *[o.name for o in t.outputs]]
    assert [x.name for x in s.outputs] == ["cls", "loc", "box_feat", "mask_feat"]
    assert s.output("cls").shape == (1, 10, 25, 25) and s.output("mask_feat").shape == (1, 16, 63, 63)
    assert m.graph("refine_box").output("box_deltas").shape == (1, 4)
    assert m.graph("refine_mask").output("mask").shape == (1, 1, 64, 64)
    assert all(x.dtype == "float32" for g in m.graphs.values() for x in (*g.inputs, *g.outputs))
    for name in m.order:
        assert data["verification"][name], name
        for out, v in data["verification"][name].items():
            # an FP32 graph differs from PyTorch by about PyTorch's own conv-order rounding noise
            assert v["rel_err"] < 20 * max(v["fp32_noise"], 1e-6), (name, out, v)


@needs_rtx
def test_portable_graphs_build_tensorrt_rtx_engines(portable32):
    m = Manifest.load(portable32)
    data = m.data
    assert data["engines"]["backend"] == "tensorrt-rtx"
    for name in ("template", "refine_box", "refine_mask", "refine_box_multi", "refine_mask_multi"):
        e = m.graph(name).engine  # the batch graphs with an optimisation profile over 1..max_targets targets
        assert e is not None and e.layers > 0 and e.bytes > 0 and (portable32 / e.file).is_file()
    # The search graph's DeformConv needs the DeformConv plugin under TensorRT-RTX (docs/DESIGN.md §6).
    if m.graph("search").engine is None:
        assert "plugin" in data["engines"]["skipped"]["search"]


@needs_rtx
def test_gridsample_deform_conv_search_graph_builds_without_plugins(tiny_stages, tmp_path):
    stage = tiny_stages["search"]
    model = optimize(export_stage(stage, 19, lowering.lowerings("portable", "conv", "gridsample")))
    model = finalize(convert_to_fp16(model)[0], 10, "search")
    assert "DeformConv" not in {n.op_type for n in model.graph.node}
    got, _ = run_onnx(model, {k: v.numpy() for k, v in stage.inputs.items()})
    assert max(v["rel_err"] for v in compare(stage.reference(), got).values()) < 0.05
    onnx.save(model, str(tmp_path / "search.onnx"))
    res = build_engine_subprocess(resolve_flavour("tensorrt-rtx"), tmp_path / "search.onnx",
                                  tmp_path / "search.engine", label="search")
    assert res.layers > 0 and (tmp_path / "search.engine").stat().st_size == res.bytes


@needs_rtx
def test_batch_search_graph_with_padded_conv_xcorr_builds_for_a_target_range(tiny_model, tmp_path):
    # the batch graph as the exporter writes it (conv xcorr padded to max_targets), DeformConv as GridSamples so
    # no plugin is needed; the engine gets an optimisation profile over 1..3 targets
    stage = next(s for s in stages(tiny_model, max_targets=3) if s.name == "search_multi")
    model = finalize(optimize(export_stage(stage, 19, lowering.lowerings("portable", "conv", "gridsample", 3))), 10,
                     "search_multi")
    assert _dynamic_weight_conv_groups(model)[0] % 3 == 0
    onnx.save(model, str(tmp_path / "search_multi.onnx"))
    res = build_engine_subprocess(resolve_flavour("tensorrt-rtx"), tmp_path / "search_multi.onnx",
                                  tmp_path / "search_multi.engine", label="search_multi", max_batch=3)
    assert res.layers > 0 and [s[0] for s, _ in res.outputs] == [-1] * len(stage.output_names)


# ---------------------------------------------------------------------------------------------- FP16


def test_fp16_graphs_keep_io_fp32_and_islands_fp32(portable16):
    m = Manifest.load(portable16)
    assert m.precision == "fp16" and m.data["export"]["template_fp16"] is False
    for name in m.order:
        model = onnx.load(str(m.onnx_path(name)))
        assert all(v.type.tensor_type.elem_type == TensorProto.FLOAT for v in (*model.graph.input, *model.graph.output))
        # The template graph (once per video) stays FP32 by default; the per-frame graphs are FP16.
        has_fp16 = any(t.data_type == TensorProto.FLOAT16 for t in model.graph.initializer)
        assert has_fp16 == (name != "template"), name
        assert m.data["graphs"][name]["precision"] == ("fp32" if name == "template" else "fp16")
    search = onnx.shape_inference.infer_shapes(onnx.load(str(m.onnx_path("search"))))
    types = {v.name: v.type.tensor_type.elem_type for v in search.graph.value_info}
    softmax_in = [types[n.input[0]] for n in search.graph.node if n.op_type == "Softmax"]
    assert len(softmax_in) == 6 and set(softmax_in) == {TensorProto.FLOAT}
    assert m.data["graphs"]["search"]["fp32_islands"] == {"channel_attention": 6, "spatial_attention": 6, "roi": 0,
                                                          "box_deltas": 0, "large_weights": 0,
                                                          "wide_dot_products": 0}
    assert m.data["graphs"]["refine_box"]["fp32_islands"]["roi"] > 10


def test_graph_precision_keeps_the_template_fp32_unless_asked():
    from siamattn.export.exporter import graph_precision

    fp16 = ExportOptions(precision="fp16")
    assert [graph_precision(g, fp16) for g in ("template", "search", "refine_box")] == ["fp32", "fp16", "fp16"]
    assert graph_precision("template", ExportOptions(precision="fp16", template_fp16=True)) == "fp16"
    assert graph_precision("template", ExportOptions(precision="fp32", template_fp16=True)) == "fp32"


def test_fp16_graphs_run_in_onnx_runtime_close_to_pytorch(portable16, tiny_model, tiny_stages):
    m = Manifest.load(portable16)
    worst = {}
    for name, inputs in _fresh_inputs(tiny_model).items():
        got, _ = run_onnx(onnx.load(str(m.onnx_path(name))), {k: v.numpy() for k, v in inputs.items()})
        check = compare(_pytorch(tiny_stages[name], inputs), got)
        worst[name] = max(v["rel_err"] for v in check.values())
    print("FP16 max |err|/range per graph:", {k: f"{v:.1e}" for k, v in worst.items()})
    assert all(v < 0.05 for v in worst.values()), worst  # loose: FP16 errors are reported, not tuned


def test_island_finder_on_the_search_graph(tiny_stages):
    stage = tiny_stages["search"]
    model = optimize(export_stage(stage, 19, lowering.lowerings("portable", "conv")))
    islands = find_islands(model)
    ops = [[model.graph.node[i].op_type for i in sorted(v)] for v in (islands["channel_attention"],
                                                                       islands["spatial_attention"])]
    assert sorted(ops[0]) == ["MatMul"] * 3 + ["Softmax"] * 3
    assert sorted(ops[1]) == ["MatMul"] * 3 + ["Softmax"] * 3
    for keep, want in (((), TensorProto.FLOAT16), (("channel_attention", "spatial_attention"), TensorProto.FLOAT)):
        converted, _ = convert_to_fp16(model, keep)
        types = {v.name: v.type.tensor_type.elem_type for v in converted.graph.value_info}
        assert {types[n.input[0]] for n in converted.graph.node if n.op_type == "Softmax"} == {want}


def _cancelling_convs() -> onnx.ModelProto:
    """x -> conv A (two nearly equal channels, ~3 in size) -> conv B (100*c1 - 100*c0 + 2000) - 2000: B's output
    is A's small channel difference, the cancellation BN folding produces in MobileNetV2's first blocks."""
    rng = np.random.default_rng(0)
    k0 = rng.normal(size=(1, 1, 3, 3)).astype(np.float32)
    k1 = k0 + 0.01 * rng.normal(size=(1, 1, 3, 3)).astype(np.float32)
    inits = [onnx.numpy_helper.from_array(np.concatenate([k0, k1]), "wa"),
             onnx.numpy_helper.from_array(np.array([-100.0, 100.0], np.float32).reshape(1, 2, 1, 1), "wb"),
             onnx.numpy_helper.from_array(np.array([2000.0], np.float32), "bb"),
             onnx.numpy_helper.from_array(np.array([2000.0], np.float32), "off")]
    nodes = [onnx.helper.make_node("Conv", ["x", "wa"], ["a"], pads=[1, 1, 1, 1]),
             onnx.helper.make_node("Conv", ["a", "wb", "bb"], ["b"]),
             onnx.helper.make_node("Sub", ["b", "off"], ["y"])]
    graph = onnx.helper.make_graph(nodes, "cancel", [onnx.helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                                          [1, 1, 16, 16])],
                                   [onnx.helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 16, 16])],
                                   inits)
    return onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 19)], ir_version=10)


def test_large_weight_island_keeps_cancelling_layers_fp32():
    model = _cancelling_convs()
    assert find_islands(model, ("large_weights",))["large_weights"] == {0, 1}  # B and the conv feeding it
    x = {"x": np.random.default_rng(1).normal(size=(1, 1, 16, 16)).astype(np.float32)}
    ref = run_onnx(model, x)[0]["y"]
    errors = {}
    for keep in ((), ("large_weights",)):
        converted, report = convert_to_fp16(model, keep)
        errors[keep] = float(np.abs(run_onnx(converted, x)[0]["y"] - ref).max() / np.abs(ref).max())
    # FP16 storage of A's output (~3, spacing 2^-9) times 100, and of the 2000 bias (spacing 1), costs ~2% of an
    # output of ~0.5; with A and B kept FP32 (they read the FP32 graph input) nothing is rounded.
    assert errors[()] > 0.01 and errors[("large_weights",)] < 1e-6, errors


def test_large_weight_island_takes_depthwise_convs_from_a_lower_weight():
    """weights of 5: a depthwise conv goes FP32, a dense conv does not (its limit is 16), nor one of 3."""
    def model(depthwise: bool, scale: float) -> onnx.ModelProto:
        c = 4
        w = np.full((c, 1 if depthwise else c, 3, 3), 0.1, np.float32)
        w[0, 0, 1, 1] = scale
        attrs = {"group": c} if depthwise else {}
        node = onnx.helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1], **attrs)
        io = [onnx.helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, c, 8, 8]) for n in ("x", "y")]
        graph = onnx.helper.make_graph([node], "dw", io[:1], io[1:], [onnx.numpy_helper.from_array(w, "w")])
        return onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 19)], ir_version=10)

    assert find_islands(model(True, 5.0), ("large_weights",))["large_weights"] == {0}
    assert find_islands(model(True, 3.0), ("large_weights",))["large_weights"] == set()
    assert find_islands(model(False, 5.0), ("large_weights",))["large_weights"] == set()
    assert find_islands(model(False, 17.0), ("large_weights",))["large_weights"] == {0}


@pytest.mark.parametrize("form", ["plain", "neg", "rowmax"])
def test_channel_attention_island_with_and_without_the_negation(form):
    # softmax_row(X X^T), softmax_row(-X X^T) and the authors' softmax_row(rowmax(E) - E) (what
    # channel_softmax: negated exports): the ops between MatMul and Softmax are part of the island
    x = onnx.helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 49])
    y = onnx.helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 8])
    nodes = [onnx.helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 2, 1]),
             onnx.helper.make_node("MatMul", ["x", "xt"], ["e"])]
    inits = []
    if form == "neg":
        nodes.append(onnx.helper.make_node("Neg", ["e"], ["ne"]))
    elif form == "rowmax":
        inits.append(onnx.numpy_helper.from_array(np.array([-1], np.int64), "axes"))
        nodes += [onnx.helper.make_node("ReduceMax", ["e", "axes"], ["m"], keepdims=1),
                  onnx.helper.make_node("Sub", ["m", "e"], ["ne"])]
    nodes.append(onnx.helper.make_node("Softmax", [nodes[-1].output[0]], ["y"], axis=-1))
    graph = onnx.helper.make_graph(nodes, "cam", [x], [y], initializer=inits)
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 19)], ir_version=10)
    found = find_islands(model, ("channel_attention", "spatial_attention"))
    extra = {"plain": [], "neg": ["Neg"], "rowmax": ["ReduceMax", "Sub"]}[form]
    want = sorted(["MatMul", "Softmax", *extra])
    assert sorted(model.graph.node[i].op_type for i in found["channel_attention"]) == want
    assert found["spatial_attention"] == set()


def test_wide_dot_product_island_keeps_the_65536_wide_layer_fp32():
    rng = np.random.default_rng(0)
    inits = [onnx.numpy_helper.from_array(rng.normal(size=(8, 65536)).astype(np.float32) / 256, "w_wide"),
             onnx.numpy_helper.from_array(rng.normal(size=(8, 4)).astype(np.float32), "w_narrow")]
    nodes = [onnx.helper.make_node("Gemm", ["x", "w_wide"], ["h"], transB=1),
             onnx.helper.make_node("MatMul", ["h", "w_narrow"], ["y"])]
    graph = onnx.helper.make_graph(nodes, "wide", [onnx.helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                                        [2, 65536])],
                                   [onnx.helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])], inits)
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 19)], ir_version=10)
    assert find_islands(model, ("wide_dot_products",))["wide_dot_products"] == {0}  # the Gemm, not the MatMul
    converted, _ = convert_to_fp16(model, ("wide_dot_products",))
    gemm = next(n for n in converted.graph.node if n.op_type == "Gemm")
    fp16_inits = {t.name for t in converted.graph.initializer if t.data_type == TensorProto.FLOAT16}
    assert gemm.input[1] not in fp16_inits and "w_narrow__fp16" in fp16_inits


def test_fp16_types_the_default_value_of_constant_of_shape():
    """ConstantOfShape without a value attribute makes float32 zeros: the batch graphs pad the target axis with
    them, and an FP16 Concat with that pad failed the checker for every default export (issue 23)."""
    shape = onnx.numpy_helper.from_array(np.array([1, 3], np.int64), "pad_shape")
    nodes = [onnx.helper.make_node("ConstantOfShape", ["pad_shape"], ["pad"]),
             onnx.helper.make_node("Relu", ["x"], ["r"]),
             onnx.helper.make_node("Concat", ["r", "pad"], ["y"], axis=0)]
    graph = onnx.helper.make_graph(nodes, "pad", [onnx.helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
                                   [onnx.helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 3])], [shape])
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 19)], ir_version=10)
    converted, _ = convert_to_fp16(model)
    onnx.checker.check_model(converted, full_check=True)
    x = np.arange(-3, 3, dtype=np.float32).reshape(2, 3)
    (y,) = onnx.reference.ReferenceEvaluator(converted).run(None, {"x": x})
    assert y.dtype == np.float32 and np.array_equal(y, np.concatenate([np.maximum(x, 0), np.zeros((1, 3))]))


@needs_rtx
def test_fp16_portable_graphs_build_tensorrt_rtx_engines(portable16):
    m = Manifest.load(portable16)
    for name in ("template", "refine_box", "refine_mask"):
        assert m.graph(name).engine is not None, m.data["engines"]["skipped"]


# ---------------------------------------------------------------------------------------- plugin mode


@pytest.fixture(scope="module")
def plugin32(tmp_path_factory) -> Path:
    """tiny, plugin ops, FP32, no engines; batch graphs for at most 2 targets (small, for the engine builds)."""

    def make(out: Path) -> None:
        export_model(load_config("tiny", ["export.max_targets=2"]), out,
                     opts=ExportOptions(ops="plugin", precision="fp32", engine="none", verify=False),
                     log=lambda m: None)

    return _shared(tmp_path_factory, "plugin32", make)


def test_plugin_graphs_have_the_agreed_deform_roi_pool_node(plugin32):
    m = Manifest.load(plugin32)
    box = onnx.load(str(m.onnx_path("refine_box")))
    nodes = [n for n in box.graph.node if n.op_type == "DeformRoIPool"]
    assert len(nodes) == 2 and {n.domain for n in nodes} == {"siamattn"}
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in nodes[1].attribute}
    assert attrs == {"output_height": 4, "output_width": 4, "spatial_scale": pytest.approx(25 / 255),
                     "sampling_ratio": 2, "gamma": pytest.approx(0.1), "mode": 0}
    assert [len(n.input) for n in nodes] == [2, 3]  # plain pool, then pool with the predicted offsets
    assert m.graph("refine_box").custom_ops == ("siamattn::DeformRoIPool",)
    assert "GridSample" not in {n.op_type for n in box.graph.node}


def test_plugin_and_portable_graphs_agree(plugin32, portable32, tiny_model):
    plug, port = Manifest.load(plugin32), Manifest.load(portable32)
    for name, inputs in _fresh_inputs(tiny_model, seed=11).items():
        feeds = {k: v.numpy() for k, v in inputs.items()}
        a, runner_a = run_onnx(onnx.load(str(plug.onnx_path(name))), feeds)
        b, runner_b = run_onnx(onnx.load(str(port.onnx_path(name))), feeds)
        assert runner_b == "onnxruntime"
        assert runner_a == ("reference" if name.startswith("refine") else "onnxruntime")
        for out, v in compare(b, a).items():
            assert v["rel_err"] < FP32_TOL, f"{name}.{out}: {v}"


@needs_rtx
def test_engine_build_failure_names_the_onnx_node(tmp_path):
    from onnx import helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="first_relu"),
             helper.make_node("NoSuchOp", ["r"], ["y"], name="the_unknown_one", domain="siamattn")]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y]), ir_version=10,
                              opset_imports=[helper.make_opsetid("", 19), helper.make_opsetid("siamattn", 1)])
    onnx.save(model, str(tmp_path / "bad.onnx"))
    with pytest.raises(EngineBuildError) as info:
        build_engine_subprocess(resolve_flavour("tensorrt-rtx"), tmp_path / "bad.onnx", tmp_path / "bad.engine",
                                label="bad")
    msg = str(info.value)
    assert "ONNX node 'the_unknown_one' (NoSuchOp, #1)" in msg and "Plugin not found" in msg, msg
    assert "\n" not in msg


@needs_rtx
def test_plugin_graphs_build_with_the_plugin_library(plugin32, tmp_path):
    # every graph, the batch ones (optimisation profile over 1..2 targets) included, through the exporter's
    # engine step; plugin graphs were checked structurally and with the reference evaluator above
    lib = trt_plugin_library_or_skip()
    out = tmp_path / "model"
    shutil.copytree(plugin32, out)
    manifest = Manifest.load(out).data
    assert [n for n in manifest["order"] if n.endswith("_multi")] == ["search_multi", "refine_box_multi",
                                                                      "refine_mask_multi"]
    for name in ("refine_box_multi", "refine_mask_multi"):
        assert manifest["graphs"][name]["custom_ops"] == ["siamattn::DeformRoIPool"], name
    assert manifest["graphs"]["search_multi"]["op_counts"].get("DeformConv", 0) > 0
    draft = ManifestDraft.of(Manifest.load(out))
    build_engines(draft, out, resolve_flavour("tensorrt-rtx"), "fp32", str(lib), log=lambda m: None)
    manifest = draft.as_dict()
    assert manifest["engines"]["plugin_library"] == str(lib)
    for name in manifest["order"]:
        engine = manifest["graphs"][name]["engine"]
        assert engine["layers"] > 0 and (out / engine["file"]).stat().st_size == engine["bytes"], name


# ---------------------------------------------------------------------------------------------- manifest


def test_manifest_module_does_not_import_torch():
    code = "import sys, siamattn.export.manifest; assert 'torch' not in sys.modules and 'onnx' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_manifest_errors_are_clear(portable32, tmp_path):
    with pytest.raises(ManifestError, match="does not exist"):
        Manifest.load(tmp_path / "nope")
    with pytest.raises(ManifestError, match=r"no manifest\.json"):
        Manifest.load(tmp_path)
    copy = tmp_path / "copy"
    shutil.copytree(portable32, copy)
    (copy / "manifest.json").write_text("{ not json")
    with pytest.raises(ManifestError, match="not valid JSON"):
        Manifest.load(copy)
    shutil.copy(portable32 / "manifest.json", copy / "manifest.json")
    with open(copy / "refine_box.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(ManifestError, match=r"refine_box\.onnx.*sha256"):
        Manifest.load(copy)
    Manifest.load(copy, verify=False)  # structure is fine; only the hash check fails
    (copy / "refine_box.onnx").unlink()
    with pytest.raises(ManifestError, match="missing"):
        Manifest.load(copy)
    data = json.loads((portable32 / "manifest.json").read_text())
    data["graphs"]["search"]["inputs"] = data["graphs"]["search"]["inputs"][:2]
    shutil.copy(portable32 / "refine_box.onnx", copy / "refine_box.onnx")
    (copy / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="do not match template outputs"):
        Manifest.load(copy)


# ------------------------------------------------------------------------------------------- CLI errors


def _cli_error(capsys, argv: list[str]) -> str:
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    assert rc != 0
    assert err.startswith("error: ") and "\n" not in err, err
    return err


def test_cli_missing_checkpoint(capsys, tmp_path):
    err = _cli_error(capsys, ["export", "--config", "tiny", "--checkpoint", str(tmp_path / "no.pt"),
                              "--out", str(tmp_path / "o")])
    assert "does not exist" in err


def test_cli_mismatched_checkpoint_names_keys(capsys, tmp_path, tiny_model):
    ck = tmp_path / "tiny.pt"
    save_checkpoint(ck, tiny_model)
    err = _cli_error(capsys, ["export", "--config", "tiny", "--set", "model.refine.mask=false",
                              "--checkpoint", str(ck), "--out", str(tmp_path / "o"), "--engine", "none"])
    assert "unexpected" in err and "refine.mask_" in err


def test_cli_unknown_config(capsys, tmp_path):
    err = _cli_error(capsys, ["export", "--config", "no_such_config", "--out", str(tmp_path / "o")])
    assert "unknown config 'no_such_config'" in err


def test_cli_unwritable_output_dir(capsys, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    err = _cli_error(capsys, ["export", "--config", "tiny", "--out", str(blocker / "sub"), "--engine", "none"])
    assert "cannot create its folder" in err and "is a file" in err


def test_cli_engine_backend_not_installed(capsys, tmp_path):
    if resolve_flavour("auto") is not None and resolve_flavour("auto").flavour == "tensorrt":
        pytest.skip("full TensorRT is installed here")
    err = _cli_error(capsys, ["export", "--config", "tiny", "--out", str(tmp_path / "o"), "--engine", "tensorrt"])
    assert "'tensorrt'" in err and "not importable" in err


def test_cli_unknown_fp32_island(capsys, tmp_path):
    err = _cli_error(capsys, ["export", "--config", "tiny", "--out", str(tmp_path / "o"), "--keep-fp32", "softmax"])
    assert "unknown island" in err


def test_rounding_noise_is_pytorchs_own_conv_order_noise():
    stage = {s.name: s for s in stages(random_model(load_config("tiny")))}["search"]
    before = stage.reference()
    noise = rounding_noise(stage)
    assert noise == rounding_noise(stage)  # seeded
    assert all(0 < v < 1e-4 for v in noise.values()), noise
    after = stage.reference()  # the hooks are gone again
    assert all(torch.equal(before[k], after[k]) for k in before)
    if not torch.backends.mkldnn.is_available():
        pytest.skip("no oneDNN in this torch build: no second conv algorithm to compare with")
    # An independent yardstick of the same thing: PyTorch with its other conv algorithm, which sums in
    # another order. One rounding per layer should predict its size to within an order of magnitude.
    with torch.backends.mkldnn.flags(enabled=False):
        other = compare(before, {k: v.numpy() for k, v in stage.reference().items()})
    for name, v in noise.items():
        assert other[name]["rel_err"] / 10 < v < other[name]["rel_err"] * 10, (name, v, other[name])


@pytest.mark.parametrize("pads, strides, dilations, group", [
    ([1, 1, 1, 1], [1, 1], [1, 1], 1), ([0, 1, 2, 0], [2, 1], [1, 2], 1), ([1, 1, 1, 1], [1, 1], [1, 1], 8)])
def test_verifier_conv_matches_the_onnx_reference_evaluator(pads, strides, dilations, group):
    """The verifier runs plugin graphs in onnx's evaluator with Conv computed by torch (speed): it must give the
    evaluator's own Conv results, asymmetric pads, strides, dilations and groups included."""
    from onnx import TensorProto, helper
    from onnx.reference import ReferenceEvaluator

    from siamattn.export.verify import _Conv

    rng = np.random.default_rng(0)
    feeds = {"x": rng.standard_normal((1, 8, 9, 11)).astype(np.float32),
             "w": rng.standard_normal((8, 8 // group, 3, 3)).astype(np.float32),
             "b": rng.standard_normal(8).astype(np.float32)}
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], pads=pads, strides=strides, dilations=dilations,
                            group=group)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info(k, TensorProto.FLOAT, None) for k in feeds],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    theirs = ReferenceEvaluator(model).run(None, feeds)[0]
    ours = ReferenceEvaluator(model, new_ops=[_Conv]).run(None, feeds)[0]
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)
