"""The README's commands, run as a user types them: the words of each line as the README writes them, with its
defaults, in a folder where its file names exist; only the placeholders (GOT10K_ROOT, NAME, x,y,w,h) are filled
in, with small real inputs (a few bunny frames, a generated GOT-10k folder, checkpoints in the layouts the
importers read, with seeded random weights). ``test_every_readme_command_is_run_here`` fails when the README
gains a command that no test here runs.

A default that failed for every model while CI stayed green (issue 23: FP16 export with the batch graphs) is why
nothing here overrides a default; ``test_a_planted_fp16_regression_fails_the_export_line`` shows this file would
have caught it."""

from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from siamattn.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BUNNY_INIT = "232,240,296,320"  # the bunny in frame 0 of bigbuckbunny.mp4 (README)
CLIP_FRAMES = 4
PYSOT_EXPERIMENT = "siamrpn_alex_dwxcorr"  # the smallest of pysot's networks


def readme_commands() -> list[str]:
    """Every ``siamattn ...`` line of the README's bash blocks, continuation lines joined, comments dropped."""
    lines: list[str] = []
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line.startswith(("siamattn ", "make ")):
                lines.append(" ".join(line.split()))
    return lines


def fill(line: str, **values: str) -> list[str]:
    """The README line as argv, its placeholders replaced (whole words only)."""
    for key, value in values.items():
        line = re.sub(rf"(?<!\w){re.escape(key)}(?!\w)", value, line)
    return shlex.split(line)[1:]


def command(prefix: str) -> str:
    """The one README line that starts with ``prefix`` (fails when there is none, or several)."""
    found = [c for c in readme_commands() if c.startswith(prefix)]
    assert len(found) == 1, f"README has {len(found)} lines starting with {prefix!r}: {found}"
    return found[0]


# Every README command line -> the test below that runs it. Lines with "..." extend the line before them.
COVERED = {
    "make demo": "test_make_demo (its command: siamattn demo)",
    "make test": ".ci/run (CI runs it on every submission)",
    "siamattn configs": "test_configs",
    "siamattn train --config tiny": "test_train",
    "siamattn import --from siamattn-authors": "test_import_export_track_check_eval_build_engines",
    "siamattn import --from pysot": "test_import_pysot",
    "siamattn export --config siamattn_r50 --checkpoint ck.pt": "test_import_export_track_check_eval_build_engines",
    "siamattn export --config siamattn_r50 [--checkpoint ck.pt]": "test_import_export_track_check_eval_build_engines",
    "siamattn export --checkpoint assets/demo/model.pt --out": "test_export_of_the_shipped_demo_model",
    "siamattn export --checkpoint assets/demo/model.pt --precision int8": "test_int8_export_and_the_comparison",
    "siamattn check --model fp32/ --model fp16/ --model int8/": "test_int8_export_and_the_comparison",
    "siamattn track --model model/": "test_import_export_track_check_eval_build_engines",
    "siamattn demo --source": "tests/test_live_sources.py::test_demo_tracks_the_demo_model_on_a_live_stream",
    "siamattn export --checkpoint ck.pt --set tracker.long_term=true": "test_long_term_export_and_track",
    "siamattn track --model lt/": "test_long_term_export_and_track",
    "siamattn track --source http://": "tests/test_live_sources.py::test_readme_live_line_tracks_a_stream_with_the_"
                                       "tiny_model",
    "siamattn check --model model/": "test_import_export_track_check_eval_build_engines",
    "siamattn check ... --polygraphy": "test_import_export_track_check_eval_build_engines",
    "siamattn eval --model model/": "test_import_export_track_check_eval_build_engines",
    "siamattn eval --workers 2": "tests/test_eval_workers.py::test_readme_eval_lines",
    "siamattn eval --shard 1/2": "tests/test_eval_workers.py::test_readme_eval_lines",
    "siamattn eval --merge part1/ part2/": "tests/test_eval_workers.py::test_readme_eval_lines",
    "siamattn build-engines --model model/": "test_import_export_track_check_eval_build_engines",
    "siamattn plugins build": "tests/test_plugins_build.py::test_plugins_build_with_its_defaults",
    "siamattn plugins emulate": "tests/test_plugins_emulation.py::test_cli_emulate_with_its_defaults",
    "siamattn vot --model model/ --write-trackers": (
        "tests/test_vot.py::test_readme_vot_lines_as_typed_and_vot_test_of_a_multi_object_entry"),
}


def test_every_readme_command_is_run_here():
    commands = readme_commands()
    assert len(commands) >= 10, commands
    uncovered = [c for c in commands if not any(c.startswith(p) for p in COVERED)]
    assert not uncovered, f"README commands no test runs: {uncovered}"
    stale = [p for p in COVERED if not any(c.startswith(p) for c in commands)]
    assert not stale, f"tests for commands the README no longer has: {stale}"


# ------------------------------------------------------------------------------------------------- inputs


def write_clip(path: Path, n: int = CLIP_FRAMES) -> Path:
    from conftest import bunny_frames

    frames = bunny_frames(n)
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 24, (w, h))
    for f in frames:
        writer.write(f)
    writer.release()
    return path


def write_got10k_split(root: Path, split: str) -> Path:
    """GOT-10k layout: two short sequences of the bunny clip's first frames, the box moving by a few pixels."""
    from conftest import bunny_frames

    frames = bunny_frames(CLIP_FRAMES)
    names = []
    for s in range(2):
        name = f"GOT-10k_{split.capitalize()}_{s + 1:06d}"
        names.append(name)
        seq = root / split / name
        seq.mkdir(parents=True)
        boxes = []
        for i, frame in enumerate(frames):
            small = cv2.resize(frame, (320, 180))
            cv2.imwrite(str(seq / f"{i + 1:08d}.jpg"), small)
            boxes.append(f"{58 + i + s},{60 + i},{74},{80}")
        (seq / "groundtruth.txt").write_text("\n".join(boxes) + "\n")
    (root / split / "list.txt").write_text("\n".join(names) + "\n")
    return root


def write_authors_checkpoint(folder: Path) -> tuple[Path, Path]:
    """``checkpoint_vot2018.pth`` in the SiamAttn authors' key layout (their training container and DataParallel
    prefix) holding a seeded random-init model's weights, and ``config_vot2018.yaml`` in their format."""
    from test_import_authors import write_yaml

    from siamattn.config import load_config
    from siamattn.export.random_model import random_model
    from siamattn.training.importers import siamattn_authors
    from siamattn.training.importers.keymap import _their_name

    prefixes = siamattn_authors.TABLE.prefixes()
    ours = random_model(load_config("siamattn_r50"), seed=0).state_dict()
    theirs = {_their_name(k, prefixes): v for k, v in ours.items()}
    assert None not in theirs, "an entry of our model has no key of theirs"
    ck = folder / "checkpoint_vot2018.pth"
    torch.save({"epoch": 20, "state_dict": {f"module.{k}": v for k, v in theirs.items()}}, ck)
    return ck, write_yaml(folder / "config_vot2018.yaml")


# ------------------------------------------------------------------------------------------------- tests


def test_configs(capsys):
    assert main(fill(command("siamattn configs"))) == 0
    out = capsys.readouterr().out
    assert "siamattn_r50" in out and "tiny" in out


def test_train(tmp_path, monkeypatch, capsys, one_torch_thread):
    """tiny's own training defaults are small enough for this (a smoke run, configs/tiny.yaml)."""
    write_got10k_split(tmp_path / "got10k", "train")
    monkeypatch.chdir(tmp_path)
    assert main(fill(command("siamattn train --config tiny"), GOT10K_ROOT=str(tmp_path / "got10k"))) == 0
    run = tmp_path / "runs" / "tiny"
    assert (run / "last.pt").is_file() and (run / "config.yaml").is_file()
    log = (run / "log.csv").read_text().splitlines()
    assert len(log) > 2 and all(np.isfinite(float(v)) for v in log[-1].split(",")[1:] if v)


def test_import_pysot(tmp_path, monkeypatch, capsys):
    from test_import_pysot import their_keys, their_state, write_experiment

    experiment = write_experiment(tmp_path / "pysot", PYSOT_EXPERIMENT)
    torch.save({"state_dict": their_state(their_keys(PYSOT_EXPERIMENT), "cpu")}, tmp_path / "model.pth")
    monkeypatch.chdir(tmp_path)
    assert main(fill(command("siamattn import --from pysot"), NAME=PYSOT_EXPERIMENT)) == 0, capsys.readouterr().err
    assert experiment.is_file() and (tmp_path / "ck.pt").is_file()


@pytest.mark.slow
def test_long_term_export_and_track(tmp_path, monkeypatch, capsys, one_torch_thread):
    """The long-term lines on pysot's smallest network (imported by the README's pysot line): the export with the
    lost-window graphs (with the batch graphs of the default export), then tracking with --long-term."""
    test_import_pysot(tmp_path, monkeypatch, capsys)
    write_clip(tmp_path / "video.mp4")
    assert main(fill(command("siamattn export --checkpoint ck.pt --set tracker.long_term=true"))) == 0, \
        capsys.readouterr().err
    manifest = json.loads((tmp_path / "lt" / "manifest.json").read_text())
    assert {"search_lost", "search_multi"} <= set(manifest["graphs"])
    assert manifest["graphs"]["search_lost"]["inputs"][0]["shape"] == [1, 3, 831, 831]
    import importlib.util

    if importlib.util.find_spec("tensorrt_rtx_bindings") is not None:  # --engine auto: the lost graph's engine too
        assert manifest["graphs"]["search_lost"]["engine"], manifest["engines"]["skipped"]
    assert main(fill(command("siamattn track --model lt/"), **{"x,y,w,h": BUNNY_INIT})) == 0, capsys.readouterr().err
    assert "frames" in capsys.readouterr().out


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A user's folder: the authors' checkpoint and YAML, video.mp4, and a GOT-10k root."""
    ws = tmp_path_factory.mktemp("user")
    write_authors_checkpoint(ws)
    write_clip(ws / "video.mp4")
    write_got10k_split(ws / "got10k", "val")
    return ws


def run_line(prefix: str, ws: Path, capsys, **values: str) -> tuple[int, str, str]:
    argv = fill(command(prefix), **values)
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.slow
def test_import_export_track_check_eval_build_engines(workspace, monkeypatch, capsys, one_torch_thread):
    """The README's workflow on the authors' network, one line after the other, each with its defaults: import
    their checkpoint, export (FP16, batch graphs, verification, engines when a TensorRT is installed), track, check
    (lock step against the PyTorch FP32 model), evaluate, build the engines again from the export alone."""
    ws = workspace
    monkeypatch.chdir(ws)
    rc, out, err = run_line("siamattn import --from siamattn-authors", ws, capsys)
    assert rc == 0, err
    assert (ws / "ck.pt").is_file()

    rc, out, err = run_line("siamattn export --config siamattn_r50 --checkpoint ck.pt", ws, capsys)
    assert rc == 0, err
    manifest = json.loads((ws / "model" / "manifest.json").read_text())
    assert manifest["export"]["precision"] == "fp16" and manifest["export"]["max_targets"] > 1
    assert {"search_multi", "refine_box_multi", "refine_mask_multi"} <= set(manifest["graphs"])
    for name, checked in manifest["verification"].items():  # FP16 graphs stay close to PyTorch
        assert max(v["rel_err"] for v in checked.values()) < 5e-2, (name, checked)
    import importlib.util

    rtx = importlib.util.find_spec("tensorrt_rtx_bindings") is not None
    if rtx:  # --engine auto builds with the TensorRT that is installed
        assert manifest["engines"]["backend"] == "tensorrt-rtx"
        built = [n for n in manifest["order"] if manifest["graphs"][n]["engine"]]
        assert set(built) | set(manifest["engines"]["skipped"]) == set(manifest["order"]) and built

    xywh = {"x,y,w,h": BUNNY_INIT}
    rc, out, err = run_line("siamattn track --model model/", ws, capsys, **xywh)
    assert rc == 0, err
    track = json.loads((ws / "out.json").read_text())
    frames = track["frames"] if "frames" in track else track["tracks"][0]["frames"]
    assert len(frames) == CLIP_FRAMES and (ws / "out.mp4").stat().st_size > 0

    rc, out, err = run_line("siamattn check --model model/", ws, capsys, **xywh)
    assert rc in (0, 1), err  # 1: the verdict failed; the run itself worked (docs/CHECK.md)
    check_line = command("siamattn check --model model/")
    poly = command("siamattn check ... --polygraphy").replace("siamattn check ...", check_line)
    assert main(fill(poly, **xywh)) == 2  # the report of the line before is never replaced without --overwrite
    assert "already exists and is not empty; pass --overwrite" in capsys.readouterr().err
    shutil.rmtree(ws / "check_report")  # as a user who runs the second form alone
    rc_poly = main(fill(poly, **xywh))
    capsys.readouterr()
    assert rc_poly == rc
    assert (ws / "poly" / "index.json").is_file()

    rc, out, err = run_line("siamattn eval --model model/", ws, capsys, GOT10K_ROOT=str(ws / "got10k"))
    assert rc == 0, err
    summary = json.loads((ws / "eval" / "summary.json").read_text())
    assert summary["num_sequences"] == 2 and 0.0 <= summary["overall"]["ao"] <= 1.0
    assert all(s["num_frames"] == CLIP_FRAMES - 1 for s in summary["sequences"].values())  # all but the init frame

    if rtx:
        before = {n: manifest["graphs"][n]["engine"] for n in manifest["order"]}
        rc, out, err = run_line("siamattn build-engines --model model/", ws, capsys)
        assert rc == 0, err
        again = json.loads((ws / "model" / "manifest.json").read_text())
        assert {n for n in again["order"] if again["graphs"][n]["engine"]} == {n for n, e in before.items() if e}


def test_make_demo(tmp_path, monkeypatch, capsys, one_torch_thread):
    """'make demo' is 'siamattn demo' once the venv is set up (Makefile): export the shipped model, track the
    whole bunny clip, check it against PyTorch; the verdict must be PASS."""
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^demo: .*\n\t\$\(BIN\)/siamattn demo\n", makefile, re.M), "'make demo' changed"
    monkeypatch.chdir(tmp_path)
    assert main(["demo"]) == 0, capsys.readouterr().err
    out = tmp_path / "out" / "demo"
    report = json.loads((out / "check" / "report.json").read_text())
    assert report["verdict"] == "PASS", report["failures"]
    tracked = json.loads((out / "bigbuckbunny_tracked.json").read_text())
    assert len(tracked["frames"]) >= 100 and (out / "bigbuckbunny_tracked.mp4").stat().st_size > 0
    assert (out / "model" / "manifest.json").is_file() and (out / "check" / "report.png").is_file()


def test_export_of_the_shipped_demo_model(tmp_path, monkeypatch, capsys, one_torch_thread):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "assets").symlink_to(ROOT / "assets")
    rc, out, err = run_line("siamattn export --checkpoint assets/demo/model.pt --out", tmp_path, capsys)
    assert rc == 0, err
    manifest = json.loads((tmp_path / "model" / "manifest.json").read_text())
    assert manifest["export"]["precision"] == "fp16"
    assert "search_multi" in manifest["graphs"] and manifest["weights"]["source"] != "random-init"
    import importlib.util

    import onnx

    # the attention's deformable conv is in the shipped model, so in both search graphs (issue 25): one per
    # RPN level at least
    counts = {}
    for name in ("search", "search_multi"):
        graph = onnx.load(tmp_path / "model" / manifest["graphs"][name]["file"], load_external_data=False)
        counts[name] = [n.op_type for n in graph.graph.node].count("DeformConv")
    assert counts["search"] >= 3 and counts["search_multi"] == counts["search"], counts
    if importlib.util.find_spec("tensorrt_rtx_bindings") is not None:  # --engine auto: engines for every graph
        assert all(manifest["graphs"][n]["engine"] for n in manifest["order"]), manifest["engines"]["skipped"]
        # TensorRT-RTX builds that DeformConv with our plugin library
        assert manifest["export"]["trt_profile"]["deform_conv_runs"].startswith("ours: siamattn DeformConv plugin")


def test_a_planted_fp16_regression_fails_the_export_line(tmp_path, monkeypatch, capsys, one_torch_thread):
    """Undo the FP16 pass's ConstantOfShape typing (the bug of issue 23): the README's export line must fail."""
    from siamattn.export import fp16

    monkeypatch.setattr(fp16, "_type_constant_of_shape", lambda node: None)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "assets").symlink_to(ROOT / "assets")
    rc, out, err = run_line("siamattn export --checkpoint assets/demo/model.pt --out", tmp_path, capsys)
    assert rc == 2 and "search_multi" in err and "Concat" in err, err


def test_int8_export_and_the_comparison(tmp_path, monkeypatch, capsys, one_torch_thread):
    """The INT8 line as typed (calibrated on the demo clip by default), then the several-export check of the same
    model's FP32, FP16 and INT8 exports (the first two made here, as a user would with --precision)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "assets").symlink_to(ROOT / "assets")
    rc, out, err = run_line("siamattn export --checkpoint assets/demo/model.pt --precision int8", tmp_path, capsys)
    assert rc == 0, err
    manifest = json.loads((tmp_path / "int8" / "manifest.json").read_text())
    assert manifest["export"]["precision"] == "int8" and "bigbuckbunny" in json.dumps(manifest["export"]["int8"])
    for precision in ("fp32", "fp16"):
        assert main(["export", "--checkpoint", "assets/demo/model.pt", "--precision", precision, "--out",
                     f"{precision}/", "--engine", "none", "--no-verify"]) == 0
    write_clip(tmp_path / "video.mp4")
    capsys.readouterr()
    rc, out, err = run_line("siamattn check --model fp32/ --model fp16/ --model int8/", tmp_path, capsys,
                            **{"x,y,w,h": BUNNY_INIT})
    assert rc in (0, 1), err  # 1: an export's verdict failed; the comparison itself ran
    table = json.loads((tmp_path / "check_report" / "compare.json").read_text())
    assert [r["precision"] for r in table["rows"]] == ["fp32", "fp16", "int8"]
