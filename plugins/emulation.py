"""The CUDA kernels on CPU threads, for machines without a GPU (``siamattn plugins emulate``).

``plugins/emu`` compiles ``src/deform_cuda.cu`` unchanged with the host compiler against small stand-ins for
``cuda_runtime.h``, ``cuda_fp16.h`` and ``mma.h`` (see ``emu/cuda_runtime.h`` for the execution model), and
links it into the same self-test the GPU runs (``src/selftest.cpp``: CUDA path vs the CPU implementation).
Three variants: plain, under AddressSanitizer (out-of-bounds global and shared memory, like compute-sanitizer's
memcheck) and under ThreadSanitizer (shared-memory races from a missing ``__syncthreads``, like racecheck).
With TensorRT headers present it also builds ``emu/trt_plugin_driver.cpp``, which drives the TensorRT plugins'
run-time path (creators, serialised fields, onShapeChange, enqueue with the build phase's workspace) the way
TensorRT does, plain and under AddressSanitizer: the IPluginV3 glue with TensorRT >= 10 headers, the
IPluginV2DynamicExt glue (TensorRT 8.5 / 8.6: shape expressions, format negotiation, configurePlugin, serialize /
deserializePlugin, clone, enqueue, the load-time self-registration) with the 8.6 headers
(``build_emulation(tensorrt_include=...)``).
What it cannot show: tensor-core fragment layouts, nvcc code generation, real-GPU timing.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from siamattn.plugins.build import BuildOptions, PluginBuildError, build

SANITIZERS = ("none", "address", "thread")
_SUFFIX = {"none": "", "address": "_asan", "thread": "_tsan"}
_ENV = {"TSAN_OPTIONS": "second_deadlock_stack=1"}  # a lock-order report then shows both sides


@dataclass(frozen=True)
class EmulationRun:
    sanitizer: str
    returncode: int
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def build_emulation(build_dir: str | os.PathLike[str] | None = None, jobs: int | None = None,
                    verbose: bool = False, tensorrt_include: str | os.PathLike[str] | None = None) -> Path:
    """CPU library + emulation executables (no CUDA, no TensorRT needed); returns the ``lib`` directory.
    ``tensorrt_include``: the headers the plugin driver is compiled against (default: the usual search)."""
    opts = BuildOptions(cuda=False, tensorrt=False, emulation=True,
                        tensorrt_include=str(tensorrt_include) if tensorrt_include else None)
    return build(opts, build_dir=build_dir, jobs=jobs, verbose=verbose)


def trt_driver_interface(lib_dir: Path) -> str | None:
    """``"8.6/IPluginV2DynamicExt"``-style description of the plugin driver a build holds, or None."""
    summary = (lib_dir / "siamattn_build.txt").read_text() if (lib_dir / "siamattn_build.txt").is_file() else ""
    match = re.search(r"emulation_trt=(\S+)", summary)
    return match.group(1) if match else None


def executable(lib_dir: Path, program: str, sanitizer: str = "none") -> Path:
    """Path of ``siamattn_emu_<program>[_asan|_tsan]``; a clear error when that variant was not built."""
    if sanitizer not in _SUFFIX:
        raise ValueError(f"sanitizer must be one of {SANITIZERS}, got {sanitizer!r}")
    path = lib_dir / f"siamattn_emu_{program}{_SUFFIX[sanitizer]}"
    if not path.is_file():
        why = (f"the compiler could not link -fsanitize={sanitizer} (install its runtime, e.g. "
               f"'apt-get install lib{sanitizer[0]}san8' for g++ 12)" if sanitizer != "none"
               else "the build did not include the emulation (BuildOptions(emulation=True))")
        raise PluginBuildError(f"{path.name} is missing from {lib_dir}: {why}")
    return path


BLOCK_ORDERS = ("forward", "reverse", "shuffle")


def run(lib_dir: Path, program: str, args: list[str], sanitizer: str = "none", timeout: float = 600.0,
        block_order: str = "forward") -> EmulationRun:
    """Run one emulation program. Blocks run one at a time, so a race *between* blocks shows up only as a
    result that changes with ``block_order`` (``reverse``, ``shuffle``), not as a sanitizer report."""
    if block_order not in BLOCK_ORDERS:
        raise ValueError(f"block_order must be one of {BLOCK_ORDERS}, got {block_order!r}")
    env = {**os.environ, **_ENV, "CUDA_EMU_BLOCK_ORDER": block_order}
    proc = subprocess.run([str(executable(lib_dir, program, sanitizer)), *args], capture_output=True, text=True,
                          env=env, timeout=timeout)
    return EmulationRun(sanitizer, proc.returncode, proc.stdout + proc.stderr)


def has_trt_driver(lib_dir: Path) -> bool:
    return (lib_dir / "siamattn_emu_trt_driver").is_file()


def trt_driver(lib_dir: Path, sanitizer: str = "none") -> EmulationRun:
    """The TensorRT plugins driven through their run-time path (``none`` or ``address``; needs the headers)."""
    if not has_trt_driver(lib_dir):
        raise PluginBuildError(
            "the emulation was built without TensorRT headers, so there is no plugin driver: set "
            "TensorRT_INCLUDE_DIR to a folder with NvInferRuntime.h (TensorRT 8.6 or >= 10) and build again"
        )
    return run(lib_dir, "trt_driver", [], sanitizer)


def selftest(lib_dir: Path, sanitizer: str = "none", full: bool = False, block_order: str = "forward") -> EmulationRun:
    """The kernels' self-test (CUDA path vs CPU implementation, FP32 and FP16) under one variant. ``full`` adds
    the 31x31 and 64x64-batch-8 shapes and the batch cases (each item of a batch equals that item run alone; alone:
    ``run(lib_dir, "selftest", ["--batch"])``): minutes, where the quick set takes seconds."""
    return run(lib_dir, "selftest", [] if full else ["--quick"], sanitizer, block_order=block_order)


__all__ = ["BLOCK_ORDERS", "SANITIZERS", "EmulationRun", "build_emulation", "executable", "has_trt_driver", "run",
           "selftest", "trt_driver", "trt_driver_interface"]
