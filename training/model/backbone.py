"""Choosing the backbone named by ``model.backbone.name``: the atrous ResNet-50 (:mod:`.resnet`), the dilated
MobileNetV2 (:mod:`.mobilenet`) or pysot's AlexNet (:mod:`.alexnet`).

Every backbone returns a list of maps and exposes ``.channels`` (one per map) and ``.levels``: the last
``levels`` maps are the stride-8 correlation levels (the neck's and the RPN's inputs); any maps before them
are the stride-2 and stride-4 maps that region refinement reads (ResNet-50 and MobileNetV2: 5 maps,
3 levels; AlexNet: 1 map, 1 level).
"""

from __future__ import annotations

from torch import nn

from siamattn.config import BackboneConfig
from siamattn.training.model.alexnet import AlexNetLegacy
from siamattn.training.model.mobilenet import DilatedMobileNetV2
from siamattn.training.model.resnet import AtrousResNet50


def build_backbone(cfg: BackboneConfig) -> nn.Module:
    """The backbone named by ``model.backbone.name``."""
    if cfg.name == "mobilenetv2":
        return DilatedMobileNetV2(cfg)
    if cfg.name == "alexnet":
        return AlexNetLegacy(cfg)
    return AtrousResNet50(cfg)
