"""TensorRT graph runner for ``tensorrt`` (TensorRT 10+, RTX/Jetson/data-centre) and ``tensorrt_rtx``.

Design for a per-frame loop with no per-frame allocation:

* every engine I/O tensor gets one device buffer at load time, the batch graphs' (``*_multi``, a target axis
  1..max_targets) at the largest shape of their optimisation profile. Buffers are shared by tensor name within a
  graph family (the batch-1 graphs; the ``*_multi`` graphs): a graph's output buffer *is* the next graph's input
  buffer, so the search features reach the refinement engines without a copy and never leave the GPU;
* a call of a batch engine on n targets sets the n-target input shapes (only when n changed since its last
  call), copies only n items in and out, and returns handles of n items (host views are slices);
* handles are (buffer, n items). A handle fed to a graph whose input is bound to another buffer (a target's
  template cache, the stacked caches of a set of targets) is copied device to device before the run: the
  addresses bound in the execution contexts never change;
* host inputs (the crops and the RoIs) and host outputs (cls, loc, deltas, mask) go through pinned buffers with
  async copies on one stream, and one synchronisation per downloaded output;
* the batch-1 search engine, which runs every frame, is captured in a CUDA graph after a warm-up run when the
  execution context says the stream is capturable, and replayed afterwards. The batch engines are not captured:
  a captured graph is only valid for the input shapes it was captured with, the shapes change whenever the
  number of targets (or the chunk) changes, and TensorRT-RTX compiles shape-specialised kernels at run time
  for new shapes (NVIDIA's TensorRT-RTX guide, "Working with RTX CUDA Graphs"); one batch call also spreads its
  launch overhead over its n targets, which is what a graph would save.

Memory that outlives a frame on purpose (a target's template cache, the stacked caches of a set of targets) is
allocated by :meth:`TensorRTRunner.keep` and :meth:`TensorRTRunner.upload` when targets are added or removed,
and freed by :meth:`TensorRTRunner.release`.

Device memory goes through cuda-python (``cuda.bindings.runtime``), NVIDIA's maintained binding that ships
wheels for x86_64 and aarch64 (Jetson); pycuda needs a local CUDA build with curand headers.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path
from typing import Any

import numpy as np

from siamattn import export_choices, tensorrt_env
from siamattn.errors import MissingDependencyError, SiamAttnError
from siamattn.runtime.graph_backend import MULTI_SUFFIX, GraphSpec, TensorSpec


def import_tensorrt(flavour: str = "auto") -> tuple[Any, str]:
    """Return (module, flavour) for "tensorrt", "tensorrt-rtx" or "auto" (full TensorRT first)."""
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
    """One device buffer of ``shape`` (the largest a tensor takes), optionally paired with a pinned host buffer."""

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
        self._items: dict[int, _Items] = {}

    def items(self, n: int) -> _Items:
        """The handle of the first ``n`` items (made once per n: no per-frame object churn)."""
        view = self._items.get(n)
        if view is None:
            view = self._items[n] = _Items(self, n)
        return view

    def free(self, cudart: Any) -> None:
        cudart.cudaFree(self.device)
        if self._host_ptr is not None:
            cudart.cudaFreeHost(self._host_ptr)


class _Items:
    """A handle: the first ``n`` items (along axis 0) of a buffer, and their pinned host view if any."""

    def __init__(self, buffer: _Buffer, n: int) -> None:
        self.buffer, self.n = buffer, n
        self.shape = (n, *buffer.shape[1:])
        self.nbytes = int(np.prod(self.shape)) * buffer.dtype.itemsize
        self.host = None if buffer.host is None else buffer.host[:n]


class TensorRTRunner:
    """Loads engines (name -> path), optionally a plugin library, and runs them on one CUDA stream."""

    def __init__(self, paths: dict[str, Path], plugin_library: Path | None = None, flavour: str = "auto",
                 expected_version: str | None = None, cuda_graph: bool = True, profile: str | None = None) -> None:
        trt, self.flavour = import_tensorrt(flavour)
        self.version = trt.__version__
        model_dir = Path(next(iter(paths.values()))).parent if paths else Path("MODEL_DIR")
        rebuild = self._refuse_other_tensorrt(model_dir, profile, expected_version)
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
            tensorrt_env.register_plugin_library(trt, plugin_library)
        runtime = trt.Runtime(self._logger)
        self.stream = _check(cudart.cudaStreamCreate(), "cudaStreamCreate")
        self._engines: dict[str, Any] = {}
        self._contexts: dict[str, Any] = {}
        self.specs: dict[str, GraphSpec] = {}
        # graph -> (first, last) target count of its optimisation profile: the graphs with a target axis
        self._batch_range: dict[str, tuple[int, int]] = {}
        max_shapes: dict[tuple[str, str], tuple[int, ...]] = {}  # (graph, tensor) -> buffer shape
        host_io = {"cls", "loc"}  # outputs the host reads; plus every graph's final output and fresh inputs
        for name, path in paths.items():
            self._load_engine(trt, runtime, name, Path(path), max_shapes, rebuild)
            if name.startswith("refine"):
                host_io.update(o.name for o in self.specs[name].outputs)
        produced = {o.name for s in self.specs.values() for o in s.outputs}
        for spec in self.specs.values():
            host_io.update(i.name for i in spec.inputs if i.name not in produced)
        self._fresh = {g: {i.name for i in s.inputs if i.name not in produced} for g, s in self.specs.items()}
        self._bind_buffers(host_io, max_shapes)
        # the most targets one call of every batch engine takes (1 without batch engines)
        self.max_batch = min((hi for _, hi in self._batch_range.values()), default=1)
        self._shape_n: dict[str, int] = {}  # batch engine -> target count its context's input shapes are set to
        self._out_items: dict[tuple[str, int], dict[str, _Items]] = {}  # (graph, n) -> output handles
        self._holds: dict[int, _Buffer] = {}  # id(bound input buffer) -> the buffer last copied into it
        self._owned: dict[int, _Buffer] = {}  # buffers of keep()/upload() of produced tensors, until release()
        self._use_graph = cuda_graph and os.environ.get("SIAMATTN_NO_CUDA_GRAPH") != "1"
        self._graphs: dict[str, Any] = {}
        self._runs: dict[str, int] = {}

    def _refuse_other_tensorrt(self, model_dir: Path, profile: str | None, expected_version: str | None) -> str:
        """Refuse engines this TensorRT cannot run; returns the rebuild advice for later errors."""
        # The export's TensorRT profile (manifest export.trt_profile: opset, plugin glue, typing) must be this
        # TensorRT's, or no rebuild of the engines can help: say so first.
        mismatch = export_choices.profile_mismatch(profile, self.flavour, self.version)
        if mismatch:
            raise SiamAttnError(f"'{model_dir}': {mismatch}")
        rebuild = f"rebuild them on this device with 'siamattn build-engines --model {model_dir}' (no torch needed)"
        if expected_version and expected_version.split(".")[:2] != self.version.split(".")[:2]:
            raise SiamAttnError(
                f"engines were built with {self.flavour} {expected_version} but {self.version} is installed "
                f"(export profile {profile or export_choices.DEFAULT_TRT_PROFILE}): engines are tied to the TensorRT "
                f"version; {rebuild}"
            )
        return rebuild

    def _load_engine(self, trt: Any, runtime: Any, name: str, path: Path,
                     max_shapes: dict[tuple[str, str], tuple[int, ...]], rebuild: str) -> None:
        """Deserialize one engine, make its execution context and read its tensors into ``specs``."""
        engine = runtime.deserialize_cuda_engine(path.read_bytes())
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
            shape = tuple(int(d) for d in engine.get_tensor_shape(tname))
            spec = TensorSpec(tname, shape, np.dtype(trt.nptype(engine.get_tensor_dtype(tname))).name)
            is_input = engine.get_tensor_mode(tname) == trt.TensorIOMode.INPUT
            (inputs if is_input else outputs).append(spec)
        self.specs[name] = GraphSpec(name, tuple(inputs), tuple(outputs))
        self._batch_axis(name, engine, inputs, outputs, max_shapes, rebuild)

    def _bind_buffers(self, host_io: set[str], max_shapes: dict[tuple[str, str], tuple[int, ...]]) -> None:
        """One buffer per tensor name and graph family (producer output and consumer input share memory),
        bound once into every context: the addresses never change."""
        self._buffers: dict[tuple[str, str], _Buffer] = {}
        for spec in self.specs.values():
            family = self._family(spec.name)
            for t in (*spec.inputs, *spec.outputs):
                shape = max_shapes.get((spec.name, t.name), t.shape)
                buf = self._buffers.get((family, t.name))
                if buf is None:
                    self._buffers[(family, t.name)] = _Buffer(self.cudart, shape, np.dtype(t.dtype), t.name in host_io)
                elif buf.shape != shape:
                    raise SiamAttnError(f"tensor '{t.name}' has shape {shape} in graph '{spec.name}' but "
                                        f"{buf.shape} elsewhere: engines from different exports")
        for name, ctx in self._contexts.items():
            for t in (*self.specs[name].inputs, *self.specs[name].outputs):
                ctx.set_tensor_address(t.name, int(self._bound(name, t.name).device))

    @staticmethod
    def _family(graph: str) -> str:
        return MULTI_SUFFIX if graph.endswith(MULTI_SUFFIX) else ""

    def _bound(self, graph: str, tensor: str) -> _Buffer:
        return self._buffers[(self._family(graph), tensor)]

    def _batch_axis(self, name: str, engine: Any, inputs: list[TensorSpec], outputs: list[TensorSpec],
                    max_shapes: dict[tuple[str, str], tuple[int, ...]], rebuild: str) -> None:
        """For an engine with symbolic input axes: check that only the first (target) axis is symbolic, record its
        profile range, and the largest shape of every tensor (outputs: the input range's largest first axis)."""
        dynamic = [t for t in (*inputs, *outputs) if -1 in t.shape]
        if not dynamic:
            return
        if any(-1 in t.shape[1:] for t in dynamic) or any(-1 not in t.shape[:1] for t in inputs):
            raise SiamAttnError(f"engine '{name}': only a first (target) axis may be dynamic, on every input; "
                                f"got {[(t.name, t.shape) for t in dynamic]}: {rebuild}")
        ranges = set()
        for t in inputs:
            low, _, high = (tuple(int(d) for d in s) for s in engine.get_tensor_profile_shape(t.name, 0))
            ranges.add((low[0], high[0]))
            max_shapes[(name, t.name)] = high
        if len(ranges) != 1:
            raise SiamAttnError(f"engine '{name}': its inputs' optimisation profiles disagree on the target axis "
                                f"({sorted(ranges)}): {rebuild}")
        (self._batch_range[name],) = ranges
        for t in outputs:
            max_shapes[(name, t.name)] = (self._batch_range[name][1], *t.shape[1:]) if t.shape[0] == -1 else t.shape

    # -- GraphRunner -------------------------------------------------------------------------------
    def upload(self, graph: str, name: str, array: np.ndarray) -> _Items:
        """A host array as input ``name`` of ``graph``. The graph's own host input (a crop, the RoIs) goes through
        its pinned buffer (no allocation); a tensor other graphs produce (the stacked template caches of a set of
        targets, built when targets are added or removed) gets a device buffer of its own until :meth:`release`."""
        bound = self._bound(graph, name)
        if name not in self._fresh[graph]:
            host = np.ascontiguousarray(array, dtype=bound.dtype)
            buf = self._own(host.shape, bound.dtype, host=False)
            # from pageable memory: the call returns once the source has been staged, so `host` may go
            self._copy(buf.device, host.ctypes.data, buf.nbytes, "HostToDevice")
            return buf.items(buf.shape[0])
        if graph in self._batch_range:
            items = bound.items(self._check_items(graph, int(array.shape[0]) if array.ndim else 1))
        else:
            items = bound.items(bound.shape[0])
        if array.size != int(np.prod(items.shape)):
            raise SiamAttnError(f"'{graph}' input '{name}': got shape {array.shape}, the engine takes "
                                f"{items.shape if graph not in self._batch_range else ('n', *items.shape[1:])}")
        assert items.host is not None
        np.copyto(items.host, array.reshape(items.shape), casting="same_kind")
        self._copy(bound.device, items.host.ctypes.data, items.nbytes, "HostToDevice")
        return items

    def _check_items(self, graph: str, n: int) -> int:
        """``n`` if one call of the batch engine ``graph`` may take n items (its optimisation profile's range)."""
        low, high = self._batch_range[graph]
        if not low <= n <= high:
            raise SiamAttnError(f"'{graph}': {n} targets in one call, but its engine takes {low}..{high} (its "
                                f"optimisation profile, from export.max_targets): use chunks of at most {high}")
        return n

    def run(self, graph: str, feeds: dict[str, Any]) -> dict[str, _Items]:
        """Run ``graph`` on handles for all of its inputs (all of one item count n); returns n-item handles of
        its outputs. A feed that is not the buffer bound to its input is copied into it first (n items)."""
        cudart, ctx, spec = self.cudart, self._contexts[graph], self.specs[graph]
        counts = {h.n for h in feeds.values()}
        if len(counts) != 1 or set(feeds) != {t.name for t in spec.inputs}:
            raise SiamAttnError(f"'{graph}' needs every input ({[t.name for t in spec.inputs]}) with the same item "
                                f"count; got {({k: h.shape for k, h in feeds.items()})}")
        n = counts.pop()
        if graph in self._batch_range and self._shape_n.get(graph) != n:
            self._check_items(graph, n)
            for t in spec.inputs:
                if not ctx.set_input_shape(t.name, (n, *t.shape[1:])):
                    raise SiamAttnError(f"TensorRT refused input shape {(n, *t.shape[1:])} for '{t.name}' of "
                                        f"'{graph}' (see the TensorRT log above)")
            self._shape_n[graph] = n
        for t in spec.inputs:
            handle: _Items = feeds[t.name]
            bound = self._bound(graph, t.name)
            if handle.shape[1:] != bound.shape[1:] or (graph not in self._batch_range and handle.n != bound.shape[0]):
                raise SiamAttnError(f"'{graph}' input '{t.name}': got shape {handle.shape}, the engine takes "
                                    f"{bound.shape}" + (" (first axis: up to)" if graph in self._batch_range else ""))
            if handle.buffer is not bound and self._holds.get(id(bound)) is not handle.buffer:
                self._copy(bound.device, handle.buffer.device, handle.nbytes, "DeviceToDevice")
                self._holds[id(bound)] = handle.buffer
        exec_graph = self._graphs.get(graph)
        if exec_graph is not None:
            _check(cudart.cudaGraphLaunch(exec_graph, self.stream), "cudaGraphLaunch")
        else:
            if not ctx.execute_async_v3(int(self.stream)):
                raise SiamAttnError(f"TensorRT failed to run the '{graph}' engine (see the TensorRT log above)")
            self._runs[graph] = self._runs.get(graph, 0) + 1
            # Capture the batch-1 per-frame engine once it has run (TensorRT-RTX compiles kernels on first use);
            # why only this one: module docstring.
            if graph == "search" and self._use_graph and self._runs[graph] == 2 and \
                    ctx.is_stream_capturable(int(self.stream)):
                self._capture(graph, ctx)
        outputs = self._out_items.get((graph, n))
        if outputs is None:
            outputs = {}
            for o in spec.outputs:
                shape = tuple(int(d) for d in ctx.get_tensor_shape(o.name)) if graph in self._batch_range else o.shape
                outputs[o.name] = self._bound(graph, o.name).items(shape[0])
            self._out_items[(graph, n)] = outputs
        for h in outputs.values():
            self._holds.pop(id(h.buffer), None)  # overwritten: no longer a copy of anything
        return outputs

    def _capture(self, graph: str, ctx: Any) -> None:
        cudart = self.cudart
        mode = cudart.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal
        _check(cudart.cudaStreamBeginCapture(self.stream, mode), "cudaStreamBeginCapture")
        ok = ctx.execute_async_v3(int(self.stream))
        g = _check(cudart.cudaStreamEndCapture(self.stream), "cudaStreamEndCapture")
        if ok and g is not None:
            self._graphs[graph] = _check(cudart.cudaGraphInstantiate(g, 0), "cudaGraphInstantiate")

    def download(self, handle: _Items) -> np.ndarray:
        """The handle's n items on the host: a view of the pinned buffer (valid until the next download of that
        tensor), or, for a buffer without one (a kept template cache: only read when targets change), a new array."""
        host = handle.host
        if host is None:
            host = np.empty(handle.shape, handle.buffer.dtype)
        self._copy(host.ctypes.data, handle.buffer.device, handle.nbytes, "DeviceToHost")
        _check(self.cudart.cudaStreamSynchronize(self.stream), "cudaStreamSynchronize")
        return host

    # -- memory that outlives a frame (GraphBackend: a target's template, a set of targets' stacked caches) ----
    def keep(self, graph: str, handles: dict[str, _Items]) -> dict[str, _Items]:
        """Copies of ``graph``'s output handles that later runs do not overwrite (a target's template cache)."""
        del graph
        kept = {}
        for name, h in handles.items():
            buf = self._own(h.shape, h.buffer.dtype, host=False)
            self._copy(buf.device, h.buffer.device, h.nbytes, "DeviceToDevice")
            kept[name] = buf.items(h.n)
        return kept

    def release(self, handles: dict[str, Any]) -> None:
        """Free the buffers of handles from :meth:`keep` / :meth:`upload` (others are left alone)."""
        _check(self.cudart.cudaStreamSynchronize(self.stream), "cudaStreamSynchronize")
        for h in handles.values():
            buf = self._owned.pop(id(getattr(h, "buffer", None)), None)
            if buf is not None:
                for key in [k for k, v in self._holds.items() if v is buf]:
                    del self._holds[key]
                buf.free(self.cudart)

    def _own(self, shape: tuple[int, ...], dtype: np.dtype, host: bool) -> _Buffer:
        buf = _Buffer(self.cudart, tuple(int(d) for d in shape), dtype, host)
        self._owned[id(buf)] = buf
        return buf

    def _copy(self, dst: Any, src: Any, nbytes: int, kind: str) -> None:
        direction = getattr(self.cudart.cudaMemcpyKind, f"cudaMemcpy{kind}")
        _check(self.cudart.cudaMemcpyAsync(dst, src, nbytes, direction, self.stream), "cudaMemcpyAsync")

    def close(self) -> None:
        for buf in (*self._buffers.values(), *self._owned.values()):
            buf.free(self.cudart)
        self._buffers.clear()
        self._owned.clear()
