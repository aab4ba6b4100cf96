"""ONNX Runtime graph runner: the backend that runs anywhere (CPU), and on NVIDIA GPUs with the CUDA
execution provider. Inputs and outputs are bound with IO binding so that, on CUDA, the template cache and
refinement features stay in GPU memory between graphs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from siamattn.errors import SiamAttnError, require
from siamattn.runtime.graph_backend import GraphSpec, TensorSpec

_ORT_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(int64)": "int64",
              "tensor(int32)": "int32"}


def _spec(name: str, session: Any) -> GraphSpec:
    def t(args: Any) -> tuple[TensorSpec, ...]:
        return tuple(TensorSpec(a.name, tuple(d if isinstance(d, int) else -1 for d in a.shape),
                                _ORT_TYPES.get(a.type, a.type)) for a in args)

    return GraphSpec(name, t(session.get_inputs()), t(session.get_outputs()))


class OnnxRuntimeRunner:
    """Runs ONNX graphs (by name -> path). ``device``: "auto" (CUDA if the installed onnxruntime has it),
    "cpu" or "cuda"."""

    def __init__(self, paths: dict[str, Path], device: str = "auto", threads: int = 0) -> None:
        ort = require("onnxruntime", "runtime", "the ONNX Runtime backend")
        available = ort.get_available_providers()
        if device == "cuda" and "CUDAExecutionProvider" not in available:
            raise SiamAttnError("ONNX Runtime has no CUDA provider here; install onnxruntime-gpu or use --device cpu")
        use_cuda = device == "cuda" or (device == "auto" and "CUDAExecutionProvider" in available)
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if use_cuda else ["CPUExecutionProvider"]
        self.device = "cuda" if use_cuda else "cpu"
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            opts.intra_op_num_threads = threads
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
