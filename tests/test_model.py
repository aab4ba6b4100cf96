"""The SiamAttn model: shapes, the deployment split against the training forward, ablation switches,
checkpoints and backbone loading."""

from __future__ import annotations

import itertools

import pytest
import torch

from siamattn.config import available_configs, load_config
from siamattn.errors import SiamAttnError
from siamattn.training.model import build_model, load_checkpoint, save_checkpoint
from siamattn.training.model.resnet import load_torchvision_resnet


def randomise_attention(model: torch.nn.Module, seed: int = 0) -> None:
    """Give the zero-initialised parts (alpha/beta/gamma, offset predictors) non-trivial values so the
    tests exercise attention, cross-attention and deformable sampling for real."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.split(".")[-1] in ("alpha", "beta", "gamma"):
                p.copy_(torch.rand(p.shape, generator=g) + 0.5)
            elif ".offset." in name or "offset_fc" in name:
                p.copy_(0.05 * torch.randn(p.shape, generator=g))


def calibrate(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Set BatchNorm running statistics from a few random batches (fresh stats of 0/1 let activations
    explode through 50 layers and the heads then output constants), then switch to eval."""
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # cumulative average
    model.train()
    with torch.no_grad():
        for i in range(2):
            model(*images(batch=2, seed=seed + 100 + i))
    return model.eval()


def images(batch: int = 1, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, 127, 127, generator=g) * 255, torch.rand(batch, 3, 255, 255, generator=g) * 255


@pytest.mark.parametrize("name, channels, mask_channels", [("tiny", 32, 16), ("siamattn_r50", 256, 64)])
def test_stage_shapes(name, channels, mask_channels):
    model = build_model(load_config(name)).eval()
    z, x = images()
    rois = torch.tensor([[0, 60.0, 70.0, 180.0, 200.0]])
    with torch.no_grad():
        cache = model.template(z)
        out = model.search(x, cache)
        deltas = model.refine_box(out["box_feat"], rois)
        mask = model.refine_mask(out["mask_feat"], rois)
    assert {k: tuple(v.shape) for k, v in cache.items() if k.startswith("z0")} == {
        "z0_feat": (1, channels, 7, 7), "z0_fixed": (1, channels, 7, 7), "z0_affinity": (1, channels, channels)}
    assert len(cache) == 9
    assert tuple(out["cls"].shape) == (1, 10, 25, 25)
    assert tuple(out["loc"].shape) == (1, 20, 25, 25)
    assert tuple(out["box_feat"].shape) == (1, channels, 25, 25)
    assert tuple(out["mask_feat"].shape) == (1, mask_channels, 63, 63)
    assert tuple(deltas.shape) == (1, 4)
    assert tuple(mask.shape) == (1, 1, 64, 64)
    assert float(mask.min()) >= 0.0 and float(mask.max()) <= 1.0


SWITCHES = list(itertools.product([True, False], repeat=3))


@pytest.mark.parametrize("self_att, cross_att, deform", SWITCHES)
def test_split_stages_compose_to_training_forward(self_att, cross_att, deform):
    cfg = load_config("tiny", [f"model.attention.self_attention={str(self_att).lower()}",
                               f"model.attention.cross_attention={str(cross_att).lower()}",
                               f"model.attention.deformable={str(deform).lower()}"])
    torch.manual_seed(0)
    model = build_model(cfg)
    randomise_attention(model)
    calibrate(model)
    z, x = images(batch=2)
    rois = torch.tensor([[0, 50.0, 60.0, 150.0, 170.0], [1, 10.0, 100.0, 90.0, 240.0]])
    with torch.no_grad():
        ref = model(z, x, rois)
        out = model.search(x, model.template(z))
        deltas = model.refine_box(out["box_feat"], rois)
        mask = model.refine_mask(out["mask_feat"], rois)
    assert float(ref["cls"].std(dim=(2, 3)).min()) > 1e-4, "degenerate model: cls map is constant"
    for key, got in (("cls", out["cls"]), ("loc", out["loc"]), ("box", deltas)):
        torch.testing.assert_close(got, ref[key], rtol=1e-4, atol=1e-4 * float(ref[key].abs().max()))
    torch.testing.assert_close(mask, torch.sigmoid(ref["mask_logits"]), rtol=1e-4, atol=1e-5)
    # The template cache must matter: a different template changes the search output.
    with torch.no_grad():
        other = model.search(x, model.template(z.flip(-1)))
    assert not torch.allclose(other["cls"], out["cls"])


def test_attention_and_deformable_parts_change_outputs():
    cfg = load_config("tiny")
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    z, x = images()
    with torch.no_grad():
        before = model(z, x)["cls"]
        randomise_attention(model)
        after = model(z, x)["cls"]
    assert not torch.allclose(before, after)


@pytest.mark.parametrize("name", [n for n in available_configs() if n != "tiny"])
def test_every_shipped_ablation_builds_and_runs(name):
    # Run each ablation at tiny widths so the whole set stays fast; structure follows the named config.
    cfg = load_config(name, ["model.backbone.width=8", "model.backbone.blocks=[1,1,1,1]", "model.neck.channels=16",
                             "model.rpn.hidden=16", "model.refine.box_fc=16", "model.refine.offset_fc=16",
                             "model.refine.mask_channels=8"])
    model = build_model(cfg).eval()
    z, x = images()
    with torch.no_grad():
        out = model.search(x, model.template(z))
    assert tuple(out["cls"].shape) == (1, 10, 25, 25)
    assert ("box_feat" in out) == cfg.model.refine.enabled
    assert ("mask_feat" in out) == cfg.model.refine.mask
    if not cfg.model.refine.enabled:
        with pytest.raises(RuntimeError, match="no region refinement"):
            model.refine_box(torch.zeros(1, 16, 25, 25), torch.zeros(1, 5))


def test_no_deform_ablation_has_no_deformable_layers():
    from siamattn.ops import DeformConv2d

    model = build_model(load_config("siamattn_r50_no_deform", ["model.backbone.width=8", "model.neck.channels=16"]))
    assert not any(isinstance(m, DeformConv2d) for m in model.modules())
    assert model.refine is not None and model.refine.box_pool.offset_fc is None


def test_checkpoint_roundtrip_and_mismatch(tmp_path):
    cfg = load_config("tiny")
    model = build_model(cfg)
    randomise_attention(model, seed=3)
    path = tmp_path / "ck.pt"
    save_checkpoint(path, model, epoch=7)
    loaded = load_checkpoint(path)
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
    assert loaded.cfg == cfg
    wider = load_config("tiny", ["model.neck.channels=48"])
    with pytest.raises(SiamAttnError, match=r"72 shape mismatches.*dsa.0.key.bias \(4,\) vs \(6,\)"):
        load_checkpoint(path, wider)
    no_mask = load_config("tiny", ["model.refine.mask=false"])
    with pytest.raises(SiamAttnError, match=r"unexpected \d+ keys \(e.g. refine.mask"):
        load_checkpoint(path, no_mask)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(SiamAttnError, match="not a readable torch file"):
        load_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(SiamAttnError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def test_torchvision_resnet50_checkpoint_loads(tmp_path):
    from torchvision.models import resnet50

    ref = resnet50(weights=None)
    path = tmp_path / "r50.pth"
    torch.save(ref.state_dict(), path)
    model = build_model(load_config("siamattn_r50"))
    unused = load_torchvision_resnet(model.backbone, path)
    assert set(unused) == {"fc.weight", "fc.bias"}
    torch.testing.assert_close(model.backbone.conv1.weight, ref.conv1.weight)
    torch.testing.assert_close(model.backbone.layer3[2].conv2.weight, ref.layer3[2].conv2.weight)
    # 1x1 downsample weights land on the centre tap of our 3x3 downsample convs.
    ours = model.backbone.layer4[0].downsample[0].weight.detach()
    torch.testing.assert_close(ours[:, :, 1, 1], ref.layer4[0].downsample[0].weight[:, :, 0, 0])
    assert float(ours[:, :, 0, 0].abs().max()) == 0.0
    narrow = build_model(load_config("tiny"))
    with pytest.raises(SiamAttnError, match=r"does not match model\.backbone"):
        load_torchvision_resnet(narrow.backbone, path)
