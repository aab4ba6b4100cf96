"""Plugin names, versions and namespace, read from ``plugins/include/siamattn_plugin_names.h``: the C++ plugins
compile the same file, so the ONNX nodes the exporter writes and the creators TensorRT finds cannot disagree.
Torch-free (the runtime and the engine builder import it)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

HEADER = Path(__file__).resolve().parent / "include" / "siamattn_plugin_names.h"
_DEFINE = re.compile(r'^\s*#define\s+(SIAMATTN_\w+)\s+"([^"]*)"\s*$', re.M)


def read_header(path: Path = HEADER) -> dict[str, str]:
    """Every ``#define SIAMATTN_X "value"`` of the header."""
    return dict(_DEFINE.findall(path.read_text()))


_D = read_header()


@dataclass(frozen=True)
class PluginId:
    """A plugin as TensorRT's registry knows it."""

    name: str
    version: str
    namespace: str

    def __str__(self) -> str:  # the form the library's info string uses
        return f"{self.name}/{self.version}/{self.namespace}"


NAMESPACE = _D["SIAMATTN_PLUGIN_NAMESPACE"]
ONNX_DOMAIN = _D["SIAMATTN_PLUGIN_ONNX_DOMAIN"]
DEFORM_CONV = PluginId(_D["SIAMATTN_DEFORM_CONV_NAME"], _D["SIAMATTN_DEFORM_CONV_VERSION"], NAMESPACE)
CUSTOM_DEFORM_CONV = PluginId(_D["SIAMATTN_CUSTOM_DEFORM_CONV_NAME"], _D["SIAMATTN_CUSTOM_DEFORM_CONV_VERSION"],
                              NAMESPACE)
DEFORM_ROI_POOL = PluginId(_D["SIAMATTN_DEFORM_ROI_POOL_NAME"], _D["SIAMATTN_DEFORM_ROI_POOL_VERSION"], NAMESPACE)
ALL = (DEFORM_CONV, CUSTOM_DEFORM_CONV, DEFORM_ROI_POOL)  # the order getCreators() lists them in


def info_plugins() -> str:
    """The ``plugins=...`` part of ``siamattn_trt_plugins_info()`` the library built from the header reports."""
    return "plugins=" + ",".join(map(str, ALL))
