"""Open an export folder (manifest.json) with the best or the requested backend.

``auto``: TensorRT engines when every graph has one, a TensorRT module and an NVIDIA GPU are present;
otherwise ONNX Runtime (CUDA provider when available, else CPU) on the ONNX graphs. The reason for a
fallback is reported, never hidden: it goes to the caller's ``notes`` list (the CLI prints it once the
model has loaded, unless --quiet), or is issued as a warning. ``torch`` rebuilds the PyTorch model from
the export's weights (the checkpoint, or the seed of a random-init export) and is the FP32 reference for
``siamattn check``.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

from siamattn.config import Config
from siamattn.errors import SiamAttnError, require
from siamattn.manifest import Manifest
from siamattn.runtime.backend import BACKEND_CHOICES, DEVICE_CHOICES, Backend, check_choice
from siamattn.runtime.graph_backend import MULTI_SUFFIX, GraphBackend
from siamattn.validate import as_path


def _tensorrt(manifest: Manifest, device: str) -> Backend:
    from siamattn.runtime.trt_runner import TensorRTRunner

    names = [n for n in manifest.order if not n.endswith(MULTI_SUFFIX)]
    missing = [n for n in names if manifest.engine_path(n) is None]
    if missing:
        why = manifest.engines.skipped.get(missing[0], "built without an engine backend")
        raise SiamAttnError(f"export '{manifest.root}' has no TensorRT engine for {', '.join(missing)} ({why}); "
                            "re-export with --engine tensorrt on the target machine")
    # The batch engines (optimisation profile over the target axis) when every one of them was built; else
    # several targets run one after another on the batch-1 engines.
    multi = [n for n in manifest.order if n.endswith(MULTI_SUFFIX)]
    if multi and all(manifest.engine_path(n) is not None for n in multi):
        names += multi
    eng = manifest.engines
    runner = TensorRTRunner({n: manifest.engine_path(n) for n in names},  # type: ignore[misc]
                            plugin_library=Path(eng.plugin_library) if eng.plugin_library else None,
                            flavour=eng.backend or "auto", expected_version=eng.version, profile=manifest.trt_profile)
    return GraphBackend(runner, max_batch=runner.max_batch)


def _onnxruntime(manifest: Manifest, device: str) -> Backend:
    from siamattn.runtime.ort_runner import OnnxRuntimeRunner

    custom = sorted({op for n in manifest.order for op in manifest.graph(n).custom_ops})
    if custom:
        raise SiamAttnError(f"export '{manifest.root}' uses TensorRT plugin ops ({', '.join(custom)}) that ONNX "
                            "Runtime cannot run; export with '--ops portable' for ONNX Runtime")
    # INT8 exports: the uint8-activation twin of each Q/DQ graph on the CPU (same numbers; export/int8.py)
    runner = OnnxRuntimeRunner({n: manifest.onnx_path(n) for n in manifest.order}, device,
                               cpu_paths=manifest.cpu_paths())
    # On a CPU a batch costs more than its targets' batch-1 runs (the convolutions are compute-bound already at
    # batch 1, and the batch graphs' xcorr also correlates the padding up to max_targets; measured in
    # docs/PERFORMANCE.md "Many targets"): there several targets run one after another on the batch-1 graphs.
    return GraphBackend(runner, max_batch=manifest.max_targets if runner.device == "cuda" else 1)


def load_reference(model_dir: str | Path, checkpoint: str | Path | None = None, device: str = "cpu",
                   checkpoint_option: str | None = "--checkpoint") -> Backend:
    """The PyTorch FP32 backend for an export: its checkpoint (or ``checkpoint``), or its random-init seed.
    ``checkpoint_option``: how the caller lets a user name other weights (None: it cannot), for the message
    when the export's weights are gone."""
    model_dir = as_path(model_dir, "model folder")
    checkpoint = None if checkpoint is None else as_path(checkpoint, "checkpoint")
    require("torch", "export", "the PyTorch reference (siamattn check, --backend torch)")
    from siamattn.runtime.torch_backend import TorchBackend, torch_device

    manifest = Manifest.load(model_dir, verify=False)
    cfg = manifest.config()
    weights = manifest.weights
    if checkpoint is None and weights.source == "random-init":
        from siamattn.export.random_model import random_model

        return TorchBackend(random_model(cfg, int(weights.seed or 0)), device=torch_device(device))
    from siamattn.training.model import load_checkpoint

    if checkpoint is not None:  # the user's own file: its own errors (missing, a folder, not a checkpoint)
        return TorchBackend(load_checkpoint(checkpoint, cfg), device=torch_device(device))
    path = weights.path
    if not path or not Path(path).is_file():
        fix = f"pass {checkpoint_option} PATH" if checkpoint_option else (
            f"put them back there, or re-export from them: siamattn export --checkpoint PATH --out {model_dir}")
        raise SiamAttnError(f"the weights of export '{model_dir}' are not at '{path}' (moved or deleted since the "
                            f"export); {fix}")
    return TorchBackend(load_checkpoint(path, cfg), device=torch_device(device))


def load_backend(model_dir: str | Path, backend: str = "auto", device: str = "auto",
                 notes: list[str] | None = None) -> tuple[Backend, Config, str]:
    """Returns (backend, config, a short name of what runs, e.g. 'tensorrt-rtx 1.7.1 fp16').

    Why ``auto`` fell back to ONNX Runtime is appended to ``notes``; without a list it is a warning.
    """
    check_choice("backend", backend, BACKEND_CHOICES)
    check_choice("device", device, DEVICE_CHOICES)
    model_dir = as_path(model_dir, "model folder")
    manifest = Manifest.load(model_dir)
    cfg = manifest.config()
    precision = manifest.precision
    if backend == "torch":
        ref = load_reference(model_dir, device=device, checkpoint_option=None)
        return ref, cfg, f"torch {getattr(ref, 'device', 'cpu')} fp32"
    if backend in ("auto", "tensorrt"):
        try:
            b = _tensorrt(manifest, device)
            eng = manifest.engines
            return b, cfg, f"{eng.backend} {eng.version} {precision}"
        except SiamAttnError as exc:
            if backend == "tensorrt":
                raise
            fallback = f"TensorRT backend unavailable ({str(exc).splitlines()[0]}); using ONNX Runtime"
    else:
        fallback = None
    b = _onnxruntime(manifest, device)
    if fallback is not None:  # only once ONNX Runtime has loaded: a failed load reports its own error
        if notes is None:
            warnings.warn(fallback, RuntimeWarning, stacklevel=2)
        else:
            notes.append(fallback)
    runner = b.runner  # type: ignore[attr-defined]
    return b, cfg, f"onnxruntime {runner.device} {precision}"


def print_notes(notes: list[str], quiet: bool) -> None:
    """The CLI's side of ``notes``: each once, on stderr, after the model has loaded; nothing when quiet."""
    if not quiet:
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
