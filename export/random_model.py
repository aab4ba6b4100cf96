"""A seeded, randomly initialised but well-conditioned SiamAttn for pipeline tests and demos without weights.

A freshly built model is a poor test subject: the attention scalars (alpha, beta, gamma or gamma_c) and the offset
predictors start at zero, so attention and deformable sampling are no-ops, and BatchNorm's default running
statistics (mean 0, var 1) let activations grow through fifty layers until the heads saturate and every
output is constant. Parity checks on such a model pass vacuously. :func:`random_model` gives the
zero-initialised parts small non-zero values, damps the residual branches as training does (see
_damp_residual_branches) and sets the BatchNorm statistics from a few random image pairs, so every stage
produces input-dependent outputs of moderate magnitude and rounding errors do not explode.
"""

from __future__ import annotations

import torch
from torch import nn

from siamattn.config import Config
from siamattn.training.model import SiamAttn, build_model

# Parameter names that are zero at init and switch a code path on when non-zero.
_ATTENTION_SCALARS = ("alpha", "beta", "gamma", "gamma_c")  # gamma_c: model.attention.shared_channel_scalar
RESIDUAL_SCALE = 0.2


def random_images(cfg: Config, batch: int = 1, seed: int = 0,
                  instance_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Template and search images (raw 0..255 floats, NCHW) of the configured sizes (``instance_size``: another
    search crop side, e.g. the long-term mode's lost window)."""
    g = torch.Generator().manual_seed(seed)
    t = cfg.tracker
    i = instance_size or t.instance_size
    z = torch.rand(batch, 3, t.exemplar_size, t.exemplar_size, generator=g) * 255.0
    x = torch.rand(batch, 3, i, i, generator=g) * 255.0
    return z, x


def random_rois(cfg: Config, count: int = 1, seed: int = 0, instance_size: int | None = None) -> torch.Tensor:
    """RoIs [count,5] = (0, x1, y1, x2, y2) inside the search crop, of plausible target sizes."""
    g = torch.Generator().manual_seed(seed)
    size = float(instance_size or cfg.tracker.instance_size)
    wh = (0.2 + 0.4 * torch.rand(count, 2, generator=g)) * size
    centre = size / 2 + (torch.rand(count, 2, generator=g) - 0.5) * 0.3 * size
    lo, hi = centre - wh / 2, centre + wh / 2
    return torch.cat([torch.zeros(count, 1), lo, hi], dim=1)


def random_positions(cfg: Config, count: int = 1, seed: int = 0, instance_size: int | None = None) -> torch.Tensor:
    """SiamMask's mask positions [count,3] = (0, row, col): score-map cells anywhere on the map, the edges (where
    its windows reach into the zero padding) included."""
    g = torch.Generator().manual_seed(seed)
    side = cfg.tracker.score_size_at(instance_size or cfg.tracker.instance_size)
    cells = torch.randint(0, side, (count, 2), generator=g).float()
    return torch.cat([torch.zeros(count, 1), cells], dim=1)


def _randomise_switched_off_parts(model: nn.Module, g: torch.Generator) -> None:
    with torch.no_grad():
        for name, p in model.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            if leaf in _ATTENTION_SCALARS:
                p.copy_(0.5 + torch.rand(p.shape, generator=g))
            elif ".offset." in name or "offset_fc" in name:
                # Offsets of about a pixel (DCN) or a tenth of a bin (RoI pooling), as in trained models:
                # deformable sampling is exercised without flinging samples across the whole map.
                fan_in = p[0].numel() if p.dim() > 1 else 1
                p.copy_(0.1 / fan_in**0.5 * torch.randn(p.shape, generator=g))


def _damp_residual_branches(model: nn.Module, scale: float) -> None:
    """Scale each bottleneck's last BatchNorm (torchvision's ``zero_init_residual`` idea, not quite zero).

    A random ResNet with unit-variance residual branches is chaotic: a perturbation grows ~1.3x per block,
    so any rounding (FP16, a different conv algorithm) reaches 10% of the output range after 16 blocks and
    parity numbers would measure the random weights rather than the export. Trained ResNets have small
    residual branches; so does this one.
    """
    with torch.no_grad():
        for name, m in model.named_modules():
            if name.startswith("backbone.") and name.endswith(".bn3"):
                m.weight.fill_(scale)


def _calibrate_batchnorm(model: SiamAttn, seed: int, batches: int = 2) -> None:
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration batches
    model.train()
    with torch.no_grad():
        for i in range(batches):
            z, x = random_images(model.cfg, batch=2, seed=seed + 1000 + i)
            model(z, x)
    model.eval()


def random_model(cfg: Config, seed: int = 0) -> SiamAttn:
    """Build ``cfg``'s model with seeded random weights, non-zero attention/offsets and calibrated BatchNorm,
    in eval mode. The same seed gives the same weights on every machine (CPU generators)."""
    torch.manual_seed(seed)
    model = build_model(cfg)
    _randomise_switched_off_parts(model, torch.Generator().manual_seed(seed))
    _damp_residual_branches(model, RESIDUAL_SCALE)
    _calibrate_batchnorm(model, seed)
    return model
