"""INT8 graphs by explicit quantization: QuantizeLinear/DequantizeLinear (Q/DQ) pairs in the FP32 graphs.

The machinery is ONNX Runtime's (``onnxruntime.quantization``: the calibrators behind ``CalibrationDataReader``,
``quantize_static`` in QDQ format); this module decides *what* is quantized and on which data:

* calibration feeds are the graphs' real inputs, recorded from the PyTorch FP32 tracker (calibration.py);
* format: symmetric INT8 (zero point 0) for weights, per output channel, and for activations, per tensor: the
  form TensorRT's explicit quantization fuses (its Q/DQ must be symmetric int8) and the graph file that the
  engine builders get;
* which layers stay float is measured (:func:`choose_float`): layer groups (a backbone block, an attention
  module, an RPN branch, ...) are quantized one at a time and their effect on the graph's outputs is measured on
  held-back calibration feeds; the FP16 islands' layers (fp16.py: large batch-norm-folded weights, box deltas,
  RoI math, wide dot products) start out float and are measured too;
* ops without an INT8 form stay float between a DQ and a Q: DeformConv (ONNX has no INT8 DeformConv), GridSample
  and the RoI math, the attention products (both operands computed), the depth-wise xcorr Conv (its weights are
  the template's features, computed per video, so there is no constant per-channel weight scale).

ONNX Runtime on x86 runs Q/DQ convolutions fast only with *unsigned* 8-bit activations (its u8s8 kernels;
int8 activations measured no faster than FP32, issue 20). :func:`cpu_variant` re-encodes every activation Q/DQ
pair of the symmetric graph as uint8 with zero point 128: q_u8 = q_s8 + 128 with the same scale, so the CPU
graph computes exactly the same numbers as the TensorRT graph, from one calibration.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from siamattn.errors import InputError
from siamattn.export.fp16 import find_islands

QUANT_OP_TYPES = ("Conv", "Gemm", "MatMul")
METHODS = ("entropy", "minmax", "percentile")
DEFAULT_METHOD = "minmax"  # measured best on the demo model (docs/EXPORT.md "INT8")
# The template graph runs once per video (INT8 saves nothing per frame) and its outputs feed every frame: it stays
# FP32, as in FP16 exports.
QUANTIZED_GRAPHS = ("search", "refine_box", "refine_mask")
# The outputs whose change decides: what the tracker reads, and the search graph's refinement features (the
# refinement graphs' inputs: a layer that only feeds them moves deltas and mask, not cls/loc).
JUDGED_OUTPUTS = {"search": ("cls", "loc", "box_feat", "mask_feat"), "refine_box": ("box_deltas",),
                  "refine_mask": ("mask",)}
# Error budget per graph on held-back calibration feeds, as max |int8 - fp32| / output range (docs/EXPORT.md):
# a group whose INT8 alone moves an output by more than GROUP_LIMIT stays float, then groups go float, most
# sensitive first, until the whole graph is within GRAPH_BUDGET. A starting-float (island) group turns INT8 only
# when its own error is below NEGLIGIBLE. Measured on the demo model: held-back frames come from the calibration
# clip, and other clips move more; groups at 1-2 % alone on bunny frames summed to 27 % of cls's range on vtest.avi,
# while the groups under 1.2 % stay within 3 % there (docs/EXPORT.md "INT8", the budget).
GROUP_LIMIT = 0.01
GRAPH_BUDGET = 0.02
NEGLIGIBLE = 0.002
HELD_BACK_EVERY = 4  # every 4th recorded call is held back from calibration for the sensitivity measurements
CACHE_FORMAT = "siamattn-int8-calibration"

Log = Callable[[str], None]
Record = tuple[dict[str, np.ndarray], dict[str, np.ndarray]]


def _method(name: str) -> Any:
    from onnxruntime.quantization import CalibrationMethod

    return {"entropy": CalibrationMethod.Entropy, "minmax": CalibrationMethod.MinMax,
            "percentile": CalibrationMethod.Percentile}[name]


def split_records(records: list[Record]) -> tuple[list[Record], list[Record]]:
    """(calibration, held back): every HELD_BACK_EVERY-th call is held back, so both span the whole clip."""
    if len(records) < 2:
        return records, records
    held = [r for i, r in enumerate(records) if i % HELD_BACK_EVERY == HELD_BACK_EVERY - 1] or records[-1:]
    calib = [r for i, r in enumerate(records) if i % HELD_BACK_EVERY != HELD_BACK_EVERY - 1]
    return calib, held


# -- which layers -----------------------------------------------------------------------------------------------

def _scope_group(node: onnx.NodeProto) -> str:
    """The module a node comes from, cut after its first numbered part: 'backbone.features.5', 'dsa.0',
    'rpn.cls.1', 'neck.adjust.2' (from the exporter's name-scope metadata)."""
    scopes = ""
    for p in node.metadata_props:
        if p.key == "pkg.torch.onnx.name_scopes":
            scopes = p.value
    modules = [s.strip(" '\"") for s in scopes.strip("[]").split(",")]
    modules = [m for m in modules if m.startswith("model.")]
    if not modules:
        return "model"
    parts = modules[-1].removeprefix("model.").split(".")
    out: list[str] = []
    for part in parts[:3]:
        out.append(part)
        if part.isdigit():
            break
    return ".".join(out)


@dataclass
class LayerPlan:
    """Which layers of one graph may be INT8, in which groups, and which stay float whatever is measured."""

    groups: dict[str, list[str]]  # group -> candidate nodes (constant-weight Conv/Gemm/MatMul)
    start_float: dict[str, str]  # group -> why it starts float (the FP16 islands' reasoning)
    fixed_float: dict[str, str]  # node -> why it has no INT8 form here


def plan_layers(model: onnx.ModelProto) -> LayerPlan:
    inits = {t.name for t in model.graph.initializer}
    islands = find_islands(model)
    island_of = {model.graph.node[i].name: name for name, idx in islands.items() for i in idx}
    groups: dict[str, list[str]] = {}
    start: dict[str, str] = {}
    fixed: dict[str, str] = {}
    for node in model.graph.node:
        if node.op_type == "DeformConv":
            fixed[node.name] = "DeformConv: ONNX has no INT8 form; runs float between DQ and Q"
        elif node.op_type == "GridSample":
            fixed[node.name] = "GridSample (RoI / deformable sampling): float coordinates and interpolation"
        elif node.op_type in QUANT_OP_TYPES and (len(node.input) < 2 or node.input[1] not in inits):
            fixed[node.name] = ("both operands computed (attention product or xcorr with template features): no "
                                "constant per-channel weight scale")
        elif node.op_type in QUANT_OP_TYPES:
            island = island_of.get(node.name)
            group = f"island:{island}" if island else _scope_group(node)
            groups.setdefault(group, []).append(node.name)
            if island:
                start[group] = f"FP16 island '{island}' (fp16.py): starts float"
    return LayerPlan(groups, start, fixed)


# -- calibration ranges and the cache ---------------------------------------------------------------------------

class _Reader:
    """onnxruntime.quantization CalibrationDataReader over recorded feeds."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
        self._feeds = feeds
        self._it = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)

    def __len__(self) -> int:
        return len(self._feeds)

    def rewind(self) -> None:
        self._it = iter(self._feeds)

    def set_range(self, start_index: int, end_index: int) -> None:
        self._it = iter(self._feeds[start_index:end_index])


def _quiet_ort() -> contextlib.AbstractContextManager[None]:
    """onnxruntime.quantization logs a pre-processing advice per call through the root logger."""
    import logging

    @contextlib.contextmanager
    def quiet() -> Any:
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)
        try:
            yield
        finally:
            root.setLevel(level)

    return quiet()


def calibrate(model_path: Path, feeds: list[dict[str, np.ndarray]], method: str) -> dict[str, Any]:
    """Per-tensor ranges of the quantizable ops' tensors (ONNX Runtime's calibrator, symmetric), as the JSON
    ONNX Runtime's own calibration cache holds."""
    from onnxruntime.quantization.calibrate import create_calibrator, save_tensors_data

    with tempfile.TemporaryDirectory(prefix="siamattn-calib-") as tmp, _quiet_ort():
        calibrator = create_calibrator(model_path, list(QUANT_OP_TYPES),
                                       augmented_model_path=str(Path(tmp) / "augmented.onnx"),
                                       calibrate_method=_method(method),
                                       extra_options={"symmetric": True})
        calibrator.collect_data(_Reader(feeds))  # type: ignore[arg-type]
        ranges = calibrator.compute_data()
        cache = Path(tmp) / "ranges.json"
        save_tensors_data(ranges, cache)
        return json.loads(cache.read_text())


def model_key(weights: dict[str, Any], cfg_dict: dict[str, Any], lowering: dict[str, Any]) -> str:
    """What a calibration cache belongs to: the weights (checkpoint sha256, or random-init seed), the config and
    the graph lowerings; a cache from anything else is refused."""
    ident = {"weights": weights.get("sha256") or f"random-init seed {weights.get('seed')}", "config": cfg_dict,
             "lowering": lowering}
    return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()


def read_cache(path: Path, key: str, method: str) -> dict[str, Any] | None:
    """The cache at ``path`` if it exists (None otherwise); an InputError when it is not a calibration cache of
    this model and method."""
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"--calib-cache '{path}' is not a readable calibration cache ({exc})") from exc
    if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT:
        raise InputError(f"--calib-cache '{path}' is not a siamattn INT8 calibration cache")
    if data.get("model_key") != key:
        raise InputError(f"--calib-cache '{path}' was calibrated for another model (weights, config or lowering "
                         "differ: model hash mismatch); delete it or choose another file")
    if data.get("method") != method:
        raise InputError(f"--calib-cache '{path}' holds {data.get('method')} ranges, not --calib-method {method}; "
                         "delete it or choose another file")
    return data


# -- quantization and measurement -------------------------------------------------------------------------------

def quantize(model_path: Path, ranges: dict[str, Any], int8_nodes: list[str], out_path: Path) -> onnx.ModelProto:
    """Q/DQ graph with only ``int8_nodes`` quantized: int8 symmetric activations per tensor, int8 symmetric
    weights per output channel (ONNX Runtime's QDQ quantizer, on the given ranges)."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    with tempfile.TemporaryDirectory(prefix="siamattn-q-") as tmp, _quiet_ort():
        cache = Path(tmp) / "ranges.json"
        cache.write_text(json.dumps(ranges))
        quantize_static(
            str(model_path), str(out_path), None, quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, op_types_to_quantize=list(QUANT_OP_TYPES),
            nodes_to_quantize=list(int8_nodes) or ["<none>"], calibrate_method=_method(ranges_method(ranges)),
            calibration_cache_path=str(cache),
            extra_options={"ActivationSymmetric": True, "WeightSymmetric": True, "MatMulConstBOnly": True,
                           # TensorRT reads DequantizeLinear of int8 only: biases stay float (cpu_variant)
                           "QuantizeBias": False})
    return onnx.load(str(out_path))


def ranges_method(ranges: dict[str, Any]) -> str:
    value = str(ranges.get("calibration_method", {}).get("value", "CalibrationMethod.MinMax")).split(".")[-1]
    return {"MinMax": "minmax", "Entropy": "entropy", "Percentile": "percentile"}[value]


def _session(model: onnx.ModelProto | Path, threads: int = 0) -> Any:
    import onnxruntime as ort

    from siamattn.runtime.ort_runner import session_options

    src = str(model) if isinstance(model, Path) else model.SerializeToString()
    opts = session_options(ort, threads)
    opts.log_severity_level = 3  # not a warning per zero point a partly quantized graph leaves unused
    return ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"])


def output_errors(model: onnx.ModelProto | Path, records: list[Record], outputs: tuple[str, ...]) -> dict[str, float]:
    """max |graph - reference| / max |reference| per output over ``records`` (the reference: the PyTorch outputs
    recorded with the feeds); outputs the graph lacks (a model without refinement) are skipped."""
    sess = _session(model)
    have = {o.name for o in sess.get_outputs()}
    outputs = tuple(o for o in outputs if o in have and o in records[0][1])
    worst = dict.fromkeys(outputs, 0.0)
    scale = dict.fromkeys(outputs, 1e-12)
    for feeds, ref in records:
        got = dict(zip(outputs, sess.run(list(outputs), feeds), strict=True))
        for name in outputs:
            worst[name] = max(worst[name], float(np.abs(got[name] - ref[name]).max()))
            scale[name] = max(scale[name], float(np.abs(ref[name]).max()))
    return {k: worst[k] / scale[k] for k in outputs}


@dataclass
class GroupResult:
    name: str
    nodes: list[str]
    error: dict[str, float]  # this group alone INT8, the rest float
    precision: str = "int8"
    why: str = ""

    @property
    def worst(self) -> float:
        return max(self.error.values(), default=0.0)


@dataclass
class GraphDecision:
    graph: str
    groups: list[GroupResult]
    fixed_float: dict[str, str]
    error: dict[str, float] = field(default_factory=dict)  # the chosen graph on held-back feeds
    float_error: dict[str, float] = field(default_factory=dict)  # the FP32 graph on the same feeds
    seconds: float = 0.0

    def int8_nodes(self) -> list[str]:
        return [n for g in self.groups if g.precision == "int8" for n in g.nodes]

    def layers(self) -> dict[str, dict[str, str]]:
        """node -> {precision, group, why}: the manifest's per-layer record."""
        out = {n: {"precision": g.precision, "group": g.name, "why": g.why} for g in self.groups for n in g.nodes}
        out.update({n: {"precision": "float", "group": "-", "why": why} for n, why in self.fixed_float.items()})
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"error_held_back": self.error, "fp32_error_held_back": self.float_error,
                "int8_layers": len(self.int8_nodes()),
                "float_layers": sum(len(g.nodes) for g in self.groups if g.precision != "int8") + len(self.fixed_float),
                "groups": [{"group": g.name, "layers": len(g.nodes), "error_alone": g.error, "precision": g.precision,
                            "why": g.why} for g in self.groups],
                "layers": self.layers(), "decide_s": round(self.seconds, 1)}


def choose_float(graph: str, model_path: Path, ranges: dict[str, Any], held: list[Record],
                 outputs: tuple[str, ...], log: Log, plan: LayerPlan | None = None,
                 group_limit: float = GROUP_LIMIT, budget: float = GRAPH_BUDGET,
                 negligible: float = NEGLIGIBLE) -> GraphDecision:
    """Measured sensitivity: each group INT8 alone (the rest float) on the held-back feeds; a group over
    ``group_limit`` stays float, a starting-float group turns INT8 only under ``negligible``; then the most
    sensitive INT8 groups go float until the whole graph is within ``budget``."""
    t0 = time.monotonic()
    plan = plan or plan_layers(onnx.load(str(model_path)))
    decision = GraphDecision(graph, [], dict(plan.fixed_float))
    decision.float_error = output_errors(model_path, held, outputs)
    with tempfile.TemporaryDirectory(prefix="siamattn-sens-") as tmp:
        trial = Path(tmp) / "trial.onnx"
        for name, nodes in plan.groups.items():
            err = output_errors(quantize(model_path, ranges, nodes, trial), held, outputs)
            g = GroupResult(name, nodes, err)
            if name in plan.start_float:
                if g.worst < negligible:
                    g.why = f"{plan.start_float[name]}; INT8 alone moves the outputs {g.worst:.1e} < {negligible:g}"
                else:
                    g.precision = "float"
                    g.why = f"{plan.start_float[name]}; INT8 alone would move the outputs {g.worst:.1e}"
            elif g.worst > group_limit:
                g.precision = "float"
                g.why = f"INT8 alone moves the outputs {g.worst:.1e} > {group_limit:g}"
            else:
                g.why = f"INT8 alone moves the outputs {g.worst:.1e}"
            decision.groups.append(g)
            log(f"[{graph}]   {name}: {len(nodes)} layer(s), INT8 alone {g.worst:.2e} -> {g.precision}")
        while True:
            err = output_errors(quantize(model_path, ranges, decision.int8_nodes(), trial), held, outputs)
            decision.error = err
            int8 = [g for g in decision.groups if g.precision == "int8"]
            if max(err.values(), default=0.0) <= budget or not int8:
                break
            worst = max(int8, key=lambda g: g.worst)
            worst.precision = "float"
            worst.why = (f"INT8 alone moves the outputs {worst.worst:.1e}; the most sensitive INT8 group while the "
                         f"graph's error {max(err.values()):.1e} > budget {budget:g}")
            log(f"[{graph}]   graph error {max(err.values()):.2e} > {budget:g}: {worst.name} -> float")
    decision.seconds = time.monotonic() - t0
    return decision


# -- the CPU re-encoding ----------------------------------------------------------------------------------------

def cpu_variant(model: onnx.ModelProto) -> onnx.ModelProto:
    """The same Q/DQ graph with uint8 activations (zero point 128) instead of int8 (zero point 0): bit-identical
    results (q_u8 = q_s8 + 128, same scale), and the form ONNX Runtime's x86 kernels run fast. Weights (DQ of an
    int8 initializer) stay int8."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph
    inits = {t.name: t for t in g.initializer}
    u8_zero: dict[str, str] = {}

    def u8(zp_name: str) -> str:
        arr = numpy_helper.to_array(inits[zp_name])
        if arr.dtype != np.int8 or np.any(arr != 0):
            raise ValueError(f"activation zero point '{zp_name}' is not a symmetric int8 zero point")
        if zp_name not in u8_zero:
            new = f"{zp_name}_u8"
            g.initializer.append(numpy_helper.from_array(np.full(arr.shape, 128, np.uint8), new))
            u8_zero[zp_name] = new
        return u8_zero[zp_name]

    for node in g.node:
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear") or len(node.input) < 3:
            continue
        if node.op_type == "DequantizeLinear" and node.input[0] in inits:
            continue  # a weight: stays int8
        node.input[2] = u8(node.input[2])
    used = {name for n in g.node for name in n.input}
    keep = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)
    for vi in [*g.value_info, *g.output, *g.input]:
        if vi.type.tensor_type.elem_type == TensorProto.INT8:
            vi.type.tensor_type.elem_type = TensorProto.UINT8
    return out


def count_qdq(model: onnx.ModelProto) -> dict[str, int]:
    ops = [n.op_type for n in model.graph.node]
    return {"QuantizeLinear": ops.count("QuantizeLinear"), "DequantizeLinear": ops.count("DequantizeLinear")}


def finalize_qdq(model: onnx.ModelProto, ir_version: int, name: str) -> onnx.ModelProto:
    """The exporter's IR version (ONNX Runtime rejects newer), a graph name, and the ONNX checker."""
    model.ir_version = ir_version
    model.graph.name = name
    onnx.checker.check_model(model)
    return model


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
