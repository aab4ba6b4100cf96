"""PyTorch reference implementations of the deformable ops (ground truth for plugins and export)."""

from siamattn.ops.deform_conv import deform_conv2d
from siamattn.ops.deform_roi_pool import deform_roi_pool
from siamattn.ops.modules import DeformConv2d, DeformRoIPool
from siamattn.ops.xcorr import xcorr_depthwise

__all__ = ["DeformConv2d", "DeformRoIPool", "deform_conv2d", "deform_roi_pool", "xcorr_depthwise"]
