"""Choosing the backbone named by ``model.backbone.name``: the atrous ResNet-50 (:mod:`.resnet`) or the
dilated MobileNetV2 (:mod:`.mobilenet`); both return the same 5 maps (strides 2, 4, 8, 8, 8)."""

from __future__ import annotations

from torch import nn

from siamattn.config import BackboneConfig
from siamattn.training.model.mobilenet import DilatedMobileNetV2
from siamattn.training.model.resnet import AtrousResNet50


def build_backbone(cfg: BackboneConfig) -> nn.Module:
    """The backbone named by ``model.backbone.name`` (all return 5 maps and expose ``.channels``)."""
    if cfg.name == "mobilenetv2":
        return DilatedMobileNetV2(cfg)
    return AtrousResNet50(cfg)
