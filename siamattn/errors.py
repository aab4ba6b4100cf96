"""User-facing errors.

Every failure a user can cause (bad config, bad frame, missing file, missing optional package) raises a
subclass of :class:`SiamAttnError` whose message says what is wrong and what to do. The CLI prints such
errors as one line and exits non-zero; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class SiamAttnError(Exception):
    """Base class for errors caused by user input or environment, with an actionable message."""


class ConfigError(SiamAttnError, ValueError):
    """A configuration file or override is invalid."""


class InputError(SiamAttnError, ValueError):
    """A frame, box or tensor given to the tracker or a stage is invalid."""


class MissingDependencyError(SiamAttnError, ImportError):
    """An optional package is needed for this feature but is not installed."""


def interruption(exc: BaseException) -> KeyboardInterrupt | None:
    """The Ctrl-C (or SIGTERM, raised as a KeyboardInterrupt) that ``exc`` is or was caused by, else None.
    Extension modules turn a KeyboardInterrupt during their initialisation into an ImportError
    ("initialization failed"), which must not read as a missing package."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        if isinstance(e, KeyboardInterrupt):
            return e
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return None


def require(module: str, extra: str, feature: str):
    """Import ``module`` or raise a clear error naming the pip extra that provides it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        stop = interruption(exc)
        if stop is not None:
            raise stop from None  # the Ctrl-C itself (its own traceback), not a missing package
        raise MissingDependencyError(
            f"{feature} needs the Python package '{module}', which is not installed "
            f"({exc}). Install it with: pip install 'siamattn-trt[{extra}]'"
        ) from exc


class ManifestError(SiamAttnError, ValueError):
    """An export directory or its manifest.json is missing, corrupt or does not match its files."""
