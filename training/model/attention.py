"""Deformable Siamese Attention (DSA), one module per feature level, shared by both branches.

For search features X and template features Z (C channels, reshaped to C x N):

* spatial self-attention  S_s(X) = alpha * V A + X,  A = softmax over columns of Q^T K  (N x N)
  (evaluated as (A^T V^T)^T with A^T = softmax_row(K^T Q): the softmax on the last axis)
* channel self-attention  S_c(X) = beta * softmax_row(X X^T) X + X                  (C x C)
* self-attention          S(X) = S_s(X) + S_c(X)
* cross-attention         C(X) = gamma * A_z X + X with A_z = softmax_row(Z Z^T) from the other branch
* attentional features    3x3 deformable conv of S(X) + C(X)        (and symmetrically for Z with A_x)

Switches for the authors' code (model.attention): ``channel_softmax: negated`` uses softmax_row(-X X^T)
for every channel affinity; ``shared_channel_scalar`` replaces beta and gamma by one ``gamma_c`` per level;
``deform_bias: false`` drops the bias of the 3x3 output conv. Their spatial attention (row softmax of
q_i.k_j, output_i = sum_j a_ij v_j) is ours with the query and key convs swapped, so it needs no switch.

Deployment split: everything about Z that does not depend on X (its "fixed part" S(Z) + Z and A_z) is
computed once per video by :meth:`template_part`; :meth:`search_part` finishes both branches per frame.
:meth:`forward` computes the same thing directly for training, written independently so tests can check
the split against it.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from siamattn.config import AttentionConfig
from siamattn.ops import DeformConv2d


def channel_affinity(f: Tensor, negated: bool = False) -> Tensor:
    """softmax_row(F F^T) (or softmax_row(-F F^T) when ``negated``) for F [B,C,H,W] -> [B,C,C]. Kept in
    FP32: the Gram entries sum N products and overflow or saturate in FP16."""
    flat = f.flatten(2).float()
    gram = torch.bmm(flat, flat.transpose(1, 2))
    if negated:
        # The authors' form softmax(rowmax(E) - E), not the equal softmax(-E): the Gram entries reach 1e4 and
        # more, so rounding rowmax(E) - E to FP32 moves the exponents by up to 1e-3, which moved the
        # attention by 2e-6 of its range and, through a chaotic random-weight tracker, their boxes
        # (docs/MODELS.md, "Checking an import against the authors' code").
        gram = gram.amax(dim=-1, keepdim=True) - gram
    return torch.softmax(gram, dim=-1).to(f.dtype)


def apply_affinity(a: Tensor, f: Tensor) -> Tensor:
    """A F for A [B,C,C] and F [B,C,H,W] -> [B,C,H,W]."""
    return torch.bmm(a, f.flatten(2)).view_as(f)


class DSA(nn.Module):
    def __init__(self, channels: int, cfg: AttentionConfig) -> None:
        super().__init__()
        self.use_self, self.use_cross = cfg.self_attention, cfg.cross_attention
        self.negated = cfg.channel_softmax == "negated"
        self.shared = cfg.shared_channel_scalar
        if self.use_self:
            reduced = max(channels // cfg.reduction, 1)
            self.query = nn.Conv2d(channels, reduced, 1)
            self.key = nn.Conv2d(channels, reduced, 1)
            self.value = nn.Conv2d(channels, channels, 1)
            self.alpha = nn.Parameter(torch.zeros(1))
            if not self.shared:
                self.beta = nn.Parameter(torch.zeros(1))
        if self.use_cross and not self.shared:
            self.gamma = nn.Parameter(torch.zeros(1))
        if self.shared and (self.use_self or self.use_cross):
            self.gamma_c = nn.Parameter(torch.zeros(1))
        self.out: nn.Module
        if cfg.deformable:
            self.out = DeformConv2d(channels, channels, 3, padding=1, bias=cfg.deform_bias)
        elif cfg.enabled:
            self.out = nn.Conv2d(channels, channels, 3, padding=1, bias=cfg.deform_bias)
        else:  # SiamRPN++ baseline: no DSA at all
            self.out = nn.Identity()

    # -- pieces ------------------------------------------------------------------------------------
    @property
    def self_scale(self) -> Tensor:
        """Scalar of the channel self-attention term (beta, or the shared gamma_c)."""
        return self.gamma_c if self.shared else self.beta

    @property
    def cross_scale(self) -> Tensor:
        """Scalar of the cross-attention term (gamma, or the shared gamma_c)."""
        return self.gamma_c if self.shared else self.gamma

    def affinity(self, f: Tensor) -> Tensor:
        return channel_affinity(f, self.negated)

    def spatial(self, f: Tensor) -> Tensor:
        q = self.query(f).flatten(2)  # [B,C',N]
        k = self.key(f).flatten(2)
        v = self.value(f).flatten(2)  # [B,C,N]
        # Column-wise softmax of A = Q^T K: output position j mixes values of all positions i with weights
        # summing to one over i, out = V A. Computed transposed, the same numbers: A^T = softmax_row(K^T Q)
        # and out^T = A^T V^T. So the softmax runs along the last axis and the whole term has the
        # MatMul -> Softmax(last axis) -> MatMul form that inference engines fuse; only the small C x N maps
        # are transposed, never the N x N one (docs/PERFORMANCE.md, "Graphs shaped for inference engines").
        at = torch.softmax(torch.bmm(k.transpose(1, 2).float(), q.float()), dim=-1).to(f.dtype)  # [B,N,N]
        return self.alpha * torch.bmm(at, v.transpose(1, 2)).transpose(1, 2).reshape(f.shape) + f

    def self_attention(self, f: Tensor) -> Tensor:
        return self.spatial(f) + (self.self_scale * apply_affinity(self.affinity(f), f) + f)

    def fixed_part(self, f: Tensor) -> Tensor:
        """The part of the attentional features that needs only this branch's own features: S(F), or F when
        only the cross-attention is on. The per-frame part adds C(F) = gamma A F + F to it, summed in the
        order of :meth:`forward` (and of the authors' code), S(F) + (gamma A F + F), so the split gives the
        same FP32 numbers as the unsplit module."""
        return self.self_attention(f) if self.use_self else f

    def _plus_cross(self, fixed: Tensor, affinity: Tensor, f: Tensor) -> Tensor:
        cross = self.cross_scale * apply_affinity(affinity, f) + f
        return fixed + cross if self.use_self else cross

    # -- deployment split -------------------------------------------------------------------------
    def template_part(self, zf: Tensor) -> dict[str, Tensor]:
        """Per-video cache for this level. With cross-attention: raw features, fixed part and Z's channel
        affinity. Without it, Z's attentional features do not depend on X and are computed completely."""
        if not self.use_cross:
            return {"att": self.out(self.fixed_part(zf))}
        return {"feat": zf, "fixed": self.fixed_part(zf), "affinity": self.affinity(zf)}

    def search_part(self, xf: Tensor, cache: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Per-frame: attentional features (z_att, x_att) from the search features and the template cache."""
        if not self.use_cross:
            return cache["att"], self.out(self.fixed_part(xf))
        x_att = self._plus_cross(self.fixed_part(xf), cache["affinity"], xf)
        z_att = self._plus_cross(cache["fixed"], self.affinity(xf), cache["feat"])
        return self.out(z_att), self.out(x_att)

    # -- training forward ------------------------------------------------------------------------
    def forward(self, zf: Tensor, xf: Tensor) -> tuple[Tensor, Tensor]:
        def attend(f: Tensor, other: Tensor) -> Tensor:
            terms = []
            if self.use_self:
                terms.append(self.self_attention(f))
            if self.use_cross:
                terms.append(self.cross_scale * apply_affinity(self.affinity(other), f) + f)
            return sum(terms[1:], terms[0]) if terms else f

        return self.out(attend(zf, xf)), self.out(attend(xf, zf))
