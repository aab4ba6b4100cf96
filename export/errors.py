"""Errors of the export stage (torch-free)."""

from __future__ import annotations

from siamattn.errors import ManifestError, SiamAttnError

__all__ = ["EngineBuildError", "ExportError", "ManifestError"]  # ManifestError lives in the core now


class ExportError(SiamAttnError, RuntimeError):
    """Exporting or post-processing a graph failed for a reason the user can act on."""


class EngineBuildError(SiamAttnError, RuntimeError):
    """A TensorRT engine could not be built; the message names the ONNX node when the parser says which."""
