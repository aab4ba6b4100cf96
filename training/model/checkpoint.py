"""Checkpoint files: ``{"format": "siamattn-checkpoint", "config": {...}, "model": state_dict, ...}``.

The config travels with the weights so export and runtime rebuild exactly the trained network. Loading
compares every key and shape and names the differences, instead of letting PyTorch fail deep inside.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from siamattn.config import Config, from_dict
from siamattn.errors import SiamAttnError
from siamattn.training.model.siamattn import SiamAttn, build_model
from siamattn.training.model.weights import load_torch_file

FORMAT = "siamattn-checkpoint"


def save_checkpoint(path: str | Path, model: SiamAttn, **extra: Any) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "config": model.cfg.to_dict(), "model": model.state_dict(), **extra}
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)  # atomic: an interrupted save never leaves a truncated checkpoint


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    payload = load_torch_file(path)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise SiamAttnError(f"checkpoint '{path}' is not a siamattn checkpoint (no 'format: {FORMAT}' entry)")
    return payload


def check_state_dict(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in sorted(set(own) & set(state))
              if state[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} keys (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} keys (e.g. {', '.join(unexpected[:3])})")
        if shapes:
            parts.append(f"{len(shapes)} shape mismatches (checkpoint vs model; e.g. {'; '.join(shapes[:3])})")
        raise SiamAttnError(f"{source} does not match the model built from the config: " + "; ".join(parts)
                            + ". Use the config the checkpoint was trained with.")


def load_checkpoint(path: str | Path, cfg: Config | None = None) -> SiamAttn:
    """Build the model from ``cfg`` (or the checkpoint's own config) and load the weights, in eval mode."""
    payload = read_checkpoint(path)
    cfg = cfg or from_dict(payload["config"])
    model = build_model(cfg)
    check_state_dict(model, payload["model"], f"checkpoint '{path}'")
    model.load_state_dict(payload["model"])
    return model.eval()
