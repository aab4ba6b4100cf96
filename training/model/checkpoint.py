"""Checkpoint files: ``{"format": "siamattn-checkpoint", "config": {...}, "model": state_dict, ...}``.

The config travels with the weights so export and runtime rebuild exactly the trained network. Loading
compares every key and shape and names the differences, instead of letting PyTorch fail deep inside.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from siamattn.config import Config, from_dict
from siamattn.errors import SiamAttnError
from siamattn.training.model.siamattn import SiamAttn, build_model

FORMAT = "siamattn-checkpoint"


def save_checkpoint(path: str | Path, model: SiamAttn, **extra: Any) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "config": model.cfg.to_dict(), "model": model.state_dict(), **extra}
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)  # atomic: an interrupted save never leaves a truncated checkpoint


def _unreadable_reason(path: Path, exc: Exception) -> str:
    """Why torch.load (weights_only) refused ``path``, in words that never advise loading it unsafely."""
    if not zipfile.is_zipfile(path):
        return "is not a PyTorch checkpoint (not a torch.save zip archive: a damaged, truncated or unrelated file)"
    if isinstance(exc, pickle.UnpicklingError):
        return ("is a PyTorch file but not a siamattn checkpoint: it holds objects other than tensors and plain "
                "data, which siamattn does not load")
    return f"is a damaged PyTorch file ({exc.__class__.__name__}); re-save or re-download it"


def load_torch_file(path: str | Path, what: str = "checkpoint") -> Any:
    """``torch.load(path, weights_only=True)`` on CPU with our own one-line errors (named ``what 'path'``)."""
    path = Path(path)
    if path.is_dir():
        raise SiamAttnError(f"{what} '{path}' is a folder, not a checkpoint file (.pt)")
    if not path.is_file():
        raise SiamAttnError(f"{what} '{path}' does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        # Our own line: PyTorch's message suggests weights_only=False, i.e. running code from an untrusted file.
        raise SiamAttnError(f"{what} '{path}' {_unreadable_reason(path, exc)}") from None


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
