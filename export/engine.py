"""The project's one TensorRT engine builder, for full TensorRT or TensorRT-RTX (siamattn/tensorrt_env.py says
which is installed): ``siamattn export``, ``siamattn build-engines`` and the plugin tests all build here.

One code path for both (they share the Python API used here); the module is chosen at run time. Every build
runs in a child process (``python -m siamattn.export.engine``) because:

* the TensorRT-RTX ONNX parser dlopens the *unversioned* ``libtensorrt_rtx.so`` when it meets a plugin node,
  and the wheel ships only ``libtensorrt_rtx.so.1``. The loader reads LD_LIBRARY_PATH once at process start,
  so the child gets a temporary directory holding that symlink on its LD_LIBRARY_PATH;
* a TensorRT abort or out-of-memory kill then costs one graph, not the export, and memory is returned.

Graphs are built as strongly typed networks: the FP16/FP32 split is the graph's (see fp16.py). TensorRT-RTX has
no FP16 flag and its timing-cache calls are no-ops, so a timing cache file is written for full TensorRT only.
Exports of the TensorRT 8.5 profile (export_choices.TRT_PROFILES) are FP32 graphs instead: the engine gets the
FP16 builder flag, and the layers the manifest lists (``fp32_layers``, the FP32 islands' ONNX nodes) are held in
FP32 with OBEY_PRECISION_CONSTRAINTS.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

from siamattn import export_choices as choices
from siamattn.errors import SiamAttnError
from siamattn.export.errors import EngineBuildError
from siamattn.manifest import EngineSpec, ManifestDraft, sha256_file
from siamattn.outputs import pause_point, write_file
from siamattn.plugins import names as plugin_names
from siamattn.tensorrt_env import FLAVOUR_MODULES, TrtFlavour, register_plugin_library, resolve_flavour, rtx_library_dir

RTX_UNVERSIONED = "libtensorrt_rtx.so"
PLUGIN_LOG_PREFIX = "[siamattn plugins]"  # how plugins/trt/plugin_entry.cpp's log_error starts each line


# ---------------------------------------------------------------------------------------- progress


class _Progress:
    """Build progress on stderr: a self-rewriting status line on a terminal, phase lines otherwise."""

    def __init__(self, label: str, stream: TextIO) -> None:
        self.label, self.stream = label, stream
        self.tty = stream.isatty()
        self.phases: list[list[Any]] = []  # [name, step, steps]
        self.t0 = time.monotonic()
        self.last_line = 0.0

    def start(self, name: str, steps: int) -> None:
        self.phases.append([name, 0, steps])
        if not self.tty and len(self.phases) <= 2:
            self._line(force=True)
        self._line()

    def step(self, name: str, step: int) -> None:
        for p in self.phases:
            if p[0] == name:
                p[1] = step + 1
        self._line()

    def finish(self, name: str) -> None:
        for i in range(len(self.phases) - 1, -1, -1):
            if self.phases[i][0] == name:
                del self.phases[i:]
                break
        self._line()

    def _line(self, force: bool = False) -> None:
        now = time.monotonic()
        if not (force or (self.tty and now - self.last_line > 0.1)):
            return
        self.last_line = now
        text = " > ".join(f"{n} {s}/{t}" if t > 1 else n for n, s, t in self.phases[:3])
        msg = f"[{self.label}] {now - self.t0:5.1f}s {text}"
        if self.tty:
            self.stream.write("\r" + msg[:150].ljust(150))
        else:
            self.stream.write(msg + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\r" + " " * 150 + "\r")
            self.stream.flush()


class _Spinner:
    """Fallback when the TensorRT version has no IProgressMonitor."""

    def __init__(self, label: str, stream: TextIO) -> None:
        self.label, self.stream, self.done = label, stream, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        t0, i = time.monotonic(), 0
        while not self.done.wait(1.0 if not self.stream.isatty() else 0.2):
            i += 1
            if self.stream.isatty():
                frame = "|/-\\"[i % 4]
                self.stream.write(f"\r[{self.label}] building {frame} {time.monotonic() - t0:5.1f}s")
            elif i % 10 == 0:
                self.stream.write(f"[{self.label}] still building ({time.monotonic() - t0:.0f}s)\n")
            self.stream.flush()

    def __enter__(self) -> _Spinner:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join()
        if self.stream.isatty():
            self.stream.write("\r" + " " * 60 + "\r")


def _progress_monitor(trt: ModuleType, progress: _Progress) -> Any:
    class Monitor(trt.IProgressMonitor):  # type: ignore[name-defined,misc]
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            progress.start(phase_name, num_steps)

        def step_complete(self, phase_name: str, step: int) -> bool:
            progress.step(phase_name, step)
            return True  # False would cancel the build

        def phase_finish(self, phase_name: str) -> None:
            progress.finish(phase_name)

    return Monitor()


# ------------------------------------------------------------------------------------------ building


@dataclass
class EngineResult:
    graph: str
    file: str
    bytes: int
    layers: int
    build_s: float
    sha256: str
    backend: str
    version: str
    timing_cache: str | None
    outputs: list[tuple[list[int], str]] = field(default_factory=list)  # (shape, TensorRT dtype) of each output
    fp32_constrained: int | None = None  # layers held in FP32 by precision constraints (builder-flag FP16 only)


def _onnx_node_names(onnx_path: Path) -> list[tuple[str, str]]:
    """(name, op_type) of every node, for turning parser node indices into names."""
    try:
        import onnx

        model = onnx.load(str(onnx_path), load_external_data=False)
        return [(n.name, n.op_type) for n in model.graph.node]
    except Exception:
        return []


def _make_logger(trt: ModuleType) -> Any:
    class Logger(trt.ILogger):  # type: ignore[name-defined,misc]
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, severity: Any, msg: str) -> None:
            if severity in (trt.ILogger.ERROR, trt.ILogger.INTERNAL_ERROR):
                self.errors.append(msg.strip())

    return Logger()


def _parse_error(parser: Any, logger: Any, onnx_path: Path, label: str) -> EngineBuildError:
    """The one-line failure of a parse: each error at its ONNX node, our plugins' logged reasons, a hint."""
    names = _onnx_node_names(onnx_path)
    problems, failed_ops = [], set()
    for i in range(parser.num_errors):
        err = parser.get_error(i)
        idx = int(err.node()) if callable(getattr(err, "node", None)) else -1
        name, op = names[idx] if 0 <= idx < len(names) else (getattr(err, "node_name", lambda: "")(), "?")
        failed_ops.add(op)
        where = f"ONNX node '{name}' ({op}, #{idx})" if idx >= 0 else "the graph"
        problems.append(f"{where}: {' '.join(err.desc().split())}")
    hint = ""
    if any("Plugin not found" in p for p in problems):
        hint = (" -- the graph needs our plugin library: build it with 'siamattn plugins build' (or pass "
                "--plugin-library), or re-export with --ops portable --deform-conv gridsample")
    elif "Conv" in failed_ops:
        hint = (" -- if this is the depth-wise xcorr (a Conv whose weights are a tensor), re-export with "
                "--xcorr shift_add")
    # Our plugins' own reasons (a creator refusing an attribute) come first; they say what to fix.
    ours = [line for line in logger.errors if PLUGIN_LOG_PREFIX in line]
    logged = "".join(f"; {' '.join(line.split())}" for line in ours[-3:])
    return EngineBuildError(
        f"[{label}] TensorRT could not parse {onnx_path.name}: {'; '.join(problems)}{logged}{hint}")


def build_engine(
    backend: TrtFlavour,
    onnx_path: str | os.PathLike[str],
    engine_path: str | os.PathLike[str],
    *,
    label: str,
    plugin_library: str | None = None,
    timing_cache: str | None = None,
    stream: TextIO = sys.stderr,
    fp32_layers: list[str] | None = None,
    max_batch: int = 1,
) -> EngineResult:
    """Parse ``onnx_path`` and build ``engine_path`` in this process (see build_engine_subprocess).
    ``fp32_layers`` (not None): a weakly typed FP16 build, the TensorRT 8.5 profile's (module docstring).
    ``max_batch``: a graph with symbolic axes (the batch graphs' target axis) gets one optimisation profile
    with those axes from 1 to ``max_batch``, tuned for ``max_batch``."""
    trt = backend.load()
    onnx_path, engine_path = Path(onnx_path), Path(engine_path)
    logger = _make_logger(trt)
    if hasattr(trt, "init_libnvinfer_plugins"):
        # Full TensorRT: register the standard plugins (its DeformConv import goes through one).
        with contextlib.suppress(Exception):
            trt.init_libnvinfer_plugins(logger, "")
    if plugin_library:
        load_plugin_library(trt, plugin_library, label)
    builder = trt.Builder(logger)
    flags = 0
    creation = trt.NetworkDefinitionCreationFlag
    if fp32_layers is None and hasattr(creation, "STRONGLY_TYPED"):
        flags |= 1 << int(creation.STRONGLY_TYPED)
    elif hasattr(creation, "EXPLICIT_BATCH"):  # required by 8.x's ONNX parser, a no-op flag in 10
        flags |= 1 << int(creation.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        raise _parse_error(parser, logger, onnx_path, label)
    config = builder.create_builder_config()
    _batch_profile(builder, network, config, max_batch)
    constrained = None
    if fp32_layers is not None:
        constrained = _fp32_constraints(trt, network, config, fp32_layers, label)
    progress = _Progress(label, stream)
    use_monitor = hasattr(trt, "IProgressMonitor") and hasattr(config, "progress_monitor")
    if use_monitor:
        config.progress_monitor = _progress_monitor(trt, progress)
    cache = None
    if timing_cache and not backend.is_rtx:  # RTX: timing-cache operations are documented no-ops
        data = Path(timing_cache).read_bytes() if Path(timing_cache).is_file() else b""
        cache = config.create_timing_cache(data)
        config.set_timing_cache(cache, True)  # ignore a cache from another device
    t0 = time.monotonic()
    if use_monitor:
        serialized = builder.build_serialized_network(network, config)
        progress.close()
    else:
        with _Spinner(label, stream):
            serialized = builder.build_serialized_network(network, config)
    build_s = time.monotonic() - t0
    if serialized is None:
        detail = "; ".join(" ".join(line.split()) for line in logger.errors[-3:]) or "no error message from TensorRT"
        raise EngineBuildError(f"[{label}] TensorRT could not build an engine from {onnx_path.name}: {detail}")
    data = memoryview(serialized)
    engine_path.write_bytes(data)
    outs = [network.get_output(i) for i in range(network.num_outputs)]
    written_cache = None
    if cache is not None and timing_cache:
        # replaced, never written into: build-engines' staging copy hard-links the export's old cache
        write_file(timing_cache, bytes(memoryview(cache.serialize())), "timing cache")
        written_cache = Path(timing_cache).name
    return EngineResult(graph=label, file=engine_path.name, bytes=len(data), layers=int(network.num_layers),
                        build_s=round(build_s, 3), sha256=sha256_file(engine_path), backend=backend.flavour,
                        version=backend.version, timing_cache=written_cache,
                        outputs=[(list(o.shape), o.dtype.name) for o in outs], fp32_constrained=constrained)


def _batch_profile(builder: Any, network: Any, config: Any, max_batch: int) -> None:
    """Optimisation profile 1..max_batch (opt max_batch) for every input axis the graph leaves symbolic."""
    inputs = [network.get_input(i) for i in range(network.num_inputs)]
    if not any(-1 in tuple(t.shape) for t in inputs):
        return
    profile = builder.create_optimization_profile()
    for t in inputs:
        shape = tuple(t.shape)
        low = tuple(1 if d == -1 else d for d in shape)
        high = tuple(max(1, max_batch) if d == -1 else d for d in shape)
        profile.set_shape(t.name, low, high, high)
    config.add_optimization_profile(profile)


def load_plugin_library(trt: ModuleType, path: str, label: str) -> None:
    """Register our plugins for a build; any failure is this graph's one-line build error."""
    try:
        register_plugin_library(trt, path)
    except Exception as exc:
        raise EngineBuildError(f"[{label}] could not load the plugin library {path}: {exc}") from exc


def _fp32_constraints(trt: ModuleType, network: Any, config: Any, fp32_layers: list[str], label: str) -> int:
    """FP16 builder flag, with the listed ONNX nodes' layers held in FP32. The parser names a layer after its node
    (helper layers it adds get the node name plus a suffix). Returns how many layers were constrained."""
    if not hasattr(trt.BuilderFlag, "FP16"):
        raise EngineBuildError(f"[{label}] this TensorRT has no FP16 builder flag (TensorRT >= 11 builds strongly "
                               "typed graphs only): re-export with --trt-version 11")
    config.set_flag(trt.BuilderFlag.FP16)
    config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
    wanted = set(fp32_layers)
    count = 0
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        name = layer.name
        if name not in wanted and not any(name.startswith(n + "_") for n in wanted):
            continue
        layer.precision = trt.float32
        for j in range(layer.num_outputs):
            if layer.get_output(j).dtype in (trt.float32, trt.float16):
                layer.set_output_type(j, trt.float32)
        count += 1
    return count


def _child_env(backend: TrtFlavour, scratch: Path) -> dict[str, str]:
    env = dict(os.environ)
    if backend.is_rtx:
        libdir = rtx_library_dir()
        target = libdir / f"{RTX_UNVERSIONED}.1" if libdir else None
        if target is not None and target.is_file():
            link = scratch / RTX_UNVERSIONED
            if not link.exists():
                link.symlink_to(target)
            env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [str(scratch), env.get("LD_LIBRARY_PATH")]))
    return env


def build_engine_subprocess(
    backend: TrtFlavour,
    onnx_path: str | os.PathLike[str],
    engine_path: str | os.PathLike[str],
    *,
    label: str,
    plugin_library: str | None = None,
    timing_cache: str | None = None,
    fp32_layers: list[str] | None = None,
    max_batch: int = 1,
) -> EngineResult:
    """:func:`build_engine` in a child process with the unversioned TensorRT-RTX library on its search path.
    Progress goes to this process's stderr; failures come back as :class:`EngineBuildError`."""
    with tempfile.TemporaryDirectory(prefix="siamattn-trt-") as tmp:
        result_file = Path(tmp) / "result.json"
        cmd = [sys.executable, "-m", "siamattn.export.engine", "--flavour", backend.flavour, "--onnx", str(onnx_path),
               "--engine", str(engine_path), "--label", label, "--result", str(result_file)]
        if plugin_library:
            cmd += ["--plugin-library", str(plugin_library)]
        if timing_cache:
            cmd += ["--timing-cache", str(timing_cache)]
        if fp32_layers is not None:
            layers_file = Path(tmp) / "fp32_layers.json"
            layers_file.write_text(json.dumps(fp32_layers))
            cmd += ["--fp32-layers", str(layers_file)]
        if max_batch > 1:
            cmd += ["--max-batch", str(max_batch)]
        proc = subprocess.run(cmd, env=_child_env(backend, Path(tmp)), stdout=subprocess.PIPE, text=True)
        payload: dict[str, Any] = {}
        if result_file.is_file():
            payload = json.loads(result_file.read_text())
            if "outputs" in payload:
                payload["outputs"] = [(list(shape), dtype) for shape, dtype in payload["outputs"]]
        if proc.returncode != 0 or "error" in payload or not payload:
            message = payload.get("error") or (
                f"[{label}] the engine build process died (exit code {proc.returncode}); "
                f"last output: {proc.stdout.strip()[-300:] or 'none'}")
            raise EngineBuildError(message)
        return EngineResult(**payload)


def find_plugin_library(explicit: str | None, backend: TrtFlavour | None = None,
                        log: Callable[[str], None] | None = None) -> tuple[str | None, str]:
    """Path of libsiamattn_trt_plugins.so that ``backend`` can load (any fitting build; ``log`` hears which when
    several fit), or None and why not."""
    if explicit:
        if not Path(explicit).is_file():
            raise EngineBuildError(f"--plugin-library {explicit} does not exist")
        return explicit, ""
    try:
        from siamattn.plugins.build import find_library

        return str(find_library("trt", build_if_missing=False, trt=backend, log=log)), ""
    except ImportError:
        return None, "the plugins package is not installed"
    except SiamAttnError as exc:
        return None, str(exc)


def _needs_plugins(entry: Mapping[str, Any], backend: TrtFlavour) -> bool:
    if entry["custom_ops"]:
        return True
    # TensorRT-RTX imports standard DeformConv only through a plugin named DeformConv (docs/DESIGN.md §6).
    return backend.is_rtx and entry["op_counts"].get(plugin_names.DEFORM_CONV.name, 0) > 0


def needs_plugins(manifest: ManifestDraft, backend: TrtFlavour) -> list[str]:
    """Graphs of an export whose engines need our TensorRT plugin library under ``backend``."""
    return [n for n in manifest.order if _needs_plugins(manifest.entry(n), backend)]


def plugins_missing_error(graphs: list[str], why: str) -> EngineBuildError:
    """The one-line failure for engines that were asked for but cannot be built without the plugins."""
    reason = why.splitlines()[0] if why else "libsiamattn_trt_plugins.so not found"
    return EngineBuildError(
        "; ".join(f"[{g}] engine not built" for g in graphs)
        + f": needs the siamattn TensorRT plugins (run `siamattn plugins build`, or pass --plugin-library): {reason}")


def build_engines(manifest: ManifestDraft, out: Path, backend: TrtFlavour, precision: str,
                  plugin_library: str | None, log: Callable[[str], None], *, required: bool = True) -> None:
    """Build one engine per graph of an export folder and record them in ``manifest`` (torch-free, so a
    Jetson can build its engines from ONNX exported elsewhere).

    ``required``: every engine was asked for, so one that cannot be built is an :class:`EngineBuildError`
    (raised before any build starts when the plugin library is missing). Otherwise (an export's
    ``--engine auto``) such graphs are skipped with a note and recorded in ``engines.skipped``."""
    manifest.start_engines(backend.flavour, backend.version)
    profile = manifest.export.get("trt_profile") or {}
    mismatch = choices.profile_mismatch(profile.get("name"), backend.flavour, backend.version)
    if mismatch:
        raise EngineBuildError(f"engines not built: {mismatch}")
    weakly_typed = profile.get("typing", "strongly-typed") != "strongly-typed"
    cache = None if backend.is_rtx else str(out / "timing.cache")
    plugin_lib: str | None = None
    plugin_why = ""
    if needs_plugins(manifest, backend):
        plugin_lib, plugin_why = find_plugin_library(plugin_library, backend, log)
        manifest.set_engines_field(plugin_library=plugin_lib)
    typing = ("FP16 builder flag + FP32 layer constraints" if weakly_typed and precision == "fp16"
              else f"strongly typed ({precision} graph types)")
    log(f"engines: {backend.flavour} {backend.version}, {typing}"
        + (f", plugins from {plugin_lib}" if plugin_lib else ""))
    if required and plugin_lib is None and needs_plugins(manifest, backend):
        raise plugins_missing_error(needs_plugins(manifest, backend), plugin_why)
    rows = []
    for name in manifest.order:
        entry = manifest.entry(name)
        needs = _needs_plugins(entry, backend)
        if needs and plugin_lib is None:
            reason = (f"needs the siamattn TensorRT plugins ({', '.join(entry['custom_ops']) or 'DeformConv'}) "
                      f"but the plugin library is unavailable: {plugin_why.splitlines()[0] if plugin_why else '?'}")
            manifest.skip_engine(name, reason)
            log(f"[{name}] engine skipped: {reason}")
            continue
        fp32_layers = entry.get("fp32_layers", []) if weakly_typed and entry.get("precision") == "fp16" else None
        res = build_engine_subprocess(backend, out / entry["file"], out / f"{name}.engine", label=name,
                                      plugin_library=plugin_lib if needs else None, timing_cache=cache,
                                      fp32_layers=fp32_layers, max_batch=int(entry.get("max_batch", 1)))
        extra = {} if res.fp32_constrained is None else {"fp32_layers_constrained": res.fp32_constrained}
        manifest.record_engine(name, EngineSpec(res.file, res.sha256, res.bytes, res.backend, res.version,
                                                res.layers, res.build_s), **extra)
        if res.timing_cache:
            manifest.set_engines_field(timing_cache=res.timing_cache)
        rows.append((name, res.layers, res.build_s, res.bytes))
        pause_point("engine:built")
    if rows:
        log(f"{'graph':<12} {'layers':>7} {'build s':>8} {'engine MiB':>11}")
        for name, layers, secs, size in rows:
            log(f"{name:<12} {layers:>7} {secs:>8.1f} {size / 2**20:>11.2f}")
    if not backend.is_rtx and cache:
        log(f"timing cache: {cache}")
    elif backend.is_rtx:
        log("timing cache: none (TensorRT-RTX timing-cache calls are no-ops)")


def _main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Build one TensorRT engine (child process of 'siamattn export').")
    p.add_argument("--flavour", required=True, choices=sorted(FLAVOUR_MODULES))
    p.add_argument("--onnx", required=True)
    p.add_argument("--engine", required=True)
    p.add_argument("--label", required=True)
    p.add_argument("--result", required=True)
    p.add_argument("--plugin-library")
    p.add_argument("--timing-cache")
    p.add_argument("--fp32-layers", help="JSON list of ONNX node names: FP16 builder flag, these layers FP32")
    p.add_argument("--max-batch", type=int, default=1, help="symbolic input axes get an optimisation profile 1..N")
    a = p.parse_args(argv)
    out: dict[str, Any]
    try:
        backend = resolve_flavour(a.flavour)
        assert backend is not None
        fp32 = json.loads(Path(a.fp32_layers).read_text()) if a.fp32_layers else None
        res = build_engine(backend, a.onnx, a.engine, label=a.label, plugin_library=a.plugin_library,
                           timing_cache=a.timing_cache, fp32_layers=fp32, max_batch=a.max_batch)
        out = asdict(res)
        code = 0
    except Exception as exc:  # reported to the parent as one line
        own = isinstance(exc, EngineBuildError)
        out = {"error": str(exc) if own else f"[{a.label}] {exc.__class__.__name__}: {exc}"}
        code = 1
    Path(a.result).write_text(json.dumps(out))
    return code


if __name__ == "__main__":
    sys.exit(_main())
