"""manifest.json of an export directory: now in the torch-free core, :mod:`siamattn.manifest` (the runtime reads
it without importing the export stage). Re-exported here so ``from siamattn.export.manifest import ...`` keeps
working."""

from __future__ import annotations

from siamattn.errors import ManifestError
from siamattn.manifest import (
    FILE_NAME,
    FORMAT,
    STAGE_ORDER,
    VERSION,
    EngineSpec,
    GraphSpec,
    Manifest,
    TensorSpec,
    sha256_file,
    validate_manifest,
    write_manifest,
)

__all__ = ["FILE_NAME", "FORMAT", "STAGE_ORDER", "VERSION", "EngineSpec", "GraphSpec", "Manifest", "ManifestError",
           "TensorSpec", "sha256_file", "validate_manifest", "write_manifest"]
