"""Every choice ``siamattn export`` offers, with its values, default and help: the one table that the CLI
(argparse choices and help), the config validation (``export.ops`` / ``export.precision``), the lowerings and
the engine builder read. Torch-free, so the config and the torch-free runtime can import it.

Add a value here first; the code that implements it (a lowering in export/lowering.py, a flavour in
siamattn/tensorrt_env.py) is checked against this table by the tests.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ExportChoice:
    """One option: ``values`` maps each allowed value to what it means (shown in ``--help``)."""

    option: str  # the CLI flag
    config_key: str | None  # the config field it overrides, if any
    values: dict[str, str]
    default: str | None  # None: taken from the config (config_key) or measured
    summary: str

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.values)

    def help(self) -> str:
        """argparse help: the summary, then 'value: meaning' for each value, then the default."""
        parts = "; ".join(f"{k}: {v}" for k, v in self.values.items())
        default = f" (default: {self.default})" if self.default is not None else ""
        return f"{self.summary}. {parts}{default}"

    def check(self, value: str) -> str | None:
        """None when ``value`` is allowed, else the message part "must be one of ..."."""
        if value in self.values:
            return None
        quoted = [repr(v) for v in self.values]
        allowed = " or ".join(quoted) if len(quoted) == 2 else "one of " + ", ".join(quoted)
        return f"must be {allowed} (got {value!r})"


OPS = ExportChoice(
    "--ops", "export.ops",
    {"portable": "standard ONNX only (runs in ONNX Runtime and every TensorRT)",
     "plugin": "DeformRoIPool as our TensorRT plugin node (needs the siamattn plugin library)"},
    None, "how the deformable RoI pooling is exported (default: config export.ops)")

PRECISION = ExportChoice(
    "--precision", "export.precision",
    {"fp16": "FP16 graphs with FP32 islands (GPUs)", "fp32": "FP32 graphs (CPU, reference)"},
    None, "graph precision (default: config export.precision)")

ENGINE = ExportChoice(
    "--engine", None,
    {"auto": "whichever TensorRT is installed, skipping (with a note) a graph whose engine cannot be built",
     "tensorrt": "full TensorRT (JetPack, data-centre GPUs), every engine must build",
     "tensorrt-rtx": "TensorRT-RTX (builds ahead of time, also without a GPU), every engine must build",
     "none": "ONNX only"},
    "auto", "TensorRT engine backend")

BUILD_ENGINE = ExportChoice(
    "--engine", None,
    {"auto": "whichever TensorRT is installed (full TensorRT first)",
     "tensorrt": "full TensorRT (JetPack, data-centre GPUs)",
     "tensorrt-rtx": "TensorRT-RTX (builds ahead of time, also without a GPU)"},
    "auto", "TensorRT flavour to build with (every graph's engine must build, or the command fails)")

XCORR = ExportChoice(
    "--xcorr", None,
    {"conv": "grouped Conv whose weights are the template features",
     "shift_add": "sum of shifted windows times kernel taps (Slice/Mul/Add only)",
     "unfold_matmul": "im2col Gather and a batched MatMul"},
    "conv", "lowering of the depth-wise cross-correlation (the default measured fastest: docs/PERFORMANCE.md)")

DEFORM_CONV = ExportChoice(
    "--deform-conv", None,
    {"onnx": "standard DeformConv-19 (TensorRT-RTX maps it to our DeformConv plugin)",
     "gridsample": "decomposed into GridSample + Conv, builds without any plugin",
     "plugin": "siamattn::SiamAttnDeformConv, our plugin under full TensorRT too"},
    "onnx", "lowering of the deformable convolution")

# FP32 islands kept in FP16 graphs (export/fp16.py finds each by its pattern).
FP32_ISLANDS: dict[str, str] = {
    "channel_attention": "the channel attention's Gram product and softmax",
    "spatial_attention": "the spatial attention's Q^T K and softmax",
    "roi": "RoI coordinate math, sampling and bin averaging (and the DeformRoIPool plugin node)",
    "box_deltas": "the last layer of the box head",
    "large_weights": "layers with constant weights beyond 16 or biases beyond 64, and their input layer",
    "wide_dot_products": "fully connected layers summing more than 16384 products (the mask offset MLP's first)",
}

ALL: tuple[ExportChoice, ...] = (OPS, PRECISION, ENGINE, XCORR, DEFORM_CONV)


def by_config_key(key: str) -> ExportChoice:
    for choice in ALL:
        if choice.config_key == key:
            return choice
    raise KeyError(key)
