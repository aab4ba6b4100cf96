"""The one place the model calls the deformable ops through.

Training and the reference path use the PyTorch implementations. The export stage temporarily swaps in
lowerings (standard-ONNX decompositions or custom plugin nodes) with :func:`use`, so the model code never
knows how it will be deployed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from siamattn.ops.deform_conv import deform_conv2d as _ref_deform_conv2d
from siamattn.ops.deform_roi_pool import deform_roi_pool as _ref_deform_roi_pool
from siamattn.ops.xcorr import xcorr_depthwise as _ref_xcorr_depthwise

_impl: dict[str, Callable[..., Any]] = {
    "deform_conv2d": _ref_deform_conv2d,
    "deform_roi_pool": _ref_deform_roi_pool,
    "xcorr_depthwise": _ref_xcorr_depthwise,
}


def deform_conv2d(*args: Any) -> Any:
    return _impl["deform_conv2d"](*args)


def deform_roi_pool(*args: Any) -> Any:
    return _impl["deform_roi_pool"](*args)


def xcorr_depthwise(*args: Any) -> Any:
    return _impl["xcorr_depthwise"](*args)


@contextlib.contextmanager
def use(**impls: Callable[..., Any]) -> Iterator[None]:
    """Temporarily replace op implementations, e.g. ``with use(deform_roi_pool=my_lowering): ...``."""
    unknown = set(impls) - set(_impl)
    if unknown:
        raise KeyError(f"unknown ops {sorted(unknown)}; known: {sorted(_impl)}")
    saved = {k: _impl[k] for k in impls}
    _impl.update(impls)
    try:
        yield
    finally:
        _impl.update(saved)
