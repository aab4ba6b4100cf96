"""``siamattn vot``: the tracker as a TraX server for the VOT toolkit (:mod:`siamattn.runtime.trax_server`), and
``--write-trackers WORKSPACE``, which writes the workspace's ``trackers.ini`` entry that starts that server
(docs/EVALUATION.md)."""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from pathlib import Path

from siamattn.errors import InputError, require
from siamattn.outputs import write_file

VALID_NAME = re.compile(r"^[A-Za-z0-9_-]+$")  # the toolkit's tracker identifiers
_SECTION = re.compile(r"^\s*\[([^\]]*)\]")


def workspace_stack(workspace: Path) -> str:
    """The stack a VOT workspace was initialised with, or one line saying how to make one."""
    import yaml

    config = workspace / "config.yaml"
    hint = f"make one with 'vot initialize STACK --workspace {workspace}' (e.g. STACK vot2018/shortterm)"
    if not workspace.is_dir():
        raise InputError(f"--write-trackers '{workspace}' is not a folder; {hint}")
    try:
        doc = yaml.safe_load(config.read_text())
    except FileNotFoundError:
        raise InputError(f"'{workspace}' is no VOT workspace (no config.yaml); {hint}") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InputError(f"cannot read the workspace's '{config}': {getattr(exc, 'strerror', None) or exc}") from exc
    stack = doc.get("stack") if isinstance(doc, dict) else None
    if not stack:
        raise InputError(f"the VOT workspace '{workspace}' has no stack in config.yaml; {hint}")
    return str(stack)


def stack_file(workspace: Path, stack: str) -> Path | None:
    """Where the toolkit finds ``stack``: an absolute path, a file in the workspace, or one of the toolkit's own
    stacks (located without importing the toolkit); None when it is in none of them."""
    import importlib.util

    candidates = [Path(stack)] if Path(stack).is_absolute() else [workspace / stack]
    spec = importlib.util.find_spec("vot")
    for root in (spec.submodule_search_locations or []) if spec else []:
        candidates.append(Path(root) / "stack" / f"{stack}.yaml")
    return next((c for c in candidates if c.is_file()), None)


def stack_is_multiobject(workspace: Path, stack: str) -> bool:
    """Whether an experiment of the stack runs several objects per sequence (VOTS): its tracker must offer
    multi-object sessions, and single-object stacks need it not to."""
    import yaml

    path = stack_file(workspace, stack)
    try:
        doc = yaml.safe_load(path.read_text()) if path else None
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False  # the toolkit reports an unreadable stack itself
    experiments = doc.get("experiments") if isinstance(doc, dict) else None
    return any(isinstance(e, dict) and str(e.get("multiobject", "")).lower() == "true"
               for e in (experiments or {}).values())


def tracker_command(model: Path, backend: str, device: str, region: str, multiobject: bool = False) -> str:
    """The exact command the toolkit runs: this Python, this package, absolute paths (it starts trackers in a
    temporary folder), quoted for its shlex split."""
    argv = [str(Path(sys.executable).absolute()), "-m", "siamattn", "vot", "--model", str(model.resolve()),
            "--backend", backend, "--device", device, "--region", region] + (["--multiobject"] if multiobject else [])
    return shlex.join(argv)


def trackers_entry(name: str, command: str) -> str:
    """One ``trackers.ini`` section; ``%`` doubled because the toolkit reads the file with configparser's
    interpolation."""
    return (f"[{name}]\nlabel = {name}\nprotocol = trax\ncommand = {command.replace('%', '%%')}\n"
            "# written by 'siamattn vot --write-trackers'\n")


def updated_ini(text: str, name: str, entry: str) -> str:
    """``text`` with section ``name`` replaced by ``entry`` (appended when absent); other sections unchanged."""
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    skipping = replaced = False
    for line in lines:
        header = _SECTION.match(line)
        if header:
            skipping = header.group(1).strip() == name
            if skipping and not replaced:
                out.append(entry)
                replaced = True
        if not skipping:
            out.append(line)
    if not replaced:
        if out and not out[-1].endswith("\n"):
            out.append("\n")
        out.append(("\n" if out else "") + entry)
    return "".join(out)


def write_trackers(args: argparse.Namespace) -> int:
    from siamattn.manifest import Manifest

    workspace: Path = args.write_trackers
    stack = workspace_stack(workspace)
    if not VALID_NAME.match(args.name):
        raise InputError(f"--name '{args.name}' is no VOT tracker identifier; use letters, digits, '-' and '_'")
    Manifest.load(args.model)  # a bad model folder fails now, not when the toolkit starts the tracker
    ini = workspace / "trackers.ini"
    try:
        old = ini.read_text() if ini.exists() else ""
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read '{ini}': {getattr(exc, 'strerror', None) or exc}") from exc
    multiobject = args.multiobject or stack_is_multiobject(workspace, stack)
    command = tracker_command(args.model, args.backend, args.device, args.region, multiobject)
    write_file(ini, updated_ini(old, args.name, trackers_entry(args.name, command)), "--write-trackers")
    if not args.quiet:
        kind = "multi-object" if multiobject else "single-object"
        print(f"'{args.name}' in {ini} (stack {stack}, {kind} sessions): {command}")
        print(f"next: cd {workspace} && vot test {args.name} && vot evaluate {args.name} && vot analysis {args.name}")
    return 0


def _vot(args: argparse.Namespace) -> int:
    if args.write_trackers is not None:
        return write_trackers(args)
    require("trax", "vot", "'siamattn vot' (it speaks TraX through the vot-trax package)")
    from siamattn.runtime.tracker import MultiTracker
    from siamattn.runtime.trax_server import serve

    def make_tracker() -> MultiTracker:
        notes: list[str] = []
        tracker = MultiTracker(args.model, backend=args.backend, device=args.device, notes=notes)
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
        return tracker

    return serve(make_tracker, args.region, args.name, args.multiobject)


def register(sub: argparse._SubParsersAction) -> None:
    from siamattn.runtime.backend import BACKEND_CHOICES, DEVICE_CHOICES
    from siamattn.runtime.cli import BACKEND_HELP, DEVICE_HELP
    from siamattn.runtime.trax_server import REGION_CHOICES

    p = sub.add_parser("vot", help="TraX server for the VOT toolkit (vot test / evaluate / analysis)",
                       description="Run the tracker as a TraX server on stdin/stdout (or TRAX_SOCKET), as the VOT "
                                   "toolkit starts it: rectangle, polygon and mask regions in, one or several "
                                   "objects per sequence. Stdout carries only the protocol; messages go to "
                                   "stderr. With --write-trackers WORKSPACE, write the workspace's trackers.ini "
                                   "entry that starts this server instead (docs/EVALUATION.md).")
    p.add_argument("--model", required=True, type=Path, help="folder written by 'siamattn export' (manifest.json)")
    p.add_argument("--backend", choices=BACKEND_CHOICES, default="auto", help=BACKEND_HELP)
    p.add_argument("--device", choices=DEVICE_CHOICES, default="auto", help=DEVICE_HELP)
    p.add_argument("--region", choices=REGION_CHOICES, default="auto",
                   help="region reported per frame: auto = the mask when the model has a mask head, else the box; "
                        "polygon = what 'siamattn eval' records (tracker.output); rectangle = the box "
                        "(default: %(default)s)")
    p.add_argument("--multiobject", action="store_true",
                   help="offer multi-object TraX sessions (VOTS stacks; several objects per sequence, batched); "
                        "leave it off for single-object stacks such as vot2018/shortterm or vot2020/shortterm, "
                        "whose experiments expect one region per reply; --write-trackers sets it when the "
                        "workspace's stack has a multi-object experiment")
    p.add_argument("--write-trackers", type=Path, metavar="WORKSPACE",
                   help="write or update WORKSPACE/trackers.ini's entry for this model (protocol trax, the exact "
                        "command with this Python) and exit")
    p.add_argument("--name", default="siamattn",
                   help="tracker identifier in trackers.ini and the TraX handshake (default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="with --write-trackers: print nothing")
    p.set_defaults(func=_vot)
