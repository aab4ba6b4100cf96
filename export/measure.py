"""Measurements behind export defaults, printed as Markdown for docs/PERFORMANCE.md.

``python -m siamattn.export.measure xcorr``  the depth-wise xcorr lowerings: ONNX Runtime CPU latency on the
    SiamAttn shapes, exported node counts, TensorRT-RTX AOT build success (FP32 and FP16).
``python -m siamattn.export.measure fp16 --config tiny``  FP16 graph error vs the PyTorch FP32 stages with all
    FP32 islands, none, and each one left out (ONNX Runtime CPU on the FP16 graphs).
``python -m siamattn.export.measure fp16-attention``  the two attention terms alone on trained-like (correlated)
    features of growing magnitude, FP16 with and without their FP32 island.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch import Tensor, nn

from siamattn.config import load_config
from siamattn.export import engine as engines
from siamattn.export.fp16 import ISLANDS, convert_to_fp16
from siamattn.export.graphs import Stage, export_stage, stages
from siamattn.export.lowering import XCORR, lowerings
from siamattn.export.postpass import finalize, optimize
from siamattn.export.random_model import random_model
from siamattn.export.verify import compare, run_onnx
from siamattn.host import cpu_name
from siamattn.tensorrt_env import TrtFlavour, resolve_flavour


def machine() -> str:
    return f"{cpu_name()}, {os.cpu_count()} logical cores, {platform.system()} {platform.release()}"


class _XCorr(nn.Module):
    """``levels`` correlations of one search map with ``levels`` kernels (the RPN's per-head pattern)."""

    def __init__(self, fn: Any) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: Tensor, kernel: Tensor) -> Tensor:
        return self.fn(x, kernel)


def _session(model: onnx.ModelProto, threads: int) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def _latencies_ms(models: dict[str, onnx.ModelProto], feeds: dict[str, np.ndarray], runs: int,
                  threads: int) -> dict[str, tuple[float, float]]:
    """(min, median) latency per model, runs interleaved round-robin so load from other processes on a
    shared machine hits every variant alike."""
    sessions = {k: _session(m, threads) for k, m in models.items()}
    for sess in sessions.values():
        for _ in range(3):
            sess.run(None, feeds)
    times: dict[str, list[float]] = {k: [] for k in sessions}
    for _ in range(runs):
        for k, sess in sessions.items():
            t0 = time.perf_counter()
            sess.run(None, feeds)
            times[k].append((time.perf_counter() - t0) * 1e3)
    return {k: (min(v), statistics.median(v)) for k, v in times.items()}


def _trt_build(backend: TrtFlavour | None, model: onnx.ModelProto, label: str) -> str:
    if backend is None:
        return "n/a (no TensorRT)"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{label}.onnx"
        onnx.save(model, str(path))
        try:
            res = engines.build_engine_subprocess(backend, path, Path(tmp) / f"{label}.engine", label=label)
        except engines.EngineBuildError as exc:
            return f"FAIL: {str(exc)[:80]}"
    return f"ok ({res.layers} layers, {res.build_s:.1f}s)"


def measure_xcorr(runs: int, threads: int, out: list[str]) -> None:
    shapes = [("RPN head (r50)", (1, 256, 29, 29), (1, 256, 5, 5)),
              ("refinement (r50)", (1, 256, 31, 31), (1, 256, 7, 7))]
    backend = resolve_flavour("auto")
    out.append(f"Machine: {machine()}; ONNX Runtime CPU, {threads} thread(s), median of {runs} runs. "
               f"Engine builds: {backend.flavour + ' ' + backend.version if backend else 'no TensorRT installed'} "
               "(ahead-of-time, no GPU).\n")
    out.append("| shapes (x, kernel) | lowering | ONNX nodes | ORT FP32 ms min / median | ORT FP16 ms min / median "
               "| max abs err | TRT FP32 build | TRT FP16 build |")
    out.append("|---|---|---|---|---|---|---|---|")
    g = torch.Generator().manual_seed(0)
    for label, xs, ks in shapes:
        x, k = torch.randn(*xs, generator=g), torch.randn(*ks, generator=g)
        ref = XCORR["conv"](x, k).numpy()
        feeds = {"x": x.numpy(), "kernel": k.numpy()}
        models: dict[str, onnx.ModelProto] = {}
        for name, fn in XCORR.items():
            stage = Stage(f"xcorr_{name}", _XCorr(fn).eval(), {"x": x, "kernel": k}, ["y"])
            models[f"{name}/fp32"] = m32 = finalize(optimize(export_stage(stage, 19, {})), 10, stage.name)
            models[f"{name}/fp16"] = finalize(convert_to_fp16(m32)[0], 10, stage.name)
        lat = _latencies_ms(models, feeds, runs, threads)
        for name in XCORR:
            m32, m16 = models[f"{name}/fp32"], models[f"{name}/fp16"]
            err = float(np.abs(run_onnx(m32, feeds)[0]["y"] - ref).max())
            (a32, b32), (a16, b16) = lat[f"{name}/fp32"], lat[f"{name}/fp16"]
            out.append(f"| {label} {xs[1:]}, {ks[1:]} | {name} | {len(m32.graph.node)} | {a32:.2f} / {b32:.2f} | "
                       f"{a16:.2f} / {b16:.2f} | {err:.1e} | {_trt_build(backend, m32, name + '_fp32')} | "
                       f"{_trt_build(backend, m16, name + '_fp16')} |")
            print(out[-1], file=sys.stderr, flush=True)


def measure_search_xcorr(config: str, runs: int, threads: int, out: list[str]) -> None:
    """The whole search graph with each lowering (what the tracker pays per frame on this CPU)."""
    cfg = load_config(config)
    model = random_model(cfg)
    stage = next(s for s in stages(model) if s.name == "search")
    feeds = {k: v.numpy() for k, v in stage.inputs.items()}
    out.append(f"\nWhole `search` graph ({config}, portable, FP32), ONNX Runtime CPU, {threads} thread(s), "
               f"median of {runs} runs:\n")
    out.append("| lowering | export + post-pass s | ONNX nodes | ORT ms min / median |")
    out.append("|---|---|---|---|")
    models, export_s = {}, {}
    for name in XCORR:
        t0 = time.perf_counter()
        models[name] = finalize(optimize(export_stage(stage, cfg.export.opset, lowerings("portable", name))), 10,
                                "search")
        export_s[name] = time.perf_counter() - t0
    lat = _latencies_ms(models, feeds, runs, threads)
    for name, m in models.items():
        out.append(f"| {name} | {export_s[name]:.1f} | {len(m.graph.node)} | {lat[name][0]:.1f} / {lat[name][1]:.1f} |")


def _worst(check: dict[str, dict[str, float]]) -> tuple[str, float]:
    name, v = max(check.items(), key=lambda kv: kv[1]["rel_err"])
    return name, v["rel_err"]


def measure_fp16(config: str, out: list[str]) -> None:
    cfg = load_config(config)
    model = random_model(cfg)
    variants: list[tuple[str, tuple[str, ...]]] = [("all islands (default)", ISLANDS), ("no islands", ())]
    variants += [(f"all but {i}", tuple(x for x in ISLANDS if x != i)) for i in ISLANDS]
    out.append(f"\nFP16 graphs of `{config}` (random-init, calibrated BN), ONNX Runtime CPU vs the PyTorch FP32 "
               "stages; figure = max |err| / output range, worst output named. ONNX Runtime runs MatMul/Softmax "
               "chains of an FP16 graph in FP32 (see verify.py), so the attention islands are measured separately "
               "(fp16-attention). Machine: " + machine() + "\n")
    header = "| FP32 islands | " + " | ".join(s.name for s in stages(model)) + " |"
    out.append(header)
    out.append("|---" * (header.count("|") - 1) + "|")
    all_stages = stages(model)
    base = {}
    for stage in all_stages:
        base[stage.name] = optimize(export_stage(stage, cfg.export.opset, lowerings("portable", "conv")))
    fp32_row = ["FP32 graph (reference)"]
    for stage in all_stages:
        check = compare(stage.reference(), run_onnx(base[stage.name], _feeds(stage))[0])
        name, v = _worst(check)
        fp32_row.append(f"{v:.1e} ({name})")
    out.append("| " + " | ".join(fp32_row) + " |")
    for label, keep in variants:
        row = [label]
        for stage in all_stages:
            m16, rep = convert_to_fp16(base[stage.name], keep)
            check = compare(stage.reference(), run_onnx(m16, _feeds(stage))[0])
            name, v = _worst(check)
            row.append(f"{v:.1e} ({name})")
        out.append("| " + " | ".join(row) + " |")
        print(out[-1], file=sys.stderr, flush=True)
    gram = _max_gram(model)
    out.append(f"\nLargest |X X^T| entry on these inputs: {gram:.0f} (FP16 max 65504; FP16 spacing at that "
               f"magnitude: {2.0 ** (np.floor(np.log2(max(gram, 1))) - 10):g}).")


def _feeds(stage: Stage) -> dict[str, np.ndarray]:
    return {k: v.numpy() for k, v in stage.inputs.items()}


def _max_gram(model: nn.Module) -> float:
    """The largest channel-Gram entry the DSA modules see on the example images (hooks on channel_affinity)."""
    from siamattn.training.model import attention

    seen: list[float] = []
    original = attention.channel_affinity

    def spy(f: Tensor, negated: bool = False) -> Tensor:
        flat = f.flatten(2).float()
        seen.append(float(torch.bmm(flat, flat.transpose(1, 2)).abs().max()))
        return original(f, negated)

    attention.channel_affinity = spy
    try:
        for stage in stages(model)[:2]:
            stage.reference()
    finally:
        attention.channel_affinity = original
    return max(seen) if seen else 0.0


class _ChannelAttention(nn.Module):
    """The DSA channel-attention term softmax_row(F F^T) F, with the model's own functions."""

    def forward(self, f: Tensor) -> Tensor:
        from siamattn.training.model.attention import apply_affinity, channel_affinity

        return apply_affinity(channel_affinity(f), f)


class _SpatialAttention(nn.Module):
    """The DSA spatial-attention term V softmax_col(Q^T K) of one (randomly initialised) DSA module."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        from siamattn.config import AttentionConfig
        from siamattn.training.model.attention import DSA

        self.dsa = DSA(channels, AttentionConfig())
        with torch.no_grad():
            self.dsa.alpha.fill_(1.0)

    def forward(self, f: Tensor) -> Tensor:
        return self.dsa.spatial(f) - f


def _trained_like_features(scale: float, c: int = 256, hw: int = 31, rank: int = 16, seed: int = 0) -> Tensor:
    """Channels that are correlated (low rank + noise), as trained feature maps are, with RMS ``scale``.
    Random independent channels make X X^T diagonal-dominant and its softmax ~identity, hiding the problem."""
    g = torch.Generator().manual_seed(seed)
    f = torch.randn(c, rank, generator=g) @ torch.randn(rank, hw * hw, generator=g)
    f = f + 0.5 * rank**0.5 * torch.randn(c, hw * hw, generator=g)
    f = f / f.pow(2).mean().sqrt() * scale
    return f.reshape(1, c, hw, hw)


def measure_fp16_attention(out: list[str]) -> None:
    scales = (0.5, 1.0, 2.0, 4.0, 8.0)
    out.append("\nAttention terms alone on the search map ([1,256,31,31], channels correlated, RMS as given), "
               "FP16 graph with vs without the FP32 island, onnx.reference evaluator (every op in its graph "
               "type) vs FP64 PyTorch; max |err| / range "
               "(inf: the FP16 Gram overflowed to inf and the softmax produced NaN).\n")
    out.append("| term | feature RMS | max X X^T or Q^T K | FP32 island | FP16 throughout |")
    out.append("|---|---|---|---|---|")
    torch.manual_seed(0)
    for label, module, island in (("channel softmax(X X^T) X", _ChannelAttention(), "channel_attention"),
                                  ("spatial V softmax(Q^T K)", _SpatialAttention(256), "spatial_attention")):
        module.eval()
        for scale in scales:
            f = _trained_like_features(scale)
            stage = Stage("attention", module, {"f": f}, ["y"])
            base = optimize(export_stage(stage, 19, {}))
            with torch.no_grad():
                ref = module.double()(f.double()).float()
                module.float()
                if island == "channel_attention":
                    flat = f.flatten(2)
                    peak = float(torch.bmm(flat, flat.transpose(1, 2)).abs().max())
                else:
                    q = module.dsa.query(f).flatten(2)
                    k = module.dsa.key(f).flatten(2)
                    peak = float(torch.bmm(q.transpose(1, 2), k).abs().max())
            row = []
            for keep in ((island,), ()):
                m16, _ = convert_to_fp16(base, keep)
                # The reference evaluator computes every op in its graph type (FP32-accumulated MatMul rounded
                # to FP16, FP16 Softmax), as a strongly typed engine does; ONNX Runtime's CPU provider would run
                # this MatMul->Softmax chain in FP32 and hide exactly the effect measured here.
                got, _ = run_onnx(m16, {"f": f.numpy()}, runner="reference")
                row.append(f"{compare({'y': ref}, got)['y']['rel_err']:.1e}")
            out.append(f"| {label} | {scale:g} | {peak:.3g} | {row[0]} | {row[1]} |")
            print(out[-1], file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=("xcorr", "fp16", "fp16-attention"))
    p.add_argument("--config", default="tiny")
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--search-config", default="tiny", help="config for the whole-search-graph xcorr timing")
    p.add_argument("--out", help="append the Markdown here (default: stdout only)")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    lines: list[str] = []
    if a.what == "xcorr":
        measure_xcorr(a.runs, a.threads, lines)
        measure_search_xcorr(a.search_config, max(10, a.runs // 3), a.threads, lines)
    elif a.what == "fp16":
        measure_fp16(a.config, lines)
    else:
        measure_fp16_attention(lines)
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        with open(a.out, "a") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
