"""Choosing the backbone named by ``model.backbone.name``: the atrous ResNet-50 (:mod:`.resnet`), the dilated
MobileNetV2 (:mod:`.mobilenet`) or pysot's AlexNet (:mod:`.alexnet`).

Every backbone returns a list of maps and exposes ``.channels`` (one per map), ``.stage(k)`` (its five
stages, which training freezes and unfreezes) and ``.levels``: the last
``levels`` maps are the stride-8 correlation levels (the neck's and the RPN's inputs); any maps before them
are the stride-2 and stride-4 maps that region refinement reads (ResNet-50 and MobileNetV2: 5 maps,
3 levels; AlexNet: 1 map, 1 level).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from siamattn.config import BackboneConfig
from siamattn.training.model.alexnet import AlexNetLegacy, load_alexnet
from siamattn.training.model.mobilenet import DilatedMobileNetV2, load_mobilenetv2
from siamattn.training.model.resnet import AtrousResNet50, load_torchvision_resnet


@dataclass(frozen=True)
class BackboneEntry:
    build: Callable[[BackboneConfig], nn.Module]
    load_pretrained: Callable[[Any, str | Path], Any]  # ImageNet weights from model.backbone.checkpoint


# One row per backbone (pysot's BACKBONES); the names are siamattn.config.BACKBONES, which the config checks.
BACKBONES: dict[str, BackboneEntry] = {
    "resnet50": BackboneEntry(AtrousResNet50, load_torchvision_resnet),
    "mobilenetv2": BackboneEntry(DilatedMobileNetV2, load_mobilenetv2),
    "alexnet": BackboneEntry(AlexNetLegacy, load_alexnet),
}


def build_backbone(cfg: BackboneConfig) -> nn.Module:
    """The backbone named by ``model.backbone.name``."""
    return BACKBONES[cfg.name].build(cfg)
