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
    {"fp16": "FP16 graphs with FP32 islands (GPUs)", "fp32": "FP32 graphs (CPU, reference)",
     "int8": "INT8 Q/DQ graphs calibrated on real frames, float layers chosen by measured sensitivity "
             "(--calib-*; docs/EXPORT.md)"},
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

TRT_VERSION = ExportChoice(
    "--trt-version", None,
    {"8.5": "TensorRT 8.5 (JetPack 5.1 on Xavier): opset 17, our DeformConv plugin node, an xcorr without "
            "dynamic-weight Conv, FP16 by the builder flag with the FP32 islands as layer precision constraints",
     "10": "TensorRT 10.x (JetPack 6.1/6.2, desktop) and TensorRT-RTX: opset 19, strongly typed FP16 graphs",
     "11": "TensorRT 11.x (JetPack 7, desktop): opset 19, strongly typed FP16 graphs (11 has no FP16 flag)"},
    None, "TensorRT the graphs and engines are for (default: the installed TensorRT's major version, else 10)")


@dataclass(frozen=True)
class TrtProfile:
    """What one TensorRT generation takes: the export follows it, the manifest records it, the runtime checks it."""

    name: str
    opset: int  # newest default-domain opset its ONNX parser reads
    strongly_typed: bool  # FP16 from the graph's types; else FP32 graphs + the FP16 builder flag + FP32 layers
    deform_conv: tuple[str, ...]  # --deform-conv values it can build, the default first
    xcorr: tuple[str, ...]  # --xcorr values it can build, the default first
    plugin_interface: str  # the plugin glue of libsiamattn_trt_plugins.so built against its headers
    versions: tuple[int, int]  # TensorRT majors [first, last] an engine of this profile can come from


TRT_PROFILES: dict[str, TrtProfile] = {
    # 8.5's parser stops at opset 17 (no DeformConv-19) and builds no Conv whose weights are a tensor (8.6 added it).
    "8.5": TrtProfile("8.5", 17, False, ("plugin", "gridsample"), ("shift_add", "unfold_matmul"),
                      "IPluginV2DynamicExt", (8, 9)),
    "10": TrtProfile("10", 19, True, ("onnx", "gridsample", "plugin"), ("conv", "shift_add", "unfold_matmul"),
                     "IPluginV3", (10, 10)),
    "11": TrtProfile("11", 19, True, ("onnx", "gridsample", "plugin"), ("conv", "shift_add", "unfold_matmul"),
                     "IPluginV3", (11, 99)),
}
DEFAULT_TRT_PROFILE = "10"


def trt_profile(name: str | None) -> TrtProfile:
    """The profile ``name`` (``--trt-version``, manifest ``export.trt_profile.name``); None -> the default."""
    return TRT_PROFILES[name or DEFAULT_TRT_PROFILE]


def trt_profile_for(version: str | None) -> str:
    """The profile of an installed TensorRT version ("8.5.2.2" -> "8.5", "10.3.0" -> "10"); None -> the default.
    TensorRT-RTX (1.x) builds what the 10 profile describes."""
    if not version:
        return DEFAULT_TRT_PROFILE
    try:
        major = int(version.split(".")[0])
    except ValueError:
        return DEFAULT_TRT_PROFILE
    if major < 8:
        return DEFAULT_TRT_PROFILE  # TensorRT-RTX 1.x
    for name, profile in TRT_PROFILES.items():
        if profile.versions[0] <= major <= profile.versions[1]:
            return name
    return DEFAULT_TRT_PROFILE


def profile_mismatch(profile: str | None, flavour: str, version: str) -> str | None:
    """Why engines/graphs of ``profile`` do not fit the running ``flavour`` ``version``; None when they do."""
    if not profile or profile not in TRT_PROFILES:
        return None
    want = TRT_PROFILES[profile]
    here = trt_profile_for(version) if flavour != "tensorrt-rtx" else DEFAULT_TRT_PROFILE
    if here == want.name:
        return None
    return (f"the export is for TensorRT profile {want.name} ({want.plugin_interface} plugins, opset {want.opset}, "
            f"{'strongly typed' if want.strongly_typed else 'FP16 builder flag'}) but this machine runs {flavour} "
            f"{version} (profile {here}): re-export with --trt-version {here}")


def deform_conv_runs(deform_conv: str, flavour: str | None, profile: str) -> str:
    """Which DeformConv implementation an engine of this export ends up running."""
    if deform_conv == "gridsample":
        return "none: decomposed into GridSample + Conv (no plugin)"
    interface = TRT_PROFILES[profile].plugin_interface
    if deform_conv == "plugin":
        return f"ours: siamattn SiamAttnDeformConv plugin ({interface} glue, FP32 sampling coordinates)"
    if flavour == "tensorrt-rtx":
        return "ours: siamattn DeformConv plugin (TensorRT-RTX's parser falls back to it for DeformConv-19)"
    return ("NVIDIA's: full TensorRT >= 10.1 imports DeformConv-19 with its own plugin (FP16 sampling coordinates, "
            "symmetric pads only); --deform-conv plugin runs ours")


# FP32 islands kept in FP16 graphs (export/fp16.py finds each by its pattern).
FP32_ISLANDS: dict[str, str] = {
    "channel_attention": "the channel attention's Gram product and softmax",
    "spatial_attention": "the spatial attention's Q^T K and softmax",
    "roi": "RoI coordinate math, sampling and bin averaging (and the DeformRoIPool plugin node)",
    "box_deltas": "the last layer of the box head",
    "large_weights": "layers with constant weights beyond 16 or biases beyond 64, and their input layer",
    "wide_dot_products": "fully connected layers summing more than 16384 products (the mask offset MLP's first)",
}

ALL: tuple[ExportChoice, ...] = (OPS, PRECISION, ENGINE, XCORR, DEFORM_CONV, TRT_VERSION)


def by_config_key(key: str) -> ExportChoice:
    for choice in ALL:
        if choice.config_key == key:
            return choice
    raise KeyError(key)
