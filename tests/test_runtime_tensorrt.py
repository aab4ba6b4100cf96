"""The TensorRT runner's logic without a GPU.

Fake ``tensorrt`` and ``cuda.bindings.runtime`` modules stand in for the real ones: "device" buffers are
real host memory at real addresses, engines compute simple numpy functions of their inputs read from those
addresses, and a CUDA graph captured on the stream records the work and replays it on launch. This checks
what the runner itself is responsible for: buffers shared by tensor name across engines, pinned-host copies,
the capture/replay of the search engine, and the errors a user sees. Real engines on a real GPU are the job
of ``siamattn check`` on the device.
"""

from __future__ import annotations

import ctypes
import json
from types import SimpleNamespace

import numpy as np
import pytest

from siamattn.errors import SiamAttnError
from siamattn.runtime import trt_runner
from siamattn.runtime.graph_backend import GraphBackend


class FakeCudart:
    def __init__(self) -> None:
        self.blocks: dict[int, ctypes.Array] = {}
        self.capturing: list | None = None
        self.graphs: dict[int, list] = {}
        self.launches = 0
        self.cudaMemcpyKind = SimpleNamespace(cudaMemcpyHostToDevice=1, cudaMemcpyDeviceToHost=2)
        self.cudaStreamCaptureMode = SimpleNamespace(cudaStreamCaptureModeThreadLocal=1)

    def _alloc(self, n):
        buf = (ctypes.c_byte * n)()
        self.blocks[ctypes.addressof(buf)] = buf
        return 0, ctypes.addressof(buf)

    cudaMalloc = cudaMallocHost = _alloc

    def cudaGetDeviceCount(self):
        return 0, 1

    def cudaStreamCreate(self):
        return 0, 7

    def cudaMemcpyAsync(self, dst, src, n, kind, stream):
        assert self.capturing is None, "copies must stay outside the captured graph"
        ctypes.memmove(int(dst), int(src), n)
        return (0,)

    def cudaStreamSynchronize(self, stream):
        return (0,)

    def cudaStreamBeginCapture(self, stream, mode):
        self.capturing = []
        return (0,)

    def cudaStreamEndCapture(self, stream):
        g, self.capturing = self.capturing, None
        self.graphs[id(g)] = g
        return 0, id(g)

    def cudaGraphInstantiate(self, g, flags):
        return 0, g

    def cudaGraphLaunch(self, g, stream):
        self.launches += 1
        for fn in self.graphs[g]:
            fn()
        return (0,)

    def cudaFree(self, p):
        return (0,)

    cudaFreeHost = cudaFree


def _view(ptr: int, shape) -> np.ndarray:
    n = int(np.prod(shape))
    return np.frombuffer((ctypes.c_float * n).from_address(ptr), dtype=np.float32).reshape(shape)


# Engines: template z -> a = sum(z) (1,1), b = 2 (1,1); search (x, a, b) -> cls = x*a + b, loc = -x, feat = x + 1;
# refine_box (feat, roi) -> deltas = mean(feat) + roi[:, 1:].
SPECS = {
    "template": ([("z", (1, 3))], [("a", (1, 1)), ("b", (1, 1))]),
    "search": ([("x", (1, 4)), ("a", (1, 1)), ("b", (1, 1))], [("cls", (1, 4)), ("loc", (1, 4)), ("box_feat", (1, 4))]),
    "refine_box": ([("box_feat", (1, 4)), ("roi", (1, 5))], [("deltas", (1, 4))]),
}


def _compute(name, t):
    if name == "template":
        t["a"][:] = t["z"].sum()
        t["b"][:] = 2.0
    elif name == "search":
        t["cls"][:] = t["x"] * t["a"][0, 0] + t["b"][0, 0]
        t["loc"][:] = -t["x"]
        t["box_feat"][:] = t["x"] + 1.0
    else:
        t["deltas"][:] = t["box_feat"].mean() + t["roi"][:, 1:]


def make_fake_trt(cudart: FakeCudart, version: str = "10.3.0"):
    class Context:
        def __init__(self, engine):
            self.engine, self.addr = engine, {}

        def set_tensor_address(self, name, ptr):
            self.addr[name] = ptr

        def is_stream_capturable(self, stream):
            return True

        def execute_async_v3(self, stream):
            ins, outs = SPECS[self.engine.name]
            views = {n: _view(self.addr[n], s) for n, s in ins + outs}
            fn = lambda: _compute(self.engine.name, views)  # noqa: E731
            if cudart.capturing is not None:
                cudart.capturing.append(fn)
            else:
                fn()
            return True

    class Engine:
        def __init__(self, name):
            self.name = name
            ins, outs = SPECS[name]
            self.io = [(n, s, "in") for n, s in ins] + [(n, s, "out") for n, s in outs]
            self.num_io_tensors = len(self.io)

        def get_tensor_name(self, i):
            return self.io[i][0]

        def _get(self, name):
            return next(t for t in self.io if t[0] == name)

        def get_tensor_shape(self, name):
            return self._get(name)[1]

        def get_tensor_dtype(self, name):
            return np.float32

        def get_tensor_mode(self, name):
            return self._get(name)[2]

        def create_execution_context(self):
            return Context(self)

    class Runtime:
        def __init__(self, logger):
            pass

        def deserialize_cuda_engine(self, data):
            try:
                return Engine(json.loads(data)["graph"])
            except ValueError:
                return None

    class Logger:
        WARNING = 2

        def __init__(self, level):
            pass

    return SimpleNamespace(__version__=version, Logger=Logger, Runtime=Runtime, nptype=lambda d: d,
                           TensorIOMode=SimpleNamespace(INPUT="in", OUTPUT="out"),
                           get_plugin_registry=lambda: SimpleNamespace(load_library=lambda p: None))


@pytest.fixture()
def fakes(monkeypatch, tmp_path):
    cudart = FakeCudart()
    trt = make_fake_trt(cudart)
    monkeypatch.setattr(trt_runner, "import_tensorrt", lambda flavour="auto": (trt, "tensorrt"))
    monkeypatch.setattr(trt_runner, "_cudart", lambda: cudart)
    paths = {}
    for name in SPECS:
        p = tmp_path / f"{name}.engine"
        p.write_text(json.dumps({"graph": name}))
        paths[name] = p
    return cudart, paths


def test_engines_share_buffers_and_the_search_graph_is_replayed(fakes):
    cudart, paths = fakes
    runner = trt_runner.TensorRTRunner(paths, expected_version="10.3.1")
    backend = GraphBackend(runner)
    # the template's output buffer *is* the search engine's input buffer: no copy between engines
    assert runner._contexts["template"].addr["a"] == runner._contexts["search"].addr["a"]
    assert runner._contexts["search"].addr["box_feat"] == runner._contexts["refine_box"].addr["box_feat"]
    backend.init_template(np.ones((1, 3), np.float32))  # a = 3, b = 2
    for i in range(5):
        x = np.arange(4, dtype=np.float32).reshape(1, 4) + i
        cls, loc = backend.search(x)
        np.testing.assert_allclose(cls, x * 3 + 2)
        np.testing.assert_allclose(loc, -x)
    assert cudart.launches == 3  # two direct runs, then the captured graph replays with the new inputs
    deltas = backend.refine_box(np.array([[0, 1, 2, 3, 4]], np.float32))
    np.testing.assert_allclose(deltas, (x + 1).mean() + np.array([[1, 2, 3, 4]]))


def test_version_mismatch_and_corrupt_engine_are_clear_errors(fakes):
    _, paths = fakes
    rebuild = f"siamattn build-engines --model {paths['search'].parent}"
    with pytest.raises(SiamAttnError, match=r"built with tensorrt 8\.6\.1 but 10\.3\.0 is installed") as err:
        trt_runner.TensorRTRunner(paths, expected_version="8.6.1")
    assert rebuild in str(err.value)
    paths["search"].write_bytes(b"\x00garbage")
    with pytest.raises(SiamAttnError, match="could not be loaded") as err:
        trt_runner.TensorRTRunner(paths)
    assert rebuild in str(err.value)


def test_missing_plugin_library_is_a_clear_error(fakes, tmp_path):
    _, paths = fakes
    with pytest.raises(SiamAttnError, match="siamattn plugins build"):
        trt_runner.TensorRTRunner(paths, plugin_library=tmp_path / "missing.so")


def test_no_gpu_here_is_a_clear_error(tmp_path):
    # The real cuda-python on this CPU-only machine: cudaGetDeviceCount fails; the message says what to do.
    pytest.importorskip("cuda.bindings.runtime")
    try:
        trt_runner.import_tensorrt("auto")
    except SiamAttnError:
        pytest.skip("no TensorRT Python module installed")
    from cuda.bindings import runtime as cudart

    err, count = cudart.cudaGetDeviceCount()
    if int(err) == 0 and count > 0:
        pytest.skip("a GPU is present")
    p = tmp_path / "template.engine"
    p.write_bytes(b"x")
    with pytest.raises(SiamAttnError, match="needs an NVIDIA GPU"):
        trt_runner.TensorRTRunner({"template": p})


def test_import_tensorrt_comes_from_the_one_tensorrt_env(monkeypatch):
    """The runtime asks siamattn.tensorrt_env which TensorRT is installed (the same answer export gets)."""
    from siamattn import tensorrt_env

    monkeypatch.setattr(tensorrt_env, "find_flavour", lambda flavour: None)
    with pytest.raises(SiamAttnError, match=r"no TensorRT Python package found.*--backend onnxruntime"):
        trt_runner.import_tensorrt("tensorrt-rtx")
    fake = tensorrt_env.TrtFlavour("tensorrt-rtx", "json", "1.7")  # any importable module stands in
    monkeypatch.setattr(tensorrt_env, "find_flavour", lambda flavour: fake if flavour == "tensorrt-rtx" else None)
    module, flavour = trt_runner.import_tensorrt("auto")
    assert flavour == "tensorrt-rtx" and module.__name__ == "json"
