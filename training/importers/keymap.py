"""Declarative key mapping from another code base's state dict to ours (docs/MODELS.md).

A source is described by a table of :class:`Row` s: *their* key prefix -> *our* key prefix, optionally with a
tensor transform. Each row may stand for several numbered modules (``index``: the values substituted into
``{0}``, ``{1}`` of both prefixes). A key of theirs is mapped by the longest matching prefix; the remaining
suffix (``weight``, ``bias``, ``running_mean`` ...) is kept. Nothing is guessed: after mapping, every key of
theirs must have been used and every key of the model built from the config must have been produced, with
the same shape, else one error names them all, grouped by prefix.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import torch
from torch import Tensor

from siamattn.errors import SiamAttnError

Transform = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class Row:
    theirs: str  # key prefix in the source state dict, ends with '.' (a module) or is a whole key
    ours: str  # key prefix in our model's state dict, same form
    index: tuple[tuple[int, ...], ...] = ((),)  # one tuple of format values per numbered module
    transform: Transform | None = None  # applied to every tensor the row maps (None: copied as is)
    why: str = ""  # what the row reconciles, for readers of the table (the docs quote it)

    def expand(self) -> list[tuple[str, str, Transform | None]]:
        return [(self.theirs.format(*i), self.ours.format(*i), self.transform) for i in self.index]


@dataclass(frozen=True)
class KeyTable:
    source: str  # how errors name the source, e.g. "the SiamAttn authors' network"
    rows: tuple[Row, ...]
    # suffixes of our keys that a source may lack without harm (BN's num_batches_tracked, unused at inference):
    # zero when absent
    optional_suffixes: tuple[str, ...] = field(default=("num_batches_tracked",))

    def prefixes(self) -> list[tuple[str, str, Transform | None]]:
        out = [p for row in self.rows for p in row.expand()]
        theirs = [t for t, _, _ in out]
        dup = sorted({t for t in theirs if theirs.count(t) > 1})
        if dup:  # a table bug, not a user error
            raise ValueError(f"key table of {self.source}: prefixes listed twice: {dup}")
        return sorted(out, key=lambda p: -len(p[0]))  # longest prefix first


def _match(key: str, prefix: str) -> bool:
    return key == prefix if not prefix.endswith(".") else key.startswith(prefix)


def group_keys(keys: Iterable[str], max_groups: int = 6) -> str:
    """``a.b.c.weight, a.b.c.bias, x.y`` -> ``a.b.c.* (2 keys), x.y``: the longest common prefixes that give at
    most ``max_groups`` groups, so a missing module reads as one item and a wrong file as a few."""
    keys = sorted(set(keys))
    if not keys:
        return ""
    depth = max(k.count(".") + 1 for k in keys)
    while True:
        groups: dict[str, list[str]] = {}
        for k in keys:
            groups.setdefault(".".join(k.split(".")[:depth]), []).append(k)
        if len(groups) <= max_groups or depth == 1:
            break
        depth -= 1
    items = [g if members == [g] else f"{g}.* ({len(members)} keys)" for g, members in groups.items()]
    return ", ".join(items)


def map_state_dict(state: Mapping[str, Tensor], table: KeyTable, target: Mapping[str, Tensor],
                   what: str) -> dict[str, Tensor]:
    """Map ``state`` (their keys) onto ``target`` (our model's state dict: names, shapes, dtypes; may be on
    the meta device).

    Returns a complete state dict for our model. Raises one :class:`SiamAttnError` listing the keys of
    theirs that no row maps or that map to nothing in our model ("unused"), our keys nothing maps to
    ("missing", named by their key where the table knows it) and shape mismatches.
    """
    prefixes = table.prefixes()
    out: dict[str, Tensor] = {}
    unused: list[str] = []
    shapes: list[str] = []
    for key, value in state.items():
        hit = next(((t, o, f) for t, o, f in prefixes if _match(key, t)), None)
        if hit is None:
            unused.append(key)
            continue
        theirs, ours, transform = hit
        name = ours + key[len(theirs):]
        if name not in target:
            unused.append(key)
            continue
        if name in out:  # two keys of theirs onto one of ours: a table bug or a file with both spellings
            raise SiamAttnError(f"{what}: two of its keys map to {name} ({key} and another); it is not {table.source}")
        tensor = transform(value) if transform is not None else value
        if tuple(tensor.shape) != tuple(target[name].shape):
            shapes.append(f"{key} {tuple(tensor.shape)} -> {name} {tuple(target[name].shape)}")
            continue
        out[name] = tensor.detach().to(target[name].dtype)  # the loaded file is ours to consume: no copy
    missing = []
    for name, own in target.items():
        if name in out:
            continue
        if name.rpartition(".")[2] in table.optional_suffixes:
            out[name] = torch.zeros(own.shape, dtype=own.dtype)
            continue
        missing.append(_their_name(name, prefixes) or f"(ours) {name}")
    if unused or missing or shapes:
        parts = []
        if unused:
            parts.append(f"{len(unused)} of its keys map to nothing in our model: {group_keys(unused)}")
        if missing:
            parts.append(f"{len(missing)} keys the model needs are absent: {group_keys(missing)}")
        if shapes:
            parts.append(f"{len(shapes)} shape mismatches (theirs -> ours): {'; '.join(shapes[:3])}"
                         + (" ..." if len(shapes) > 3 else ""))
        raise SiamAttnError(f"{what} is not {table.source} as the config describes it: " + "; ".join(parts))
    return out


def _their_name(ours: str, prefixes: list[tuple[str, str, Transform | None]]) -> str | None:
    """Our key -> the key of theirs the table would map to it (for naming missing keys in their terms)."""
    for theirs, prefix, _ in sorted(prefixes, key=lambda p: -len(p[1])):
        if _match(ours, prefix):
            return theirs + ours[len(prefix):]
    return None


def unwrap_state_dict(payload: object, what: str) -> dict[str, Tensor]:
    """A training container (``{'state_dict': ..., 'epoch', 'optimizer'}``) or a plain state dict -> the
    state dict with any DataParallel ``module.`` prefix removed."""
    if isinstance(payload, dict) and payload.get("format") == "siamattn-checkpoint":
        raise SiamAttnError(f"{what} is already a siamattn checkpoint: use it directly (no import needed)")
    if isinstance(payload, dict) and isinstance(payload.get("state_dict"), dict):
        payload = payload["state_dict"]
    if not isinstance(payload, dict) or not payload:
        raise SiamAttnError(f"{what} holds no state dict (expected a dict of tensors, or one under 'state_dict')")
    bad = [str(k) for k, v in payload.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise SiamAttnError(f"{what} is not a state dict: {len(bad)} entries are not named tensors "
                            f"(e.g. {', '.join(bad[:3])})")
    return {k.removeprefix("module."): v for k, v in payload.items()}
