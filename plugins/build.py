"""Find and build the native deformable-op libraries (toolchain discovery, CMake, the build cache).

Three shared libraries come out of ``plugins/CMakeLists.txt``:

- ``libsiamattn_deform_cpu.so``: the CPU implementation (host compiler only, always built);
- ``libsiamattn_deform_cuda.so``: the same C API plus the CUDA kernels (when nvcc is found);
- ``libsiamattn_trt_plugins.so``: the TensorRT plugins (when TensorRT headers are found too): IPluginV3 for
  TensorRT >= 10 headers, IPluginV2DynamicExt for 8.5 .. 9.x (JetPack 5), chosen by CMake from the headers.

Automatic builds go to ``~/.cache/siamattn/plugins/<sources hash>-<options hash>`` (``SIAMATTN_PLUGINS_CACHE``
overrides the root), so a source edit never picks up a stale library. ``SIAMATTN_PLUGINS_DIR`` points at a
directory with prebuilt libraries (e.g. a build made on a Jetson) and wins over the cache.
Calling the libraries: siamattn/plugins/library.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from siamattn.errors import SiamAttnError
from siamattn.tensorrt_env import TrtFlavour, local_cuda_arch

LIB_FILES = {
    "cpu": "libsiamattn_deform_cpu.so",
    "cuda": "libsiamattn_deform_cuda.so",
    "trt": "libsiamattn_trt_plugins.so",
}
SOURCE_DIR = Path(__file__).resolve().parent
# Where installed TensorRT packages put NvInferRuntime.h (JetPack and the deb packages, the tarball's usual homes).
TENSORRT_INCLUDE_CANDIDATES = (
    "/usr/include/x86_64-linux-gnu",
    "/usr/include/aarch64-linux-gnu",
    "/usr/local/TensorRT/include",
    "/usr/local/tensorrt/include",
    "/opt/tensorrt/include",
    "/usr/include",
)
# Developers and CI: a read-only copy of the public TensorRT headers beside the clone (never inside it; see
# ../shared/tensorrt-headers/README.md). 11.1 first: the IPluginV3One interfaces we implement have the same
# layout and interface versions in 10.3 and 11.1, and 11.1 is the current TensorRT that TensorRT-RTX tracks.
# 8.6 (the IPluginV2 glue, standing in for JetPack 5's 8.5) is never a default: only asked for by version.
SHARED_HEADERS = Path("..") / "shared" / "tensorrt-headers"
SHARED_HEADER_VERSIONS = ("11.1", "10.3")
ALL_SHARED_HEADER_VERSIONS = ("8.6", "10.3", "11.1")


class PluginBuildError(SiamAttnError, RuntimeError):
    """The native libraries could not be found or built; the message says what is missing."""


# ------------------------------------------------------------------------------------------- discovery


def repository_root() -> Path:
    """The checkout (or installed package) folder that holds ``plugins/``."""
    return SOURCE_DIR.parent


def shared_tensorrt_includes() -> list[Path]:
    """``<repository root>/../shared/tensorrt-headers/<version>/include`` folders that exist, preferred first."""
    base = (repository_root() / SHARED_HEADERS).resolve()
    found = [base / v / "include" for v in SHARED_HEADER_VERSIONS]
    return [p for p in found if (p / "NvInferRuntime.h").is_file()]


def shared_tensorrt_include(version: str) -> Path | None:
    """The shared copy of one TensorRT version's headers (``8.6``, ``10.3``, ``11.1``) beside the clone, if present."""
    path = (repository_root() / SHARED_HEADERS).resolve() / version / "include"
    return path if (path / "NvInferRuntime.h").is_file() else None


def tensorrt_header_version(include: str | os.PathLike[str]) -> tuple[int, int] | None:
    """(major, minor) of the headers in ``include`` (NvInferVersion.h), as CMakeLists.txt reads them."""
    path = Path(include) / "NvInferVersion.h"
    if not path.is_file():
        return None
    text = path.read_text(errors="replace")
    for prefix in ("TRT_{}_ENTERPRISE", "NV_TENSORRT_{}"):
        major = re.search(rf"#define {prefix.format('MAJOR')} +(\d+)", text)
        minor = re.search(rf"#define {prefix.format('MINOR')} +(\d+)", text)
        if major and minor:
            return int(major.group(1)), int(minor.group(1))
    return None


def find_tensorrt_include(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """Directory holding ``NvInferRuntime.h``: explicit, then $TensorRT_INCLUDE_DIR (a user's choice), then an
    installed TensorRT's headers, then the shared copy beside the repository (developers, CI)."""
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not (path / "NvInferRuntime.h").is_file():
            raise PluginBuildError(
                f"--tensorrt-include {path} has no NvInferRuntime.h. Pass the 'include' folder of a TensorRT >= 8.5 "
                "install (e.g. /usr/include/aarch64-linux-gnu on JetPack, /usr/include/x86_64-linux-gnu with the "
                "libnvinfer-headers-dev package) or of the public NVIDIA TensorRT repository."
            )
        return path
    env = [os.environ.get(k) for k in ("TensorRT_INCLUDE_DIR", "TENSORRT_INCLUDE_DIR")]
    for cand in [*filter(None, env), *TENSORRT_INCLUDE_CANDIDATES, *shared_tensorrt_includes()]:
        path = Path(cand).expanduser()
        if (path / "NvInferRuntime.h").is_file():
            return path
    return None


def find_nvcc() -> str | None:
    for cand in (os.environ.get("CUDACXX"), shutil.which("nvcc"), "/usr/local/cuda/bin/nvcc"):
        if cand and Path(cand).is_file() and os.access(cand, os.X_OK):
            return cand
    return None


@dataclass(frozen=True)
class BuildOptions:
    """What to build. ``cuda=None`` means: CUDA when nvcc is found; ``tensorrt_include=None``: search for it.
    ``cuda_archs=None``: this machine's GPU when one is found (a build of a minute instead of many on a Jetson),
    else the portable list of CMakeLists.txt; ``"all"``: always that list."""

    cuda: bool | None = None
    cuda_archs: str | None = None
    tensorrt_include: str | None = None
    tensorrt: bool | None = None
    build_type: str = "Release"
    emulation: bool = False  # also the CUDA-on-CPU emulation executables (emu/, tests without a GPU)

    def resolved(self) -> BuildOptions:
        nvcc = find_nvcc()
        if self.cuda and nvcc is None:
            raise PluginBuildError(
                "a CUDA build was requested but nvcc was not found: install the CUDA toolkit (or JetPack), put its "
                "bin/ on PATH or set CUDACXX=/path/to/nvcc; or build the CPU library only with --no-cuda"
            )
        cuda = nvcc is not None if self.cuda is None else self.cuda
        # The emulation's TensorRT driver needs the headers only (no CUDA), even when the plugin library is off.
        wants_headers = self.tensorrt is not False or self.emulation
        trt_dir = find_tensorrt_include(self.tensorrt_include) if wants_headers else None
        if self.tensorrt and trt_dir is None:
            raise PluginBuildError(
                "the TensorRT plugin library was requested but no TensorRT headers (NvInferRuntime.h) were found. "
                "Pass --tensorrt-include DIR or set TensorRT_INCLUDE_DIR: on JetPack/TensorRT installs the headers are "
                "in /usr/include/<arch>-linux-gnu; otherwise extract include/ of the public NVIDIA TensorRT "
                "repository somewhere outside this project (developers: ../shared/tensorrt-headers beside the clone)"
            )
        if self.tensorrt and not cuda:
            raise PluginBuildError("the TensorRT plugin library needs CUDA (nvcc) as well as the TensorRT headers")
        archs = self.cuda_archs
        if cuda and archs is None:
            archs = local_cuda_arch()
        if archs == "all":
            archs = None
        return BuildOptions(
            cuda=cuda,
            cuda_archs=archs,
            tensorrt_include=str(trt_dir) if (trt_dir and (cuda or self.emulation)) else None,
            tensorrt=bool(trt_dir and cuda and self.tensorrt is not False),
            build_type=self.build_type,
            emulation=self.emulation,
        )


def _sources_hash() -> str:
    digest = hashlib.sha256()
    files = [SOURCE_DIR / "CMakeLists.txt"]
    for sub in ("include", "src", "trt", "emu"):
        files += sorted(p for p in (SOURCE_DIR / sub).glob("*") if p.is_file())
    for path in files:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _options_hash(opts: BuildOptions) -> str:
    # The source path is part of the key: CMake refuses a build tree configured from another checkout.
    key = {**asdict(opts), "source_dir": str(SOURCE_DIR.resolve())}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:8]


def _check_build_tree(out: Path) -> None:
    """Fail clearly when ``out`` was configured from a different source tree (CMake's own message is cryptic)."""
    cache = out / "CMakeCache.txt"
    if not cache.is_file():
        return
    match = re.search(r"^CMAKE_HOME_DIRECTORY:INTERNAL=(.*)$", cache.read_text(errors="replace"), re.M)
    if match and Path(match.group(1)).resolve() != SOURCE_DIR.resolve():
        raise PluginBuildError(
            f"the build directory {out} was configured from {match.group(1)}, not from {SOURCE_DIR}: "
            "pick another --build-dir or delete that one"
        )


def cache_root() -> Path:
    root = os.environ.get("SIAMATTN_PLUGINS_CACHE")
    if root:
        return Path(root).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(base).expanduser() / "siamattn" / "plugins"


def build_dir_for(opts: BuildOptions) -> Path:
    return cache_root() / f"{_sources_hash()}-{_options_hash(opts)}"


# ------------------------------------------------------------------------------------------------ build


def build(
    options: BuildOptions | None = None,
    build_dir: str | os.PathLike[str] | None = None,
    jobs: int | None = None,
    verbose: bool = False,
) -> Path:
    """Configure and build with CMake; returns the directory holding the libraries (``<build>/lib``).

    Re-running on an up-to-date build directory is a no-op apart from CMake's own checks.
    """
    opts = (options or BuildOptions()).resolved()
    cmake = shutil.which("cmake")
    if cmake is None:
        raise PluginBuildError(
            "cmake (>= 3.18) was not found on PATH: install it with 'apt-get install cmake' or 'pip install cmake'"
        )
    if shutil.which(os.environ.get("CXX", "c++")) is None and shutil.which("g++") is None:
        raise PluginBuildError("no C++ compiler found: install one with 'apt-get install g++' (or set CXX)")
    out = Path(build_dir).expanduser() if build_dir else build_dir_for(opts)
    out.mkdir(parents=True, exist_ok=True)
    _check_build_tree(out)
    args = [cmake, "-S", str(SOURCE_DIR), "-B", str(out), f"-DCMAKE_BUILD_TYPE={opts.build_type}"]
    args.append(f"-DSIAMATTN_BUILD_CUDA={'ON' if opts.cuda else 'OFF'}")
    args.append(f"-DSIAMATTN_BUILD_TRT={'ON' if opts.tensorrt else 'OFF'}")
    args.append(f"-DSIAMATTN_BUILD_EMULATION={'ON' if opts.emulation else 'OFF'}")
    if opts.cuda:
        nvcc = find_nvcc()
        args.append(f"-DCMAKE_CUDA_COMPILER={nvcc}")
        if opts.cuda_archs:
            args.append(f"-DSIAMATTN_CUDA_ARCHS={opts.cuda_archs}")
    if opts.tensorrt_include:
        args.append(f"-DTensorRT_INCLUDE_DIR={opts.tensorrt_include}")
    jobs = jobs or max(1, os.cpu_count() or 1)
    log_path = out / "build.log"
    import fcntl  # POSIX only, like the libraries themselves

    with open(out / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent test workers share one build
        with open(log_path, "w") as log:
            for cmd in (args, [cmake, "--build", str(out), "-j", str(jobs)]):
                log.write("$ " + " ".join(cmd) + "\n")
                log.flush()
                proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                log.write(proc.stdout)
                if verbose:
                    sys.stdout.write(proc.stdout)
                if proc.returncode != 0:
                    tail = "\n".join(proc.stdout.strip().splitlines()[-25:])
                    raise PluginBuildError(f"building the plugins failed (full log: {log_path}):\n{tail}")
        (out / "lib" / "build_options.json").write_text(json.dumps(asdict(opts), indent=2) + "\n")
    return out / "lib"


def find_library(kind: str = "cpu", *, build_if_missing: bool = True, options: BuildOptions | None = None,
                 trt: TrtFlavour | None = None, log: Callable[[str], None] | None = None) -> Path:
    """Path of a library (``kind`` in cpu/cuda/trt); builds it into the cache when missing and allowed.

    Any cached build of the current sources that fits is taken, newest first (:func:`library_misfit` says
    what fits); ``log`` hears which one when several fit. ``trt`` is the TensorRT that will load the plugin
    library (None: the one whose headers a build would use now)."""
    if kind not in LIB_FILES:
        raise ValueError(f"kind must be one of {sorted(LIB_FILES)}, got {kind!r}")
    name = LIB_FILES[kind]
    env_dir = os.environ.get("SIAMATTN_PLUGINS_DIR")
    if env_dir:
        path = Path(env_dir).expanduser() / name
        if path.is_file():
            return path
        raise PluginBuildError(f"SIAMATTN_PLUGINS_DIR={env_dir} has no {name}; build it with 'siamattn plugins build'")
    built = [d for d in cached_builds() if (d / name).is_file()]
    want = _wanted_library(kind, options, trt)
    misfits = [(d, want.misfit(d)) for d in built]
    fitting = [d for d, why in misfits if why is None]
    if fitting:
        if len(fitting) > 1 and log is not None:
            log(f"{name}: {len(fitting)} builds fit ({want}); using the newest, {fitting[0]}")
        return fitting[0] / name
    if not build_if_missing:
        if misfits:
            reasons = "; ".join(f"{d.parent.name}: {why}" for d, why in misfits)
            raise PluginBuildError(f"{name}: none of the {len(misfits)} builds fits ({want}): {reasons}. "
                                   "Run 'siamattn plugins build' (with its defaults, or the options that fit)")
        raise PluginBuildError(f"{name} is not built yet: run 'siamattn plugins build'")
    wanted = options or BuildOptions(cuda=True if kind != "cpu" else None, tensorrt=True if kind == "trt" else None)
    lib_dir = build(wanted)
    if not (lib_dir / name).is_file():
        summary = (lib_dir / "siamattn_build.txt").read_text().strip()
        raise PluginBuildError(f"the build finished without {name} ({summary})")
    return lib_dir / name


def build_summary(lib_dir: Path) -> dict[str, str]:
    """CMake's one-line record of a build (``siamattn_build.txt``: cpu=yes cuda=13.0 archs=... tensorrt=11.1 ...)."""
    try:
        text = (lib_dir / "siamattn_build.txt").read_text(errors="replace")
    except OSError:
        return {}
    return dict(kv.split("=", 1) for kv in text.split() if "=" in kv)


def arch_covered(archs: str, gpu: str) -> bool:
    """Whether CMake architectures ``archs`` ("75-real,86-real,120") run on a GPU of compute capability ``gpu``
    ("90"): a real (SASS) entry for exactly it, or a PTX entry (no -real suffix) at or below it, which the
    driver compiles for newer GPUs."""
    for entry in re.split(r"[,;]", archs):
        number, _, kind = entry.strip().partition("-")
        if not number.isdigit():
            continue
        if int(number) == int(gpu) or (kind != "real" and int(number) < int(gpu)):
            return True
    return False


@dataclass(frozen=True)
class _WantedLibrary:
    """What a cached build must offer to be used: the TensorRT plugin glue family and header version, and
    the GPU's architecture."""

    kind: str
    trt_major: int | None  # the TensorRT major version that will load it (None: any of the wanted glue)
    interface: str | None  # "IPluginV3" (TensorRT >= 10, TensorRT-RTX) or "IPluginV2DynamicExt" (8.5 .. 9.x)
    headers: Path | None  # explicit --tensorrt-include: exactly these headers
    gpu_arch: str | None

    def __str__(self) -> str:
        parts = []
        if self.kind == "trt":
            if self.headers is not None:
                parts.append(f"built against the headers in {self.headers}")
            elif self.interface:
                parts.append(f"{self.interface} glue" + (f" for TensorRT {self.trt_major}" if self.trt_major else ""))
        parts.append(f"CUDA code for sm_{self.gpu_arch}" if self.gpu_arch and self.kind != "cpu" else "any GPU")
        return ", ".join(parts)

    def misfit(self, lib_dir: Path) -> str | None:
        """Why the build in ``lib_dir`` does not fit, or None when it does."""
        summary = build_summary(lib_dir)
        if self.kind != "cpu" and self.gpu_arch and not arch_covered(summary.get("archs", ""), self.gpu_arch):
            return f"built for CUDA architectures {summary.get('archs', '?')}, not sm_{self.gpu_arch} (this GPU)"
        if self.kind != "trt":
            return None
        if self.headers is not None:
            got = _built_against(lib_dir)
            return None if got == str(self.headers) else f"built against the headers in {got}"
        interface, version = summary.get("trt_interface"), summary.get("tensorrt", "")
        if self.interface and interface != self.interface:
            return f"{interface or 'no'} glue (TensorRT {version} headers), needs {self.interface}"
        major = version.split(".")[0]
        if self.trt_major and self.interface == "IPluginV2DynamicExt" and major.isdigit() and \
                int(major) != self.trt_major:
            return f"built against TensorRT {version} headers, not {self.trt_major}.x"
        return None


def _wanted_library(kind: str, options: BuildOptions | None, trt: TrtFlavour | None) -> _WantedLibrary:
    gpu = local_cuda_arch() if kind != "cpu" else None
    if kind != "trt":
        return _WantedLibrary(kind, None, None, None, gpu)
    if options is not None and options.tensorrt_include:
        return _WantedLibrary(kind, None, None, find_tensorrt_include(options.tensorrt_include), gpu)
    major: int | None = None
    if trt is not None and trt.is_rtx:
        interface = "IPluginV3"  # TensorRT-RTX loads the IPluginV3 glue (docs/DESIGN.md)
    elif trt is not None:
        first = trt.version.split(".")[0]
        major = int(first) if first.isdigit() else None
        interface = "IPluginV2DynamicExt" if major is not None and major < 10 else "IPluginV3"
    else:  # no TensorRT given: the glue of the headers a build would use now (any, without headers)
        headers = find_tensorrt_include()
        version = tensorrt_header_version(headers) if headers else None
        interface = None if version is None else ("IPluginV3" if version[0] >= 10 else "IPluginV2DynamicExt")
        major = version[0] if version else None
        if headers is not None and version is None:  # headers without a version file: those exact headers
            return _WantedLibrary(kind, None, None, headers, gpu)
    return _WantedLibrary(kind, major, interface, None, gpu)


def _built_against(lib_dir: Path) -> str | None:
    try:
        return json.loads((lib_dir / "build_options.json").read_text()).get("tensorrt_include")
    except (OSError, ValueError):
        return None


def cached_builds() -> list[Path]:
    """Library directories in the cache built from the current sources, newest first."""
    root = cache_root()
    if not root.is_dir():
        return []
    dirs = [d / "lib" for d in root.glob(f"{_sources_hash()}-*") if (d / "lib" / "build_options.json").is_file()]
    return sorted(dirs, key=lambda d: d.stat().st_mtime, reverse=True)
