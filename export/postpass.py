"""ONNX post-pass shared by every graph: constant folding, dead-node removal, IR version, full checker.

Also the I/O description the manifest records, and file hashing.
"""

from __future__ import annotations

from typing import Any

import onnx
from onnx import TensorProto

from siamattn.export.errors import ExportError

DTYPE_NAMES = {
    TensorProto.FLOAT: "float32",
    TensorProto.FLOAT16: "float16",
    TensorProto.INT64: "int64",
    TensorProto.INT32: "int32",
    TensorProto.BOOL: "bool",
    TensorProto.UINT8: "uint8",
}


def remove_dead_nodes(model: onnx.ModelProto) -> int:
    """Drop nodes none of whose outputs reach a graph output, and initializers nobody reads.
    Returns the number of nodes removed."""
    g = model.graph
    live = {o.name for o in g.output}
    keep = []
    for node in reversed(g.node):
        if any(o in live for o in node.output):
            keep.append(node)
            live.update(i for i in node.input if i)
            # Subgraph attributes (If/Loop) may read outer values: keep whatever they name.
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    live.update(i for n in attr.g.node for i in n.input)
    removed = len(g.node) - len(keep)
    del g.node[:]
    g.node.extend(reversed(keep))
    inits = [t for t in g.initializer if t.name in live]
    del g.initializer[:]
    g.initializer.extend(inits)
    vis = [v for v in g.value_info if v.name in live]
    del g.value_info[:]
    g.value_info.extend(vis)
    return removed


def constant_arrays(model: onnx.ModelProto) -> dict[str, Any]:
    """The graph's constant tensors by name (initializers and ``Constant`` nodes' values) as numpy arrays."""
    from onnx import numpy_helper

    out = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            out[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return out


# Ops that only relabel a tensor's layout or type: folding them never grows the file.
_LAYOUT_OPS = {"Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten", "Cast", "Identity"}


def fold_weight_layouts(model: onnx.ModelProto) -> int:
    """Replace layout ops whose inputs are all constants with their result (e.g. a weight ``view`` feeding a Conv).

    onnxscript's folder skips inputs above a size limit (8192 elements in 0.7), so a reshaped weight stays a
    computed Conv weight, which TensorRT 8.5 cannot build. These ops preserve size, so any size is folded here.
    Returns how many nodes were folded.
    """
    from onnx import numpy_helper
    from onnx.reference import ReferenceEvaluator

    g = model.graph
    consts = constant_arrays(model)
    outputs = {o.name for o in g.output}
    kept, folded = [], 0
    for node in g.node:
        inputs = [i for i in node.input if i]
        if (node.domain in ("", "ai.onnx") and node.op_type in _LAYOUT_OPS and inputs
                and all(i in consts for i in inputs) and not set(node.output) & outputs):
            single = onnx.helper.make_model(
                onnx.helper.make_graph([node], "fold", [], [onnx.helper.make_empty_tensor_value_info(node.output[0])],
                                       initializer=[numpy_helper.from_array(consts[i], i) for i in set(inputs)]),
                opset_imports=[o for o in model.opset_import if o.domain in ("", "ai.onnx")])
            value = ReferenceEvaluator(single).run(None, {})[0]
            consts[node.output[0]] = value
            g.initializer.append(numpy_helper.from_array(value, node.output[0]))
            folded += 1
            continue
        kept.append(node)
    if folded:
        del g.node[:]
        g.node.extend(kept)
        remove_dead_nodes(model)
    return folded


def optimize(model: onnx.ModelProto) -> onnx.ModelProto:
    """Constant folding, onnxscript's default rewrite rules (BatchNorm into Conv, Cast/Transpose/Reshape pairs),
    common-subexpression elimination, then folding of layout ops on weights of any size and our own dead-node
    sweep (so the guarantees do not depend on the optimizer's defaults).

    Folding runs to completion before any rewrite rule is tried: the raw trace of a shift-and-add xcorr has ~8k
    nodes and onnxscript's own interleaved loop spent ~20 s matching rules on it (~4 s this way, same graph).
    """
    import onnx_ir as ir
    import onnx_ir.passes.common as common
    import onnxscript.optimizer
    import onnxscript.rewriter

    graph = ir.serde.deserialize_model(model)
    common.InlinePass()(graph)
    lift = common.LiftConstantsToInitializersPass(lift_all_constants=True, size_limit=0)
    for _ in range(2):  # a rewrite can expose new constants (and the reverse)
        onnxscript.optimizer.fold_constants(graph, onnx_shape_inference=True)
        onnxscript.optimizer.remove_unused_nodes(graph)
        lift(graph)
        onnxscript.rewriter.rewrite(graph)
    ir.passes.Sequential(
        common.RemoveUnusedNodesPass(), common.RemoveUnusedFunctionsPass(), common.RemoveUnusedOpsetsPass(),
        lift, common.DeduplicateInitializersPass(), common.CommonSubexpressionEliminationPass(),
        common.OutputFixPass(), common.NameFixPass())(graph)
    model = ir.serde.serialize_model(graph)
    fold_weight_layouts(model)
    remove_dead_nodes(model)
    return model


def finalize(model: onnx.ModelProto, ir_version: int, name: str) -> onnx.ModelProto:
    """Set the IR version, re-infer shapes and run the full checker (strict shape inference included)."""
    model.ir_version = ir_version
    model.producer_name = "siamattn-export"
    model.graph.name = name
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise ExportError(f"the {name} graph fails onnx.checker: {first}") from exc
    return model


def _dims(vi: onnx.ValueInfoProto) -> list[int | str]:
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in vi.type.tensor_type.shape.dim]


def describe_io(model: onnx.ModelProto) -> dict[str, list[dict[str, Any]]]:
    """Inputs and outputs as ``[{"name", "shape", "dtype"}]`` in graph order."""

    def one(vi: onnx.ValueInfoProto) -> dict[str, Any]:
        et = vi.type.tensor_type.elem_type
        dtype = DTYPE_NAMES.get(et, TensorProto.DataType.Name(et).lower())
        return {"name": vi.name, "shape": _dims(vi), "dtype": dtype}

    inits = {t.name for t in model.graph.initializer}
    return {"inputs": [one(v) for v in model.graph.input if v.name not in inits],
            "outputs": [one(v) for v in model.graph.output]}


def custom_ops(model: onnx.ModelProto) -> list[str]:
    """``domain::op`` of every node outside the standard ONNX domains (these need a plugin)."""
    return sorted({f"{n.domain}::{n.op_type}" for n in model.graph.node if n.domain not in ("", "ai.onnx")})


def op_counts(model: onnx.ModelProto) -> dict[str, int]:
    counts: dict[str, int] = {}
    for n in model.graph.node:
        counts[n.op_type] = counts.get(n.op_type, 0) + 1
    return dict(sorted(counts.items()))
