"""Find, build and call the native deformable-op libraries.

Three shared libraries come out of ``plugins/CMakeLists.txt``:

- ``libsiamattn_deform_cpu.so``: the CPU implementation (host compiler only, always built);
- ``libsiamattn_deform_cuda.so``: the same C API plus the CUDA kernels (when nvcc is found);
- ``libsiamattn_trt_plugins.so``: the TensorRT IPluginV3 plugins (when TensorRT headers are found too).

Automatic builds go to ``~/.cache/siamattn/plugins/<sources hash>-<options hash>`` (``SIAMATTN_PLUGINS_CACHE``
overrides the root), so a source edit never picks up a stale library. ``SIAMATTN_PLUGINS_DIR`` points at a
directory with prebuilt libraries (e.g. a build made on a Jetson) and wins over the cache.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from siamattn.errors import InputError, SiamAttnError

LIB_FILES = {
    "cpu": "libsiamattn_deform_cpu.so",
    "cuda": "libsiamattn_deform_cuda.so",
    "trt": "libsiamattn_trt_plugins.so",
}
SOURCE_DIR = Path(__file__).resolve().parent
# Extracted public TensorRT headers are often kept here (see plugins/README.md); checked last.
TENSORRT_INCLUDE_CANDIDATES = (
    "/usr/include/x86_64-linux-gnu",
    "/usr/include/aarch64-linux-gnu",
    "/usr/local/TensorRT/include",
    "/usr/local/tensorrt/include",
    "/opt/tensorrt/include",
    "/usr/include",
    "~/tensorrt-oss/include",
)
# One architecture keeps test builds short; users get the full default list for their CUDA version.
TEST_CUDA_ARCHS = "75-real"

F32, F16 = 0, 1  # siamattn_dtype


class PluginBuildError(SiamAttnError, RuntimeError):
    """The native libraries could not be found or built; the message says what is missing."""


# ------------------------------------------------------------------------------------------- discovery


def find_tensorrt_include(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """Directory holding ``NvInferRuntime.h``: explicit, $TensorRT_INCLUDE_DIR, then standard places."""
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not (path / "NvInferRuntime.h").is_file():
            raise PluginBuildError(
                f"--tensorrt-include {path} has no NvInferRuntime.h. Pass the 'include' folder of a TensorRT >= 10 "
                "install (e.g. /usr/include/aarch64-linux-gnu on JetPack, /usr/include/x86_64-linux-gnu with the "
                "libnvinfer-headers-dev package) or of the public NVIDIA TensorRT repository."
            )
        return path
    env = [os.environ.get(k) for k in ("TensorRT_INCLUDE_DIR", "TENSORRT_INCLUDE_DIR")]
    for cand in [*filter(None, env), *TENSORRT_INCLUDE_CANDIDATES]:
        path = Path(cand).expanduser()
        if (path / "NvInferRuntime.h").is_file():
            return path
    return None


def find_nvcc() -> str | None:
    for cand in (os.environ.get("CUDACXX"), shutil.which("nvcc"), "/usr/local/cuda/bin/nvcc"):
        if cand and Path(cand).is_file() and os.access(cand, os.X_OK):
            return cand
    return None


@contextlib.contextmanager
def split_k_override(splits: int | None) -> Iterator[None]:
    """Within the block, the CUDA DeformConv uses ``splits`` K ranges (1 = split-K off; None = the heuristic).
    The library reads SIAMATTN_DEFORM_SPLIT_K on every call; the previous value comes back afterwards."""
    saved = os.environ.get("SIAMATTN_DEFORM_SPLIT_K")
    if splits is None:
        os.environ.pop("SIAMATTN_DEFORM_SPLIT_K", None)
    else:
        os.environ["SIAMATTN_DEFORM_SPLIT_K"] = str(int(splits))
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("SIAMATTN_DEFORM_SPLIT_K", None)
        else:
            os.environ["SIAMATTN_DEFORM_SPLIT_K"] = saved


def local_cuda_arch() -> str | None:
    """Compute capability of this machine's first GPU as CMake spells it ("87"); None without GPU or driver.

    cuda-python first (it works on Jetson, which has no nvidia-smi), then ``nvidia-smi``."""
    try:
        from cuda.bindings import runtime as cudart

        err, count = cudart.cudaGetDeviceCount()
        if int(err) == 0 and count > 0:
            attr = cudart.cudaDeviceAttr
            e1, major = cudart.cudaDeviceGetAttribute(attr.cudaDevAttrComputeCapabilityMajor, 0)
            e2, minor = cudart.cudaDeviceGetAttribute(attr.cudaDevAttrComputeCapabilityMinor, 0)
            if int(e1) == 0 and int(e2) == 0:
                return f"{major}{minor}"
    except Exception:  # no cuda-python, no driver: fall through
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
                "repository somewhere outside this project"
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


def find_library(kind: str = "cpu", *, build_if_missing: bool = True, options: BuildOptions | None = None) -> Path:
    """Path of a library (``kind`` in cpu/cuda/trt); builds it into the cache when missing and allowed."""
    if kind not in LIB_FILES:
        raise ValueError(f"kind must be one of {sorted(LIB_FILES)}, got {kind!r}")
    name = LIB_FILES[kind]
    env_dir = os.environ.get("SIAMATTN_PLUGINS_DIR")
    if env_dir:
        path = Path(env_dir).expanduser() / name
        if path.is_file():
            return path
        raise PluginBuildError(f"SIAMATTN_PLUGINS_DIR={env_dir} has no {name}; build it with 'siamattn plugins build'")
    for lib_dir in cached_builds():
        if (lib_dir / name).is_file():
            return lib_dir / name
    if not build_if_missing:
        raise PluginBuildError(f"{name} is not built yet: run 'siamattn plugins build'")
    wanted = options or BuildOptions(cuda=True if kind != "cpu" else None, tensorrt=True if kind == "trt" else None)
    lib_dir = build(wanted)
    if not (lib_dir / name).is_file():
        summary = (lib_dir / "siamattn_build.txt").read_text().strip()
        raise PluginBuildError(f"the build finished without {name} ({summary})")
    return lib_dir / name


def cached_builds() -> list[Path]:
    """Library directories in the cache built from the current sources, newest first."""
    root = cache_root()
    if not root.is_dir():
        return []
    dirs = [d / "lib" for d in root.glob(f"{_sources_hash()}-*") if (d / "lib" / "build_options.json").is_file()]
    return sorted(dirs, key=lambda d: d.stat().st_mtime, reverse=True)


# -------------------------------------------------------------------------------------------- C binding


class ConvParams(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_int32)
        for name in (
            "batch", "in_channels", "in_h", "in_w", "out_channels", "kernel_h", "kernel_w",
            "stride_h", "stride_w", "pad_h_begin", "pad_w_begin", "pad_h_end", "pad_w_end",
            "dilation_h", "dilation_w", "groups", "offset_groups", "has_bias", "has_mask", "out_h", "out_w",
        )
    ]


class RoiPoolParams(ctypes.Structure):
    _fields_ = [
        ("batch", ctypes.c_int32),
        ("channels", ctypes.c_int32),
        ("in_h", ctypes.c_int32),
        ("in_w", ctypes.c_int32),
        ("num_rois", ctypes.c_int32),
        ("pooled_h", ctypes.c_int32),
        ("pooled_w", ctypes.c_int32),
        ("sampling_ratio", ctypes.c_int32),
        ("spatial_scale", ctypes.c_float),
        ("gamma", ctypes.c_float),
        ("has_offset", ctypes.c_int32),
    ]


def _pair(v: int | Sequence[int], name: str) -> tuple[int, int]:
    t = (v, v) if isinstance(v, int) else tuple(int(x) for x in v)
    if len(t) != 2:
        raise InputError(f"{name} must be an int or a pair, got {v!r}")
    return t  # type: ignore[return-value]


def _pads(v: int | Sequence[int]) -> tuple[int, int, int, int]:
    """Padding as ONNX (h_begin, w_begin, h_end, w_end); an int or (h, w) pair means symmetric."""
    if isinstance(v, int):
        return (v, v, v, v)
    t = tuple(int(x) for x in v)
    if len(t) == 2:
        return (t[0], t[1], t[0], t[1])
    if len(t) == 4:
        return t  # type: ignore[return-value]
    raise InputError(f"padding must be an int, (pad_h, pad_w) or ONNX (h_begin, w_begin, h_end, w_end); got {v!r}")


def conv_params(
    x_shape: Sequence[int],
    w_shape: Sequence[int],
    offset_shape: Sequence[int],
    *,
    has_bias: bool,
    mask_shape: Sequence[int] | None,
    stride: int | Sequence[int],
    padding: int | Sequence[int],
    dilation: int | Sequence[int],
    groups: int,
) -> ConvParams:
    """Checks the tensor shapes against each other and returns the C parameter struct (out_h/out_w unset)."""
    if len(x_shape) != 4 or len(w_shape) != 4 or len(offset_shape) != 4:
        raise InputError(
            "deform_conv2d needs 4-D x, weight and offset, "
            f"got {tuple(x_shape)}, {tuple(w_shape)}, {tuple(offset_shape)}"
        )
    n, c, h, w = x_shape
    m, cg, kh, kw = w_shape
    if cg * groups != c:
        raise InputError(f"weight has {cg} input channels per group; x has {c} channels and groups={groups}")
    taps = kh * kw
    if offset_shape[1] % (2 * taps) != 0 or offset_shape[0] != n:
        raise InputError(
            f"offset {tuple(offset_shape)} must be [N={n}, offset_groups*2*{taps}, oH, oW] for a {kh}x{kw} kernel"
        )
    sh, sw = _pair(stride, "stride")
    dh, dw = _pair(dilation, "dilation")
    pads = _pads(padding)
    p = ConvParams(n, c, h, w, m, kh, kw, sh, sw, *pads, dh, dw, groups, offset_shape[1] // (2 * taps),
                   int(has_bias), int(mask_shape is not None), 0, 0)
    if mask_shape is not None and (
        len(mask_shape) != 4 or mask_shape[0] != n or mask_shape[1] != p.offset_groups * taps
        or tuple(mask_shape[2:]) != tuple(offset_shape[2:])
    ):
        raise InputError(
            f"mask {tuple(mask_shape)} must be [N={n}, {p.offset_groups * taps}, {offset_shape[2]}, {offset_shape[3]}]"
        )
    return p


class DeformLibrary:
    """ctypes binding of the C API in ``plugins/include/siamattn_deform.h``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lib = ctypes.CDLL(str(self.path))
        lib = self._lib
        vp, i32, sz = ctypes.c_void_p, ctypes.c_int32, ctypes.c_size_t
        lib.siamattn_api_version.restype = i32
        lib.siamattn_build_info.restype = ctypes.c_char_p
        lib.siamattn_last_error.restype = ctypes.c_char_p
        lib.siamattn_status_string.restype = ctypes.c_char_p
        lib.siamattn_status_string.argtypes = [i32]
        lib.siamattn_deform_conv_validate.argtypes = [ctypes.POINTER(ConvParams)]
        lib.siamattn_deform_conv_validate.restype = i32
        lib.siamattn_deform_conv_workspace_size.argtypes = [ctypes.POINTER(ConvParams), i32]
        lib.siamattn_deform_conv_workspace_size.restype = sz
        lib.siamattn_deform_roi_pool_validate.argtypes = [ctypes.POINTER(RoiPoolParams)]
        lib.siamattn_deform_roi_pool_validate.restype = i32
        lib.siamattn_deform_conv_forward_cpu.argtypes = [ctypes.POINTER(ConvParams), i32, vp, vp, vp, vp, vp, vp]
        lib.siamattn_deform_conv_forward_cpu.restype = i32
        lib.siamattn_deform_roi_pool_forward_cpu.argtypes = [ctypes.POINTER(RoiPoolParams), i32, i32, vp, vp, vp, vp]
        lib.siamattn_deform_roi_pool_forward_cpu.restype = i32
        lib.siamattn_deform_conv_forward_cuda.argtypes = [
            ctypes.POINTER(ConvParams), i32, vp, vp, vp, vp, vp, vp, vp, sz, vp,
        ]
        lib.siamattn_deform_conv_forward_cuda.restype = i32
        lib.siamattn_deform_roi_pool_forward_cuda.argtypes = [
            ctypes.POINTER(RoiPoolParams), i32, i32, vp, vp, vp, vp, vp,
        ]
        lib.siamattn_deform_roi_pool_forward_cuda.restype = i32
        lib.siamattn_float_to_half.argtypes = [ctypes.c_float]
        lib.siamattn_float_to_half.restype = ctypes.c_uint16
        lib.siamattn_half_to_float.argtypes = [ctypes.c_uint16]
        lib.siamattn_half_to_float.restype = ctypes.c_float

    @property
    def build_info(self) -> str:
        return self._lib.siamattn_build_info().decode()

    def raw(self) -> ctypes.CDLL:
        return self._lib

    def check(self, status: int, what: str) -> None:
        if status != 0:
            msg = self._lib.siamattn_last_error().decode() or self._lib.siamattn_status_string(status).decode()
            raise InputError(f"{what}: {msg}")

    def validate_conv(self, p: ConvParams) -> ConvParams:
        self.check(self._lib.siamattn_deform_conv_validate(ctypes.byref(p)), "deform_conv2d")
        return p

    def conv_workspace_size(self, p: ConvParams, dtype: int) -> int:
        return int(self._lib.siamattn_deform_conv_workspace_size(ctypes.byref(p), dtype))

    def float_to_half(self, v: float) -> int:
        return int(self._lib.siamattn_float_to_half(v))

    def half_to_float(self, bits: int) -> float:
        return float(self._lib.siamattn_half_to_float(bits))

    # ---- CPU entry points on numpy arrays

    def deform_conv2d(
        self,
        x: np.ndarray,
        weight: np.ndarray,
        offset: np.ndarray,
        bias: np.ndarray | None = None,
        mask: np.ndarray | None = None,
        *,
        stride: int | Sequence[int] = 1,
        padding: int | Sequence[int] = 0,
        dilation: int | Sequence[int] = 1,
        groups: int = 1,
    ) -> np.ndarray:
        """DeformConv2d on the CPU; arguments as torchvision.ops.deform_conv2d (NumPy, float32 or float16),
        except ``padding`` may also be ONNX-style (h_begin, w_begin, h_end, w_end)."""
        dtype = _common_dtype("deform_conv2d", x, weight, offset, bias, mask)
        p = conv_params(x.shape, weight.shape, offset.shape, has_bias=bias is not None,
                        mask_shape=None if mask is None else mask.shape, stride=stride, padding=padding,
                        dilation=dilation, groups=groups)
        self.validate_conv(p)
        if tuple(offset.shape[2:]) != (p.out_h, p.out_w):
            raise InputError(f"offset spatial size {tuple(offset.shape[2:])} != output size {(p.out_h, p.out_w)}")
        if bias is not None and bias.shape != (p.out_channels,):
            raise InputError(f"bias must have shape ({p.out_channels},), got {bias.shape}")
        arrays = [np.ascontiguousarray(a) if a is not None else None for a in (x, weight, bias, offset, mask)]
        y = np.empty((p.batch, p.out_channels, p.out_h, p.out_w), dtype=dtype)
        ptrs = [a.ctypes.data if a is not None else None for a in arrays]
        status = self._lib.siamattn_deform_conv_forward_cpu(
            ctypes.byref(p), F16 if dtype == np.float16 else F32, *ptrs, y.ctypes.data
        )
        self.check(status, "deform_conv2d")
        return y

    def deform_roi_pool(
        self,
        feat: np.ndarray,
        rois: np.ndarray,
        offset: np.ndarray | None = None,
        *,
        output_size: int | Sequence[int] = 7,
        spatial_scale: float = 1.0,
        sampling_ratio: int = 0,
        gamma: float = 0.1,
    ) -> np.ndarray:
        """DeformRoIPool on the CPU (mmcv semantics). ``rois`` may be float32 while ``feat`` is float16."""
        dtype = _common_dtype("deform_roi_pool", feat, offset)
        if rois.dtype not in (np.float32, np.float16):
            raise InputError(f"deform_roi_pool: rois must be float32 or float16, got {rois.dtype}")
        ph, pw = _pair(output_size, "output_size")
        p = roi_pool_params(feat.shape, rois.shape, None if offset is None else offset.shape, (ph, pw),
                            spatial_scale, sampling_ratio, gamma)
        self.check(self._lib.siamattn_deform_roi_pool_validate(ctypes.byref(p)), "deform_roi_pool")
        out = np.empty((p.num_rois, p.channels, ph, pw), dtype=dtype)
        feat_c, rois_c = np.ascontiguousarray(feat), np.ascontiguousarray(rois)
        off_c = None if offset is None else np.ascontiguousarray(offset)
        status = self._lib.siamattn_deform_roi_pool_forward_cpu(
            ctypes.byref(p), F16 if dtype == np.float16 else F32, F16 if rois.dtype == np.float16 else F32,
            feat_c.ctypes.data, rois_c.ctypes.data, None if off_c is None else off_c.ctypes.data, out.ctypes.data,
        )
        self.check(status, "deform_roi_pool")
        return out

    # ---- CUDA entry points on torch CUDA tensors (used by gpu_check and the benchmark)

    def deform_conv2d_cuda(self, x: Any, weight: Any, offset: Any, bias: Any = None, mask: Any = None, *,
                           stride: int | Sequence[int] = 1, padding: int | Sequence[int] = 0,
                           dilation: int | Sequence[int] = 1, groups: int = 1, workspace: Any = None) -> Any:
        """DeformConv2d with the CUDA kernels on torch CUDA tensors, on the current stream."""
        import torch

        tensors = [t for t in (x, weight, offset, bias, mask) if t is not None]
        if any(not t.is_cuda for t in tensors) or len({t.dtype for t in tensors}) != 1:
            raise InputError("deform_conv2d_cuda: all tensors must be CUDA tensors of one dtype (float32/float16)")
        p = conv_params(x.shape, weight.shape, offset.shape, has_bias=bias is not None,
                        mask_shape=None if mask is None else mask.shape, stride=stride, padding=padding,
                        dilation=dilation, groups=groups)
        self.validate_conv(p)
        dtype = F16 if x.dtype == torch.float16 else F32
        y = torch.empty((p.batch, p.out_channels, p.out_h, p.out_w), dtype=x.dtype, device=x.device)
        need = self.conv_workspace_size(p, dtype)
        if workspace is None or workspace.numel() < need:
            workspace = torch.empty(need, dtype=torch.uint8, device=x.device)
        args = [t.contiguous() if t is not None else None for t in (x, weight, bias, offset, mask)]
        ptrs = [t.data_ptr() if t is not None else None for t in args]
        stream = torch.cuda.current_stream(x.device).cuda_stream
        status = self._lib.siamattn_deform_conv_forward_cuda(ctypes.byref(p), dtype, *ptrs, y.data_ptr(),
                                                             workspace.data_ptr(), workspace.numel(), stream)
        self.check(status, "deform_conv2d_cuda")
        return y

    def deform_roi_pool_cuda(self, feat: Any, rois: Any, offset: Any = None, *,
                             output_size: int | Sequence[int] = 7, spatial_scale: float = 1.0,
                             sampling_ratio: int = 0, gamma: float = 0.1) -> Any:
        """DeformRoIPool with the CUDA kernel on torch CUDA tensors (rois may be float32 with float16 feat)."""
        import torch

        ph, pw = _pair(output_size, "output_size")
        p = roi_pool_params(feat.shape, rois.shape, None if offset is None else offset.shape, (ph, pw),
                            spatial_scale, sampling_ratio, gamma)
        self.check(self._lib.siamattn_deform_roi_pool_validate(ctypes.byref(p)), "deform_roi_pool_cuda")
        out = torch.empty((p.num_rois, p.channels, ph, pw), dtype=feat.dtype, device=feat.device)
        f, r = feat.contiguous(), rois.contiguous()
        o = None if offset is None else offset.to(feat.dtype).contiguous()
        stream = torch.cuda.current_stream(feat.device).cuda_stream
        status = self._lib.siamattn_deform_roi_pool_forward_cuda(
            ctypes.byref(p), F16 if feat.dtype == torch.float16 else F32,
            F16 if rois.dtype == torch.float16 else F32, f.data_ptr(), r.data_ptr(),
            None if o is None else o.data_ptr(), out.data_ptr(), stream)
        self.check(status, "deform_roi_pool_cuda")
        return out


def roi_pool_params(
    feat_shape: Sequence[int],
    rois_shape: Sequence[int],
    offset_shape: Sequence[int] | None,
    output_size: tuple[int, int],
    spatial_scale: float,
    sampling_ratio: int,
    gamma: float,
) -> RoiPoolParams:
    if len(feat_shape) != 4:
        raise InputError(f"deform_roi_pool: feat must be [N, C, H, W], got {tuple(feat_shape)}")
    if len(rois_shape) != 2 or rois_shape[1] != 5:
        raise InputError(f"deform_roi_pool: rois must be [K, 5] = (batch, x1, y1, x2, y2), got {tuple(rois_shape)}")
    ph, pw = output_size
    if offset_shape is not None and tuple(offset_shape) != (rois_shape[0], 2, ph, pw):
        raise InputError(f"deform_roi_pool: offset must be [K, 2, {ph}, {pw}] with K={rois_shape[0]}, "
                         f"got {tuple(offset_shape)}")
    n, c, h, w = feat_shape
    return RoiPoolParams(n, c, h, w, rois_shape[0], ph, pw, sampling_ratio, spatial_scale, gamma,
                         int(offset_shape is not None))


def _common_dtype(what: str, *arrays: Any) -> np.dtype:
    present = [a for a in arrays if a is not None]
    dtypes = {np.dtype(a.dtype) for a in present}
    if len(dtypes) != 1 or next(iter(dtypes)) not in (np.float32, np.float16):
        raise InputError(f"{what}: tensors must all be float32 or all float16, got {sorted(map(str, dtypes))}")
    return next(iter(dtypes))


_LOADED: dict[str, DeformLibrary] = {}


def load(kind: str = "cpu", *, build_if_missing: bool = True) -> DeformLibrary:
    """The C API library (``cpu`` or ``cuda``), loaded once per process."""
    if kind not in ("cpu", "cuda"):
        raise ValueError("load() binds the C API libraries: kind 'cpu' or 'cuda'")
    if kind not in _LOADED:
        _LOADED[kind] = DeformLibrary(find_library(kind, build_if_missing=build_if_missing))
    return _LOADED[kind]


def libraries_for_tests() -> Path:
    """Library directory the test-suite uses: ``SIAMATTN_PLUGINS_DIR`` when set, else a cached build with CUDA
    for one architecture (when nvcc is found) and the TensorRT plugins (when headers are found)."""
    env_dir = os.environ.get("SIAMATTN_PLUGINS_DIR")
    if env_dir:
        return Path(env_dir).expanduser()
    return build(BuildOptions(cuda_archs=TEST_CUDA_ARCHS))
