"""``siamattn plugins build`` and ``siamattn plugins info``."""

from __future__ import annotations

import argparse
import ctypes
import os
import re
from pathlib import Path

from siamattn.cli_args import positive_int
from siamattn.outputs import check_folder
from siamattn.plugins.build import (
    LIB_FILES,
    BuildOptions,
    PluginBuildError,
    build,
    cached_builds,
    find_nvcc,
    find_tensorrt_include,
)
from siamattn.plugins.emulation import BLOCK_ORDERS, SANITIZERS

# CMake's CUDA_ARCHITECTURES entries: 87, 90a, 86-real, 75-virtual (';' or ',' between them), or one keyword
_ARCH = r"\d{2,3}[a-z]?(-real|-virtual)?"
_ARCHS = re.compile(rf"^(all|all-major|native|{_ARCH}([;,]{_ARCH})*)$")


def cuda_archs(text: str) -> str:
    """argparse type for --cuda-arch: refused before CMake runs, which would fail minutes later in nvcc."""
    if not _ARCHS.match(text.strip()):
        raise argparse.ArgumentTypeError(f"'{text}' is not a list of CUDA architectures: give numbers such as 87 "
                                         "(Orin) or 75;86;89, or 'all'")
    return text.strip()


def _check_build_dir(args: argparse.Namespace) -> None:
    if args.build_dir:
        check_folder("--build-dir", Path(args.build_dir), Path(args.build_dir))


def _build(args: argparse.Namespace) -> int:
    _check_build_dir(args)
    archs = args.cuda_arch.replace(",", ";") if args.cuda_arch else None
    opts = BuildOptions(
        cuda=False if args.no_cuda else (True if archs else None),
        cuda_archs=archs,
        tensorrt_include=args.tensorrt_include,
        tensorrt=False if args.no_tensorrt else (True if args.tensorrt_include else None),
    )
    lib_dir = build(opts, build_dir=args.build_dir, jobs=args.jobs, verbose=args.verbose)
    print(f"built into {lib_dir}")
    for kind, name in LIB_FILES.items():
        path = lib_dir / name
        print(f"  {kind:4s} {path if path.is_file() else '(not built)'}")
    print((lib_dir / "siamattn_build.txt").read_text().strip())
    if args.build_dir:
        print(f"use it from Python/CLI with: export SIAMATTN_PLUGINS_DIR={lib_dir}")
    trt = lib_dir / LIB_FILES["trt"]
    summary = (lib_dir / "siamattn_build.txt").read_text()
    if trt.is_file() and "trt_interface=IPluginV2DynamicExt" in summary:
        # TensorRT 8.5 has no loadLibrary: the library registers itself when loaded into a process with TensorRT.
        print("load it in TensorRT 8.5 with: trtexec --plugins=" + str(trt) + " (8.6: --staticPlugins=...),")
        print("or in Python: import tensorrt, then ctypes.CDLL('" + str(trt) + "') (8.6 also: "
              "registry.load_library)")
    elif trt.is_file():
        print("load it in TensorRT with: trtexec --dynamicPlugins=" + str(trt) + " (or --staticPlugins=...),")
        print("or in Python: builder.get_plugin_registry().load_library('" + str(trt) + "')")
    elif not args.no_tensorrt:
        print("TensorRT plugin library not built: no TensorRT headers found (pass --tensorrt-include DIR)")
    return 0


def _emulate(args: argparse.Namespace) -> int:
    _check_build_dir(args)
    from siamattn.plugins import emulation

    lib_dir = emulation.build_emulation(build_dir=args.build_dir, jobs=args.jobs,
                                        tensorrt_include=args.tensorrt_include)
    sanitizers = emulation.SANITIZERS if args.sanitizer == "all" else (args.sanitizer,)
    failed = []
    for san in sanitizers:
        print(f"== CUDA kernels on CPU threads, sanitizer: {san} ({'all' if args.full else 'quick'} cases)",
              flush=True)
        try:
            emulation.executable(lib_dir, "selftest", san)
        except PluginBuildError as err:
            if args.sanitizer != "all":
                raise
            print(f"skipped: {err}")
            continue
        result = emulation.selftest(lib_dir, san, full=args.full, block_order=args.block_order)
        print(result.output.rstrip())
        if not result.ok:
            failed.append(san)
        if san != "thread" and emulation.has_trt_driver(lib_dir):
            print(f"== TensorRT plugins driven through their run-time path, sanitizer: {san}", flush=True)
            driver = emulation.trt_driver(lib_dir, san)
            print(driver.output.rstrip())
            if not driver.ok:
                failed.append(f"{san} (plugin driver)")
    if not emulation.has_trt_driver(lib_dir):
        print("TensorRT plugin driver not built: no TensorRT headers found (set TensorRT_INCLUDE_DIR)")
    print(f"emulation: {'FAILED under ' + ', '.join(failed) if failed else 'all variants passed'} "
          "(shows indexing, tiling, shared memory and __syncthreads are right; says nothing about speed or "
          "tensor-core fragment layouts: run 'python -m siamattn.plugins.gpu_check' on a GPU for that)")
    return 1 if failed else 0


def describe_library(path: Path) -> str:
    """Build info (and plugin list) a library reports about itself; why not, for a file that is not one."""
    try:
        lib = ctypes.CDLL(str(path))
    except OSError as exc:  # a damaged or foreign file where a library is expected
        return f"(cannot be loaded: {exc}; rebuild with 'siamattn plugins build')"
    name = "siamattn_trt_plugins_info" if hasattr(lib, "siamattn_trt_plugins_info") else "siamattn_build_info"
    if not hasattr(lib, name):
        return "(not a siamattn library: it reports no build info; rebuild with 'siamattn plugins build')"
    fn = getattr(lib, name)
    fn.restype = ctypes.c_char_p
    return fn().decode()


def _info(args: argparse.Namespace) -> int:
    nvcc = find_nvcc()
    trt = find_tensorrt_include()
    print(f"nvcc: {nvcc or 'not found'}")
    print(f"TensorRT headers: {trt or 'not found (set TensorRT_INCLUDE_DIR or pass --tensorrt-include to build)'}")
    dirs = cached_builds()
    if os.environ.get("SIAMATTN_PLUGINS_DIR"):
        dirs = [Path(os.environ["SIAMATTN_PLUGINS_DIR"]).expanduser(), *dirs]
    if not dirs:
        print("no plugin build for the current sources: run 'siamattn plugins build'")
        return 1
    for lib_dir in dirs:
        print(f"\n{lib_dir}")
        for kind, name in LIB_FILES.items():
            path = lib_dir / name
            if path.is_file():
                print(f"  {kind:4s} {path}\n       {describe_library(path)}")
            else:
                print(f"  {kind:4s} (not built)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plugins", help="build / inspect the deformable-op kernels and TensorRT plugins",
                       description="Build or inspect the native libraries in plugins/ (CPU, CUDA, TensorRT).")
    psub = p.add_subparsers(dest="plugins_command", metavar="ACTION")
    b = psub.add_parser("build", help="configure and build with CMake",
                        description="Build the CPU library, the CUDA kernels (when nvcc is found) and the TensorRT "
                                    "plugin library (when TensorRT headers are found).")
    b.add_argument("--cuda-arch", type=cuda_archs,
                   help="CUDA architectures, e.g. 87 (Orin), 75;86;89, or 'all' for the portable list of the CUDA "
                        "version in use (default: this machine's GPU when one is found, else that list)")
    b.add_argument("--tensorrt-include", help="folder with NvInferRuntime.h (default: $TensorRT_INCLUDE_DIR, then "
                                              "/usr/include/<arch>-linux-gnu, /usr/local/TensorRT/include, ...)")
    b.add_argument("--no-cuda", action="store_true", help="build the CPU library only")
    b.add_argument("--no-tensorrt", action="store_true", help="do not build the TensorRT plugin library")
    b.add_argument("--build-dir", help="build here instead of ~/.cache/siamattn/plugins/<hash>")
    b.add_argument("--jobs", type=positive_int, help="parallel compile jobs (default: CPU count)")
    b.add_argument("--verbose", action="store_true", help="print CMake's output")
    b.set_defaults(func=_build)
    e = psub.add_parser("emulate", help="run the CUDA kernels on CPU threads (no GPU needed), under sanitizers",
                        description="Compile the unchanged CUDA kernels against plugins/emu's CPU stand-ins for the "
                                    "CUDA runtime and run their self-test (vs the CPU implementation) plain, under "
                                    "AddressSanitizer and under ThreadSanitizer. For kernel work without a GPU.")
    e.add_argument("--sanitizer", choices=["all", *SANITIZERS], default="all",
                   help="which variant(s) to run (default: all)")
    e.add_argument("--full", action="store_true", help="also the large shapes (minutes instead of seconds)")
    e.add_argument("--block-order", choices=BLOCK_ORDERS, default="forward",
                   help="order the blocks of a launch run in (blocks run one at a time: a result that changes "
                        "with the order means blocks race with each other)")
    e.add_argument("--tensorrt-include", help="TensorRT headers the plugin driver is compiled against: 10+ drives the "
                                              "IPluginV3 glue, 8.6 the IPluginV2DynamicExt one (default: as for build)")
    e.add_argument("--build-dir", help="build here instead of ~/.cache/siamattn/plugins/<hash>")
    e.add_argument("--jobs", type=positive_int, help="parallel compile jobs (default: CPU count)")
    e.set_defaults(func=_emulate)
    i = psub.add_parser("info", help="where the built libraries are and what they contain")
    i.set_defaults(func=_info)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


__all__ = ["PluginBuildError", "describe_library", "register"]
