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
from siamattn.outputs import StagedFile
from siamattn.training.model.siamattn import SiamAttn, build_model
from siamattn.training.model.weights import load_torch_file

FORMAT = "siamattn-checkpoint"


def save_checkpoint(path: str | Path, model: SiamAttn, flag: str = "checkpoint", **extra: Any) -> None:
    """Atomic: written beside ``path`` and renamed over it, so an interrupted or failed save (a full disk)
    leaves the old file, never a truncated one, and no temporary file."""
    payload = {"format": FORMAT, "config": model.cfg.to_dict(), "model": model.state_dict(), **extra}
    with StagedFile(path, flag) as staged:
        with open(staged.tmp, "wb") as f:  # a file object: torch's write error keeps the OSError as context
            torch.save(payload, f)
        staged.commit()


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
