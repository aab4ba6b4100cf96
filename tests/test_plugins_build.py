"""Build plumbing of plugins/: the CMake architecture defaults, the Python helper's messages when a tool is
missing, the CLI, and what the built libraries export and depend on."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from siamattn import tensorrt_env
from siamattn.cli import main
from siamattn.plugins import build as library
from siamattn.plugins import names
from siamattn.plugins.build import LIB_FILES, BuildOptions, PluginBuildError
from siamattn.plugins.testing import libraries_for_tests


def test_cli_builds_cpu_library_without_cuda(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins", "build", "--no-cuda", "--no-tensorrt", "--build-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "lib" / LIB_FILES["cpu"]).is_file()
    assert not (tmp_path / "lib" / LIB_FILES["cuda"]).exists()
    assert "cpu=yes cuda=no tensorrt=no" in out


def test_cuda_arch_defaults_to_this_machines_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(library, "find_nvcc", lambda: "/usr/bin/true")
    monkeypatch.setattr(library, "local_cuda_arch", lambda: "87")
    assert BuildOptions(tensorrt=False).resolved().cuda_archs == "87"
    assert BuildOptions(tensorrt=False, cuda_archs="all").resolved().cuda_archs is None  # CMake's portable list
    assert BuildOptions(tensorrt=False, cuda_archs="75;89").resolved().cuda_archs == "75;89"
    assert BuildOptions(cuda=False, tensorrt=False).resolved().cuda_archs is None
    monkeypatch.setattr(library, "local_cuda_arch", lambda: None)  # no GPU (CI, build servers)
    assert BuildOptions(tensorrt=False).resolved().cuda_archs is None


def test_local_cuda_arch_from_nvidia_smi(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # No usable cuda-python here (a CPU-only machine or a blocked import): nvidia-smi's compute_cap is read.
    monkeypatch.setitem(sys.modules, "cuda.bindings", None)
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 8.9\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    assert tensorrt_env.local_cuda_arch() == "89"
    smi.write_text("#!/bin/sh\necho 'NVIDIA-SMI has failed'\nexit 9\n")
    assert tensorrt_env.local_cuda_arch() is None


def test_build_dirs_of_different_checkouts_do_not_collide(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # CI runs a second clone with the same ~/.cache: its build directory must not be the first clone's.
    opts = BuildOptions(cuda=False, tensorrt=False)
    here = library.build_dir_for(opts)
    monkeypatch.setattr(library, "SOURCE_DIR", tmp_path / "other-clone" / "plugins")
    assert library._options_hash(opts) != here.name.split("-")[1]


def test_build_tree_from_another_checkout_is_reported(tmp_path: Path) -> None:
    (tmp_path / "CMakeCache.txt").write_text("CMAKE_HOME_DIRECTORY:INTERNAL=/somewhere/else/plugins\n")
    with pytest.raises(PluginBuildError, match=r"configured from /somewhere/else/plugins.*another --build-dir"):
        library.build(BuildOptions(cuda=False, tensorrt=False), build_dir=tmp_path)


def _configure(tmp_path: Path, *extra: str) -> str:
    nvcc = library.find_nvcc()
    if nvcc is None:
        pytest.skip("nvcc not found: CUDA architecture defaults cannot be checked")
    cmd = ["cmake", "-S", str(library.SOURCE_DIR), "-B", str(tmp_path), f"-DCMAKE_CUDA_COMPILER={nvcc}",
           "-DSIAMATTN_BUILD_TRT=OFF", *extra]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return (tmp_path / "lib" / "siamattn_build.txt").read_text().strip()


def _nvcc_version() -> tuple[int, int]:
    out = subprocess.run([library.find_nvcc(), "--version"], capture_output=True, text=True, check=True).stdout
    release = out.split("release ")[1].split(",")[0]
    major, minor = release.split(".")[:2]
    return int(major), int(minor)


def test_cmake_default_architectures_follow_cuda_version(tmp_path: Path) -> None:
    summary = _configure(tmp_path / "default")
    major, minor = _nvcc_version()
    archs = summary.split("archs=")[1].split()[0].split(",")
    if major >= 13:
        assert archs == ["75-real", "80-real", "86-real", "87-real", "89-real", "90-real", "110-real", "120"]
    elif (major, minor) >= (12, 8):
        assert archs[0] == "72-real" and archs[-1] == "120"
    else:
        assert "72-real" in archs
    assert f"cuda={major}.{minor}" in summary


def test_cmake_architecture_override(tmp_path: Path) -> None:
    assert "archs=87 " in _configure(tmp_path / "a", "-DSIAMATTN_CUDA_ARCHS=87") + " "
    assert "archs=75-real,89-real " in _configure(tmp_path / "b", "-DCMAKE_CUDA_ARCHITECTURES=75-real;89-real") + " "


def test_missing_cmake_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    real_which = shutil.which
    monkeypatch.setattr(library.shutil, "which", lambda name: None if name == "cmake" else real_which(name))
    with pytest.raises(PluginBuildError, match=r"cmake \(>= 3.18\) was not found.*apt-get install cmake"):
        library.build(BuildOptions(cuda=False, tensorrt=False))


def test_missing_nvcc_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(library, "find_nvcc", lambda: None)
    with pytest.raises(PluginBuildError, match=r"nvcc was not found.*CUDACXX.*--no-cuda"):
        BuildOptions(cuda=True).resolved()
    # Without an explicit request the build quietly falls back to the CPU library.
    assert BuildOptions(tensorrt=False).resolved().cuda is False


def test_missing_tensorrt_headers_are_reported(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(library, "find_tensorrt_include", lambda explicit=None: None)
    monkeypatch.setattr(library, "find_nvcc", lambda: "/usr/bin/true")
    with pytest.raises(PluginBuildError, match=r"no TensorRT headers.*--tensorrt-include DIR.*TensorRT_INCLUDE_DIR"):
        BuildOptions(tensorrt=True).resolved()


def test_bad_tensorrt_include_dir_is_reported(tmp_path: Path) -> None:
    with pytest.raises(PluginBuildError, match=r"has no NvInferRuntime\.h"):
        library.find_tensorrt_include(tmp_path)


def test_tensorrt_include_found_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "NvInferRuntime.h").write_text("")
    monkeypatch.setenv("TensorRT_INCLUDE_DIR", str(tmp_path))
    assert library.find_tensorrt_include() == tmp_path


def test_tensorrt_include_falls_back_to_shared_headers_beside_the_clone(monkeypatch: pytest.MonkeyPatch,
                                                                        tmp_path: Path) -> None:
    # A clone at <tmp>/repo with the read-only header copy at <tmp>/shared/tensorrt-headers/<version>/include.
    clone = tmp_path / "repo"
    monkeypatch.setattr(library, "SOURCE_DIR", clone / "plugins")
    monkeypatch.setattr(library, "TENSORRT_INCLUDE_CANDIDATES", ())  # no TensorRT installed on this "machine"
    for var in ("TensorRT_INCLUDE_DIR", "TENSORRT_INCLUDE_DIR"):
        monkeypatch.delenv(var, raising=False)
    assert library.find_tensorrt_include() is None
    shared = tmp_path / "shared" / "tensorrt-headers"
    for version in ("10.3", "11.1", "8.6"):
        (shared / version / "include").mkdir(parents=True)
        (shared / version / "include" / "NvInferRuntime.h").write_text("")
    assert library.find_tensorrt_include().resolve() == (shared / "11.1" / "include").resolve()
    (shared / "11.1" / "include" / "NvInferRuntime.h").unlink()
    assert library.find_tensorrt_include().resolve() == (shared / "10.3" / "include").resolve()  # never 8.6
    # A user's choice wins over the shared copy.
    own = tmp_path / "own"
    own.mkdir()
    (own / "NvInferRuntime.h").write_text("")
    monkeypatch.setenv("TensorRT_INCLUDE_DIR", str(own))
    assert library.find_tensorrt_include() == own


def test_no_machine_specific_paths_in_ci_or_header_search() -> None:
    root = library.repository_root()
    ci = (root / ".ci" / "run").read_text()
    for text in (ci, (root / "plugins" / "build.py").read_text()):
        assert "/work/" not in text and "/root/" not in text and "tensorrt-oss" not in text


def test_plugin_sources_take_names_from_the_shared_header() -> None:
    """No plugin name, version or namespace is spelt out in the C++ sources: they use the macros of
    siamattn_plugin_names.h, which the Python side (siamattn.plugins.names) parses."""
    import re

    header = names.read_header()
    assert header["SIAMATTN_DEFORM_ROI_POOL_NAME"] == names.DEFORM_ROI_POOL.name
    literals = {f'"{p.name}"' for p in names.ALL}
    for path in sorted((library.SOURCE_DIR / "trt").glob("*")):
        text = path.read_text()
        assert not [lit for lit in literals if lit in text], f"{path.name} spells out a plugin name"
        assert not re.search(r'getPlugin(Version|Namespace)\(\)[^{]*\{\s*return\s*"', text), path.name


def test_plugin_name_header_compiles_to_the_values_python_reads(tmp_path: Path) -> None:
    """The C++ preprocessor's view of siamattn_plugin_names.h equals the Python parser's."""
    cxx = shutil.which("c++") or shutil.which("g++")
    if cxx is None:
        pytest.skip("no C++ compiler")
    keys = sorted(names.read_header())
    src = tmp_path / "print_names.cpp"
    src.write_text('#include <cstdio>\n#include "siamattn_plugin_names.h"\nint main() {\n'
                   + "".join(f'    std::printf("%s=%s\\n", "{k}", {k});\n' for k in keys) + "}\n")
    exe = tmp_path / "print_names"
    subprocess.run([cxx, "-I", str(names.HEADER.parent), str(src), "-o", str(exe)], check=True)
    printed = dict(line.split("=", 1) for line in subprocess.run([str(exe)], capture_output=True, text=True,
                                                                 check=True).stdout.splitlines())
    assert printed == names.read_header()
    assert printed["SIAMATTN_CUSTOM_DEFORM_CONV_NAME"] == names.CUSTOM_DEFORM_CONV.name


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} (binutils) not installed")
    return path


def test_plugin_library_exports_only_entry_points_and_needs_no_tensorrt_library() -> None:
    lib = libraries_for_tests() / LIB_FILES["trt"]
    if not lib.is_file():
        pytest.skip("TensorRT plugin library not built (needs nvcc and TensorRT headers; see plugins/README.md)")
    syms = subprocess.run([_tool("nm"), "-D", "--defined-only", str(lib)], capture_output=True, text=True,
                          check=True).stdout.split()
    exported = {s for s in syms if not all(c in "0123456789abcdef" for c in s) and len(s) > 1}
    assert exported == {"getCreators", "setLoggerFinder", "siamattn_trt_plugins_info"}
    needed = subprocess.run([_tool("readelf"), "-d", str(lib)], capture_output=True, text=True, check=True).stdout
    assert "nvinfer" not in needed and "tensorrt" not in needed


def test_info_cli_lists_plugins(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    lib_dir = libraries_for_tests()
    monkeypatch.setenv("SIAMATTN_PLUGINS_DIR", str(lib_dir))
    assert main(["plugins", "info"]) == 0
    out = capsys.readouterr().out
    assert "impl=cpu" in out
    if not (lib_dir / LIB_FILES["trt"]).is_file():
        pytest.skip(f"no TensorRT plugin library in {lib_dir}: its plugin list is not checked")
    # the library compiled from siamattn_plugin_names.h reports what the Python side read from it
    assert names.info_plugins() + " " in out
    assert names.info_plugins() == "plugins=DeformConv/1/,SiamAttnDeformConv/1/,DeformRoIPool/1/"


# ------------------------------------------------------------------------------- every TensorRT our users run

# The interface and entry points each header set must give (plugins/CMakeLists.txt picks the glue).
GLUE = {
    "8.6": ("IPluginV2DynamicExt", {"getPluginCreators", "setLoggerFinder", "siamattn_trt_plugins_info"}),
    "10.3": ("IPluginV3", {"getCreators", "setLoggerFinder", "siamattn_trt_plugins_info"}),
    "11.1": ("IPluginV3", {"getCreators", "setLoggerFinder", "siamattn_trt_plugins_info"}),
}


@pytest.mark.parametrize("version", sorted(GLUE))
def test_plugin_library_builds_against_each_tensorrt_header_set(version: str) -> None:
    """JetPack 5.1 (TensorRT 8.5, stood in for by the 8.6 headers), JetPack 6.1/6.2 (10.3), TensorRT 11.1: the
    library compiles and links (no undefined symbol, no TensorRT library) with the glue the version needs."""
    include = library.shared_tensorrt_include(version)
    if include is None:
        pytest.skip(f"no TensorRT {version} headers beside the clone (../shared/tensorrt-headers/{version}/include)")
    if library.find_nvcc() is None:
        pytest.skip("nvcc not found: the plugin library needs CUDA")
    assert library.tensorrt_header_version(include) == tuple(int(x) for x in version.split("."))
    lib_dir = library.build(BuildOptions(cuda=True, cuda_archs="75-real", tensorrt=True, tensorrt_include=str(include)),
                            jobs=2)
    interface, entry_points = GLUE[version]
    summary = (lib_dir / "siamattn_build.txt").read_text()
    assert f"tensorrt={version} trt_interface={interface}" in summary
    lib = lib_dir / LIB_FILES["trt"]
    syms = subprocess.run([_tool("nm"), "-D", "--defined-only", str(lib)], capture_output=True, text=True,
                          check=True).stdout.split()
    assert {s for s in syms if not all(c in "0123456789abcdef" for c in s) and len(s) > 1} == entry_points
    needed = subprocess.run([_tool("readelf"), "-d", str(lib)], capture_output=True, text=True, check=True).stdout
    assert "nvinfer" not in needed and "tensorrt" not in needed
    # Loading it into a process without TensorRT is harmless (the 8.x glue's self-registration finds no registry).
    from siamattn.plugins.cli import describe_library

    info = describe_library(lib)
    assert info.startswith(names.info_plugins() + f" interface={interface} ")
    assert f"tensorrt_headers={version}" in info


def test_tensorrt_header_version_and_too_old_headers(tmp_path: Path) -> None:
    for version in library.ALL_SHARED_HEADER_VERSIONS:
        include = library.shared_tensorrt_include(version)
        if include is not None:
            assert library.tensorrt_header_version(include) == tuple(int(x) for x in version.split("."))
    old = tmp_path / "trt84"
    old.mkdir()
    (old / "NvInferRuntime.h").write_text("")
    (old / "NvInferVersion.h").write_text("#define NV_TENSORRT_MAJOR 8\n#define NV_TENSORRT_MINOR 4\n")
    assert library.tensorrt_header_version(old) == (8, 4)
    nvcc = library.find_nvcc()
    if nvcc is None:
        pytest.skip("nvcc not found: CMake only picks a TensorRT glue when it can build CUDA")
    proc = subprocess.run(["cmake", "-S", str(library.SOURCE_DIR), "-B", str(tmp_path / "b"),
                           f"-DCMAKE_CUDA_COMPILER={nvcc}", f"-DTensorRT_INCLUDE_DIR={old}"],
                          capture_output=True, text=True)
    assert proc.returncode != 0
    assert "TensorRT 8.4 headers" in proc.stderr and "need TensorRT >= 8.5" in " ".join(proc.stderr.split())


def test_cached_trt_library_must_match_the_headers_in_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A newer cached build against other TensorRT headers (8.6: the IPluginV2 glue, which TensorRT 10+ does
    not load) is not picked for the TensorRT library; the one built against the headers in use is."""
    monkeypatch.setenv("SIAMATTN_PLUGINS_CACHE", str(tmp_path))
    monkeypatch.delenv("SIAMATTN_PLUGINS_DIR", raising=False)
    used, other = tmp_path / "inc-used", tmp_path / "inc-86"
    for inc in (used, other):
        inc.mkdir()
        (inc / "NvInferRuntime.h").write_text("// stand-in\n")
    monkeypatch.setenv("TensorRT_INCLUDE_DIR", str(used))
    want = library.find_tensorrt_include()
    assert want is not None
    lib_dirs = {}
    for tag, inc in (("a", want), ("b", other)):
        lib = tmp_path / f"{library._sources_hash()}-{tag}" / "lib"
        lib.mkdir(parents=True)
        (lib / LIB_FILES["trt"]).write_bytes(b"")
        (lib / LIB_FILES["cpu"]).write_bytes(b"")
        (lib / "build_options.json").write_text(json.dumps({"tensorrt_include": str(inc), "tensorrt": True}))
        lib_dirs[tag] = lib
    os.utime(lib_dirs["b"], (2e9, 2e9))  # the 8.6 build is the newest
    assert library.find_library("trt", build_if_missing=False) == lib_dirs["a"] / LIB_FILES["trt"]
    assert library.find_library("cpu", build_if_missing=False) == lib_dirs["b"] / LIB_FILES["cpu"]
    shutil.rmtree(lib_dirs["a"].parent)
    with pytest.raises(PluginBuildError, match=r"none of the 1 builds fits .*inc-86"):
        library.find_library("trt", build_if_missing=False)


# ---------------------------------------------------------------- any fitting build is found (issue 23, item 1)

def _fake_build(root: Path, tag: str, summary: str, mtime: float) -> Path:
    """A cached build of the current sources whose CMake record says ``summary``."""
    lib = root / f"{library._sources_hash()}-{tag}" / "lib"
    lib.mkdir(parents=True)
    for name in LIB_FILES.values():
        (lib / name).write_bytes(b"")
    (lib / "build_options.json").write_text(json.dumps({"tensorrt_include": f"/somewhere/{tag}", "tensorrt": True}))
    (lib / "siamattn_build.txt").write_text(summary + "\n")
    os.utime(lib, (mtime, mtime))
    return lib


@pytest.fixture()
def build_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SIAMATTN_PLUGINS_CACHE", str(tmp_path))
    monkeypatch.delenv("SIAMATTN_PLUGINS_DIR", raising=False)
    monkeypatch.setattr(library, "local_cuda_arch", lambda: None)  # no GPU unless a test says so
    return tmp_path


RTX = tensorrt_env.TrtFlavour("tensorrt-rtx", "tensorrt_rtx_bindings", "1.7.1")
TRT10 = tensorrt_env.TrtFlavour("tensorrt", "tensorrt", "10.3.0")
TRT85 = tensorrt_env.TrtFlavour("tensorrt", "tensorrt", "8.5.2")
V3_86 = "cpu=yes cuda=13.0 archs=86 tensorrt=11.1 trt_interface=IPluginV3"
V3_ALL = "cpu=yes cuda=13.0 archs=75-real,86-real,90-real,120 tensorrt=10.3 trt_interface=IPluginV3"
V3_86_SASS = "cpu=yes cuda=13.0 archs=86-real tensorrt=11.1 trt_interface=IPluginV3"
V2_86 = "cpu=yes cuda=12.6 archs=72-real,87 tensorrt=8.6 trt_interface=IPluginV2DynamicExt"


def test_a_build_with_other_options_than_the_defaults_is_found(build_cache):
    """The trap of issue 23: 'plugins build --tensorrt-include DIR --cuda-arch 86' was invisible to export."""
    lib = _fake_build(build_cache, "custom", V3_86, 1e9)
    assert library.find_library("trt", build_if_missing=False, trt=RTX) == lib / LIB_FILES["trt"]
    assert library.find_library("trt", build_if_missing=False, trt=TRT10) == lib / LIB_FILES["trt"]


def test_the_newest_fitting_build_is_taken_and_named(build_cache):
    old = _fake_build(build_cache, "old", V3_ALL, 1e9)
    new = _fake_build(build_cache, "new", V3_86, 2e9)
    _fake_build(build_cache, "v2", V2_86, 3e9)  # newest, but the IPluginV2 glue: TensorRT 10 / RTX cannot load it
    said: list[str] = []
    assert library.find_library("trt", build_if_missing=False, trt=RTX, log=said.append) == new / LIB_FILES["trt"]
    assert len(said) == 1 and "2 builds fit" in said[0] and str(new) in said[0]
    assert old != new


def test_the_gpu_architecture_must_be_covered(build_cache, monkeypatch):
    sm86 = _fake_build(build_cache, "sm86", V3_86_SASS, 2e9)
    portable = _fake_build(build_cache, "portable", V3_ALL, 1e9)
    monkeypatch.setattr(library, "local_cuda_arch", lambda: "90")  # an H100: only the portable list has sm_90
    assert library.find_library("trt", build_if_missing=False, trt=RTX) == portable / LIB_FILES["trt"]
    monkeypatch.setattr(library, "local_cuda_arch", lambda: "121")  # newer than any SASS: the 120 PTX runs there
    assert library.find_library("trt", build_if_missing=False, trt=RTX) == portable / LIB_FILES["trt"]
    monkeypatch.setattr(library, "local_cuda_arch", lambda: "86")
    assert library.find_library("trt", build_if_missing=False, trt=RTX) == sm86 / LIB_FILES["trt"]


def test_arch_coverage_rules():
    assert library.arch_covered("86", "86") and library.arch_covered("75-real,86-real,120", "86")
    assert not library.arch_covered("86-real", "89")  # SASS runs on its own architecture only
    assert library.arch_covered("75", "89")  # PTX is compiled by the driver for newer GPUs
    assert not library.arch_covered("120", "90") and not library.arch_covered("", "86")


def test_tensorrt_8_takes_the_v2_glue_of_its_major_version(build_cache):
    v2 = _fake_build(build_cache, "v2", V2_86, 1e9)
    _fake_build(build_cache, "v3", V3_86, 2e9)
    assert library.find_library("trt", build_if_missing=False, trt=TRT85) == v2 / LIB_FILES["trt"]
    with pytest.raises(PluginBuildError, match=r"not 9\.x"):
        library.find_library("trt", build_if_missing=False, trt=tensorrt_env.TrtFlavour("tensorrt", "tensorrt", "9.2"))


def test_when_none_fits_the_message_says_what_each_was_built_for(build_cache, monkeypatch):
    _fake_build(build_cache, "v2", V2_86, 1e9)
    _fake_build(build_cache, "sm86", V3_86_SASS, 2e9)
    monkeypatch.setattr(library, "local_cuda_arch", lambda: "90")
    with pytest.raises(PluginBuildError) as err:
        library.find_library("trt", build_if_missing=False, trt=RTX)
    msg = str(err.value)
    assert "none of the 2 builds fits" in msg and "\n" not in msg
    assert "not sm_90" in msg and "IPluginV2DynamicExt glue (TensorRT 8.6 headers), needs IPluginV3" in msg
    assert "siamattn plugins build" in msg


def test_plugins_build_with_its_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """The README's 'siamattn plugins build' as typed: CPU library always, CUDA for this GPU (no GPU: the portable
    list) when nvcc is here, the TensorRT plugins when headers are found; and every command then finds it."""
    monkeypatch.setenv("SIAMATTN_PLUGINS_CACHE", str(tmp_path))
    monkeypatch.delenv("SIAMATTN_PLUGINS_DIR", raising=False)
    assert main(["plugins", "build"]) == 0
    out = capsys.readouterr().out
    (lib_dir,) = library.cached_builds()
    assert (lib_dir / LIB_FILES["cpu"]).is_file() and f"built into {lib_dir}" in out
    summary = library.build_summary(lib_dir)
    if library.find_nvcc() is None:
        return
    assert (lib_dir / LIB_FILES["cuda"]).is_file()
    gpu = tensorrt_env.local_cuda_arch()
    for arch in [gpu] if gpu else ["75", "86", "87", "89", "90", "120"]:  # RTX, Jetson Orin, H100 (README)
        assert library.arch_covered(summary["archs"], arch), (arch, summary)
    if library.find_tensorrt_include() is not None:
        assert summary["trt_interface"] in ("IPluginV3", "IPluginV2DynamicExt")
        trt = tensorrt_env.TrtFlavour("tensorrt-rtx", "tensorrt_rtx_bindings", "1.7") \
            if summary["trt_interface"] == "IPluginV3" else None
        assert library.find_library("trt", build_if_missing=False, trt=trt) == lib_dir / LIB_FILES["trt"]
