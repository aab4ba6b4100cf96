"""pysot's model zoo networks (configs siamrpn_alex, siamrpnpp_mobilev2, siamrpnpp_r50) through training, export,
TensorRT-RTX engines and tracking, at narrow widths (the same code paths and map sizes as the full models)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from siamattn.cli import main
from siamattn.config import load_config
from siamattn.training.model.alexnet import AlexNetLegacy
from siamattn.training.trainer import (
    backbone_stages,
)
from tests.test_train import _batch, train_steps, write_got10k

HAS_RTX = importlib.util.find_spec("tensorrt_rtx_bindings") is not None

# narrow widths: full-size crops and maps, a fraction of the channels
NARROW = {
    "siamrpn_alex": ["model.backbone.width_mult=0.25", "model.rpn.hidden=32"],
    "siamrpnpp_mobilev2": ["model.backbone.width_mult=0.35", "model.neck.channels=32", "model.rpn.hidden=32"],
    "siamrpnpp_r50": ["model.backbone.width=8", "model.backbone.blocks=[1,1,1,1]", "model.neck.channels=32",
                      "model.rpn.hidden=32"],
}
SCORE = {"siamrpn_alex": 21, "siamrpnpp_mobilev2": 25, "siamrpnpp_r50": 25}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_got10k(tmp_path_factory.mktemp("got10k"))


def test_alexnet_maps_and_stages():
    b = AlexNetLegacy(load_config("siamrpn_alex").model.backbone).eval()
    with torch.no_grad():
        assert b(torch.zeros(1, 3, 127, 127))[0].shape == (1, 256, 6, 6)
        assert b(torch.zeros(1, 3, 287, 287))[0].shape == (1, 256, 26, 26)
    covered = [i for k in range(5) for i in range(*b.stage_bounds[k])]
    assert covered == list(range(len(b.features)))  # the five trainable stages partition the layers


@pytest.mark.parametrize("name", list(NARROW))
def test_a_few_training_steps_reduce_the_loss(name, data):
    torch.manual_seed(0)
    cfg = load_config(name, [*NARROW[name], "train.warmup_epochs=0", "train.lr_start=0.01", "train.lr_end=0.01",
                             "train.backbone_train_epoch=0"])
    batch = _batch(cfg, data)
    assert batch["labels"].shape[-1] == SCORE[name] and batch["x"].shape[-1] == cfg.tracker.instance_size
    model, losses = train_steps(cfg, batch)
    assert losses[-1]["total"] < 0.8 * losses[0]["total"], [round(x["total"], 4) for x in losses]
    # the listed backbone stages (2, 3, 4) received gradients, the others none
    stages = backbone_stages(model.backbone)
    grads = [any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in s.parameters()) for s in stages]
    assert grads == [False, False, True, True, True]


@pytest.mark.parametrize("name", list(NARROW))  # 12-26 s each on 2 cores (FP32 export, engines, 1 frame)
def test_export_verifies_builds_tensorrt_rtx_engines_and_tracks(name, tmp_path):
    out = tmp_path / "model"
    sets = [a for s in NARROW[name] for a in ("--set", s)]
    sets += ["--set", "export.max_targets=1"]  # the batch graphs are tested on tiny
    assert main(["export", "--config", name, *sets, "--out", str(out), "--precision", "fp32",
                 "--engine", "tensorrt-rtx" if HAS_RTX else "none"]) == 0
    data = json.loads((out / "manifest.json").read_text())
    cls = next(o for o in data["graphs"]["search"]["outputs"] if o["name"] == "cls")
    assert cls["shape"] == [1, 10, SCORE[name], SCORE[name]]
    assert data["verification"]["template"] and data["verification"]["search"]
    for graph in ("template", "search"):  # ONNX Runtime vs PyTorch, FP32
        assert max(v["rel_err"] for v in data["verification"][graph].values()) < 1e-4, data["verification"]
    if HAS_RTX:  # no deformable conv: every graph builds without plugins
        assert data["engines"]["backend"] == "tensorrt-rtx" and not data["engines"]["skipped"]
        assert all((out / f"{g}.engine").is_file() for g in ("template", "search"))

    from siamattn.runtime import Tracker

    tracker = Tracker(out, backend="onnxruntime")  # the config travels in the manifest
    frame = np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    tracker.init(frame, (100, 80, 60, 50))
    r = tracker.track(frame)
    assert np.isfinite(r.box).all() and r.polygon is None
