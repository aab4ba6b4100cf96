"""Which TensorRT and which GPU this machine has: the one place that answers it (torch-free).

Export (engine building), the runtime (engine running), the demo and the plugin build all ask here:

* :func:`resolve_flavour` / :func:`import_tensorrt`: full TensorRT (``tensorrt``) or TensorRT-RTX
  (``tensorrt_rtx``, or ``tensorrt_rtx_bindings`` as the tensorrt-rtx pip wheels name it);
* :func:`register_plugin_library`: our plugins into a TensorRT, for building and running engines;
* :func:`rtx_library_dir`: where the TensorRT-RTX wheel keeps its shared libraries;
* :func:`cuda_device_count` / :func:`local_cuda_arch`: NVIDIA GPUs through cuda-python, then ``nvidia-smi``.
"""

from __future__ import annotations

import ctypes
import importlib
import importlib.util
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from siamattn.errors import MissingDependencyError, SiamAttnError

# Python modules of each flavour, in the order they are tried.
FLAVOUR_MODULES: dict[str, tuple[str, ...]] = {
    "tensorrt": ("tensorrt",),
    "tensorrt-rtx": ("tensorrt_rtx", "tensorrt_rtx_bindings"),
}
AUTO_ORDER = ("tensorrt", "tensorrt-rtx")  # full TensorRT first: it runs on every NVIDIA GPU it supports
RTX_LIBS_PACKAGE = "tensorrt_rtx_libs"
INSTALL_HINT = {
    "tensorrt": "install TensorRT >= 10 (JetPack ships it; elsewhere NVIDIA's pip or apt packages)",
    "tensorrt-rtx": "pip install 'siamattn-trt[tensorrt-rtx]'",
}


@dataclass(frozen=True)
class TrtFlavour:
    """An importable TensorRT: its flavour, the Python module that provides it and that module's version."""

    flavour: str  # "tensorrt" | "tensorrt-rtx"
    module: str
    version: str

    @property
    def is_rtx(self) -> bool:
        return self.flavour == "tensorrt-rtx"

    def load(self) -> ModuleType:
        return importlib.import_module(self.module)


def _import(module: str) -> ModuleType | None:
    try:
        if importlib.util.find_spec(module) is None:
            return None
        return importlib.import_module(module)
    except Exception:  # placeholder wheels and missing CUDA libraries fail here in various ways
        return None


def find_flavour(flavour: str) -> TrtFlavour | None:
    """The first importable module of ``flavour`` ("tensorrt" or "tensorrt-rtx"), or None."""
    for name in FLAVOUR_MODULES[flavour]:
        mod = _import(name)
        if mod is not None:
            return TrtFlavour(flavour, name, str(getattr(mod, "__version__", "?")))
    return None


def resolve_flavour(choice: str) -> TrtFlavour | None:
    """``auto``: full TensorRT if importable, else TensorRT-RTX, else None. ``none``: None. An explicit
    flavour that is not installed is an error (the user asked for it)."""
    if choice == "none":
        return None
    if choice == "auto":
        for flavour in AUTO_ORDER:
            found = find_flavour(flavour)
            if found is not None:
                return found
        return None
    if choice not in FLAVOUR_MODULES:
        raise SiamAttnError(f"unknown TensorRT flavour '{choice}': use auto, {', '.join(FLAVOUR_MODULES)} or none")
    found = find_flavour(choice)
    if found is None:
        raise MissingDependencyError(
            f"engine backend '{choice}' was requested but its Python module "
            f"({' or '.join(FLAVOUR_MODULES[choice])}) is not importable: {INSTALL_HINT[choice]}, "
            "or use --engine auto/none")
    return found


def import_tensorrt(flavour: str = "auto") -> tuple[ModuleType, str]:
    """(module, flavour) for "tensorrt", "tensorrt-rtx" or "auto" to run engines; a clear error when missing."""
    if flavour != "auto" and flavour not in FLAVOUR_MODULES:
        raise SiamAttnError(f"unknown TensorRT flavour '{flavour}': use auto or {', '.join(FLAVOUR_MODULES)}")
    found = resolve_flavour("auto") if flavour == "auto" else find_flavour(flavour)
    if found is None:
        raise MissingDependencyError(
            "no TensorRT Python package found: install TensorRT (JetPack on Jetson, or 'pip install tensorrt') or "
            "TensorRT-RTX ('pip install siamattn-trt[tensorrt-rtx]'), or use --backend onnxruntime")
    return found.load(), found.flavour


def register_plugin_library(trt: ModuleType, path: str | Path) -> None:
    """Register our TensorRT plugins with ``trt`` (engine building and running both need them):
    ``load_library`` (TensorRT >= 8.6), else (8.5) load the library into the process, where its IPluginV2 glue
    registers itself with the running TensorRT (plugins/trt/plugin_entry_v2.cpp)."""
    registry = trt.get_plugin_registry()
    if hasattr(registry, "load_library"):
        registry.load_library(str(path))
    else:
        ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)


def rtx_library_dir() -> Path | None:
    """Folder of the TensorRT-RTX shared libraries installed by the tensorrt-rtx-*-libs wheel, if any."""
    try:
        spec = importlib.util.find_spec(RTX_LIBS_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


# ---------------------------------------------------------------------------------------------- GPUs


def _cudart() -> ModuleType | None:
    try:
        from cuda.bindings import runtime as cudart
    except Exception:  # not installed, or a broken install: no usable GPU through it
        return None
    return cudart


def cuda_device_count() -> int:
    """NVIDIA GPUs usable through cuda-python (0 without cuda-python, driver or GPU)."""
    cudart = _cudart()
    if cudart is None:
        return 0
    try:
        err, count = cudart.cudaGetDeviceCount()
    except Exception:
        return 0
    return int(count) if int(err) == 0 else 0


def gpu_available() -> bool:
    return cuda_device_count() > 0


def local_cuda_arch() -> str | None:
    """Compute capability of this machine's first GPU as CMake spells it ("87"); None without GPU or driver.

    cuda-python first (it works on Jetson, which has no nvidia-smi), then ``nvidia-smi``."""
    cudart = _cudart()
    if cudart is not None:
        try:
            err, count = cudart.cudaGetDeviceCount()
            if int(err) == 0 and count > 0:
                attr = cudart.cudaDeviceAttr
                e1, major = cudart.cudaDeviceGetAttribute(attr.cudaDevAttrComputeCapabilityMajor, 0)
                e2, minor = cudart.cudaDeviceGetAttribute(attr.cudaDevAttrComputeCapabilityMinor, 0)
                if int(e1) == 0 and int(e2) == 0:
                    return f"{major}{minor}"
        except Exception:  # no driver: fall through to nvidia-smi
            pass
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        out = subprocess.run([smi, "--query-gpu=compute_cap", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.match(r"\s*(\d+)\.(\d+)", out)
    return f"{match.group(1)}{match.group(2)}" if match else None


def engine_flavour_for_this_machine() -> str:
    """'auto' when engines built here can also run here (a TensorRT module and an NVIDIA GPU), else 'none'."""
    if not gpu_available():
        return "none"
    return "auto" if resolve_flavour("auto") is not None else "none"
