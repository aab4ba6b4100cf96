"""Atrous ResNet-50 (SiamRPN++ variant, total stride 8) and its torchvision weight loader.

Differences from torchvision's ResNet-50, all to keep spatial resolution for Siamese correlation:
conv1 has no padding; layer2's strided 3x3 and its 3x3 stride-2 downsample have no padding; layer3 and
layer4 keep stride 1 and use dilation 2 and 4 (their first block and 3x3 downsample use half of it).
127x127 -> 15x15 maps and 255x255 -> 31x31 maps. Module names follow torchvision so a torchvision
checkpoint maps onto it (see :func:`load_torchvision_resnet`).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from siamattn.config import BackboneConfig
from siamattn.errors import SiamAttnError
from siamattn.training.model.weights import read_state_dict


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        # A strided 3x3 without dilation uses no padding (maps shrink 31 -> 15 exactly); otherwise "same".
        padding = 0 if (stride == 2 and dilation == 1) else dilation
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, padding, dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class AtrousResNet50(nn.Module):
    """Returns the stem output (stride 2), layer1 (stride 4) and layers 2-4 (stride 8); with
    ``used_layers`` [3] (SiamMask) layer4 is not built and the maps end with layer3, the one level."""

    def __init__(self, cfg: BackboneConfig) -> None:
        super().__init__()
        w = cfg.width
        self.inplanes = w
        self.conv1 = nn.Conv2d(3, w, 7, 2, 0, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(w, cfg.blocks[0])
        self.layer2 = self._make_layer(2 * w, cfg.blocks[1], stride=2)
        self.layer3 = self._make_layer(4 * w, cfg.blocks[2], dilation=2)
        self.levels = len(cfg.used_layers)  # the last maps are the correlation levels
        self.layer4 = self._make_layer(8 * w, cfg.blocks[3], dilation=4) if 4 in cfg.used_layers else None
        self.channels = [w, 4 * w, 8 * w, 16 * w, 32 * w][: 5 if self.layer4 is not None else 4]
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def _make_layer(self, planes: int, blocks: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
        out = planes * Bottleneck.expansion
        first_dilation = max(dilation // 2, 1)
        downsample = None
        if stride != 1 or self.inplanes != out:
            if stride == 1 and dilation == 1:
                conv = nn.Conv2d(self.inplanes, out, 1, bias=False)
            elif dilation > 1:
                conv = nn.Conv2d(self.inplanes, out, 3, 1, first_dilation, first_dilation, bias=False)
            else:
                conv = nn.Conv2d(self.inplanes, out, 3, stride, 0, bias=False)
            downsample = nn.Sequential(conv, nn.BatchNorm2d(out))
        layers = [Bottleneck(self.inplanes, planes, stride, first_dilation, downsample)]
        self.inplanes = out
        layers += [Bottleneck(out, planes, 1, dilation) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def stage(self, k: int) -> nn.Module:
        """Stage ``k`` of five: the stem (conv1 + bn1), then layer1..layer4."""
        layer4 = self.layer4 if self.layer4 is not None else nn.ModuleList()
        return [nn.ModuleList([self.conv1, self.bn1]), self.layer1, self.layer2, self.layer3, layer4][k]

    def forward(self, x: Tensor) -> list[Tensor]:
        f0 = self.relu(self.bn1(self.conv1(x)))
        f1 = self.layer1(self.maxpool(f0))
        f2 = self.layer2(f1)
        f3 = self.layer3(f2)
        if self.layer4 is None:
            return [f0, f1, f2, f3]
        return [f0, f1, f2, f3, self.layer4(f3)]


def load_torchvision_resnet(backbone: AtrousResNet50, path: str | Path) -> list[str]:
    """Load a torchvision-layout ResNet-50 state dict (e.g. ``resnet50-*.pth``) into the atrous backbone.

    Our 3x3 downsample convs receive the 1x1 weights at their centre tap (the same function at start).
    Returns the keys of the checkpoint that were not used (e.g. ``fc.*``). Raises a clear error when the
    file is missing or its shapes do not match (wrong architecture or width).
    """
    path = Path(path)
    state = read_state_dict(path)
    own = backbone.state_dict()
    unused, bad = [], []
    for key, value in state.items():
        key = key.removeprefix("module.")
        if key not in own:
            unused.append(key)
            continue
        target = own[key]
        if value.shape == target.shape:
            own[key] = value
        elif value.dim() == 4 and value.shape[2:] == (1, 1) and target.shape[2:] == (3, 3) and \
                value.shape[:2] == target.shape[:2]:
            centred = torch.zeros_like(target)
            centred[:, :, 1, 1] = value[:, :, 0, 0]
            own[key] = centred
        else:
            bad.append(f"{key}: checkpoint {tuple(value.shape)} vs model {tuple(target.shape)}")
    if bad:
        raise SiamAttnError(
            f"backbone checkpoint '{path}' does not match model.backbone (width/blocks?): " + "; ".join(bad[:5])
        )
    loaded = {k.removeprefix("module.") for k in state}
    missing = [k for k in own if k not in loaded and not k.endswith("num_batches_tracked")]
    if missing:
        raise SiamAttnError(f"backbone checkpoint '{path}' lacks {len(missing)} tensors, e.g. {missing[:3]}")
    backbone.load_state_dict(own)
    return unused
