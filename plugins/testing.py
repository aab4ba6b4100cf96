"""Plugin libraries for the test-suite (and the skip reasons when they cannot be built here)."""

from __future__ import annotations

import os
from pathlib import Path

from siamattn.plugins.build import LIB_FILES, BuildOptions, build

# One architecture keeps test builds short; users get the full default list for their CUDA version.
TEST_CUDA_ARCHS = "75-real"
TRT_LIBRARY_MISSING = (
    "libsiamattn_trt_plugins.so was not built: it needs nvcc and the TensorRT headers (set TensorRT_INCLUDE_DIR "
    "to a folder with NvInferRuntime.h, or keep ../shared/tensorrt-headers beside the clone; see plugins/README.md)"
)


def libraries_for_tests() -> Path:
    """Library directory the test-suite uses: ``SIAMATTN_PLUGINS_DIR`` when set, else a cached build with CUDA
    for one architecture (when nvcc is found) and the TensorRT plugins (when headers are found)."""
    env_dir = os.environ.get("SIAMATTN_PLUGINS_DIR")
    if env_dir:
        return Path(env_dir).expanduser()
    return build(BuildOptions(cuda_archs=TEST_CUDA_ARCHS))


def trt_plugin_library_or_skip() -> Path:
    """The TensorRT plugin library for a test, or a pytest skip that says what is missing."""
    import pytest

    lib = libraries_for_tests() / LIB_FILES["trt"]
    if not lib.is_file():
        pytest.skip(TRT_LIBRARY_MISSING)
    return lib
