"""Where every command's outputs go, so that nothing is lost, whatever happens (docs/ERRORS.md).

- **Checked before any work**: an output is refused when it is, or lies inside, one of the run's inputs (or
  holds one), after resolving symlinks; when it exists and ``--overwrite`` was not given; when what it would
  replace is not a regular file (a FIFO, a device) or, for a folder, not an earlier result of the same
  command; when its folder cannot be made or written.
- **Staged**: a file is written as a hidden temporary file beside it, a folder as a hidden staging folder
  beside it (one file system, so the final move is a rename), and moved into place by ``commit()`` only when
  complete. Leaving the ``with`` block any other way (an error, Ctrl-C, SIGTERM, a full disk) removes the
  staging copy; the old output is untouched.
- **Replacing a folder** renames the old one aside, the new one in, then deletes the old one, with SIGINT and
  SIGTERM held off meanwhile: an interrupt leaves the old or the new folder complete, never a mix.

Torch-free (the runtime on an edge device uses it too).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import FrameType, TracebackType
from typing import TypeVar

from siamattn.errors import InputError, SiamAttnError

PathLike = str | os.PathLike[str]
# label -> path of each input of a run ("source", "--model folder", ...); None entries are skipped
Inputs = Mapping[str, PathLike | None]

STAGING_MARK = ".staging-"
OLD_MARK = ".old-"
PARTIAL_MARK = ".partial"
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


# ----------------------------------------------------------------------------------------------------
# interrupts


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM: a KeyboardInterrupt, so every cleanup written for Ctrl-C runs for both."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


_held = 0
_pending: int | None = None


def _on_signal(signum: int, frame: FrameType | None) -> None:
    global _pending
    if _held:  # inside a move into place: finish it first (held_signals raises afterwards)
        _pending = signum
        return
    raise Interrupted(signum)


def install_signal_handlers() -> None:
    """SIGTERM like SIGINT (an :class:`Interrupted` exception, so staging copies are removed) for a command
    line run; the main thread only (Python delivers signals there)."""
    if threading.current_thread() is threading.main_thread():
        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, _on_signal)


def exit_code(exc: KeyboardInterrupt) -> int:
    """128 + the signal number, the shell's convention: 130 for Ctrl-C, 143 for SIGTERM."""
    return 128 + int(getattr(exc, "signum", signal.SIGINT))


@contextlib.contextmanager
def held_signals() -> Iterator[None]:
    """SIGINT/SIGTERM wait until the block is done (a move into place is never cut in half)."""
    global _held, _pending
    main = threading.current_thread() is threading.main_thread()
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM}) if main else None
    _held += 1
    try:
        yield
    finally:
        if mask is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a held signal is delivered now, to _on_signal
        _held -= 1
        if not _held and _pending is not None:
            signum, _pending = _pending, None
            raise Interrupted(signum)


def pause_point(name: str) -> None:
    """Fault-injection hook for the tests: with ``SIAMATTN_PAUSE_AT=name`` the process writes its pid to
    ``SIAMATTN_PAUSE_FILE`` and waits here (up to 2 minutes) for the test's signal. Never inside
    held_signals (the signal would wait for the pause)."""
    if os.environ.get("SIAMATTN_PAUSE_AT") != name or _held:
        return
    Path(os.environ["SIAMATTN_PAUSE_FILE"]).write_text(str(os.getpid()))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        time.sleep(0.02)


# ----------------------------------------------------------------------------------------------------
# checks before work


def real(path: PathLike) -> Path:
    """The path with every symlink and '..' resolved (for a path that does not exist yet, its existing part)."""
    return Path(os.path.realpath(path))


def _same(a: PathLike, b: PathLike) -> bool:
    with contextlib.suppress(OSError):
        if os.path.exists(a) and os.path.exists(b):
            return os.path.samefile(a, b)  # hard links too
    return real(a) == real(b)


def _kind_of(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def check_not_input(flag: str, path: PathLike, inputs: Inputs) -> None:
    """Refuse an output that is one of the inputs, lies inside an input folder, or holds an input (a folder
    output is replaced as a whole), through symlinks, '..' and hard links."""
    out = real(path)
    for label, value in inputs.items():
        if value is None:
            continue
        inp = real(value)
        if _same(path, value):
            raise InputError(f"{flag} '{path}' is the input {label} '{value}': writing it would destroy the input; "
                             "give another output path")
        if inp in out.parents:
            raise InputError(f"{flag} '{path}' lies inside the input {label} '{value}': outputs never change an "
                             "input; give a path outside it")
        if out in inp.parents:
            raise InputError(f"{flag} '{path}' holds the input {label} '{value}': replacing it would destroy the "
                             "input; give another output path")


def check_distinct(outputs: Mapping[str, PathLike | None]) -> None:
    """Refuse two outputs that are one path, or one inside the other."""
    given = [(flag, p) for flag, p in outputs.items() if p is not None]
    for i, (flag, path) in enumerate(given):
        for other_flag, other in given[:i]:
            a, b = real(path), real(other)
            if _same(path, other) or a in b.parents or b in a.parents:
                raise InputError(f"{flag} and {other_flag} are the same file '{path}'; give two paths"
                                 if _same(path, other) else
                                 f"{flag} '{path}' and {other_flag} '{other}' overlap; give two separate paths")


def check_folder(flag: str, given: PathLike, folder: PathLike) -> None:
    """Refuse an output whose ``folder`` cannot be made or written."""
    ancestor = Path(folder)
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise InputError(f"{flag} '{given}': cannot create its folder, '{ancestor}' is a file")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise InputError(f"{flag} '{given}': cannot write in '{ancestor}' (permission denied)")


def check_file_output(flag: str, path: PathLike, *, overwrite: bool = False, inputs: Inputs | None = None,
                      example: str = "out") -> None:
    """An output file: not an input, not a folder, not an existing file without ``overwrite``, never a
    FIFO or device (``--overwrite`` replaces an earlier result, nothing more), in a writable folder."""
    path = Path(path)
    check_not_input(flag, path, inputs or {})
    if path.is_dir():
        raise InputError(f"{flag} '{path}' is a folder; give a file path (e.g. '{path / example}')")
    if path.exists():
        mode = path.stat().st_mode
        if not stat.S_ISREG(mode):
            raise InputError(f"{flag} '{path}' is {_kind_of(mode)}: an output replaces only a regular file; "
                             "give a file path")
        if not overwrite:
            raise InputError(f"{flag} '{path}' already exists; pass --overwrite to replace it")
    check_folder(flag, path, real(path).parent)


def check_dir_output(flag: str, path: PathLike, *, overwrite: bool = False, inputs: Inputs | None = None,
                     what: str = "output", earlier: Callable[[Path], str | None] | None = None) -> None:
    """An output folder: not an input (nor inside or around one), absent or empty, or with ``overwrite`` an
    earlier result: ``earlier(folder)`` says why it is not one (None: it is), and staged beside it."""
    path = Path(path)
    check_not_input(flag, path, inputs or {})
    if path.exists() and not path.is_dir():
        raise InputError(f"{flag} '{path}' is a file, not a folder; choose another {flag}")
    if path.is_dir() and any(path.iterdir()):
        if not overwrite:
            raise InputError(f"{flag} '{path}' already exists and is not empty; pass --overwrite to replace "
                             f"the earlier {what} in it")
        cwd = Path.cwd()
        if real(path) == cwd or real(path) in cwd.parents:
            raise InputError(f"{flag} '{path}' holds the current folder: replacing it would pull the folder away "
                             f"from under this shell; run from elsewhere or choose another {flag}")
        why = earlier(path) if earlier is not None else None
        if why:
            raise InputError(f"{flag} '{path}' is not an earlier {what} ({why}); --overwrite replaces only "
                             f"that: choose another {flag}")
    check_folder(flag, path, real(path).parent)


def only_names(folder: Path, marker: str, allowed: Callable[[str], bool]) -> str | None:
    """``earlier`` test for check_dir_output: ``marker`` is there and every entry is a name the command
    writes; else why not."""
    if not (folder / marker).is_file():
        return f"no {marker}"
    other = sorted(p.name for p in folder.iterdir() if not allowed(p.name))
    if other:
        return f"it also holds {', '.join(other[:3])}{' ...' if len(other) > 3 else ''}"
    return None


# ----------------------------------------------------------------------------------------------------
# staging


def disk_full(exc: BaseException) -> OSError | None:
    """The OSError of a full disk or a file size limit behind ``exc`` (libraries wrap it: torch.save's
    RuntimeError keeps it as its context), or None."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, OSError) and cur.errno in _DISK_FULL:
            return cur
        cur = cur.__cause__ or cur.__context__
    return None


def _raise_disk_full(exc: BaseException | None, flag: str, path: Path, existed: bool) -> None:
    full = disk_full(exc) if exc is not None else None
    if full is not None and not isinstance(exc, SiamAttnError):
        kept = f"the existing '{path}' is unchanged" if existed else "nothing was written"
        raise SiamAttnError(f"{flag} '{path}' could not be written: {full.strerror} (the disk is full or a file "
                            f"size limit was hit); {kept}") from exc


@contextlib.contextmanager
def _moving(flag: str, path: Path, existed: bool) -> Iterator[None]:
    """A rename that fails (a mount point, a folder another program holds) as one line, not a traceback."""
    try:
        yield
    except OSError as exc:
        kept = f"the existing '{path}' is unchanged" if existed else "nothing was written"
        raise SiamAttnError(f"{flag} '{path}' could not be moved into place: {exc.strerror or exc}; {kept}") from exc


def _makedirs(folder: Path) -> list[Path]:
    """mkdir -p that returns the folders it created, deepest last (removed again if the output is dropped)."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    made = []
    for d in reversed(missing):
        try:
            d.mkdir()
        except FileExistsError:
            continue
        made.append(d)
    return made


def _remove_made(made: list[Path]) -> None:
    for d in reversed(made):
        with contextlib.suppress(OSError):
            d.rmdir()  # only while empty: another run may have put something there meanwhile


def _umask_mode(mode: int) -> int:
    umask = os.umask(0)
    os.umask(umask)
    return mode & ~umask


_S = TypeVar("_S", bound="_Staged")


class _Staged:
    """What a staged file and a staged folder share: leaving the ``with`` block without ``commit()`` discards the
    staging copy, and a full disk becomes one line naming the output."""

    flag: str
    given: Path
    existed: bool
    committed: bool

    def __enter__(self: _S) -> _S:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if not self.committed:
            self.discard()
        _raise_disk_full(exc, self.flag, self.given, self.existed)

    def discard(self) -> None:
        raise NotImplementedError


class StagedFile(_Staged):
    """``with StagedFile(path, flag) as f:`` write ``f.tmp`` (same folder and suffix as ``path``: OpenCV picks
    the container from it), then ``f.commit()``; leaving the block without a commit removes ``f.tmp``.

    The output is written where ``path`` resolves to (through a symlink, the file it names)."""

    def __init__(self, path: PathLike, flag: str = "output") -> None:
        self.given = Path(path)
        self.path = real(path)
        self.flag = flag
        self.existed = self.path.exists()
        self._made: list[Path] = []
        self.committed = False
        try:
            self._made = _makedirs(self.path.parent)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.stem}.",
                                       suffix=f"{PARTIAL_MARK}{self.path.suffix}")
            os.close(fd)
        except OSError as exc:
            _remove_made(self._made)
            raise InputError(f"{flag} '{self.given}' cannot be written: {exc.strerror or exc}") from exc
        self.tmp = Path(tmp)

    def commit(self) -> None:
        with held_signals(), _moving(self.flag, self.given, self.existed):
            os.chmod(self.tmp, _umask_mode(0o666))  # mkstemp makes it 0600; the mode a plain open() gives
            os.replace(self.tmp, self.path)
            self.committed = True

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self.tmp.unlink()
        _remove_made(self._made)


def write_file(path: PathLike, data: bytes | str, flag: str = "output") -> None:
    """Write a whole small file atomically (complete or not at all)."""
    with StagedFile(path, flag) as f:
        if isinstance(data, str):
            f.tmp.write_text(data)
        else:
            f.tmp.write_bytes(data)
        f.commit()


class StagedDir(_Staged):
    """``with StagedDir(out, flag) as d:`` write the whole folder into ``d.path`` (a hidden folder beside
    ``out``), then ``d.commit()`` moves it into place (replacing an earlier ``out`` as a whole); leaving the
    block without a commit removes the staging folder. ``clone``: start from hard links of the existing
    folder's files that ``clone`` accepts (to update a folder, e.g. build engines into an export) — writers
    must then replace those files (write_file, os.replace), never write into them."""

    def __init__(self, path: PathLike, flag: str = "--out", clone: Callable[[str], bool] | None = None) -> None:
        self.given = Path(path)
        self.final = real(path)
        self.flag = flag
        self.existed = self.final.is_dir() and any(self.final.iterdir())
        self.committed = False
        try:
            self._made = _makedirs(self.final.parent)
            self.path = Path(tempfile.mkdtemp(dir=self.final.parent, prefix=f".{self.final.name}{STAGING_MARK}"))
        except OSError as exc:
            raise InputError(f"{flag} '{self.given}' cannot be written: {exc.strerror or exc}") from exc
        if clone is not None and self.final.is_dir():
            try:
                _clone(self.final, self.path, clone)
            except BaseException:
                self.discard()
                raise

    def commit(self) -> None:
        os.chmod(self.path, _umask_mode(0o777))  # mkdtemp makes it 0700
        with held_signals(), _moving(self.flag, self.given, self.existed):
            replace_dir(self.path, self.final)
            self.committed = True

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        _remove_made(self._made)


def _link_or_copy(src: PathLike, dst: PathLike) -> None:
    try:
        os.link(src, dst)
    except OSError:  # a file system without hard links
        shutil.copy2(src, dst)


def _clone(src: Path, dst: Path, accept: Callable[[str], bool]) -> None:
    """``dst`` gets ``src``'s entries that ``accept`` takes, files as hard links (no data copied)."""
    for entry in src.iterdir():
        if not accept(entry.name):
            continue
        if entry.is_symlink():
            os.symlink(os.readlink(entry), dst / entry.name)
        elif entry.is_dir():
            shutil.copytree(entry, dst / entry.name, symlinks=True, copy_function=_link_or_copy)
        else:
            _link_or_copy(entry, dst / entry.name)


def replace_dir(new: Path, final: Path) -> None:
    """Move the complete folder ``new`` to ``final``: rename the old folder aside, the new one in, delete
    the old; on a failure in between the old one is put back. Call with signals held."""
    if not os.path.lexists(final) or (final.is_dir() and not final.is_symlink() and not any(final.iterdir())):
        os.replace(new, final)  # rename(2) replaces an empty folder
        return
    aside = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}{OLD_MARK}"))
    os.rename(final, aside / final.name)
    try:
        os.rename(new, final)
    except BaseException:
        os.rename(aside / final.name, final)
        shutil.rmtree(aside, ignore_errors=True)
        raise
    shutil.rmtree(aside, ignore_errors=True)
