"""Module forms of the deformable ops, each with its offset predictor (zero-initialised, so a fresh
module starts as the plain op: a 3x3 conv, or plain RoI pooling)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from siamattn.ops import dispatch
from siamattn.ops.deform_roi_pool import mode_id


class DeformConv2d(nn.Module):
    """k x k deformable conv whose offsets (and DCNv2 masks when ``modulated``) come from a plain conv on the
    same input (DCNv1 ``DeformConvPack`` style)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 padding: int = 1, dilation: int = 1, groups: int = 1, offset_groups: int = 1,
                 bias: bool = True, modulated: bool = False) -> None:
        super().__init__()
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)
        taps = kernel_size * kernel_size
        self.modulated = modulated
        self.offset_groups = offset_groups
        out = offset_groups * taps * (3 if modulated else 2)
        self.offset = nn.Conv2d(in_channels, out, kernel_size, stride, padding, dilation, bias=True)
        nn.init.zeros_(self.offset.weight)
        nn.init.zeros_(self.offset.bias)

    def forward(self, x: Tensor) -> Tensor:
        o = self.offset(x)
        mask = None
        if self.modulated:
            n_off = 2 * self.offset_groups * self.weight.shape[2] * self.weight.shape[3]
            o, mask = o[:, :n_off], torch.sigmoid(o[:, n_off:])
        return dispatch.deform_conv2d(x, o, self.weight, self.bias, self.stride, self.padding, self.dilation, mask)


class DeformRoIPool(nn.Module):
    """Deformable RoI pooling with mmcv's "pack" offset predictor: plain pool -> FC ReLU FC ReLU FC(zero-init)
    -> offsets [K,2,PH,PW] -> pool again with offsets. ``deformable=False`` gives the plain pool only.
    ``mode`` picks the pooling semantics of both passes: "mmcv" (docs/DESIGN.md §4.2) or "mmdet_v1" (§4.3)."""

    def __init__(self, channels: int, output_size: int, spatial_scale: float, sampling_ratio: int = 2,
                 gamma: float = 0.1, hidden: int = 1024, deformable: bool = True, mode: str = "mmcv") -> None:
        super().__init__()
        mode_id(mode)  # reject an unknown mode at construction, not at the first forward
        if mode == "mmdet_v1" and sampling_ratio < 1:
            raise ValueError(f"DeformRoIPool: mode='mmdet_v1' needs sampling_ratio >= 1, got {sampling_ratio}")
        self.output_size, self.spatial_scale = output_size, spatial_scale
        self.sampling_ratio, self.gamma, self.mode = sampling_ratio, gamma, mode
        self.offset_fc: nn.Sequential | None = None
        if deformable:
            last = nn.Linear(hidden, 2 * output_size * output_size)
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
            self.offset_fc = nn.Sequential(
                nn.Linear(channels * output_size * output_size, hidden), nn.ReLU(inplace=True),
                nn.Linear(hidden, hidden), nn.ReLU(inplace=True), last,
            )

    def extra_repr(self) -> str:
        return (f"output_size={self.output_size}, spatial_scale={self.spatial_scale}, "
                f"sampling_ratio={self.sampling_ratio}, gamma={self.gamma}, mode={self.mode!r}")

    def forward(self, feat: Tensor, rois: Tensor, spatial_scale: float | None = None) -> Tensor:
        """``spatial_scale``: feature px per RoI px for this call (default: the constructor's); the long-term
        mode's lost window pools the same weights on a larger map (docs/DESIGN.md "Long-term search")."""
        s = self.output_size
        scale = self.spatial_scale if spatial_scale is None else spatial_scale
        # ``mode`` is the dispatch's 8th positional argument; every lowering accepts it.
        args = (scale, self.sampling_ratio, self.gamma, self.mode)
        pooled = dispatch.deform_roi_pool(feat, rois, None, (s, s), *args)
        if self.offset_fc is None:
            return pooled
        offset = self.offset_fc(pooled.flatten(1)).view(-1, 2, s, s)
        return dispatch.deform_roi_pool(feat, rois, offset, (s, s), *args)
