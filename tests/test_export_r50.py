"""Full-size export: siamattn_r50 through the one documented command, ONNX Runtime parity of every graph
with the PyTorch stages on inputs the export did not trace, and TensorRT-RTX engines (about two minutes on
a 2-core CPU; select or skip with -m slow / -m 'not slow')."""

from __future__ import annotations

import importlib.util

import onnx
import pytest
import torch

from siamattn.cli import main
from siamattn.config import load_config
from siamattn.export.graphs import Stage, stages
from siamattn.export.manifest import Manifest
from siamattn.export.random_model import random_images, random_model, random_rois
from siamattn.export.verify import compare, run_onnx

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def r50_export(tmp_path_factory):
    out = tmp_path_factory.mktemp("r50")
    assert main(["export", "--config", "siamattn_r50", "--out", str(out), "--precision", "fp32", "--no-verify",
                 "--set", "export.max_targets=1"]) == 0  # the batch graphs are tested on tiny
    return out


def test_r50_portable_graphs_match_pytorch_in_onnx_runtime(r50_export):
    m = Manifest.load(r50_export)
    model = random_model(load_config("siamattn_r50"), seed=0)
    by_name = {s.name: s for s in stages(model)}
    z, x = random_images(model.cfg, seed=5)
    rois = random_rois(model.cfg, seed=5)
    with torch.no_grad():
        cache = model.template(z)
        searched = model.search(x, cache)
    inputs = {"template": {"z": z}, "search": {"x": x, **cache},
              "refine_box": {"box_feat": searched["box_feat"], "rois": rois},
              "refine_mask": {"mask_feat": searched["mask_feat"], "rois": rois}}
    report = {}
    for name in m.order:
        stage = by_name[name]
        ref = Stage(name, stage.module, inputs[name], stage.output_names).reference()
        got, runner = run_onnx(onnx.load(str(m.onnx_path(name))), {k: v.numpy() for k, v in inputs[name].items()})
        assert runner == "onnxruntime"
        for out, v in compare(ref, got).items():
            assert v["range"] > 0, f"{name}.{out} is constant"
            assert v["rel_err"] < 1e-4, f"{name}.{out}: {v}"
            report[f"{name}.{out}"] = v["rel_err"]
    print("siamattn_r50 FP32 max |err|/range:", {k: f"{v:.1e}" for k, v in report.items()})
    shapes = {t.name: t.shape for t in m.graph("search").outputs}
    assert shapes == {"cls": (1, 10, 25, 25), "loc": (1, 20, 25, 25), "box_feat": (1, 256, 25, 25),
                      "mask_feat": (1, 256, 63, 63)}  # the authors' five summed 256-wide laterals


@pytest.mark.skipif(importlib.util.find_spec("tensorrt_rtx_bindings") is None,
                    reason="tensorrt_rtx_bindings is not installed")
def test_r50_engines_built_or_skipped_with_a_reason(r50_export):
    m = Manifest.load(r50_export)
    skipped = m.data["engines"]["skipped"]
    for name in m.order:
        if name in skipped:  # only the search graph may need the plugin library
            assert name == "search" and "plugin" in skipped[name]
        else:
            assert m.graph(name).engine is not None and m.graph(name).engine.layers > 0
