"""Open an export folder (manifest.json) with the best or the requested backend.

``auto``: TensorRT engines when every graph has one, a TensorRT module and an NVIDIA GPU are present;
otherwise ONNX Runtime (CUDA provider when available, else CPU) on the ONNX graphs. The reason for a
fallback is reported, never hidden. ``torch`` rebuilds the PyTorch model from the export's weights (the
checkpoint, or the seed of a random-init export) and is the FP32 reference for ``siamattn check``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..config import Config
from ..errors import SiamAttnError
from ..export.manifest import Manifest
from .backend import Backend
from .graph_backend import GraphBackend
from .tracker import Tracker


def _note(msg: str) -> None:
    print(f"note: {msg}", file=sys.stderr)


def _tensorrt(manifest: Manifest, device: str) -> Backend:
    from .trt_runner import TensorRTRunner

    names = manifest.order
    missing = [n for n in names if manifest.engine_path(n) is None]
    if missing:
        skipped = manifest.data.get("engines", {}).get("skipped", {})
        why = skipped.get(missing[0], "built without an engine backend")
        raise SiamAttnError(f"export '{manifest.root}' has no TensorRT engine for {', '.join(missing)} ({why}); "
                            "re-export with --engine tensorrt on the target machine")
    eng = manifest.data.get("engines", {})
    plugin = eng.get("plugin_library")
    runner = TensorRTRunner({n: manifest.engine_path(n) for n in names},  # type: ignore[misc]
                            plugin_library=Path(plugin) if plugin else None,
                            flavour=eng.get("backend") or "auto", expected_version=eng.get("version"))
    return GraphBackend(runner)


def _onnxruntime(manifest: Manifest, device: str) -> Backend:
    from .ort_runner import OnnxRuntimeRunner

    custom = sorted({op for n in manifest.order for op in manifest.graph(n).custom_ops})
    if custom:
        raise SiamAttnError(f"export '{manifest.root}' uses TensorRT plugin ops ({', '.join(custom)}) that ONNX "
                            "Runtime cannot run; export with '--ops portable' for ONNX Runtime")
    return GraphBackend(OnnxRuntimeRunner({n: manifest.onnx_path(n) for n in manifest.order}, device))


def load_reference(model_dir: str | Path, checkpoint: str | Path | None = None, device: str = "cpu") -> Backend:
    """The PyTorch FP32 backend for an export: its checkpoint (or ``checkpoint``), or its random-init seed."""
    from .torch_backend import TorchBackend

    manifest = Manifest.load(model_dir, verify=False)
    cfg = manifest.config()
    weights = manifest.data.get("weights", {})
    if checkpoint is None and weights.get("source") == "random-init":
        from siamattn.export.random_model import random_model

        return TorchBackend(random_model(cfg, int(weights.get("seed") or 0)), device=_torch_device(device))
    from siamattn.training.model import load_checkpoint

    path = checkpoint or weights.get("path")
    if not path or not Path(path).is_file():
        raise SiamAttnError(f"the weights of export '{model_dir}' are not at '{path}'; pass --checkpoint PATH")
    return TorchBackend(load_checkpoint(path, cfg), device=_torch_device(device))


def _torch_device(device: str) -> str:
    if device != "auto":
        return device
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "cpu"


def load_backend(model_dir: str | Path, backend: str = "auto", device: str = "auto") -> tuple[Backend, Config, str]:
    """Returns (backend, config, a short name of what runs, e.g. 'tensorrt-rtx 1.7.1 fp16')."""
    manifest = Manifest.load(model_dir)
    cfg = manifest.config()
    precision = manifest.precision
    if backend == "torch":
        ref = load_reference(model_dir, device=device)
        return ref, cfg, f"torch {getattr(ref, 'device', 'cpu')} fp32"
    if backend in ("auto", "tensorrt"):
        try:
            b = _tensorrt(manifest, device)
            eng = manifest.data["engines"]
            return b, cfg, f"{eng['backend']} {eng['version']} {precision}"
        except SiamAttnError as exc:
            if backend == "tensorrt":
                raise
            _note(f"TensorRT backend unavailable ({str(exc).splitlines()[0]}); using ONNX Runtime")
    b = _onnxruntime(manifest, device)
    runner = b.runner  # type: ignore[attr-defined]
    return b, cfg, f"onnxruntime {runner.device} {precision}"


def load_tracker(model_dir: str | Path, backend: str = "auto", device: str = "auto") -> tuple[Tracker, str]:
    tracker = Tracker(model_dir, backend=backend, device=device)
    return tracker, tracker.backend_label
