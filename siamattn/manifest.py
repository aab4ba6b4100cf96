"""manifest.json of an export directory: what the runtime reads to know what it runs.

In the torch-free core: the export stage writes it, the runtime on an edge device reads it (numpy/pyyaml
only), and neither imports the other for it.

Layout (format ``siamattn-export``, version 1)::

    {
      "format": "siamattn-export", "version": 1, "created_utc": "...",
      "config": {...full Config.to_dict(), tracker hyperparameters included...},
      "export": {"ops": "portable|plugin", "precision": "fp16|fp32", "opset": 19, "ir_version": 10,
                 "xcorr": "...", "deform_conv": "onnx|gridsample", "fp32_islands": [...], "template_fp16": false,
                 "io_dtype": "float32"},
      "weights": {"source": "checkpoint|random-init", "path": ..., "sha256": ..., "seed": ..., "note": ...},
      "versions": {"siamattn": ..., "torch": ..., "onnx": ..., "tensorrt": {"flavour": ..., "version": ...}|null},
      "order": ["template", "search", "refine_box", "refine_mask"],
      "graphs": {"<name>": {"file": "<name>.onnx", "sha256": ..., "bytes": ..., "precision": "fp16|fp32",
                            "inputs": [{"name", "shape", "dtype"}], "outputs": [...],
                            "custom_ops": [...], "op_counts": {...}, "fp32_islands": {...},
                            "engine": null | {"file": "<name>.engine", "sha256", "bytes", "backend",
                                              "version", "layers", "build_s"}}},
      "engines": {"backend": ..., "version": ..., "timing_cache": ..., "plugin_library": ..., "skipped": {...}},
      "verification": {"<graph>": {"<output>": {"max_abs_err", "range", "rel_err", "runner", "fp32_noise"}}}
    }

The search graph's inputs other than ``x`` are the template graph's outputs, under the same names.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from siamattn import export_choices
from siamattn.config import SIAMMASK_OUTPUT, Config, from_dict
from siamattn.errors import ConfigError, ManifestError
from siamattn.validate import as_path

FORMAT = "siamattn-export"
VERSION = 1
FILE_NAME = "manifest.json"
STAGE_ORDER = ("template", "search", "refine_box", "refine_mask")


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(directory: str | os.PathLike[str], data: dict[str, Any]) -> Path:
    """Write atomically (a reader never sees half a manifest). Checked first with the reader's own schema, so
    a writer cannot leave a manifest that :meth:`Manifest.load` refuses."""
    directory = Path(directory)
    validate_manifest(directory / FILE_NAME, data)
    fd, tmp = tempfile.mkstemp(prefix=".manifest-", suffix=".json", dir=directory)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
    path = directory / FILE_NAME
    os.chmod(tmp, 0o644)  # mkstemp creates 0600; the manifest is meant to be read by others (deploy users)
    os.replace(tmp, path)
    return path


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]
    dtype: str


@dataclass(frozen=True)
class EngineSpec:
    file: str
    sha256: str
    bytes: int
    backend: str
    version: str
    layers: int
    build_s: float


@dataclass(frozen=True)
class GraphSpec:
    name: str
    file: str
    sha256: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    custom_ops: tuple[str, ...]
    engine: EngineSpec | None
    cpu_file: str | None = None  # INT8 exports: the uint8-activation twin ONNX Runtime loads on a CPU
    cpu_sha256: str | None = None

    def input(self, name: str) -> TensorSpec:
        for t in self.inputs:
            if t.name == name:
                return t
        raise KeyError(f"graph {self.name} has no input {name!r}; inputs: {[t.name for t in self.inputs]}")

    def output(self, name: str) -> TensorSpec:
        for t in self.outputs:
            if t.name == name:
                return t
        raise KeyError(f"graph {self.name} has no output {name!r}; outputs: {[t.name for t in self.outputs]}")


# What a reader relies on: field -> (JSON types, required). Checked whole on load, so a damaged or hand-edited
# manifest is one clear error instead of a KeyError deep in the runtime.
_NULL = type(None)
_TOP: dict[str, tuple[tuple[type, ...], bool]] = {
    "config": ((dict,), True), "export": ((dict,), True), "graphs": ((dict,), True), "order": ((list,), True),
    "weights": ((dict,), False), "versions": ((dict,), False), "engines": ((dict,), False),
    "verification": ((dict,), False), "created_utc": ((str,), False),
}
_EXPORT = {
    "ops": ((str,), True), "precision": ((str,), True), "opset": ((int,), False), "ir_version": ((int,), False),
    "xcorr": ((str,), False), "deform_conv": ((str,), False), "fp32_islands": ((list,), False),
    "template_fp16": ((bool,), False), "io_dtype": ((str,), False), "max_targets": ((int,), False),
}
_GRAPH = {
    "file": ((str,), True), "sha256": ((str,), True), "inputs": ((list,), True), "outputs": ((list,), True),
    "custom_ops": ((list,), False), "op_counts": ((dict,), False), "precision": ((str,), False),
    "engine": ((dict, _NULL), False), "bytes": ((int,), False), "cpu_file": ((str,), False),
    "cpu_sha256": ((str,), False),
}
_ENGINES = {
    "backend": ((str, _NULL), False), "version": ((str, _NULL), False), "timing_cache": ((str, _NULL), False),
    "plugin_library": ((str, _NULL), False), "skipped": ((dict,), False),
}
_TYPE_NAMES = {dict: "an object", list: "a list", str: "a string", int: "an integer", bool: "true or false",
               _NULL: "null"}


def _check_fields(path: Path, data: dict[str, Any], spec: dict[str, tuple[tuple[type, ...], bool]],
                  prefix: str) -> None:
    for key, (types, required) in spec.items():
        field = f"{prefix}{key}"
        if key not in data:
            if required:
                raise ManifestError(f"{path}: field '{field}' is missing; re-run 'siamattn export' (or "
                                    "'siamattn build-engines') to write a complete manifest")
            continue
        value = data[key]
        ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        if not ok:
            want = " or ".join(_TYPE_NAMES[t] for t in types)
            raise ManifestError(f"{path}: field '{field}' must be {want}, not {type(value).__name__}; "
                                "re-run 'siamattn export' to write a valid manifest")


def validate_manifest(path: Path, data: dict[str, Any]) -> None:
    """Every field a reader uses is present with the right type and allowed value (one error naming the first
    that is not)."""
    _check_fields(path, data, _TOP, "")
    _check_fields(path, data["export"], _EXPORT, "export.")
    for key in ("ops", "precision"):
        problem = export_choices.by_config_key(f"export.{key}").check(data["export"][key])
        if problem:
            raise ManifestError(f"{path}: field 'export.{key}' {problem}; re-run 'siamattn export'")
    if not all(isinstance(n, str) for n in data["order"]):
        raise ManifestError(f"{path}: field 'order' must be a list of graph names; re-run 'siamattn export'")
    for name in data["order"]:
        entry = data["graphs"].get(name)
        if not isinstance(entry, dict):
            raise ManifestError(f"{path} lists graph '{name}' in 'order' but 'graphs.{name}' is not an entry; "
                                "re-run 'siamattn export'")
        _check_fields(path, entry, _GRAPH, f"graphs.{name}.")
    if "engines" in data:
        _check_fields(path, data["engines"], _ENGINES, "engines.")


def _tensors(items: Any, where: str) -> tuple[TensorSpec, ...]:
    try:
        # a named axis (the batch graphs' target axis) is -1, as the runners report it
        return tuple(TensorSpec(str(t["name"]), tuple(-1 if isinstance(d, str) else int(d) for d in t["shape"]),
                                str(t["dtype"])) for t in items)
    except (KeyError, TypeError, ValueError) as exc:
        raise ManifestError(f"{where} has a malformed tensor list ({exc}); re-run 'siamattn export'") from exc


@dataclass(frozen=True)
class WeightsInfo:
    """manifest ``weights``: where the exported weights came from."""

    source: str | None  # "checkpoint" | "random-init"
    path: str | None  # the checkpoint file the export read
    sha256: str | None
    seed: int | None  # random-init only


@dataclass(frozen=True)
class EnginesInfo:
    """manifest ``engines``: how the TensorRT engines were built (all None/empty for an ONNX-only export)."""

    backend: str | None  # the TensorRT flavour, "tensorrt" | "tensorrt-rtx"
    version: str | None
    plugin_library: str | None
    skipped: dict[str, str]  # graph -> why it has no engine


class Manifest:
    """A loaded, checked export directory. ``Manifest.load(dir)`` raises :class:`ManifestError` with a
    one-line reason when the directory, the manifest or a listed file is missing, corrupt or changed."""

    def __init__(self, root: Path, data: dict[str, Any], graphs: dict[str, GraphSpec]) -> None:
        self.root = root
        self.data = data
        self.graphs = graphs

    # -- loading -----------------------------------------------------------------------------------
    @classmethod
    def load(cls, directory: str | os.PathLike[str], verify: bool = True) -> Manifest:
        """Read ``directory/manifest.json``; with ``verify`` also check every listed file's sha256."""
        root = as_path(directory, "export folder")
        path = root / FILE_NAME
        if root.exists() and not root.is_dir():
            raise ManifestError(f"'{root}' is not a folder (it is a file): pass the export folder that holds "
                                f"{FILE_NAME}")
        if not root.is_dir():
            raise ManifestError(f"export directory '{root}' does not exist; create it with "
                                f"'siamattn export --out {root}'")
        if not path.is_file():
            raise ManifestError(f"'{root}' has no {FILE_NAME}: it is not an export directory (run 'siamattn export')")
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:  # the file is there but cannot be read: say so, its content may be fine
            raise ManifestError(f"{path} cannot be read ({exc.strerror or exc}); check its permissions") from exc
        except UnicodeDecodeError as exc:
            raise ManifestError(f"{path} is not valid JSON (not UTF-8 text); re-run 'siamattn export'") from exc
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ManifestError(f"{path} is not valid JSON ({exc}); re-run 'siamattn export'") from exc
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ManifestError(f"{path} is not a siamattn export manifest (format is not '{FORMAT}')")
        if data.get("version") != VERSION:
            raise ManifestError(f"{path} has manifest version {data.get('version')!r}; this code reads version "
                                f"{VERSION}: re-export with this version of siamattn")
        validate_manifest(path, data)
        graphs: dict[str, GraphSpec] = {}
        for name in data["order"]:
            g = data["graphs"][name]
            engine = None
            if g.get("engine"):
                e = g["engine"]
                try:
                    engine = EngineSpec(str(e["file"]), str(e["sha256"]), int(e["bytes"]), str(e["backend"]),
                                        str(e["version"]), int(e["layers"]), float(e["build_s"]))
                except (KeyError, TypeError, ValueError) as exc:
                    raise ManifestError(f"{path}: engine entry of '{name}' is malformed ({exc})") from exc
            try:
                graphs[name] = GraphSpec(name, str(g["file"]), str(g["sha256"]),
                                         _tensors(g["inputs"], f"{path} graph '{name}' inputs"),
                                         _tensors(g["outputs"], f"{path} graph '{name}' outputs"),
                                         tuple(g.get("custom_ops", ())), engine,
                                         g.get("cpu_file"), g.get("cpu_sha256"))
            except KeyError as exc:
                raise ManifestError(f"{path}: graph '{name}' lacks {exc}; re-run 'siamattn export'") from exc
        manifest = cls(root, data, graphs)
        manifest._check_consistency()
        if verify:
            manifest.verify_files()
        return manifest

    def _check_consistency(self) -> None:
        for required in ("template", "search"):
            if required not in self.graphs:
                raise ManifestError(f"{self.root / FILE_NAME} has no '{required}' graph; re-run 'siamattn export'")
        cache = {t.name for t in self.graphs["template"].outputs}
        fed = {t.name for t in self.graphs["search"].inputs} - {"x"}
        if cache != fed:
            raise ManifestError(
                f"{self.root / FILE_NAME}: search inputs {sorted(fed)} do not match template outputs {sorted(cache)}")

    def verify_files(self) -> None:
        """Every graph (and engine) file exists and has the recorded sha256."""
        for g in self.graphs.values():
            entries = [(g.file, g.sha256, "graph")]
            if g.engine is not None:
                entries.append((g.engine.file, g.engine.sha256, "engine"))
            if g.cpu_file:
                entries.append((g.cpu_file, str(g.cpu_sha256), "graph"))
            for file, digest, kind in entries:
                path = self.root / file
                if not path.is_file():
                    raise ManifestError(f"{kind} file '{path}' listed in the manifest is missing; "
                                        "re-run 'siamattn export'")
                if sha256_file(path) != digest:
                    raise ManifestError(
                        f"{kind} file '{path}' does not match the sha256 in {FILE_NAME} (modified or from another "
                        "export); re-run 'siamattn export'")

    # -- accessors ---------------------------------------------------------------------------------
    def config(self) -> Config:
        try:
            cfg = from_dict(self.data["config"])
        except ConfigError as exc:
            raise ManifestError(f"{self.root / FILE_NAME} holds a config this version cannot read: {exc}") from exc
        self._check_config_matches_graphs(cfg)
        return cfg

    def _check_config_matches_graphs(self, cfg: Config) -> None:
        """The config's sizes against the graphs' fixed tensor shapes: a hand-edited or mixed-up manifest would
        otherwise fail inside the runtime (or give a wrong box) instead of naming the key."""
        t, k = cfg.tracker, cfg.anchors.num
        s = t.score_size
        mask = SIAMMASK_OUTPUT if cfg.model.siammask.enabled else cfg.model.refine.mask_size  # docs/DESIGN.md
        expected = [  # (config key, its value, graph, tensor, axes from the end, the shape those axes should have)
            ("tracker.exemplar_size", t.exemplar_size, "template", "z", (t.exemplar_size, t.exemplar_size)),
            ("tracker.instance_size", t.instance_size, "search", "x", (t.instance_size, t.instance_size)),
            ("tracker.base_size", t.base_size, "search", "cls", (s, s)),
            ("tracker.lost_instance_size", t.lost_instance_size, "search_lost", "x",
             (t.lost_instance_size, t.lost_instance_size)),
            ("anchors (ratios x scales)", k, "search", "cls", (2 * k, s, s)),
            ("anchors (ratios x scales)", k, "search", "loc", (4 * k, s, s)),
            ("model.refine.mask_size", mask, "refine_mask", "mask", (mask, mask)),
        ]
        for key, value, graph, tensor, want in expected:
            spec = self.graphs.get(graph)
            found = [x for x in ((spec.inputs + spec.outputs) if spec else ()) if x.name == tensor]
            if not found:
                continue
            have = tuple(found[0].shape[-len(want):])
            if all(isinstance(d, int) and d > 0 for d in have) and have != want:
                raise ManifestError(
                    f"{self.root / FILE_NAME}: config key '{key}' ({value}) does not match the {graph} graph's "
                    f"'{tensor}' of shape {list(found[0].shape)} (the config needs {list(want)} at its end); the "
                    "manifest's config and graphs come from different exports: re-run 'siamattn export'")

    @property
    def order(self) -> list[str]:
        return [n for n in self.data["order"] if n in self.graphs]

    @property
    def max_targets(self) -> int:
        """Most targets one search call takes (export.max_targets; 1 for exports without batch graphs)."""
        has_batch = all(n + "_multi" in self.graphs for n in ("search", "refine_box", "refine_mask")
                        if n in self.graphs)
        return int(self.data["export"].get("max_targets", 1)) if has_batch else 1

    @property
    def precision(self) -> str:
        return str(self.data["export"]["precision"])

    @property
    def ops(self) -> str:
        return str(self.data["export"]["ops"])

    @property
    def random_init(self) -> bool:
        return self.weights.source == "random-init"

    @property
    def weights(self) -> WeightsInfo:
        w = self.data.get("weights") or {}
        return WeightsInfo(w.get("source"), w.get("path"), w.get("sha256"), w.get("seed"))

    @property
    def engines(self) -> EnginesInfo:
        e = self.data.get("engines") or {}
        return EnginesInfo(e.get("backend"), e.get("version"), e.get("plugin_library"), dict(e.get("skipped") or {}))

    @property
    def trt_profile(self) -> str | None:
        """The TensorRT profile the graphs were exported for (export.trt_profile.name; None: before profiles)."""
        return (self.data["export"].get("trt_profile") or {}).get("name")

    def graph(self, name: str) -> GraphSpec:
        if name not in self.graphs:
            raise ManifestError(f"export '{self.root}' has no '{name}' graph (graphs: {', '.join(self.graphs)})")
        return self.graphs[name]

    def onnx_path(self, name: str) -> Path:
        return self.root / self.graph(name).file

    def cpu_paths(self) -> dict[str, Path]:
        """INT8 exports: graph -> its uint8-activation twin, what ONNX Runtime runs on a CPU (export/int8.py)."""
        return {n: self.root / g.cpu_file for n, g in self.graphs.items() if g.cpu_file}

    def engine_path(self, name: str) -> Path | None:
        e = self.graph(name).engine
        return None if e is None else self.root / e.file


def empty_engines() -> dict[str, Any]:
    """The ``engines`` section of an export with no engines built yet."""
    return {"backend": None, "version": None, "timing_cache": None, "plugin_library": None, "skipped": {}}


class ManifestDraft:
    """A manifest being written: the one place that gives ``manifest.json`` its shape. The exporter, the INT8
    pass and the engine builder (at export and in ``siamattn build-engines``) change it only through these
    methods; :meth:`write` checks it against the same schema :meth:`Manifest.load` reads with."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    @classmethod
    def new(cls, *, created_utc: str, config: dict[str, Any], export: dict[str, Any], weights: dict[str, Any],
            versions: dict[str, Any]) -> ManifestDraft:
        return cls({"format": FORMAT, "version": VERSION, "created_utc": created_utc, "config": config,
                    "export": export, "weights": weights, "versions": versions, "order": [], "graphs": {},
                    "engines": empty_engines(), "verification": {}})

    @classmethod
    def of(cls, manifest: Manifest) -> ManifestDraft:
        """A loaded export's manifest, to update (a deep copy: the loaded one is left as it was)."""
        return cls(json.loads(json.dumps(manifest.data)))

    # -- reading what was written so far ----------------------------------------------------------
    @property
    def order(self) -> list[str]:
        return list(self._data["order"])

    def entry(self, name: str) -> Mapping[str, Any]:
        """Graph ``name``'s entry, read-only (change it with :meth:`update_graph`)."""
        return MappingProxyType(self._data["graphs"][name])

    @property
    def export(self) -> Mapping[str, Any]:
        return MappingProxyType(self._data["export"])

    @property
    def engines(self) -> Mapping[str, Any]:
        return MappingProxyType(self._data["engines"])

    def as_dict(self) -> dict[str, Any]:
        """The JSON document (a copy)."""
        return json.loads(json.dumps(self._data))

    # -- graphs -----------------------------------------------------------------------------------
    def add_graph(self, name: str, entry: dict[str, Any]) -> None:
        if name in self._data["graphs"]:
            raise ValueError(f"graph {name!r} is already in the manifest")
        self._data["graphs"][name] = {**entry, "engine": None}
        self._data["order"].append(name)

    def update_graph(self, name: str, **fields: Any) -> None:
        """Replace fields of a written graph's entry (the INT8 pass rewrites a graph in place)."""
        self._data["graphs"][name].update(fields)

    def set_verification(self, name: str, check: dict[str, Any]) -> None:
        self._data["verification"][name] = check

    def set_export(self, key: str, value: Any) -> None:
        """An ``export`` field that is known only once the graphs exist (e.g. ``int8``)."""
        self._data["export"][key] = value

    # -- engines ----------------------------------------------------------------------------------
    def reset_engines(self, flavour: str, version: str) -> None:
        """Forget every engine: they are about to be rebuilt by TensorRT ``flavour`` ``version``."""
        self._data["engines"] = empty_engines()
        for name in self._data["order"]:
            self._data["graphs"][name]["engine"] = None
        self._data.setdefault("versions", {})["tensorrt"] = {"flavour": flavour, "version": version}

    def start_engines(self, flavour: str, version: str) -> None:
        self._data["engines"].update(backend=flavour, version=version)

    def set_engines_field(self, **fields: str | None) -> None:
        """``timing_cache`` / ``plugin_library`` of the engines section."""
        unknown = set(fields) - {"timing_cache", "plugin_library"}
        if unknown:
            raise ValueError(f"not an engines field: {sorted(unknown)}")
        self._data["engines"].update(fields)

    def record_engine(self, name: str, engine: EngineSpec, **extra: Any) -> None:
        self._data["graphs"][name]["engine"] = {**asdict(engine), **extra}

    def skip_engine(self, name: str, reason: str) -> None:
        self._data["engines"]["skipped"][name] = reason

    def write(self, directory: str | os.PathLike[str]) -> Path:
        return write_manifest(directory, self._data)
