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
        self.mallocs = 0
        self.freed: list[int] = []
        self.copies: list[tuple[int, int]] = []  # (kind, bytes) of every copy
        self.cudaMemcpyKind = SimpleNamespace(cudaMemcpyHostToDevice=1, cudaMemcpyDeviceToHost=2,
                                              cudaMemcpyDeviceToDevice=3)
        self.cudaStreamCaptureMode = SimpleNamespace(cudaStreamCaptureModeThreadLocal=1)

    def _alloc(self, n):
        self.mallocs += 1
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
        self.copies.append((kind, n))
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
        self.freed.append(int(p))
        return (0,)

    cudaFreeHost = cudaFree


def _view(ptr: int, shape) -> np.ndarray:
    n = int(np.prod(shape))
    return np.frombuffer((ctypes.c_float * n).from_address(ptr), dtype=np.float32).reshape(shape)


# Engines, per item (the first axis): template z -> a = sum(z), b = 2 + z[0]; search (x, a, b) -> cls = x*a + b,
# loc = -x, box_feat = x + 1; refine_box (box_feat, roi) -> deltas = mean(box_feat[roi[0]]) + roi[1:] (the RoI's
# first value is the batch index of the item it pools, as DeformRoIPool defines it). Shapes without the first axis;
# the batch-1 engines have first axis 1, the *_multi engines a dynamic one with the profile 1..MAX_TARGETS.
MAX_TARGETS = 3
SPECS = {
    "template": ([("z", (3,))], [("a", (1,)), ("b", (1,))]),
    "search": ([("x", (4,)), ("a", (1,)), ("b", (1,))], [("cls", (4,)), ("loc", (4,)), ("box_feat", (4,))]),
    "refine_box": ([("box_feat", (4,)), ("roi", (5,))], [("deltas", (4,))]),
}
MULTI = {f"{k}_multi": v for k, v in SPECS.items() if k != "template"}


def _compute(name, t, n):
    base = name.removesuffix("_multi")
    if base == "template":
        t["a"][:] = t["z"].sum()
        t["b"][:] = 2.0 + t["z"][:, :1]
    elif base == "search":
        t["cls"][:n] = t["x"][:n] * t["a"][:n] + t["b"][:n]
        t["loc"][:n] = -t["x"][:n]
        t["box_feat"][:n] = t["x"][:n] + 1.0
    else:
        idx = t["roi"][:n, 0].astype(int)
        assert ((idx >= 0) & (idx < n)).all(), "a RoI's batch index points outside this call's items"
        t["deltas"][:n] = t["box_feat"][idx].mean(axis=1, keepdims=True) + t["roi"][:n, 1:]


def make_fake_trt(cudart: FakeCudart, version: str = "10.3.0"):
    class Context:
        def __init__(self, engine):
            self.engine, self.addr, self.shapes = engine, {}, {}

        def set_tensor_address(self, name, ptr):
            self.addr[name] = ptr

        def set_input_shape(self, name, shape):
            low, _, high = self.engine.get_tensor_profile_shape(name, 0)
            ok = len(shape) == len(low) and all(lo <= d <= hi for lo, d, hi in zip(low, shape, high, strict=True))
            if ok:
                self.shapes[name] = tuple(shape)
            return ok

        def _items(self):
            """The item count of this run: every input's shape must be set and agree (as TensorRT requires)."""
            if not self.engine.dynamic:
                return 1
            ins, _ = self.engine.spec
            counts = {self.shapes[n][0] for n, _ in ins if n in self.shapes}
            assert len(counts) == 1 and all(n in self.shapes for n, _ in ins), "input shapes not all set"
            return counts.pop()

        def get_tensor_shape(self, name):
            return (self._items(), *self.engine._get(name)[1][1:])

        def is_stream_capturable(self, stream):
            return True

        def execute_async_v3(self, stream):
            n = self._items()
            ins, outs = self.engine.spec
            # views of the whole bound buffers (profile max for the batch engines)
            rows = MAX_TARGETS if self.engine.dynamic else 1
            views = {name: _view(self.addr[name], (rows, *s)) for name, s in ins + outs}

            def fn():
                for name, _ in outs:  # rows past this call's items hold garbage: a runner must not read them
                    views[name][n:] = np.nan
                _compute(self.engine.name, views, n)

            if cudart.capturing is not None:
                cudart.capturing.append(fn)
            else:
                fn()
            return True

    class Engine:
        def __init__(self, name):
            self.name = name
            self.spec = {**SPECS, **MULTI}[name]
            self.dynamic = name in MULTI
            first = -1 if self.dynamic else 1
            ins, outs = self.spec
            self.io = [(n, (first, *s), "in") for n, s in ins] + [(n, (first, *s), "out") for n, s in outs]
            self.num_io_tensors = len(self.io)

        def get_tensor_name(self, i):
            return self.io[i][0]

        def _get(self, name):
            return next(t for t in self.io if t[0] == name)

        def get_tensor_shape(self, name):
            return self._get(name)[1]

        def get_tensor_profile_shape(self, name, profile):
            assert profile == 0 and self.dynamic and self._get(name)[2] == "in"
            rest = self._get(name)[1][1:]
            return [(1, *rest), (MAX_TARGETS, *rest), (MAX_TARGETS, *rest)]

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


def _engine_files(tmp_path, names):
    paths = {}
    for name in names:
        p = tmp_path / f"{name}.engine"
        p.write_text(json.dumps({"graph": name}))
        paths[name] = p
    return paths


@pytest.fixture()
def fakes(monkeypatch, tmp_path):
    cudart = FakeCudart()
    trt = make_fake_trt(cudart)
    monkeypatch.setattr(trt_runner, "import_tensorrt", lambda flavour="auto": (trt, "tensorrt"))
    monkeypatch.setattr(trt_runner, "_cudart", lambda: cudart)
    return cudart, _engine_files(tmp_path, SPECS)


def test_engines_share_buffers_and_the_search_graph_is_replayed(fakes):
    cudart, paths = fakes
    runner = trt_runner.TensorRTRunner(paths, expected_version="10.3.1")
    backend = GraphBackend(runner)
    # the template's output buffer *is* the search engine's input buffer: no copy between engines
    assert runner._contexts["template"].addr["a"] == runner._contexts["search"].addr["a"]
    assert runner._contexts["search"].addr["box_feat"] == runner._contexts["refine_box"].addr["box_feat"]
    backend.set_template(0, np.ones((1, 3), np.float32))  # a = 3, b = 3
    for i in range(5):
        x = np.arange(4, dtype=np.float32).reshape(1, 4) + i
        cls, loc = backend.search_batch(x, (0,))
        np.testing.assert_allclose(cls, x * 3 + 3)
        np.testing.assert_allclose(loc, -x)
    assert cudart.launches == 3  # two direct runs, then the captured graph replays with the new inputs
    deltas = backend.refine_box_batch(np.array([[0, 1, 2, 3, 4]], np.float32))
    np.testing.assert_allclose(deltas, (x + 1).mean() + np.array([[1, 2, 3, 4]]))


def _templates(count: int) -> list[np.ndarray]:
    return [np.array([[k + 1.0, 2.0 * k, 0.5]], np.float32) for k in range(count)]


def test_batch_engines_give_each_item_the_batch1_result(fakes, tmp_path):
    """The *_multi engines (profile 1..3) run at n = 1, 2, 3, in changing orders and target sets (chunks of
    one frame alternating), each item equal to the batch-1 engines run on that target alone (the fake engines
    leave garbage past the n items: a runner that reads a whole buffer fails); a target's template lives in
    memory of its own (several targets on the batch-1 engines too, n = 1 here); buffers are allocated at load
    time and when targets change, never per frame, and only n items are copied."""
    cudart, paths = fakes
    runner = trt_runner.TensorRTRunner({**paths, **_engine_files(tmp_path, MULTI)})
    assert runner.max_batch == MAX_TARGETS
    multi = GraphBackend(runner, max_batch=runner.max_batch)
    lone = GraphBackend(trt_runner.TensorRTRunner(paths))
    # every batch buffer at the profile's largest shape, shared by name between search_multi and refine_box_multi
    ctx = runner._contexts
    assert ctx["search_multi"].addr["box_feat"] == ctx["refine_box_multi"].addr["box_feat"]
    assert ctx["search_multi"].addr["box_feat"] != ctx["search"].addr["box_feat"]
    assert runner._bound("search_multi", "x").shape == (MAX_TARGETS, 4)
    assert runner._bound("refine_box_multi", "roi").shape == (MAX_TARGETS, 5)
    zs = _templates(5)
    for slot, z in enumerate(zs):
        multi.set_template(slot, z)
    rng = np.random.default_rng(0)
    sets = [(3,), (0, 1, 2), (4, 0), (1, 2, 3), (2,), (0, 1, 2), (4, 0), (3, 4), (3,)]
    mallocs, copies, results = None, [], []
    for frame in range(3):
        if frame == 1:  # a target replaced mid-video: the template engine overwrites the batch-1 bound buffers,
            zs[4] = np.array([[7.0, -1.0, 2.0]], np.float32)  # which held target 3's cache for the last search
            multi.set_template(4, zs[4])
        if frame == 2:  # every target set has run once: its stacked caches exist
            mallocs, cudart.copies = cudart.mallocs, []
        for slots in sets:
            n = len(slots)
            x = rng.standard_normal((n, 4)).astype(np.float32)
            cls, loc = multi.search_batch(x, slots)
            assert cls.shape == loc.shape == (n, 4)
            cls, loc = cls.copy(), loc.copy()  # host views: valid until the next call
            rois = np.concatenate([np.arange(n, dtype=np.float32)[:, None],
                                   rng.uniform(0, 50, (n, 4)).astype(np.float32)], axis=1)
            deltas = multi.refine_box_batch(rois).copy()
            assert deltas.shape == (n, 4) and np.isfinite(deltas).all()
            results.append(([zs[k] for k in slots], x, rois, cls, loc, deltas))
            copies += [(n, c) for c in cudart.copies]
            cudart.copies = []
    assert cudart.mallocs == mallocs, "no allocation per frame"
    for templates, x, rois, cls, loc, deltas in results:
        for i, z in enumerate(templates):
            lone.set_template(0, z)
            c1, l1 = lone.search_batch(x[i : i + 1], (0,))
            np.testing.assert_array_equal(cls[i : i + 1], c1)
            np.testing.assert_array_equal(loc[i : i + 1], l1)
            d1 = lone.refine_box_batch(np.concatenate([[0.0], rois[i, 1:]])[None].astype(np.float32))
            np.testing.assert_array_equal(deltas[i : i + 1], d1)
    h2d, d2d = 1, 3
    x_bytes, roi_bytes, out_bytes = 4 * 4, 5 * 4, 4 * 4
    for n in (1, 2, 3):  # crops, RoIs and outputs: n items each way, never the whole buffer
        sizes = {(kind, size) for m, (kind, size) in copies if m == n}
        assert (h2d, n * x_bytes) in sizes and (h2d, n * roi_bytes) in sizes and (2, n * out_bytes) in sizes
        assert all(size <= n * roi_bytes for kind, size in sizes if kind == h2d), sizes
    # a target's cache reaches the bound input by a device copy of n items (not through the host)
    assert any(kind == d2d for _, (kind, _) in copies)
    assert all(size == n * 4 for n, (kind, size) in copies if kind == d2d)
    # the batch-1 search (one target per call, its cache copied in first) is replayed from its CUDA graph; the
    # batch engines, whose input shapes change with the target count, are never captured
    assert set(runner._graphs) == {"search"}


def test_batch_engine_over_its_profile_is_a_clear_error(fakes, tmp_path):
    _, paths = fakes
    runner = trt_runner.TensorRTRunner({**paths, **_engine_files(tmp_path, MULTI)})
    with pytest.raises(SiamAttnError, match=r"'search_multi': 4 targets in one call, but its engine takes 1\.\.3 "
                                            r"\(its optimisation profile, from export\.max_targets\): use chunks of "
                                            r"at most 3"):
        runner.upload("search_multi", "x", np.zeros((4, 4), np.float32))
    backend = GraphBackend(runner, max_batch=8)  # more than the engines take
    for slot, z in enumerate(_templates(4)):
        backend.set_template(slot, z)
    with pytest.raises(SiamAttnError, match="4 targets in one call"):
        backend.search_batch(np.zeros((4, 4), np.float32), [0, 1, 2, 3])
    with pytest.raises(SiamAttnError, match=r"'search' input 'x': got shape \(2, 4\), the engine takes \(1, 4\)"):
        runner.upload("search", "x", np.zeros((2, 4), np.float32))


def test_dropped_targets_free_their_memory(fakes, tmp_path):
    cudart, paths = fakes
    runner = trt_runner.TensorRTRunner({**paths, **_engine_files(tmp_path, MULTI)})
    backend = GraphBackend(runner, max_batch=runner.max_batch)
    for slot, z in enumerate(_templates(3)):
        backend.set_template(slot, z)
    backend.search_batch(np.zeros((3, 4), np.float32), [0, 1, 2])
    owned = dict(runner._owned)
    assert len(owned) == 3 * 2 + 2  # each template's a and b, and the stacked a and b of the set
    for slot in range(3):
        backend.drop_template(slot)
    assert not runner._owned and {int(b.device) for b in owned.values()} <= set(cudart.freed)


def test_loader_runs_the_batch_engines_when_all_were_built(fakes, tmp_path, monkeypatch):
    from siamattn.manifest import EnginesInfo
    from siamattn.runtime import loader

    _, paths = fakes
    everything = {**paths, **_engine_files(tmp_path, MULTI)}

    class Manifest:
        def __init__(self, built):
            self.root, self.order, self.built = tmp_path, list(everything), built
            self.engines, self.trt_profile = EnginesInfo("tensorrt", "10.3.0", None, {}), None

        def engine_path(self, name):
            return everything[name] if name in self.built else None

    backend = loader._tensorrt(Manifest(set(everything)), "cuda")
    assert backend.max_batch == MAX_TARGETS and "search_multi" in backend.runner.specs
    backend = loader._tensorrt(Manifest(set(everything) - {"refine_box_multi"}), "cuda")
    assert backend.max_batch == 1 and "search_multi" not in backend.runner.specs


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
