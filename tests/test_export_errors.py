"""Bad input to 'siamattn export' / 'siamattn build-engines' gets one clear line and a non-zero exit, and loses
nothing: engines asked for and not built, damaged manifests, unreadable checkpoints, files where folders belong.
Also the single sources of truth those commands read (export choices, TensorRT flavours)."""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from siamattn import export_choices, tensorrt_env
from siamattn.cli import main
from siamattn.export.errors import ManifestError
from siamattn.export.manifest import Manifest

HAS_RTX = importlib.util.find_spec("tensorrt_rtx_bindings") is not None
needs_rtx = pytest.mark.skipif(not HAS_RTX, reason="tensorrt_rtx_bindings is not installed "
                               "(pip install 'siamattn-trt[tensorrt-rtx]')")


def _cli_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    assert rc != 0
    assert err.startswith("error: ") and "\n" not in err, err
    return err


@pytest.fixture()
def no_plugin_library(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A machine where the TensorRT plugin library is not built."""
    empty = tmp_path / "no-plugins"
    empty.mkdir()
    monkeypatch.setenv("SIAMATTN_PLUGINS_DIR", str(empty))


# ------------------------------------------------------------------------ engines asked for and not built


@needs_rtx
def test_build_engines_without_plugins_fails_naming_the_graph(capsys, tiny_export_copy, no_plugin_library):
    before = (tiny_export_copy / "manifest.json").read_text()
    err = _cli_error(capsys, ["build-engines", "--model", str(tiny_export_copy), "--engine", "tensorrt-rtx"])
    # The tiny model's deformable conv is a standard DeformConv node: TensorRT-RTX needs our plugin for it.
    assert "[search] engine not built: needs the siamattn TensorRT plugins" in err, err
    assert "siamattn plugins build" in err
    assert (tiny_export_copy / "manifest.json").read_text() == before  # nothing half-updated
    assert not list(tiny_export_copy.glob("*.engine"))


@needs_rtx
def test_export_engine_by_name_without_plugins_fails_before_exporting(capsys, tmp_path, no_plugin_library):
    out = tmp_path / "out"
    err = _cli_error(capsys, ["export", "--config", "tiny", "--out", str(out), "--engine", "tensorrt-rtx"])
    assert "[search] engine not built: needs the siamattn TensorRT plugins" in err, err
    assert "siamattn plugins build" in err
    assert not out.exists()  # failed before creating anything


def test_build_engines_engine_option_has_help(capsys):
    with pytest.raises(SystemExit):
        main(["build-engines", "--help"])
    out = capsys.readouterr().out
    section = "".join(out[out.rindex("--engine {"):].split())  # the option's help, unwrapped (argparse wraps at -)
    for value in export_choices.BUILD_ENGINE.names:
        assert f"{value}:" in section
    assert "mustbuild" in section


# ---------------------------------------------------------------------------------------- damaged manifests


def _write_manifest(folder: Path, **changes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    data = {"format": "siamattn-export", "version": 1, "config": {}, "export": {"ops": "portable", "precision": "fp32"},
            "graphs": {}, "order": []}
    data.update(changes)
    (folder / "manifest.json").write_text(json.dumps(data))
    return folder


@pytest.mark.parametrize(("changes", "expect"), [
    ({"export": {"ops": "portable"}}, r"field 'export\.precision' is missing.*re-run 'siamattn export'"),
    ({"graphs": []}, r"field 'graphs' must be an object, not list"),
    ({"order": "template"}, r"field 'order' must be a list, not str"),
    ({"order": [3]}, r"field 'order' must be a list of graph names"),
    ({"export": {"ops": "portable", "precision": "int4"}},
     r"field 'export\.precision' must be one of 'fp16', 'fp32', 'int8'"),
    ({"order": ["template"], "graphs": {"template": {"file": "t.onnx", "sha256": "x", "inputs": []}}},
     r"field 'graphs\.template\.outputs' is missing"),
    ({"order": ["template"], "graphs": {"template": {"file": 1, "sha256": "x", "inputs": [], "outputs": []}}},
     r"field 'graphs\.template\.file' must be a string, not int"),
    ({"engines": {"skipped": []}}, r"field 'engines\.skipped' must be an object"),
])
def test_manifest_is_validated_whole_on_load(tmp_path, changes, expect):
    folder = _write_manifest(tmp_path / "m", **changes)
    with pytest.raises(ManifestError, match=expect) as info:
        Manifest.load(folder)
    assert "\n" not in str(info.value)


def test_manifest_draft_writes_what_the_reader_loads_and_refuses_what_it_would_not(tmp_path_factory, tiny_export):
    """The writer checks with the reader's schema: a bad entry fails at write time, nothing is written."""
    from siamattn.manifest import EngineSpec, ManifestDraft

    loaded = Manifest.load(tiny_export)
    draft = ManifestDraft.of(loaded)
    draft.reset_engines("tensorrt", "10.3.0")
    assert draft.as_dict()["versions"]["tensorrt"] == {"flavour": "tensorrt", "version": "10.3.0"}
    assert loaded.data.get("versions", {}).get("tensorrt") != {"flavour": "tensorrt", "version": "10.3.0"}
    spec = EngineSpec("search.engine", "ab", 12, "tensorrt", "10.3.0", 7, 1.5)
    draft.record_engine("search", spec, fp32_layers_constrained=3)
    draft.skip_engine("template", "why not")
    copy = tmp_path_factory.mktemp("draft")
    for f in tiny_export.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    (copy / "search.engine").write_bytes(b"x" * 12)
    draft.write(copy)
    again = Manifest.load(copy, verify=False)
    assert again.graph("search").engine == spec and again.engines.skipped == {"template": "why not"}
    assert again.data["graphs"]["search"]["engine"]["fp32_layers_constrained"] == 3
    with pytest.raises(ValueError, match="already in the manifest"):
        draft.add_graph("search", {})
    draft.add_graph("extra", {"file": "extra.onnx", "inputs": [], "outputs": []})  # no sha256
    before = (copy / "manifest.json").read_bytes()
    with pytest.raises(ManifestError, match=r"graphs\.extra\.sha256' is missing"):
        draft.write(copy)
    assert (copy / "manifest.json").read_bytes() == before


def test_damaged_manifest_is_one_line_from_the_cli(capsys, tmp_path):
    folder = _write_manifest(tmp_path / "m", export={"ops": "portable"})
    err = _cli_error(capsys, ["build-engines", "--model", str(folder)])
    assert "export.precision" in err and "missing" in err


# ------------------------------------------------------------------------------------ files and folders


def test_model_folder_that_is_a_file(capsys, tmp_path):
    f = tmp_path / "model"
    f.write_text("not a folder")
    with pytest.raises(ManifestError, match="is not a folder"):
        Manifest.load(f)
    err = _cli_error(capsys, ["build-engines", "--model", str(f)])
    assert "is not a folder" in err and "does not exist" not in err


def test_export_out_that_is_a_file(capsys, tmp_path):
    f = tmp_path / "out"
    f.write_text("user data")
    err = _cli_error(capsys, ["export", "--config", "tiny", "--out", str(f), "--engine", "none"])
    assert "is a file, not a folder" in err
    assert f.read_text() == "user data"


@pytest.fixture()
def random_checkpoint(tmp_path: Path) -> Path:
    path = tmp_path / "random.pt"
    path.write_bytes(bytes(range(256)) * 40)
    return path


def test_random_bytes_checkpoint_gets_our_own_line(capsys, tmp_path, random_checkpoint):
    err = _cli_error(capsys, ["export", "--checkpoint", str(random_checkpoint), "--out", str(tmp_path / "o"),
                              "--engine", "none"])
    assert "is not a PyTorch checkpoint" in err, err
    assert "weights_only" not in err and "Weights only" not in err


def test_failed_export_leaves_no_new_out_folder(capsys, tmp_path, random_checkpoint):
    out = tmp_path / "new"
    err = _cli_error(capsys, ["export", "--config", "tiny", "--checkpoint", str(random_checkpoint),
                              "--out", str(out), "--engine", "none"])
    assert "not a PyTorch checkpoint" in err
    assert not out.exists()


def test_failed_export_keeps_a_users_existing_folder_and_its_content(capsys, tmp_path, random_checkpoint):
    out = tmp_path / "mine"
    (out / "sub").mkdir(parents=True)
    (out / "notes.txt").write_text("keep me")
    (out / "sub" / "data.bin").write_bytes(b"\1\2")
    _cli_error(capsys, ["export", "--config", "tiny", "--checkpoint", str(random_checkpoint), "--out", str(out),
                        "--engine", "none"])
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == ["notes.txt", "sub", "sub/data.bin"]
    assert (out / "notes.txt").read_text() == "keep me"


# ------------------------------------------------------------------------------- one source of truth each


def _export_parser() -> argparse.ArgumentParser:
    from siamattn.export import cli

    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    return parser


def test_cli_choices_are_the_table_of_export_choices():
    parser = _export_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    export, build = sub.choices["export"], sub.choices["build-engines"]
    for choice in (export_choices.OPS, export_choices.PRECISION, export_choices.ENGINE, export_choices.XCORR,
                   export_choices.DEFORM_CONV):
        action = next(a for a in export._actions if choice.option in a.option_strings)
        assert tuple(action.choices) == choice.names
    action = next(a for a in build._actions if "--engine" in a.option_strings)
    assert tuple(action.choices) == export_choices.BUILD_ENGINE.names


def test_lowerings_implement_exactly_the_table():
    from siamattn.export import lowering

    assert tuple(lowering.XCORR) == export_choices.XCORR.names
    assert tuple(lowering.ROI_POOL) == export_choices.OPS.names
    assert tuple(lowering.DEFORM_CONV) == export_choices.DEFORM_CONV.names
    assert export_choices.XCORR.default == lowering.DEFAULT_XCORR


def test_config_validation_reads_the_table(monkeypatch):
    from siamattn.config import ConfigError, load_config

    with pytest.raises(ConfigError, match=r"'export\.ops' must be 'portable' or 'plugin' \(got 'fancy'\)"):
        load_config("tiny", ["export.ops=fancy"])
    # A value added to the table is accepted by the config without touching siamattn/config.py.
    monkeypatch.setitem(export_choices.OPS.values, "fancy", "test-only")
    assert load_config("tiny", ["export.ops=fancy"]).export.ops == "fancy"


def test_engine_choices_are_the_flavours_tensorrt_env_knows():
    names = set(export_choices.ENGINE.names) - {"auto", "none"}
    assert names == set(tensorrt_env.FLAVOUR_MODULES) == set(export_choices.BUILD_ENGINE.names) - {"auto"}


def test_tensorrt_env_and_engine_builder_need_no_torch():
    code = ("import sys; sys.modules['torch'] = None\n"
            "import siamattn.tensorrt_env, siamattn.export_choices, siamattn.plugins.names, siamattn.export.engine\n"
            "import siamattn.plugins.build\n"
            "print(siamattn.tensorrt_env.resolve_flavour('none'), siamattn.tensorrt_env.gpu_available())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split()[0] == "None"


def test_resolve_flavour(monkeypatch):
    assert tensorrt_env.resolve_flavour("none") is None
    with pytest.raises(tensorrt_env.SiamAttnError, match="unknown TensorRT flavour 'banana'"):
        tensorrt_env.resolve_flavour("banana")
    monkeypatch.setattr(tensorrt_env, "find_flavour", lambda flavour: None)
    assert tensorrt_env.resolve_flavour("auto") is None
    with pytest.raises(tensorrt_env.MissingDependencyError, match=r"'tensorrt-rtx' was requested.*not importable"):
        tensorrt_env.resolve_flavour("tensorrt-rtx")
    found = tensorrt_env.TrtFlavour("tensorrt-rtx", "tensorrt_rtx_bindings", "1.7")
    monkeypatch.setattr(tensorrt_env, "find_flavour", lambda flavour: found if flavour == "tensorrt-rtx" else None)
    assert tensorrt_env.resolve_flavour("auto") == found and found.is_rtx


def test_tensorrt_module_candidates_are_tried_in_order(monkeypatch):
    tried = []
    monkeypatch.setattr(tensorrt_env, "_import", lambda name: tried.append(name) or None)
    assert tensorrt_env.resolve_flavour("auto") is None
    assert tried == ["tensorrt", "tensorrt_rtx", "tensorrt_rtx_bindings"]


def test_gpu_probe_without_cuda_python(monkeypatch):
    monkeypatch.setitem(sys.modules, "cuda.bindings", None)
    assert tensorrt_env.cuda_device_count() == 0
    assert tensorrt_env.engine_flavour_for_this_machine() == "none"


# ------------------------------------------------------------------------ issue 23: inputs and true messages


@pytest.mark.parametrize(("key", "value", "expect"), [
    ("tracker.instance_size", 271, r"config key 'tracker\.instance_size' \(271\) does not match the search graph"),
    ("tracker.exemplar_size", 111, r"config key 'tracker\.exemplar_size' \(111\) does not match the template graph"),
    ("tracker.base_size", 4, r"config key 'tracker\.base_size' \(4\) does not match the search graph's 'cls'"),
    ("anchors.ratios", [0.5, 1.0], r"config key 'anchors \(ratios x scales\)' \(2\) does not match .* 'cls'"),
    ("anchors.stride", 0, r"holds a config this version cannot read: config key 'anchors\.stride' must be >= 1"),
])
def test_manifest_config_that_disagrees_with_its_graphs_names_the_key(capsys, tmp_path, tiny_export_copy, key, value,
                                                                      expect):
    from test_runtime_cli_inputs import write_clip

    clip = write_clip(tmp_path / "clip.avi", frames=3)
    path = tiny_export_copy / "manifest.json"
    data = json.loads(path.read_text())
    section, name = key.split(".")
    data["config"][section][name] = value
    path.write_text(json.dumps(data))
    with pytest.raises(ManifestError, match=expect):
        Manifest.load(tiny_export_copy).config()
    err = _cli_error(capsys, ["track", "--model", str(tiny_export_copy), "--backend", "onnxruntime", "--source",
                              str(clip), "--init", "60,40,48,40", "--quiet"])
    assert re.search(expect, err), err  # refused on load, naming the key: not an onnxruntime or "FP16 overflow" error


def test_unreadable_manifest_is_not_called_invalid_json(tiny_export_copy, monkeypatch):
    path = tiny_export_copy / "manifest.json"
    from conftest import make_unreadable

    make_unreadable(monkeypatch, path)
    with pytest.raises(ManifestError, match=r"manifest\.json cannot be read \(Permission denied\)") as info:
        Manifest.load(tiny_export_copy)
    assert "JSON" not in str(info.value)


def test_bad_json_manifest_is_invalid_json(tiny_export_copy):
    (tiny_export_copy / "manifest.json").write_text("{not json")
    with pytest.raises(ManifestError, match="is not valid JSON"):
        Manifest.load(tiny_export_copy)


def test_legacy_torch_checkpoints_load_and_damaged_ones_are_named_rightly(tmp_path):
    import torch

    from siamattn.errors import SiamAttnError
    from siamattn.training.model.weights import load_torch_file

    legacy = tmp_path / "legacy.pt"
    torch.save({"w": torch.ones(3)}, legacy, _use_new_zipfile_serialization=False)
    assert torch.equal(load_torch_file(legacy)["w"], torch.ones(3))
    cut = tmp_path / "cut.pt"
    cut.write_bytes(legacy.read_bytes()[:120])
    with pytest.raises(SiamAttnError, match=r"is a damaged PyTorch file in torch\.save's legacy") as info:
        load_torch_file(cut)
    assert "not a torch.save zip archive" not in str(info.value)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"hello" * 50)
    with pytest.raises(SiamAttnError, match=r"neither a torch\.save zip archive nor torch\.save's legacy format"):
        load_torch_file(junk)
