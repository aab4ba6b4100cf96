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


def optimize(model: onnx.ModelProto) -> onnx.ModelProto:
    """Constant folding and common-subexpression/dead-code passes of onnxscript, then our own dead-node sweep
    (so the guarantee does not depend on the optimizer's defaults)."""
    import onnxscript.optimizer

    model = onnxscript.optimizer.optimize(model)
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
