"""Reading torch weight files safely (``weights_only``), with one-line errors: checkpoints, backbone weights."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from siamattn.errors import SiamAttnError

# torch.save's legacy (non-zip, before PyTorch 1.6 or _use_new_zipfile_serialization=False) format starts with
# its magic number pickled with protocol 2; torch.load reads such files too.
_LEGACY_MAGIC = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)


def _unreadable_reason(path: Path, exc: Exception) -> str:
    """Why torch.load (weights_only) refused ``path``, in words that never advise loading it unsafely."""
    if isinstance(exc, OSError):
        return f"cannot be read ({exc.strerror or exc})"
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as f:
            legacy = f.read(len(_LEGACY_MAGIC)) == _LEGACY_MAGIC
        if legacy and not isinstance(exc, pickle.UnpicklingError):
            return ("is a damaged PyTorch file in torch.save's legacy (non-zip) format "
                    f"({exc.__class__.__name__}); re-save or re-download it")
        if not legacy:
            return ("is not a PyTorch checkpoint (neither a torch.save zip archive nor torch.save's legacy "
                    "format: a damaged, truncated or unrelated file)")
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


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A backbone state dict from a file (a bare state dict or one under ``state_dict``), with clear errors."""
    state = load_torch_file(path, "backbone checkpoint")
    return state.get("state_dict", state) if isinstance(state, dict) else state
