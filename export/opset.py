"""Down-convert an exported graph to an older default-domain opset, for ONNX parsers that stop there (TensorRT 8.5
reads opsets up to 17; torch's dynamo exporter writes 18+ and onnx's version converter has no Split 18 -> 17
adapter). Only what changed between 17 and 18 and occurs in our graphs is rewritten; any other node newer than the
target is reported by name, so a graph is never silently mislabelled.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference

from siamattn.export.errors import ExportError
from siamattn.export.postpass import constant_arrays

# Opset 18 moved `axes` of these from an attribute to an optional input.
_REDUCE_AXES_INPUT_18 = {"ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
                         "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"}
# Opset 18 gave Resize these attributes; newer torch exporters write them even at their defaults, which mean
# exactly what Resize-13 does. A non-default value has no opset-17 form.
_RESIZE_ATTRS_18 = {"antialias": 0, "keep_aspect_ratio_policy": b"stretch"}


def _drop_resize_18_attrs(node: onnx.NodeProto, target: int, label: str) -> None:
    kept = []
    for attr in node.attribute:
        if attr.name == "axes":
            raise ExportError(f"[{label}] Resize '{node.name}': 'axes' has no opset {target} form")
        if attr.name in _RESIZE_ATTRS_18:
            value = helper.get_attribute_value(attr)
            if value != _RESIZE_ATTRS_18[attr.name]:
                shown = value.decode() if isinstance(value, bytes) else value
                raise ExportError(f"[{label}] Resize '{node.name}': {attr.name}={shown} has no opset {target} form")
            continue
        kept.append(attr)
    del node.attribute[:]
    node.attribute.extend(kept)


def _shapes(model: onnx.ModelProto) -> dict[str, list[int | None]]:
    inferred = shape_inference.infer_shapes(model, strict_mode=False)
    out: dict[str, list[int | None]] = {}
    for vi in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]:
        dims = vi.type.tensor_type.shape.dim
        out[vi.name] = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    return out


def downgrade_opset(model: onnx.ModelProto, target: int, label: str) -> onnx.ModelProto:
    """A copy of ``model`` whose default-domain opset is ``target`` (>= 13, <= the model's)."""
    current = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if current is None or current <= target:
        return model
    if target < 13:
        raise ExportError(f"[{label}] cannot down-convert to opset {target} (13 or newer only)")
    out = onnx.ModelProto()
    out.CopyFrom(model)
    consts = constant_arrays(out)
    shapes = _shapes(out) if any(n.op_type == "Split" for n in out.graph.node) else {}
    new_inits = []
    for node in out.graph.node:
        if node.domain not in ("", "ai.onnx"):
            continue
        if node.op_type == "Split" and any(a.name == "num_outputs" for a in node.attribute):
            num = next(a.i for a in node.attribute if a.name == "num_outputs")
            axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
            shape = shapes.get(node.input[0])
            if not shape or shape[axis] is None:
                raise ExportError(f"[{label}] Split '{node.name}': the size of axis {axis} is unknown, so it cannot "
                                  f"be written for opset {target}")
            size = shape[axis]
            chunk = -(-size // num)
            sizes = [min(chunk, size - i * chunk) for i in range(num)]
            name = f"{node.name or node.output[0]}_split_sizes"
            new_inits.append(numpy_helper.from_array(np.array(sizes, dtype=np.int64), name))
            kept = [a for a in node.attribute if a.name != "num_outputs"]
            del node.attribute[:]
            node.attribute.extend(kept)
            del node.input[1:]
            node.input.append(name)
        if node.op_type == "Resize" and target < 18:
            _drop_resize_18_attrs(node, target, label)
        if node.op_type in _REDUCE_AXES_INPUT_18:
            noop = next((a.i for a in node.attribute if a.name == "noop_with_empty_axes"), 0)
            if noop:
                raise ExportError(f"[{label}] {node.op_type} '{node.name}': noop_with_empty_axes=1 has no opset "
                                  f"{target} form")
            kept = [a for a in node.attribute if a.name != "noop_with_empty_axes"]  # 0: reduce all, as before 18
            del node.attribute[:]
            node.attribute.extend(kept)
        if node.op_type in _REDUCE_AXES_INPUT_18 and len(node.input) > 1 and node.input[1]:
            if node.input[1] not in consts:
                raise ExportError(f"[{label}] {node.op_type} '{node.name}' has computed axes; opset {target} needs "
                                  "them constant")
            axes = [int(v) for v in np.asarray(consts[node.input[1]]).reshape(-1)]
            del node.input[1:]
            node.attribute.append(helper.make_attribute("axes", axes))
    out.graph.initializer.extend(new_inits)
    for imp in out.opset_import:
        if imp.domain in ("", "ai.onnx"):
            imp.version = target
    # Anything else introduced after `target` is not rewritten here: name it instead of shipping a wrong graph.
    newer: list[str] = []
    for node in out.graph.node:
        if node.domain not in ("", "ai.onnx"):
            continue
        try:
            onnx.defs.get_schema(node.op_type, target)
        except onnx.defs.SchemaError:
            newer.append(node.op_type)
    if newer:
        raise ExportError(f"[{label}] ops not in opset {target}: {', '.join(sorted(set(newer)))}")
    try:  # attributes or inputs that changed meaning after `target` show up here
        onnx.checker.check_model(out, full_check=True)
    except onnx.checker.ValidationError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ExportError(f"[{label}] the graph is not valid at opset {target}: {first}") from exc
    return out
