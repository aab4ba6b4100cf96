"""Reading backbone weight files (shared by the ResNet-50 and MobileNetV2 loaders)."""

from __future__ import annotations

from pathlib import Path

import torch

from siamattn.errors import SiamAttnError


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A backbone state dict from a file (a bare state dict or one under ``state_dict``), with clear errors."""
    if not path.is_file():
        raise SiamAttnError(f"backbone checkpoint '{path}' does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise SiamAttnError(f"backbone checkpoint '{path}' could not be read as a torch state dict: {exc}") from exc
    return state.get("state_dict", state) if isinstance(state, dict) else state
