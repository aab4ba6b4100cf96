"""``siamattn eval --workers/--devices/--resume/--shard/--merge`` (issue 22): on a small generated GOT-10k-layout
dataset with the tiny export on ONNX Runtime, every way of splitting the run gives the serial run's box files
byte for byte and its metrics; a worker that fails or is killed fails the run naming its sequence."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from siamattn.cli import main
from tests.test_train import write_got10k

SEQS = 4


def eval_args(model: Path, root: Path, out: Path, *extra: str) -> list[str]:
    return ["eval", "--model", str(model), "--backend", "onnxruntime", "--device", "cpu", "--dataset", "got10k",
            "--root", str(root), "--split", "train", "--out", str(out), "--quiet", *extra]


def boxes(out: Path) -> dict[str, bytes]:
    """Every box file of an eval output (the *_time.txt files hold measured seconds and differ run to run)."""
    return {p.name: p.read_bytes() for p in sorted((out / "results" / "siamattn").rglob("*_001.txt"))}


def metrics(out: Path) -> tuple[dict, dict]:
    s = json.loads((out / "summary.json").read_text())
    return s["overall"], s["sequences"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_got10k(tmp_path_factory.mktemp("got10k"), num=SEQS, length=6)


@pytest.fixture(scope="module")
def serial(tiny_export, data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("serial") / "eval"
    assert main(eval_args(tiny_export, data, out)) == 0
    assert len(boxes(out)) == SEQS
    return out


def test_two_workers_write_the_serial_runs_files(tiny_export, data, serial, tmp_path):
    out = tmp_path / "eval"
    assert main(eval_args(tiny_export, data, out, "--workers", "2")) == 0
    assert boxes(out) == boxes(serial)
    assert metrics(out) == metrics(serial)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in serial.iterdir())


def test_shards_merged_give_the_serial_run(tiny_export, data, serial, tmp_path):
    a, b, merged = tmp_path / "a", tmp_path / "b", tmp_path / "merged"
    assert main(eval_args(tiny_export, data, a, "--shard", "1/2")) == 0
    assert main(eval_args(tiny_export, data, b, "--shard", "2/2")) == 0
    assert len(boxes(a)) == len(boxes(b)) == SEQS // 2 and not set(boxes(a)) & set(boxes(b))
    assert not (a / "summary.json").exists()  # a shard only tracks
    assert main(["eval", "--merge", str(a), str(b), "--dataset", "got10k", "--root", str(data), "--split", "train",
                 "--out", str(merged), "--quiet"]) == 0
    assert boxes(merged) == boxes(serial) and metrics(merged) == metrics(serial)


def test_resume_keeps_finished_sequences_and_redoes_missing_and_partial_ones(tiny_export, data, serial, tmp_path):
    out = tmp_path / "eval"
    shutil.copytree(serial, out)
    res = out / "results" / "siamattn"
    names = sorted(p.name for p in res.iterdir())
    shutil.rmtree(res / names[0])  # never started
    partial = res / names[1] / f"{names[1]}_001.txt"
    partial.write_text("\n".join(partial.read_text().splitlines()[:3]) + "\n")  # cut off
    (out / "summary.json").unlink()
    kept = {n: (res / n / f"{n}_001.txt").stat() for n in names[2:]}
    assert main(eval_args(tiny_export, data, out, "--resume")) == 0
    for n, st in kept.items():
        now = (res / n / f"{n}_001.txt").stat()
        assert (now.st_ino, now.st_mtime_ns) == (st.st_ino, st.st_mtime_ns)  # not tracked again
    assert boxes(out) == boxes(serial) and metrics(out) == metrics(serial)


def test_a_failing_worker_fails_the_run_naming_its_sequence(tiny_export, data, tmp_path, capsys):
    root = tmp_path / "got10k"
    shutil.copytree(data, root)
    bad = sorted((root / "train").iterdir())[1]
    (bad / "00000003.jpg").write_bytes(b"not an image")
    assert main(eval_args(tiny_export, root, tmp_path / "eval", "--workers", "2")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"failed on sequence '{bad.name}'" in err[0] and "could not be read" in err[0], err
    assert not (tmp_path / "eval").exists()  # without --resume nothing is kept


def test_a_killed_worker_fails_the_run_naming_its_sequence(tiny_export, data, tmp_path):
    victim = sorted(p.name for p in (data / "train").iterdir() if p.is_dir())[2]
    flag, out = tmp_path / "paused.pid", tmp_path / "eval"
    env = dict(os.environ, SIAMATTN_PAUSE_AT=f"eval:{victim}", SIAMATTN_PAUSE_FILE=str(flag))
    proc = subprocess.Popen([sys.executable, "-m", "siamattn", *eval_args(tiny_export, data, out, "--devices",
                                                                          "cpu,cpu", "--resume")],
                            stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 180
    while not flag.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert flag.exists(), proc.communicate()[1][-2000:]
    os.kill(int(flag.read_text()), signal.SIGKILL)  # the worker that took the sequence
    err = proc.communicate(timeout=120)[1]
    last = err.strip().splitlines()[-1]
    assert proc.returncode == 2 and "Traceback" not in err, err[-2000:]
    assert f"died (killed by signal 9) while tracking sequence '{victim}'" in last, last
    # --resume kept what the other worker finished, and nothing of the killed sequence
    assert f"{victim}_001.txt" not in boxes(out)


@pytest.mark.parametrize("extra, expected", [
    (["--workers", "0"], "--workers must be 1 or more processes, got 0"),
    (["--devices", "gpu0"], "--devices 'gpu0': give a comma-separated list of cpu, cuda or cuda:K"),
    (["--shard", "3/2"], "--shard '3/2': give I/N with 1 <= I <= N"),
    (["--shard", "1/2", "--overwrite"], "--shard writes into --out as it goes"),
], ids=["workers-0", "devices", "shard", "shard-overwrite"])
def test_bad_eval_splits_are_one_line(tmp_path, capsys, extra, expected):
    assert main(eval_args(tmp_path / "model", tmp_path, tmp_path / "eval", *extra)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0], err


def test_merge_refuses_missing_sequences_and_a_model(serial, data, tmp_path, capsys):
    part = tmp_path / "part"
    shutil.copytree(serial, part)
    gone = sorted((part / "results" / "siamattn").iterdir())[0]
    shutil.rmtree(gone)
    base = ["eval", "--merge", str(part), "--dataset", "got10k", "--root", str(data), "--split", "train", "--out",
            str(tmp_path / "m")]
    assert main(base) == 2
    err = capsys.readouterr().err
    assert f"1 of {SEQS} sequences have no finished results" in err and gone.name in err
    assert not (tmp_path / "m").exists()
    assert main([*base, "--model", str(tmp_path)]) == 2
    assert "--merge scores the result folders of earlier runs" in capsys.readouterr().err
    assert main(["eval", "--merge", str(tmp_path), "--dataset", "got10k", "--root", str(data), "--out",
                 str(tmp_path / "m")]) == 2
    assert "has no results/siamattn/ folder" in capsys.readouterr().err


def test_resume_refuses_a_folder_that_is_not_an_eval(tiny_export, data, tmp_path, capsys):
    out = tmp_path / "eval"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(eval_args(tiny_export, data, out, "--resume")) == 2
    assert "is not an earlier eval output (it holds notes.txt)" in capsys.readouterr().err
    assert (out / "notes.txt").read_text() == "mine"


def test_readme_eval_lines(tiny_export, data, serial, tmp_path, monkeypatch):
    """The README's --workers, --shard and --merge lines as typed (the second shard: the same line with 2/2
    into part2/), on the dataset of the serial run laid out as its default val split."""
    from tests.test_readme_commands import command, fill

    shutil.copytree(tiny_export, tmp_path / "model")
    shutil.copytree(data / "train", tmp_path / "got10k" / "val")
    monkeypatch.chdir(tmp_path)
    root = {"GOT10K_ROOT": "got10k"}
    assert main(fill(command("siamattn eval --workers 2"), **root)) == 0
    shard = command("siamattn eval --shard 1/2")
    assert main(fill(shard, **root)) == 0
    assert main(fill(shard.replace("1/2", "2/2").replace("part1/", "part2/"), **root)) == 0
    assert main(fill(command("siamattn eval --merge part1/ part2/"), **root)) == 0
    for out in (tmp_path / "eval2", tmp_path / "merged"):
        assert boxes(out) == boxes(serial) and metrics(out) == metrics(serial)


def test_a_worker_gets_its_gpu_as_cuda(tiny_export, data, tmp_path, capsys):
    """--devices cuda:1: the worker asks its backend for 'cuda' (CUDA_VISIBLE_DEVICES=1 names the GPU); on a
    machine without one, its backend's refusal comes back as one line naming the worker."""
    pytest.importorskip("onnxruntime")
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this machine's ONNX Runtime has CUDA")
    assert main(eval_args(tiny_export, data, tmp_path / "eval", "--devices", "cuda:1")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: eval worker 1 failed on its start:") and "CUDA" in err[0], err
