"""The SiamAttn model: shapes, the deployment split against the training forward, ablation switches,
checkpoints and backbone loading."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from siamattn.config import AttentionConfig, available_configs, load_config
from siamattn.errors import SiamAttnError
from siamattn.training.model import build_model, load_checkpoint, save_checkpoint
from siamattn.training.model.attention import DSA, channel_affinity
from siamattn.training.model.resnet import load_torchvision_resnet


def randomise_attention(model: torch.nn.Module, seed: int = 0) -> None:
    """Give the zero-initialised parts (alpha/beta/gamma, offset predictors) non-trivial values so the
    tests exercise attention, cross-attention and deformable sampling for real."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.split(".")[-1] in ("alpha", "beta", "gamma", "gamma_c"):
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


@pytest.mark.parametrize("name, channels, mask_channels",
                         [("tiny", 32, 16), ("tiny_authors", 32, 16), ("siamattn_r50", 256, 256)])
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


@pytest.mark.parametrize("base", ["tiny", "tiny_authors"])
@pytest.mark.parametrize("self_att, cross_att, deform", SWITCHES)
def test_split_stages_compose_to_training_forward(self_att, cross_att, deform, base):
    # tiny: paper-text switches; tiny_authors: every switch of the authors' network (attention and refinement)
    cfg = load_config(base, [f"model.attention.self_attention={str(self_att).lower()}",
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


ATTENTION_SWITCHES = list(itertools.product([True, False], repeat=6))


@pytest.mark.parametrize("self_att, cross_att, deform, negated, shared, bias", ATTENTION_SWITCHES)
def test_dsa_split_equals_its_forward_for_every_switch(self_att, cross_att, deform, negated, shared, bias):
    cfg = AttentionConfig(self_attention=self_att, cross_attention=cross_att, deformable=deform,
                          channel_softmax="negated" if negated else "plain", shared_channel_scalar=shared,
                          deform_bias=bias)
    torch.manual_seed(0)
    dsa = DSA(16, cfg)
    randomise_attention(dsa)
    names = {n for n, _ in dsa.named_parameters()}
    assert ("gamma_c" in names) == (shared and (self_att or cross_att))
    assert ("beta" in names) == (self_att and not shared)
    assert ("gamma" in names) == (cross_att and not shared)
    if cfg.enabled:
        assert ("out.bias" in names) == bias
        if bias:
            with torch.no_grad():
                dsa.out.bias.uniform_(-1, 1)
    g = torch.Generator().manual_seed(1)
    # small search features: the channel softmaxes over 961 positions stay far from one-hot
    z, x = torch.randn(2, 16, 7, 7, generator=g), 0.05 * torch.randn(2, 16, 31, 31, generator=g)
    x2 = 0.05 * torch.randn(2, 16, 31, 31, generator=g)
    with torch.no_grad():
        ref_z, ref_x = dsa(z, x)
        got_z, got_x = dsa.search_part(x, dsa.template_part(z))
    for got, ref in ((got_z, ref_z), (got_x, ref_x)):  # the same sums in the same order: the same FP32 numbers
        assert torch.equal(got, ref)
    if self_att or cross_att:  # the search image reaches the template branch exactly when cross-attention is on
        with torch.no_grad():
            other_z, _ = dsa.search_part(x2, dsa.template_part(z))
        assert torch.allclose(other_z, got_z) != cross_att


def test_negated_channel_affinity_is_the_authors_rowmax_form_and_stays_finite():
    g = torch.Generator().manual_seed(0)
    for scale in (1.0, 100.0):  # at 100 the Gram entries reach ~1e7: exp(-E) alone under/overflows
        f = scale * torch.randn(2, 8, 31, 31, generator=g)
        flat = f.flatten(2).double()
        e = flat @ flat.transpose(1, 2)
        t = e.amax(-1, keepdim=True) - e  # the authors' argument rowmax(E) - E, normalised by hand
        t = torch.exp(t - t.amax(-1, keepdim=True))
        want_neg = (t / t.sum(-1, keepdim=True)).float()
        p = torch.exp(e - e.amax(-1, keepdim=True))
        want_plain = (p / p.sum(-1, keepdim=True)).float()
        got_neg, got_plain = channel_affinity(f, negated=True), channel_affinity(f)
        assert torch.isfinite(got_neg).all()
        torch.testing.assert_close(got_neg, want_neg, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(got_plain, want_plain, rtol=1e-4, atol=1e-6)
    assert not torch.allclose(got_neg, got_plain)


def test_negated_channel_affinity_rounds_like_the_authors_rowmax_minus_gram():
    # Gram entries ~1e4: rowmax(E) - E rounds to FP32 before the softmax; softmax(-E), equal in exact
    # arithmetic, rounds differently. Ours must give the authors' FP32 numbers exactly.
    g = torch.Generator().manual_seed(3)
    f = 3 * torch.randn(1, 32, 31, 31, generator=g)
    flat = f.flatten(2)
    e = torch.bmm(flat, flat.transpose(1, 2))
    theirs = torch.softmax(torch.max(e, -1, keepdim=True)[0].expand_as(e) - e, dim=-1)
    got = channel_affinity(f, negated=True)
    assert torch.equal(got, theirs)
    assert not torch.equal(torch.softmax(-e, dim=-1), theirs)  # the shortcut is not the same in FP32


def _authors_spatial(f, q_conv, k_conv, v_conv, gamma):
    """Their orientation: S[i,j] = q_i . k_j, softmax over j (per query row), output_i = sum_j att[i,j] v_j."""
    q, k, v = (c(f).flatten(2) for c in (q_conv, k_conv, v_conv))
    att = torch.softmax(torch.einsum("bci,bcj->bij", q, k), dim=-1)
    return gamma * torch.einsum("bij,bcj->bci", att, v).view_as(f) + f


def test_authors_spatial_attention_is_ours_with_query_and_key_swapped():
    torch.manual_seed(0)
    theirs = [torch.nn.Conv2d(16, 2, 1), torch.nn.Conv2d(16, 2, 1), torch.nn.Conv2d(16, 16, 1)]  # q, k, v
    dsa = DSA(16, AttentionConfig())
    with torch.no_grad():  # the importer's mapping: our query <- their key_conv, our key <- their query_conv
        for ours, src in ((dsa.query, theirs[1]), (dsa.key, theirs[0]), (dsa.value, theirs[2])):
            ours.weight.copy_(src.weight)
            ours.bias.copy_(src.bias)
        dsa.alpha.fill_(0.7)
        f = torch.randn(2, 16, 9, 9)
        torch.testing.assert_close(dsa.spatial(f), _authors_spatial(f, *theirs, 0.7), rtol=1e-5, atol=1e-5)
        unswapped = _authors_spatial(f, theirs[1], theirs[0], theirs[2], 0.7)
    assert not torch.allclose(dsa.spatial(f), unswapped, atol=1e-3)


def test_authors_dsa_level_against_a_transcription_of_their_formula():
    from torchvision.ops import deform_conv2d

    cfg = load_config("siamattn_r50").model.attention
    torch.manual_seed(0)
    dsa = DSA(16, cfg)
    randomise_attention(dsa)
    assert dsa.out.bias is None
    g = torch.Generator().manual_seed(2)
    z, x = torch.randn(1, 16, 7, 7, generator=g), torch.randn(1, 16, 31, 31, generator=g)

    def gram_softmax_neg(f):
        fl = f.flatten(2)
        e = fl @ fl.transpose(1, 2)
        return torch.softmax(e.amax(-1, keepdim=True) - e, dim=-1)

    def level(f, other):  # z' = P(z) + U(z, A_z) + U(z, A_x), one gamma_c for both channel uses
        gc = dsa.gamma_c
        p = _authors_spatial(f, dsa.key, dsa.query, dsa.value, dsa.alpha)  # their q = our key (import swap)
        u_self = gc * (gram_softmax_neg(f) @ f.flatten(2)).view_as(f) + f
        u_cross = gc * (gram_softmax_neg(other) @ f.flatten(2)).view_as(f) + f
        s = p + u_self + u_cross
        return deform_conv2d(s, dsa.out.offset(s), dsa.out.weight, None, padding=(1, 1))

    with torch.no_grad():
        want = level(z, x), level(x, z)
        for got in (dsa(z, x), dsa.search_part(x, dsa.template_part(z))):
            for a, b in zip(got, want, strict=True):
                torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def _cbr(f, seq, padding=0, relu=True):
    """conv (its own weight/bias) + eval BatchNorm (+ ReLU), written with functional ops."""
    conv, bn = seq[0], seq[1]
    y = F.conv2d(f, conv.weight, conv.bias, padding=padding)
    y = F.batch_norm(y, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)
    return F.relu(y) if relu else y


def test_authors_refinement_features_and_mask_head_against_a_transcription():
    torch.manual_seed(0)
    model = build_model(load_config("tiny_authors"))
    randomise_attention(model)
    calibrate(model)
    r = model.refine
    assert r is not None
    g = torch.Generator().manual_seed(3)
    z_atts = [torch.randn(2, 32, 7, 7, generator=g) for _ in range(3)]
    x_atts = [torch.randn(2, 32, 31, 31, generator=g) for _ in range(3)]
    stem, layer1 = torch.rand(2, 8, 125, 125, generator=g), torch.rand(2, 32, 63, 63, generator=g)
    with torch.no_grad():
        box, mask = r.features(z_atts, x_atts, stem, layer1)
        want_box = 0
        for i, (zf, xf) in enumerate(zip(z_atts, x_atts, strict=True)):
            blk = r.box_xcorr[i]
            k, s = _cbr(zf, blk.conv_kernel), _cbr(xf, blk.conv_search)
            b, c = s.shape[:2]
            xc = F.conv2d(s.reshape(1, b * c, 29, 29), k.reshape(b * c, 1, 5, 5), groups=b * c).view(b, c, 25, 25)
            h = F.conv2d(_cbr(xc, blk.head), blk.head[3].weight, blk.head[3].bias)
            want_box = want_box + _cbr(h, r.fuse[i])
        want_mask = 0
        for lat, f in zip(r.mask_lateral, [stem, layer1, *x_atts], strict=True):
            f = F.interpolate(f, size=(63, 63), mode="bilinear", align_corners=True)
            want_mask = want_mask + _cbr(f, lat)
        torch.testing.assert_close(box, want_box, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(mask, want_mask, rtol=1e-4, atol=1e-4)

        head = r.mask_head
        pooled = torch.randn(3, 16, 16, 16, generator=g)
        y = pooled
        for j in range(4):
            assert head[3 * j].bias is None
            y = _cbr(y, head[3 * j: 3 * j + 2], padding=1)
        y = F.relu(F.conv_transpose2d(y, head[12].weight, head[12].bias, stride=4))
        y = F.conv2d(y, head[14].weight, head[14].bias)
        assert tuple(y.shape) == (3, 1, 64, 64)
        torch.testing.assert_close(head(pooled), y, rtol=1e-4, atol=1e-4)
    assert r.mask_pool.offset_fc is not None and r.mask_pool.offset_fc[0].in_features == 16 * 16 * 16
    assert r.mask_pool.offset_fc[-1].out_features == 2 * 16 * 16


def test_siamattn_r50_is_the_authors_layout():
    # 645 state_dict entries (as the authors' checkpoint), ~140 M parameters, 68.7 M in the mask offset MLP
    with torch.device("meta"):
        model = build_model(load_config("siamattn_r50"))
    sd = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert len(sd) == 645
    assert sd["dsa.0.gamma_c"] == (1,) and "dsa.0.beta" not in sd and "dsa.0.out.bias" not in sd
    assert sd["refine.box_xcorr.2.head.3.weight"] == (256, 256, 1, 1) and sd["refine.box_xcorr.2.head.3.bias"] == (256,)
    assert sd["refine.mask_lateral.0.0.weight"] == (256, 64, 1, 1)
    assert sd["refine.mask_lateral.1.0.weight"] == (256, 256, 1, 1)
    assert sd["refine.mask_pool.offset_fc.0.weight"] == (1024, 65536)
    assert sd["refine.mask_pool.offset_fc.4.weight"] == (512, 1024)
    assert sd["refine.mask_head.9.weight"] == (256, 256, 3, 3) and "refine.mask_head.9.bias" not in sd
    assert sd["refine.mask_head.12.weight"] == (256, 256, 4, 4) and sd["refine.mask_head.14.weight"] == (1, 256, 1, 1)
    r = model.refine
    assert (r.box_pool.mode, r.mask_pool.mode, r.box_pool.sampling_ratio, r.mask_pool.sampling_ratio) == \
        ("mmdet_v1", "mmdet_v1", 4, 4)
    total = sum(p.numel() for p in model.parameters())
    assert 139e6 < total < 141e6, total
    mask_fc = sum(p.numel() for p in model.refine.mask_pool.parameters())
    assert 68.6e6 < mask_fc < 68.8e6, mask_fc


def test_demo_and_tiny_keep_the_paper_switches_and_the_demo_checkpoint_loads():
    from pathlib import Path

    for name in ("tiny", "demo_mobilenetv2", "siamattn_r50_paper"):
        m = load_config(name).model
        assert (m.attention.channel_softmax, m.attention.shared_channel_scalar, m.attention.deform_bias) == \
            ("plain", False, True), name
        assert (m.refine.box_corr, m.refine.mask_features, m.refine.mask_head_bn, m.refine.mask_deformable_pool,
                m.refine.pool_mode) == ("raw", "corr", False, False, "mmcv"), name
    demo = Path(__file__).resolve().parents[1] / "assets" / "demo" / "model.pt"
    # strict key and shape check against the config stored with the weights; the shipped model is the network
    # configs/demo_mobilenetv2.yaml describes (tracker settings too), deformable conv included, small enough for a
    # Jetson Nano (issue 25)
    model = load_checkpoint(demo)
    assert model.cfg.model.backbone.name == "mobilenetv2" and model.cfg.model.attention.deformable
    assert model.cfg.to_dict() == load_config("demo_mobilenetv2").to_dict()  # the committed config made it
    assert sum(p.numel() for p in model.parameters()) < 3e6


@pytest.mark.parametrize("name", [n for n in available_configs() if n != "tiny"])
def test_every_shipped_ablation_builds_and_runs(name):
    # Run each ablation at tiny widths so the whole set stays fast; structure follows the named config.
    cfg = load_config(name, ["model.backbone.width=8", "model.backbone.blocks=[1,1,1,1]", "model.neck.channels=16",
                             "model.rpn.hidden=16", "model.refine.box_fc=16", "model.refine.offset_fc=16",
                             "model.refine.mask_channels=8"])
    model = build_model(cfg).eval()
    t = cfg.tracker
    z = torch.rand(1, 3, t.exemplar_size, t.exemplar_size) * 255
    x = torch.rand(1, 3, t.instance_size, t.instance_size) * 255
    with torch.no_grad():
        out = model.search(x, model.template(z))
    assert tuple(out["cls"].shape) == (1, 10, t.score_size, t.score_size)  # 25, or 21 for siamrpn_alex (287 crops)
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
    assert model.refine.mask_pool.offset_fc is None


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
    with pytest.raises(SiamAttnError, match="not a PyTorch checkpoint"):
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
