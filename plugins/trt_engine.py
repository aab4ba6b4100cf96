"""Build TensorRT-RTX engines from ONNX files with the SiamAttn plugin library loaded.

TensorRT-RTX builds ahead of time with no GPU, so this runs on CPU-only CI too. Its ONNX parser dlopens the
unversioned ``libtensorrt_rtx.so`` when it meets a plugin node, while the wheel ships only ``.so.1``: the
symlink must be on the library search path *before* the process starts. :func:`run_in_subprocess` arranges
that; the command line below is what it runs::

    python -m siamattn.plugins.trt_engine --plugins libsiamattn_trt_plugins.so model.onnx [--save DIR] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from siamattn.errors import MissingDependencyError


@dataclass
class EngineResult:
    onnx: str
    parsed: bool = False
    built: bool = False
    engine_bytes: int = 0
    outputs: list[tuple[list[int], str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # parser errors and TensorRT error/warning log lines


def rtx_library_dir() -> Path:
    """Folder of the TensorRT-RTX shared libraries installed by the tensorrt-rtx-*-libs wheel."""
    try:
        import tensorrt_rtx_libs  # type: ignore[import-not-found]
    except ImportError as exc:
        raise MissingDependencyError(
            "building TensorRT-RTX engines needs the tensorrt-rtx wheels: pip install 'siamattn-trt[tensorrt-rtx]'"
        ) from exc
    return Path(tensorrt_rtx_libs.__file__).resolve().parent


def ensure_unversioned_link(link_dir: Path) -> Path:
    """``link_dir/libtensorrt_rtx.so`` -> the wheel's ``libtensorrt_rtx.so.1`` (needed by plugin-node parsing)."""
    link_dir.mkdir(parents=True, exist_ok=True)
    target = rtx_library_dir() / "libtensorrt_rtx.so.1"
    link = link_dir / "libtensorrt_rtx.so"
    if not link.exists():
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile
            link.symlink_to(target)
    return link_dir


def build_engines(plugin_library: Path, onnx_files: list[Path], save_dir: Path | None = None) -> list[EngineResult]:
    """Parse and build each ONNX file (in this process; the unversioned link must already be on the path)."""
    import tensorrt_rtx_bindings as trt  # type: ignore[import-not-found]

    class Collect(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.lines: list[str] = []

        def log(self, severity, msg) -> None:  # signature fixed by TensorRT
            if severity <= trt.ILogger.WARNING:
                self.lines.append(f"{severity.name}: {msg}")

    logger = Collect()
    builder = trt.Builder(logger)
    builder.get_plugin_registry().load_library(str(plugin_library))
    results = []
    for path in onnx_files:
        res = EngineResult(onnx=str(path))
        logger.lines.clear()
        # FP16 comes from FP16-typed tensors in the ONNX graph: TensorRT-RTX has no FP16 builder flag.
        net = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
        parser = trt.OnnxParser(net, logger)
        res.parsed = bool(parser.parse(Path(path).read_bytes()))
        res.errors += [parser.get_error(i).desc() for i in range(parser.num_errors)]
        if res.parsed:
            for i in range(net.num_outputs):
                out = net.get_output(i)
                res.outputs.append((list(out.shape), out.dtype.name))
            engine = builder.build_serialized_network(net, builder.create_builder_config())
            if engine is not None:
                res.built = True
                res.engine_bytes = engine.nbytes
                if save_dir is not None:
                    save_dir.mkdir(parents=True, exist_ok=True)
                    (save_dir / (Path(path).stem + ".engine")).write_bytes(bytes(engine))
        res.errors += logger.lines
        results.append(res)
    return results


def run_in_subprocess(plugin_library: Path, onnx_files: list[Path], link_dir: Path,
                      save_dir: Path | None = None, timeout: float = 600) -> list[EngineResult]:
    """:func:`build_engines` in a child process whose library path has the unversioned TensorRT-RTX link."""
    ensure_unversioned_link(link_dir)
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [str(link_dir), env.get("LD_LIBRARY_PATH")]))
    cmd = [sys.executable, "-m", "siamattn.plugins.trt_engine", "--json", "--plugins", str(plugin_library)]
    if save_dir is not None:
        cmd += ["--save", str(save_dir)]
    proc = subprocess.run([*cmd, *map(str, onnx_files)], env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"engine build process failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return [EngineResult(**r) for r in json.loads(proc.stdout.strip().splitlines()[-1])]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--plugins", required=True, type=Path, help="path of libsiamattn_trt_plugins.so")
    ap.add_argument("--save", type=Path, help="write <name>.engine files here")
    ap.add_argument("--json", action="store_true", help="print one JSON line with the results")
    ap.add_argument("onnx", nargs="+", type=Path)
    args = ap.parse_args(argv)
    results = build_engines(args.plugins, args.onnx, args.save)
    if args.json:
        print(json.dumps([asdict(r) for r in results]))
    else:
        for r in results:
            state = "built" if r.built else ("parsed, build failed" if r.parsed else "parse failed")
            print(f"{r.onnx}: {state}; outputs {r.outputs}")
            for line in r.errors:
                print("   ", line)
    return 0 if all(r.built for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
