"""TensorRT graph runner for ``tensorrt`` (TensorRT 10+, RTX/Jetson/data-centre) and ``tensorrt_rtx``.

Design for a per-frame loop with no per-frame allocation:

* every engine I/O tensor gets one device buffer at load time (shapes are static); a graph's output buffer
  *is* the next graph's input buffer when names match, so the template cache and the refinement features
  never leave the GPU;
* host inputs (the two crops and the RoI) and host outputs (cls, loc, deltas, mask) go through pinned
  buffers with async copies on one stream, and one synchronisation per downloaded output;
* the search engine, which runs every frame, is captured in a CUDA graph after a warm-up run when the
  execution context says the stream is capturable, and replayed afterwards.

Device memory goes through cuda-python (``cuda.bindings.runtime``), NVIDIA's maintained binding that ships
wheels for x86_64 and aarch64 (Jetson); pycuda needs a local CUDA build with curand headers.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path
from typing import Any

import numpy as np

from siamattn import export_choices
from siamattn.errors import MissingDependencyError, SiamAttnError
from siamattn.runtime.graph_backend import GraphSpec, TensorSpec


def import_tensorrt(flavour: str = "auto") -> tuple[Any, str]:
    """Return (module, flavour) for "tensorrt", "tensorrt-rtx" or "auto" (full TensorRT first)."""
    from siamattn import tensorrt_env

    return tensorrt_env.import_tensorrt(flavour)


def _cudart() -> Any:
    try:
        from cuda.bindings import runtime as cudart
    except ImportError as exc:
        raise MissingDependencyError(
            "the TensorRT backend needs cuda-python for GPU memory: pip install 'siamattn-trt[runtime]'"
        ) from exc
    return cudart


def _check(result: Any, what: str) -> Any:
    err, *rest = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise SiamAttnError(f"CUDA error in {what}: {err} (is an NVIDIA GPU with a matching driver present?)")
    return rest[0] if len(rest) == 1 else (rest or None)


class _Buffer:
    """One device buffer, optionally paired with a pinned host buffer for copies."""

    def __init__(self, cudart: Any, shape: tuple[int, ...], dtype: np.dtype, host: bool) -> None:
        self.shape, self.dtype = shape, dtype
        self.nbytes = int(np.prod(shape)) * dtype.itemsize
        self.device = _check(cudart.cudaMalloc(max(self.nbytes, 1)), "cudaMalloc")
        self.host: np.ndarray | None = None
        self._host_ptr = None
        if host:
            self._host_ptr = _check(cudart.cudaMallocHost(max(self.nbytes, 1)), "cudaMallocHost")
            raw = (ctypes.c_byte * max(self.nbytes, 1)).from_address(int(self._host_ptr))
            self.host = np.frombuffer(raw, dtype=dtype, count=int(np.prod(shape))).reshape(shape)

    def free(self, cudart: Any) -> None:
        cudart.cudaFree(self.device)
        if self._host_ptr is not None:
            cudart.cudaFreeHost(self._host_ptr)


class TensorRTRunner:
    """Loads engines (name -> path), optionally a plugin library, and runs them on one CUDA stream."""

    def __init__(self, paths: dict[str, Path], plugin_library: Path | None = None, flavour: str = "auto",
                 expected_version: str | None = None, cuda_graph: bool = True, profile: str | None = None) -> None:
        trt, self.flavour = import_tensorrt(flavour)
        self.version = trt.__version__
        model_dir = Path(next(iter(paths.values()))).parent if paths else Path("MODEL_DIR")
        # The export's TensorRT profile (manifest export.trt_profile: opset, plugin glue, typing) must be this
        # TensorRT's, or no rebuild of the engines can help: say so first.
        mismatch = export_choices.profile_mismatch(profile, self.flavour, self.version)
        if mismatch:
            raise SiamAttnError(f"'{model_dir}': {mismatch}")
        rebuild = f"rebuild them on this device with 'siamattn build-engines --model {model_dir}' (no torch needed)"
        if expected_version and expected_version.split(".")[:2] != self.version.split(".")[:2]:
            raise SiamAttnError(
                f"engines were built with {self.flavour} {expected_version} but {self.version} is installed "
                f"(export profile {profile or '10'}): engines are tied to the TensorRT version; {rebuild}"
            )
        self.cudart = cudart = _cudart()
        count = cudart.cudaGetDeviceCount()
        if int(count[0]) != 0 or count[1] == 0:
            raise SiamAttnError("the TensorRT backend needs an NVIDIA GPU and driver; none found "
                                "(use --backend onnxruntime on this machine)")
        self._logger = trt.Logger(trt.Logger.WARNING)
        if plugin_library is not None:
            if not Path(plugin_library).is_file():
                raise SiamAttnError(f"plugin library '{plugin_library}' not found; build it with "
                                    "'siamattn plugins build' (needs the TensorRT headers)")
            registry = trt.get_plugin_registry()
            if hasattr(registry, "load_library"):
                registry.load_library(str(plugin_library))
            else:  # TensorRT 8.5: the IPluginV2 library registers itself when loaded (plugins/trt/plugin_entry_v2.cpp)
                ctypes.CDLL(str(plugin_library), mode=ctypes.RTLD_GLOBAL)
        runtime = trt.Runtime(self._logger)
        self.stream = _check(cudart.cudaStreamCreate(), "cudaStreamCreate")
        self._engines: dict[str, Any] = {}
        self._contexts: dict[str, Any] = {}
        self.specs: dict[str, GraphSpec] = {}
        self._buffers: dict[str, _Buffer] = {}
        host_io = {"cls", "loc"}  # outputs the host reads; plus every graph's final output and fresh inputs
        for name, path in paths.items():
            data = Path(path).read_bytes()
            engine = runtime.deserialize_cuda_engine(data)
            if engine is None:
                raise SiamAttnError(
                    f"engine '{path}' could not be loaded by {self.flavour} {self.version} (corrupt, built for "
                    f"another TensorRT version or GPU, or a plugin is missing); {rebuild}"
                )
            self._engines[name] = engine
            self._contexts[name] = engine.create_execution_context()
            inputs, outputs = [], []
            for i in range(engine.num_io_tensors):
                tname = engine.get_tensor_name(i)
                spec = TensorSpec(tname, tuple(engine.get_tensor_shape(tname)),
                                  np.dtype(trt.nptype(engine.get_tensor_dtype(tname))).name)
                is_input = engine.get_tensor_mode(tname) == trt.TensorIOMode.INPUT
                (inputs if is_input else outputs).append(spec)
            self.specs[name] = GraphSpec(name, tuple(inputs), tuple(outputs))
            if name.startswith("refine"):
                host_io.update(o.name for o in outputs)
        produced = {o.name for s in self.specs.values() for o in s.outputs}
        for spec in self.specs.values():
            host_io.update(i.name for i in spec.inputs if i.name not in produced)
        # One buffer per tensor name: producer output and consumer input share memory.
        for spec in self.specs.values():
            for t in (*spec.inputs, *spec.outputs):
                if t.name not in self._buffers:
                    self._buffers[t.name] = _Buffer(cudart, t.shape, np.dtype(t.dtype), t.name in host_io)
                elif self._buffers[t.name].shape != t.shape:
                    raise SiamAttnError(f"tensor '{t.name}' has shape {t.shape} in graph '{spec.name}' but "
                                        f"{self._buffers[t.name].shape} elsewhere: engines from different exports")
        for name, ctx in self._contexts.items():
            for t in (*self.specs[name].inputs, *self.specs[name].outputs):
                ctx.set_tensor_address(t.name, int(self._buffers[t.name].device))
        self._use_graph = cuda_graph and os.environ.get("SIAMATTN_NO_CUDA_GRAPH") != "1"
        self._graphs: dict[str, Any] = {}
        self._runs: dict[str, int] = {}

    # -- GraphRunner -------------------------------------------------------------------------------
    def upload(self, graph: str, name: str, array: np.ndarray) -> Any:
        buf = self._buffers[name]
        assert buf.host is not None
        np.copyto(buf.host, array.reshape(buf.shape), casting="same_kind")
        kind = self.cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        _check(self.cudart.cudaMemcpyAsync(buf.device, buf.host.ctypes.data, buf.nbytes, kind, self.stream),
               "cudaMemcpyAsync")
        return buf

    def run(self, graph: str, feeds: dict[str, Any]) -> dict[str, Any]:
        del feeds  # inputs are already bound by name to the shared buffers
        cudart, ctx = self.cudart, self._contexts[graph]
        exec_graph = self._graphs.get(graph)
        if exec_graph is not None:
            _check(cudart.cudaGraphLaunch(exec_graph, self.stream), "cudaGraphLaunch")
        else:
            if not ctx.execute_async_v3(int(self.stream)):
                raise SiamAttnError(f"TensorRT failed to run the '{graph}' engine (see the TensorRT log above)")
            self._runs[graph] = self._runs.get(graph, 0) + 1
            # Capture the per-frame engine once it has run (TensorRT-RTX compiles kernels on first use).
            if graph == "search" and self._use_graph and self._runs[graph] == 2 and \
                    ctx.is_stream_capturable(int(self.stream)):
                self._capture(graph, ctx)
        return {o.name: self._buffers[o.name] for o in self.specs[graph].outputs}

    def _capture(self, graph: str, ctx: Any) -> None:
        cudart = self.cudart
        mode = cudart.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal
        _check(cudart.cudaStreamBeginCapture(self.stream, mode), "cudaStreamBeginCapture")
        ok = ctx.execute_async_v3(int(self.stream))
        g = _check(cudart.cudaStreamEndCapture(self.stream), "cudaStreamEndCapture")
        if ok and g is not None:
            self._graphs[graph] = _check(cudart.cudaGraphInstantiate(g, 0), "cudaGraphInstantiate")

    def download(self, handle: Any) -> np.ndarray:
        buf: _Buffer = handle
        assert buf.host is not None
        kind = self.cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        _check(self.cudart.cudaMemcpyAsync(buf.host.ctypes.data, buf.device, buf.nbytes, kind, self.stream),
               "cudaMemcpyAsync")
        _check(self.cudart.cudaStreamSynchronize(self.stream), "cudaStreamSynchronize")
        return buf.host

    def close(self) -> None:
        for buf in self._buffers.values():
            buf.free(self.cudart)
        self._buffers.clear()
