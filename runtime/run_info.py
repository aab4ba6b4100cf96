"""What a run ran on, for the reports: the model, the clip, the backend, the machine and the package versions."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path
from typing import Any

from siamattn.host import cpu_name


def _gpu_name() -> str | None:
    torch = sys.modules.get("torch")  # the check's reference has imported it; never import it just for this
    try:
        return torch.cuda.get_device_name(0) if torch is not None and torch.cuda.is_available() else None
    except Exception:  # a broken driver must not fail the report
        return None


def _package_versions() -> dict[str, str | None]:
    from importlib import metadata

    versions: dict[str, str | None] = {"python": platform.python_version()}
    for dist in ("siamattn-trt", "numpy", "opencv-python-headless", "onnxruntime", "onnxruntime-gpu", "torch",
                 "tensorrt", "tensorrt-rtx-cu13-bindings"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return versions


def run_metadata(model_dir: str | Path, source: str, init_box: tuple[float, ...], backend: str, device: str,
                 checkpoint: str | Path | None = None) -> dict[str, Any]:
    """What a check ran on: the model (folder, manifest sha256, config), the clip, the init box, the backend
    and device, the machine (platform, CPU, GPU if any) and the package versions."""
    from siamattn.manifest import Manifest, sha256_file

    model_dir = Path(model_dir)
    manifest = Manifest.load(model_dir, verify=False)
    weights = manifest.weights
    src = str(source)
    return {
        "model": {"folder": str(model_dir.resolve()), "manifest_sha256": sha256_file(model_dir / "manifest.json"),
                  "config": manifest.config().name, "weights": str(checkpoint or weights.path or weights.source)},
        "clip": src if src.isdigit() else str(Path(src).resolve()),
        "init_box": [float(v) for v in init_box],
        "backend": backend,
        "device": device,
        "machine": {"platform": platform.platform(), "cpu": cpu_name(), "cores": os.cpu_count(),
                    "gpu": _gpu_name()},
        "versions": _package_versions(),
    }
