"""ONNX Runtime graph runner: the backend that runs anywhere (CPU), and on NVIDIA GPUs with the CUDA
execution provider. Inputs and outputs are bound with IO binding so that, on CUDA, the template cache and
refinement features stay in GPU memory between graphs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from siamattn.errors import SiamAttnError, require
from siamattn.runtime.graph_backend import GraphSpec, TensorSpec

_ORT_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(int64)": "int64",
              "tensor(int32)": "int32"}


def physical_cores() -> int:
    """Physical cores this process may run on (SMT siblings counted once): the thread count at which CPU
    inference is fastest; more threads than cores only contend (docs/PERFORMANCE.md, "ONNX Runtime on a CPU")."""
    try:
        allowed = os.sched_getaffinity(0)
    except AttributeError:  # not Linux
        return max(1, (os.cpu_count() or 2) // 2)
    cores: set[tuple[str, str]] = set()
    try:
        base = Path("/sys/devices/system/cpu")
        for cpu in allowed:
            topo = base / f"cpu{cpu}" / "topology"
            cores.add(((topo / "physical_package_id").read_text().strip(), (topo / "core_id").read_text().strip()))
    except OSError:
        return len(allowed)
    return max(1, len(cores))


def session_options(ort: Any, threads: int = 0, spinning: bool = False, optimized_path: Path | None = None) -> Any:
    """ONNX Runtime session options for batch-1 tracking: all graph optimisations (constant folding, Conv/BN/
    activation fusion, NCHWc layouts, attention and MatMul fusions), one graph run at a time on ``threads``
    intra-op threads (default: the physical cores), and no spin-waiting between ops unless asked (spinning
    burns the cores other work on the machine needs and measured no faster; docs/PERFORMANCE.md)."""
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.intra_op_num_threads = threads or physical_cores()
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    if optimized_path is not None:
        opts.optimized_model_filepath = str(optimized_path)
    return opts


def _spec(name: str, session: Any) -> GraphSpec:
    def t(args: Any) -> tuple[TensorSpec, ...]:
        return tuple(TensorSpec(a.name, tuple(d if isinstance(d, int) else -1 for d in a.shape),
                                _ORT_TYPES.get(a.type, a.type)) for a in args)

    return GraphSpec(name, t(session.get_inputs()), t(session.get_outputs()))


class OnnxRuntimeRunner:
    """Runs ONNX graphs (by name -> path). ``device``: "auto" (CUDA if the installed onnxruntime has it),
    "cpu" or "cuda"; ``threads``: intra-op threads (0: the physical cores, see :func:`session_options`)."""

    def __init__(self, paths: dict[str, Path], device: str = "auto", threads: int = 0,
                 cpu_paths: dict[str, Path] | None = None) -> None:
        """``cpu_paths``: graphs to load instead on the CPU (INT8 exports' uint8-activation files, export/int8.py)."""
        ort = require("onnxruntime", "runtime", "the ONNX Runtime backend")
        available = ort.get_available_providers()
        if device == "cuda" and "CUDAExecutionProvider" not in available:
            raise SiamAttnError("ONNX Runtime has no CUDA provider here; install onnxruntime-gpu or use --device cpu")
        use_cuda = device == "cuda" or (device == "auto" and "CUDAExecutionProvider" in available)
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if use_cuda else ["CPUExecutionProvider"]
        self.device = "cuda" if use_cuda else "cpu"
        opts = session_options(ort, threads)
        if not use_cuda and cpu_paths:
            paths = {**paths, **cpu_paths}
        self._ort = ort
        self.sessions: dict[str, Any] = {}
        for name, path in paths.items():
            try:
                self.sessions[name] = ort.InferenceSession(str(path), opts, providers=providers)
            except Exception as exc:  # onnxruntime raises its own exception types for corrupt/unsupported files
                raise SiamAttnError(f"ONNX Runtime cannot load '{path}': {str(exc).splitlines()[0]}") from exc
        self.specs = {name: _spec(name, s) for name, s in self.sessions.items()}
        self._dtypes = {(g, i.name): np.dtype(i.dtype) for g, s in self.specs.items() for i in s.inputs}
        self._device_inputs: dict[tuple[str, str], Any] = {}

    def upload(self, graph: str, name: str, array: np.ndarray) -> Any:
        arr = np.ascontiguousarray(array, dtype=self._dtypes[(graph, name)])
        if self.device == "cpu":
            return self._ort.OrtValue.ortvalue_from_numpy(arr)
        key = (graph, name)
        buf = self._device_inputs.get(key)
        if buf is None or tuple(buf.shape()) != arr.shape:
            buf = self._ort.OrtValue.ortvalue_from_numpy(arr, "cuda", 0)
            self._device_inputs[key] = buf
        else:
            buf.update_inplace(arr)
        return buf

    def run(self, graph: str, feeds: dict[str, Any]) -> dict[str, Any]:
        session = self.sessions[graph]
        binding = session.io_binding()
        for name, value in feeds.items():
            binding.bind_ortvalue_input(name, value)
        outputs = [o.name for o in self.specs[graph].outputs]
        for name in outputs:
            binding.bind_output(name, self.device)
        session.run_with_iobinding(binding)
        return dict(zip(outputs, binding.get_outputs(), strict=True))

    def download(self, handle: Any) -> np.ndarray:
        return handle.numpy()
