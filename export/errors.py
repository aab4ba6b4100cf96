"""Errors of the export stage (torch-free, so the runtime can catch ManifestError without torch)."""

from __future__ import annotations

from siamattn.errors import SiamAttnError


class ExportError(SiamAttnError, RuntimeError):
    """Exporting or post-processing a graph failed for a reason the user can act on."""


class ManifestError(SiamAttnError, ValueError):
    """An export directory or its manifest.json is missing, corrupt or does not match its files."""


class EngineBuildError(SiamAttnError, RuntimeError):
    """A TensorRT engine could not be built; the message names the ONNX node when the parser says which."""
