"""pysot's AlexNetLegacy backbone (SiamRPN's): five plain convs with BatchNorm, two max-pools, no padding.

127 -> 59 -> 29 -> 25 -> 12 -> 10 -> 8 -> 6 (template) and 287 -> 139 -> 69 -> 65 -> 32 -> 30 -> 28 -> 26
(search): total stride 8, one map, no neck in pysot's model. Layer order and ``features.{i}`` indices are
pysot's (conv with bias, BN, [max-pool], ReLU; no ReLU after the last BN), so its checkpoints map by name.
"""

from __future__ import annotations

from pathlib import Path

from torch import Tensor, nn

from siamattn.config import BackboneConfig
from siamattn.errors import SiamAttnError
from siamattn.training.model.weights import read_state_dict

_WIDTHS = (96, 256, 384, 384, 256)  # output channels of conv1..conv5 at width_mult 1
_KERNELS = (11, 5, 3, 3, 3)
_POOLED = (True, True, False, False, False)  # 3x3 stride-2 max-pool after the BN of conv1 and conv2


class AlexNetLegacy(nn.Module):
    """Returns one map (the last BN's output); ``levels = 1``. ``stage(k)`` = conv k+1 with its BN, pool and
    ReLU (the five stages that training freezes and unfreezes)."""

    levels = 1

    def __init__(self, cfg: BackboneConfig) -> None:
        super().__init__()
        widths = [int(c * cfg.width_mult) for c in _WIDTHS]
        layers: list[nn.Module] = []
        self.stage_bounds: list[tuple[int, int]] = []
        cin = 3
        for k, (cout, ksize, pooled) in enumerate(zip(widths, _KERNELS, _POOLED, strict=True)):
            lo = len(layers)
            layers += [nn.Conv2d(cin, cout, ksize, 2 if k == 0 else 1), nn.BatchNorm2d(cout)]
            if pooled:
                layers.append(nn.MaxPool2d(3, 2))
            if k < len(widths) - 1:
                layers.append(nn.ReLU(inplace=True))
            self.stage_bounds.append((lo, len(layers)))
            cin = cout
        self.features = nn.Sequential(*layers)
        self.channels = [widths[-1]]

    def stage(self, k: int) -> nn.Module:
        lo, hi = self.stage_bounds[k]
        return self.features[lo:hi]

    def forward(self, x: Tensor) -> list[Tensor]:
        return [self.features(x)]


def load_alexnet(backbone: AlexNetLegacy, path: str | Path) -> None:
    """Backbone weights in this layout (``features.{i}.*``, optionally under ``backbone.`` as in a pysot
    SiamRPN checkpoint, whose other keys are ignored)."""
    state = {k.removeprefix("module.").removeprefix("backbone."): v for k, v in read_state_dict(Path(path)).items()}
    state = {k: v for k, v in state.items() if k.startswith("features.")}
    own = backbone.state_dict()
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    bad = [f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}" for k, v in state.items()
           if k in own and v.shape != own[k].shape]
    if missing or bad:
        raise SiamAttnError(f"backbone checkpoint '{path}' is not an AlexNetLegacy state dict of this width: "
                            + "; ".join(bad[:3] or [f"it lacks {len(missing)} tensors, e.g. {missing[:3]}"]))
    own.update({k: v for k, v in state.items() if k in own})
    backbone.load_state_dict(own)
