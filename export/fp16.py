"""FP32 -> FP16 graph conversion with FP32 islands, for strongly typed TensorRT (-RTX) builds.

TensorRT-RTX has no FP16 builder flag, and strongly typed networks run every layer in the type the graph
gives it, so precision is decided here, per node. Everything becomes FP16 except the islands below, which
keep FP32 and get Cast nodes at their borders. Graph inputs and outputs stay FP32 (see graphs.py).

Islands (found structurally, so they apply to whatever the exporter emits):

* ``channel_attention``: the Gram product X X^T and its softmax. Each entry sums H*W products (961 on the
  search map); trained features push it past FP16's 65504, and even below that FP16's spacing at ~1000 is
  0.5, which the softmax turns into a relative error of e^0.5 on the weights.
* ``spatial_attention``: Q^T K and its softmax over N positions (same reasoning, smaller sums).
* ``roi``: RoI coordinate math, GridSample, the validity mask and the bin averaging of the portable RoI
  pooling, and the DeformRoIPool plugin node (whose rois input stays FP32 in any case): FP16 has 1/8 px
  steps at 128..256, coarser than the sub-pixel sample spacing.
* ``box_deltas``: the last layer of the box head (deltas are small and scaled by stds 0.1/0.2 downstream).
* ``large_weights``: a Conv/Gemm/MatMul whose constant weights exceed 16 or bias exceeds 64 in magnitude, and
  the linear layer that produces its input. Batch-norm folding of near-constant channels (tiny running
  variance) gives such layers (weights ~100, biases ~2000 in MobileNetV2's first blocks) whose terms cancel to
  outputs of a few units; FP16's spacing is 2 at 2048, so rounding their parameters or their input loses the
  output. On the demo model's epoch-80 weights it cut the FP16 search graph's error on real frames from 1.6e-2
  to 5.5e-3 of range with three layers kept FP32 (docs/PERFORMANCE.md, "FP16 on a trained model"). Depthwise
  convs go FP32 from weights over 4 already: each output sums only 9 products, so nothing averages their
  rounding out, and they are memory-bound and cheap in any precision. On the epoch-120 weights one of them (a
  block-3 depthwise conv, |w| 5.5) carried the FP16 search graph's worst error on a held-out clip (vtest.avi,
  loc 2.3e-2 -> 6.8e-3 of range with it FP32).
* ``wide_dot_products``: a Gemm/MatMul with a constant weight whose dot products have more than 16384 terms:
  the first layer of the authors' deformable mask pooling offset MLP reads 256 x 16 x 16 = 65536 pooled
  values; FP16 inputs and weights (11-bit mantissas) over 65536 terms give relative errors far above the
  0.1 px offsets it predicts, and the layer costs little next to the convolutions.

``docs/PERFORMANCE.md`` records which of these measurably matter (python -m siamattn.export.measure fp16).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from siamattn.export_choices import FP32_ISLANDS
from siamattn.plugins.names import DEFORM_ROI_POOL

ISLANDS = tuple(FP32_ISLANDS)  # names and meanings: siamattn/export_choices.py

FLOAT_TYPES = (TensorProto.FLOAT, TensorProto.FLOAT16)
# Ops whose inputs are read regardless of element type: never insert a Cast in front of them.
_TYPE_AGNOSTIC_INPUTS = {"Shape", "Size", "Cast", "CastLike"}
# (op, input index) that must stay FP32 whatever the node's precision.
_PINNED_FP32 = {("Resize", 1), ("Resize", 2), (DEFORM_ROI_POOL.name, 1)}
# Shape/elementwise ops that may sit between a MatMul and its Softmax, or inside coordinate math (the
# authors' channel attention, softmax_row(rowmax(E) - E), is matched separately in _attention_islands).
_PASS_THROUGH = {"Reshape", "Transpose", "Squeeze", "Unsqueeze", "Identity", "Cast", "Mul", "Div", "Flatten", "Neg"}
_COORD_OPS = _PASS_THROUGH | {
    "Add", "Sub", "Clip", "Min", "Max", "Floor", "Ceil", "Neg", "Less", "LessOrEqual", "Greater",
    "GreaterOrEqual", "Equal", "And", "Or", "Not", "Where", "Expand", "Concat", "Slice", "Gather", "Split",
    "Range", "ConstantOfShape", "Constant", "GridSample", "AveragePool", "ReduceMean", "ReduceSum",
}
_BIN_REDUCTIONS = {"AveragePool", "ReduceMean", "ReduceSum"}  # where the forward walk from a GridSample ends
_ROI_INPUT = "rois"
_DELTA_OUTPUTS = ("box_deltas",)
_LINEAR_OPS = {"Conv", "ConvTranspose", "Gemm", "MatMul"}
_MAX_FP16_WEIGHT, _MAX_FP16_BIAS = 16.0, 64.0
_MAX_FP16_DEPTHWISE_WEIGHT = 4.0  # a depthwise conv's 9-term sums do not average rounding out (docstring)
_MAX_FP16_DOT = 16384  # longest dot product a constant-weight Gemm/MatMul may compute in FP16


@dataclass
class Fp16Report:
    islands: dict[str, list[str]] = field(default_factory=dict)  # island -> node names kept FP32
    casts: int = 0

    def summary(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.islands.items()}


class _Graph:
    def __init__(self, model: onnx.ModelProto) -> None:
        self.g = model.graph
        self.nodes = list(self.g.node)
        self.producer: dict[str, int] = {}
        self.consumers: dict[str, list[int]] = defaultdict(list)
        for i, n in enumerate(self.nodes):
            for o in n.output:
                self.producer[o] = i
            for name in n.input:
                if name:
                    self.consumers[name].append(i)
        self.inits = {t.name for t in self.g.initializer}

    def dynamic_inputs(self, i: int) -> list[str]:
        return [x for x in self.nodes[i].input if x and x not in self.inits]

    def descendants_of_input(self, name: str) -> set[int]:
        seen: set[int] = set()
        stack = list(self.consumers.get(name, []))
        while stack:
            i = stack.pop()
            if i in seen:
                continue
            seen.add(i)
            for o in self.nodes[i].output:
                stack.extend(self.consumers.get(o, []))
        return seen

    def source(self, name: str) -> str:
        """Follow shape-only ops back to the tensor they view (Reshape/Transpose/... of X is still X)."""
        while name in self.producer:
            n = self.nodes[self.producer[name]]
            if n.op_type not in ("Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Cast"):
                break
            name = n.input[0]
        return name


def _attention_islands(gr: _Graph) -> tuple[set[int], set[int]]:
    channel: set[int] = set()
    spatial: set[int] = set()
    for i, n in enumerate(gr.nodes):
        if n.op_type != "Softmax":
            continue
        chain = [i]
        cur = n.input[0]
        matmul = None
        while cur in gr.producer:
            j = gr.producer[cur]
            p = gr.nodes[j]
            if p.op_type in ("MatMul", "Gemm"):
                matmul = j
                break
            dyn = gr.dynamic_inputs(j)
            if p.op_type == "Sub" and len(dyn) == 2 and gr.producer.get(dyn[0]) is not None:
                # the authors' channel softmax argument rowmax(E) - E (model.attention.channel_softmax: negated)
                r = gr.producer[dyn[0]]
                if gr.nodes[r].op_type == "ReduceMax" and gr.nodes[r].input[0] == dyn[1]:
                    chain += [j, r]
                    cur = dyn[1]
                    continue
            if p.op_type not in _PASS_THROUGH or len(dyn) != 1:
                break
            chain.append(j)
            cur = dyn[0]
        if matmul is None:
            continue
        chain.append(matmul)
        a, b = gr.nodes[matmul].input[:2]
        (channel if gr.source(a) == gr.source(b) else spatial).update(chain)
    return channel, spatial


def _roi_island(gr: _Graph) -> set[int]:
    island = {i for i, n in enumerate(gr.nodes) if n.op_type == DEFORM_ROI_POOL.name}
    downstream = gr.descendants_of_input(_ROI_INPUT)
    seeds = [i for i in downstream if gr.nodes[i].op_type == "GridSample"]
    # Backwards from each GridSample through coordinate math that depends on the RoIs.
    stack = list(seeds)
    while stack:
        i = stack.pop()
        if i in island:
            continue
        island.add(i)
        for name in gr.nodes[i].input:
            j = gr.producer.get(name)
            if j is not None and j in downstream and gr.nodes[j].op_type in _COORD_OPS:
                stack.append(j)
    # Forwards from each GridSample through the masking/reshaping up to the bin average.
    for s in seeds:
        stack = [c for o in gr.nodes[s].output for c in gr.consumers.get(o, [])]
        while stack:
            i = stack.pop()
            op = gr.nodes[i].op_type
            if i in island or op not in _COORD_OPS:
                continue
            island.add(i)
            if op in _BIN_REDUCTIONS:
                continue
            stack.extend(c for o in gr.nodes[i].output for c in gr.consumers.get(o, []))
    # Backwards again from everything found so far: the validity mask that multiplies the samples is coordinate
    # math too (an FP16 comparison would move samples across the border; mode mmdet_v1 also counts them).
    stack = list(island)
    seen: set[int] = set()
    while stack:
        i = stack.pop()
        if i in seen:
            continue
        seen.add(i)
        island.add(i)
        for name in gr.nodes[i].input:
            j = gr.producer.get(name)
            if j is not None and j in downstream and gr.nodes[j].op_type in _COORD_OPS:
                stack.append(j)
    return island


def _delta_island(gr: _Graph) -> set[int]:
    island: set[int] = set()
    for out in _DELTA_OUTPUTS:
        cur = out
        while cur in gr.producer:
            j = gr.producer[cur]
            island.add(j)
            n = gr.nodes[j]
            if n.op_type in ("Gemm", "MatMul"):
                break
            dyn = gr.dynamic_inputs(j)
            if len(dyn) != 1:
                break
            cur = dyn[0]
    return island


def _depthwise(n: onnx.NodeProto, constants: dict[str, onnx.TensorProto]) -> bool:
    """A Conv with one input channel per group (weight [C, 1, kh, kw], group C > 1)."""
    w = constants.get(n.input[1])
    group = next((a.i for a in n.attribute if a.name == "group"), 1)
    return n.op_type == "Conv" and w is not None and len(w.dims) == 4 and w.dims[1] == 1 and group > 1


def _large_weight_island(gr: _Graph) -> set[int]:
    constants = {t.name: t for t in gr.g.initializer}

    def max_abs(name: str) -> float:
        t = constants.get(name)
        return float(np.abs(numpy_helper.to_array(t)).max()) if t is not None and t.dims else 0.0

    island: set[int] = set()
    for i, n in enumerate(gr.nodes):
        if n.op_type not in _LINEAR_OPS or len(n.input) < 2:
            continue
        weight = max_abs(n.input[1])
        bias = max_abs(n.input[2]) if len(n.input) > 2 and n.op_type != "MatMul" else 0.0
        limit = _MAX_FP16_DEPTHWISE_WEIGHT if _depthwise(n, constants) else _MAX_FP16_WEIGHT
        if weight <= limit and bias <= _MAX_FP16_BIAS:
            continue
        island.add(i)
        # Its input at full precision too: a linear producer stays FP32 (a clipping activation in between
        # bounds the values to where FP16's rounding is small next to what the weights make of it).
        j = gr.producer.get(n.input[0])
        if j is not None and gr.nodes[j].op_type in _LINEAR_OPS:
            island.add(j)
    return island


def _wide_dot_island(gr: _Graph) -> set[int]:
    """Gemm/MatMul nodes with a constant weight whose reduction length exceeds _MAX_FP16_DOT."""
    dims = {t.name: list(t.dims) for t in gr.g.initializer}
    island: set[int] = set()
    for i, n in enumerate(gr.nodes):
        if n.op_type not in ("Gemm", "MatMul") or len(n.input) < 2 or len(dims.get(n.input[1], [])) < 2:
            continue
        w = dims[n.input[1]]
        if n.op_type == "Gemm":
            trans_b = next((a.i for a in n.attribute if a.name == "transB"), 0)
            k = w[1] if trans_b else w[0]
        else:
            k = w[-2]
        if k > _MAX_FP16_DOT:
            island.add(i)
    return island


def find_islands(model: onnx.ModelProto, wanted: tuple[str, ...] = ISLANDS) -> dict[str, set[int]]:
    """Node indices of each requested FP32 island."""
    unknown = set(wanted) - set(ISLANDS)
    if unknown:
        raise ValueError(f"unknown FP32 islands {sorted(unknown)}; known: {', '.join(ISLANDS)}")
    gr = _Graph(model)
    channel, spatial = _attention_islands(gr)
    found = {"channel_attention": channel, "spatial_attention": spatial, "roi": _roi_island(gr),
             "box_deltas": _delta_island(gr), "large_weights": _large_weight_island(gr),
             "wide_dot_products": _wide_dot_island(gr)}
    return {k: found[k] for k in wanted}


def _value_types(model: onnx.ModelProto) -> dict[str, int]:
    inferred = onnx.shape_inference.infer_shapes(model)
    g = inferred.graph
    types = {v.name: v.type.tensor_type.elem_type for v in [*g.input, *g.output, *g.value_info]}
    types.update({t.name: t.data_type for t in g.initializer})
    for n in g.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    types[n.output[0]] = a.t.data_type
    return types


def _type_constant_of_shape(node: onnx.NodeProto) -> None:
    """Spell out ConstantOfShape's default value (a float32 zero) so the conversion below retypes it: the
    exporter pads the batch graphs' target axis with it, and a float32 pad in an FP16 Concat fails the checker."""
    if not any(a.name == "value" for a in node.attribute):
        node.attribute.append(helper.make_attribute("value", numpy_helper.from_array(np.zeros(1, np.float32))))


def convert_to_fp16(model: onnx.ModelProto, keep_fp32: tuple[str, ...] = ISLANDS) -> tuple[onnx.ModelProto, Fp16Report]:
    """Return an FP16 copy of an FP32 graph with the named islands kept FP32, and what was kept."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    g = model.graph
    types = _value_types(model)
    islands = find_islands(model, keep_fp32)
    fp32_nodes = set().union(*islands.values()) if islands else set()
    report = Fp16Report(islands={k: [model.graph.node[i].name for i in sorted(v)] for k, v in islands.items()})

    inits = {t.name: t for t in g.initializer}
    new_inits: list[onnx.TensorProto] = []
    converted_inits: dict[str, str] = {}
    casts: dict[tuple[str, int], str] = {}
    current: dict[str, int] = {}  # element type of each float value after conversion
    for v in g.input:
        current[v.name] = v.type.tensor_type.elem_type
    new_nodes: list[onnx.NodeProto] = []

    def as_type(name: str, want: int) -> str:
        have = current.get(name, types.get(name))
        if have not in FLOAT_TYPES or have == want:
            return name
        if name in inits:  # a converted copy of the weight instead of a runtime Cast
            key = f"{name}__fp16" if want == TensorProto.FLOAT16 else f"{name}__fp32"
            if key not in converted_inits:
                arr = numpy_helper.to_array(inits[name])
                dtype = np.float16 if want == TensorProto.FLOAT16 else np.float32
                new_inits.append(numpy_helper.from_array(arr.astype(dtype), key))
                converted_inits[key] = key
                current[key] = want
            return key
        if (name, want) not in casts:
            out = f"{name}__to_{'fp16' if want == TensorProto.FLOAT16 else 'fp32'}"
            new_nodes.append(helper.make_node("Cast", [name], [out], to=want, name=f"cast_{out}"))
            casts[(name, want)] = out
            current[out] = want
            report.casts += 1
        return casts[(name, want)]

    for i, node in enumerate(list(g.node)):
        want = TensorProto.FLOAT if i in fp32_nodes else TensorProto.FLOAT16
        if node.op_type not in _TYPE_AGNOSTIC_INPUTS:
            for k, name in enumerate(node.input):
                if not name:
                    continue
                target = TensorProto.FLOAT if (node.op_type, k) in _PINNED_FP32 else want
                node.input[k] = as_type(name, target)
        _retype_node(node, want)
        for o in node.output:
            if types.get(o) in FLOAT_TYPES:
                current[o] = want
        new_nodes.append(node)

    output_casts = _fp32_outputs(new_nodes, {o.name for o in g.output}, current)
    new_nodes += output_casts
    report.casts += len(output_casts)
    _replace_graph(g, new_nodes, new_inits, current)
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    return model, report


def _retype_node(node: onnx.NodeProto, want: int) -> None:
    """A node's own float types (Cast targets, constant values) -> ``want``."""
    if node.op_type == "Cast":
        to = next(a for a in node.attribute if a.name == "to")
        if to.i in FLOAT_TYPES:
            to.i = want
    if node.op_type == "ConstantOfShape":
        _type_constant_of_shape(node)
    if node.op_type in ("Constant", "ConstantOfShape"):
        for a in node.attribute:
            if a.name == "value" and a.t.data_type in FLOAT_TYPES and a.t.data_type != want:
                arr = numpy_helper.to_array(a.t).astype(np.float16 if want == TensorProto.FLOAT16 else np.float32)
                a.t.CopyFrom(numpy_helper.from_array(arr, a.t.name))


def _fp32_outputs(nodes: list[onnx.NodeProto], out_names: set[str], current: dict[str, int]) -> list[onnx.NodeProto]:
    """Graph outputs stay FP32: the producer writes an internal FP16 value, a Cast (returned) writes the
    output name."""
    output_casts = []
    for node in nodes:
        for k, o in enumerate(node.output):
            if o in out_names and current.get(o) == TensorProto.FLOAT16:
                internal = f"{o}__fp16"
                node.output[k] = internal
                current[internal], current[o] = TensorProto.FLOAT16, TensorProto.FLOAT
                for other in nodes:
                    for j, name in enumerate(other.input):
                        if name == o:
                            other.input[j] = internal
                output_casts.append(helper.make_node("Cast", [internal], [o], to=TensorProto.FLOAT, name=f"cast_{o}"))
    return output_casts


def _replace_graph(g: onnx.GraphProto, new_nodes: list[onnx.NodeProto], new_inits: list[onnx.TensorProto],
                   current: dict[str, int]) -> None:
    """The converted nodes and weights into ``g``, unused weights dropped, value types made redoable."""
    del g.node[:]
    g.node.extend(new_nodes)
    g.initializer.extend(new_inits)
    used = {x for n in g.node for x in n.input}
    kept = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(kept)
    # Types of intermediate values changed: keep only what inference cannot redo (custom-op outputs).
    custom = {o for n in g.node if n.domain not in ("", "ai.onnx") for o in n.output}
    vis = [v for v in g.value_info if v.name in custom]
    for v in vis:
        if v.type.tensor_type.elem_type in FLOAT_TYPES and v.name in current:
            v.type.tensor_type.elem_type = current[v.name]
    del g.value_info[:]
    g.value_info.extend(vis)
