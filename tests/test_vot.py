"""``siamattn vot``: the TraX server driven by the VOT committee's own client (``vot-trax``) and toolkit
(``vot-toolkit`` 0.9, installed by ``make setup`` as a test extra), offline, with the shipped demo model.

* a TraX session from the committee's client: rectangle, mask and polygon objects in, one added mid-sequence,
  masks out; every reply equals what an in-process MultiTracker gives; stray prints of the tracker (Python and C
  level) end up on stderr, the stream the client reads holds only TraX messages; a quit ends the server with 0;
* bad input is one line: a special region, an empty mask, a bad model folder, a workspace without a stack;
* ``--write-trackers``: the entry the toolkit's own registry reads back, other entries kept, multi-object
  sessions when the stack asks for them;
* the toolkit end to end: the README's lines (``vot initialize``, ``siamattn vot --write-trackers``, ``vot test``),
  ``vot test`` of a multi-object entry, ``vot evaluate`` + ``vot analysis`` on local workspaces made from the
  project's generated sequences (real imagery): a VOT2018 workspace (rectangles; its unsupervised experiment
  compared with ``siamattn eval`` on the same sequences) and a VOTS-style one (masks in and out).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from siamattn.cli import main
from siamattn.errors import MissingDependencyError

trax = pytest.importorskip("trax", reason="vot-trax is installed by make setup (the 'vot' extra)")

ROOT = Path(__file__).resolve().parents[1]
DEMO_CHECKPOINT = ROOT / "assets" / "demo" / "model.pt"
BIN = Path(sys.executable).parent
SEQ_LEN = 30


@pytest.fixture(scope="module")
def demo_model() -> Path:
    from conftest import cached_export

    return cached_export("demo", checkpoint=str(DEMO_CHECKPOINT))


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    """Two generated GOT-10k-layout sequences (real imagery, masks), 30 frames of 320x240."""
    G = pytest.importorskip("siamattn.training.generator")
    try:
        G.check_sources()
    except MissingDependencyError as exc:  # pragma: no cover - depends on the environment
        pytest.skip(f"generator imagery not installed: {exc}")
    root = tmp_path_factory.mktemp("gen")
    G.generate(root, num_sequences=2, length=SEQ_LEN, size=(320, 240), seed=0, split="val", progress=False)
    return root


def _sequences(generated: Path) -> list[Path]:
    split = generated / "val"
    return [split / n for n in (split / "list.txt").read_text().split()]


def _mask(seq: Path, i: int) -> np.ndarray:
    return (cv2.imread(str(seq / "masks" / f"{i + 1:08d}.png"), cv2.IMREAD_GRAYSCALE) > 0).astype(np.uint8)


def _boxes(seq: Path) -> np.ndarray:
    return np.loadtxt(seq / "groundtruth.txt", delimiter=",").reshape(-1, 4)


def _server(model: Path, *args: str, prelude: str = "", stderr=subprocess.PIPE) -> subprocess.Popen:
    """``siamattn vot`` in a child process, as the toolkit starts it (``prelude``: Python run before main)."""
    code = f"import sys\n{prelude}\nfrom siamattn.cli import main\nsys.exit(main())"
    return subprocess.Popen([sys.executable, "-c", code, "vot", "--model", str(model), "--backend", "onnxruntime",
                             "--device", "cpu", *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr)


def _client(proc: subprocess.Popen, log: list[str]):
    from trax.client import Client

    return Client(stream=(proc.stdin.fileno(), proc.stdout.fileno()), timeout=60, log=log.append)


def _image(path: Path):
    return {"color": trax.FileImage.create(str(path))}


def _mask_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


# Stray output of the tracker, from Python and straight to file descriptor 1 (as a C library would write).
NOISE = """
import os
from siamattn.runtime import tracker as T
_track = T.MultiTracker.track
def _noisy(self, frame):
    print("stray python print")
    os.write(1, b"stray fd-1 write\\n")
    return _track(self, frame)
T.MultiTracker.track = _noisy
"""


def test_a_trax_session_gives_the_trackers_masks_and_keeps_stdout_for_the_protocol(demo_model, generated, tmp_path):
    from siamattn.runtime.tracker import MultiTracker
    from siamattn.toolkit.metrics import vot_init_box

    seq = _sequences(generated)[0]
    frames = [seq / f"{i + 1:08d}.jpg" for i in range(4)]
    box = _boxes(seq)[0]
    mask0 = _mask(seq, 0)
    # a rotated rectangle around the target of frame 2: initialises from vot_init_box, as siamattn eval does
    c, (w, h) = _boxes(seq)[2][:2] + _boxes(seq)[2][2:] / 2, _boxes(seq)[2][2:]
    poly = cv2.boxPoints(((float(c[0]), float(c[1])), (float(w), float(h)), 12.0)).astype(np.float64)

    log: list[str] = []
    err = tmp_path / "stderr.txt"
    with err.open("wb") as err_file:
        proc = _server(demo_model, "--multiobject", prelude=NOISE, stderr=err_file)
        client = _client(proc, log)
        assert client.get("multiobject") is True
        objects = [(trax.Rectangle.create(*box), {}), (trax.Mask.create(mask0), {})]
        replies = [client.initialize(_image(frames[0]), objects, {})[0]]
        replies.append(client.frame(_image(frames[1]), {}, [])[0])
        replies.append(client.frame(_image(frames[2]), {}, [(trax.Polygon.create([tuple(p) for p in poly]), {})])[0])
        replies.append(client.frame(_image(frames[3]), {}, [])[0])
        client.quit()
        assert proc.wait(30) == 0
    # the same objects in this process
    ref = MultiTracker(demo_model, backend="onnxruntime", device="cpu")
    img = [cv2.imread(str(f)) for f in frames]
    ids = [ref.add(img[0], box), ref.add(img[0], _mask_box(mask0))]
    expected = [ref.track(img[1])]
    expected.append(ref.track(img[2]))
    ids.append(ref.add(img[2], vot_init_box(poly)))
    expected.append(ref.track(img[3]))

    assert [r.bounds() for r, _ in replies[0][:1]] == [pytest.approx(tuple(box), abs=1e-3)]  # init: its own region
    assert len(replies[1]) == 2 and len(replies[2]) == 3 and len(replies[3]) == 3  # + the object added on frame 2
    for reply, results in zip(replies[1:], expected, strict=True):
        for (region, props), tid in zip(reply, list(results), strict=False):
            mine = results[tid]
            assert isinstance(region, trax.Mask)  # the model has a mask head: masks go out
            got = np.zeros((240, 320), np.uint8)
            x, y = region.offset()
            patch = region.array()
            got[y:y + patch.shape[0], x:x + patch.shape[1]] = patch
            assert _iou(got > 0, mine.mask.to_frame() > 0) > 0.99
            assert float(props["confidence"]) == pytest.approx(mine.score, abs=1e-4)
    np.testing.assert_allclose(np.array(list(replies[2][2][0])), poly, atol=1e-3)  # the new object: its own region
    assert list(expected[2]) == ids
    stream = "".join(log)
    assert "stray" not in stream and all(line.startswith("@@TRAX:") for line in stream.splitlines())
    assert err.read_text().count("stray python print") == 3 and err.read_text().count("stray fd-1 write") == 3


def test_bad_trax_input_ends_the_session_with_one_line(demo_model, generated):
    frame = _sequences(generated)[0] / "00000001.jpg"
    # an empty mask, through the committee's client
    proc = _server(demo_model)
    client = _client(proc, [])
    with pytest.raises(trax.TraxException, match="mask region to initialise from is empty"):
        client.initialize(_image(frame), [(trax.Mask.create(np.zeros((6, 6), np.uint8), x=3, y=3), {})], {})
    assert proc.wait(30) == 2
    err = proc.stderr.read().decode().strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: the TraX mask region to initialise from is empty"), err
    # a special region (vot-trax's client crashes on one, so the message is written as TraX text)
    proc = _server(demo_model)
    out, err = proc.communicate(f'@@TRAX:initialize "0" \n@@TRAX:frame "file://{frame}" \n'.encode(), timeout=30)
    assert proc.returncode == 2
    assert err.decode().strip().splitlines() == [
        "error: TraX region type 'special' cannot initialise the tracker; send a rectangle, polygon or mask"]
    assert out.decode().splitlines()[-1].startswith('@@TRAX:quit "trax.reason=TraX region type')
    # the client closes the connection without a quit message: the session is over, not an error
    proc = _server(demo_model)
    assert proc.stdout.readline().startswith(b"@@TRAX:hello")
    proc.stdin.close()
    assert proc.wait(30) == 0
    assert proc.stderr.read().decode().strip() == "siamattn vot: the TraX client closed the connection"
    # a bad model folder: one line, before any protocol output
    proc = _server(demo_model.parent / "no-such-export")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2 and out == b""
    assert len(err.decode().strip().splitlines()) == 1 and "no-such-export" in err.decode()


def test_regions_in_and_out():
    """The region conversions on their own: every kind of TraX region, every --region mode."""
    from siamattn.errors import InputError
    from siamattn.runtime.postprocess import FrameMask
    from siamattn.runtime.tracker import TrackResult
    from siamattn.runtime.trax_server import init_box, out_region, read_frame

    assert init_box(trax.Rectangle.create(5, 6, 7, 8)) == (5, 6, 7, 8)
    m = np.zeros((10, 12), np.uint8)
    m[2:5, 3:9] = 1
    assert init_box(trax.Mask.create(m, x=10, y=20)) == (13, 22, 6, 3)
    square = [(10.0, 10.0), (30.0, 10.0), (30.0, 20.0), (10.0, 20.0)]
    assert init_box(trax.Polygon.create(square)) == pytest.approx((10, 10, 20, 10))
    with pytest.raises(InputError, match="special"):
        init_box(trax.Special.create(0))

    patch = np.ones((4, 5), np.uint8)
    polygon = np.array([[1, 2], [6, 2], [6, 8], [1, 8]], np.float32)
    res = TrackResult((1.0, 2.0, 5.0, 6.0), 0.9, polygon, FrameMask(patch, 7, 8, (40, 30)))
    assert out_region(res, "rectangle").bounds() == (1, 2, 5, 6)
    poly = out_region(res, "polygon")
    assert isinstance(poly, trax.Polygon) and list(poly) == [tuple(p) for p in polygon.tolist()]
    mask = out_region(res, "mask")
    assert mask.offset() == (7, 8) and (mask.array() == patch).all()
    empty = TrackResult((1.0, 2.0, 5.0, 6.0), 0.9, polygon, FrameMask(np.zeros((4, 5), np.uint8), 7, 8, (40, 30)))
    assert isinstance(out_region(empty, "mask"), trax.Rectangle)  # nothing to send as a mask: the box

    rgb = np.zeros((6, 8, 3), np.uint8)
    rgb[..., 0] = 200  # red in RGB
    assert (read_frame({"color": trax.MemoryImage.create(rgb)})[..., 2] == 200).all()  # red in BGR
    ok, png = cv2.imencode(".png", rgb[..., ::-1])
    assert (read_frame({"color": trax.BufferImage.create(png.tobytes())}) == rgb[..., ::-1]).all()
    with pytest.raises(InputError, match="no colour channel"):
        read_frame({})


# ------------------------------------------------------------------------------------------------ trackers.ini


def _workspace(tmp_path: Path, stack: str) -> Path:
    pytest.importorskip("vot", reason="vot-toolkit is installed by make setup (a test extra)")
    ws = tmp_path / "ws"
    r = subprocess.run([BIN / "vot", "initialize", stack, "--workspace", ws, "--nodownload"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0 and (ws / "config.yaml").is_file(), r.stdout + r.stderr
    return ws


def test_write_trackers_updates_its_entry_for_the_toolkits_registry(demo_model, tmp_path, capsys):
    from vot.tracker import Registry

    pytest.importorskip("vot", reason="vot-toolkit is installed by make setup (a test extra)")
    ws = tmp_path / "ws"  # what `vot initialize` writes (the toolkit flows below run it)
    ws.mkdir()
    (ws / "config.yaml").write_text("registry:\n- ./trackers.ini\nstack: vot2018/shortterm\n")
    model = tmp_path / "model 100%"  # a space for the shell split, a % for configparser's interpolation
    model.symlink_to(demo_model)
    other = "# my trackers\n[ncc]\nlabel = NCC\nprotocol = traxpython\ncommand = ncc\n"
    (ws / "trackers.ini").write_text(other + "\n[siamattn]\nprotocol = trax\ncommand = old\n")
    assert main(["vot", "--model", str(model), "--write-trackers", str(ws), "--backend", "onnxruntime"]) == 0
    assert "single-object sessions" in capsys.readouterr().out
    text = (ws / "trackers.ini").read_text()
    assert text.startswith(other) and "command = old" not in text and text.count("[siamattn]") == 1
    tracker = Registry([str(ws)], root=str(ws))["siamattn"]
    assert tracker.protocol == "trax"
    import shlex

    argv = shlex.split(tracker._command)
    assert argv[:4] == [str(Path(sys.executable).absolute()), "-m", "siamattn", "vot"]
    assert argv[argv.index("--model") + 1] == str(model.resolve())  # the path the toolkit's temp folder can use
    assert "--multiobject" not in argv and argv[argv.index("--backend") + 1] == "onnxruntime"
    assert Registry([str(ws)], root=str(ws))["ncc"].label == "NCC"
    # a multi-object stack gets multi-object sessions without being told
    ws2 = tmp_path / "ws2"
    ws2.mkdir()
    (ws2 / "config.yaml").write_text("stack: tests/multiobject\n")
    assert main(["vot", "--model", str(demo_model), "--write-trackers", str(ws2), "--name", "sa-multi", "--quiet"]) == 0
    assert "--multiobject" in shlex.split(Registry([str(ws2)], root=str(ws2))["sa-multi"]._command)


@pytest.mark.parametrize("case", ["no workspace", "no stack", "bad name", "bad model"])
def test_write_trackers_bad_input_is_one_line(case, demo_model, tmp_path, capsys):
    ws = tmp_path / "ws"
    ws.mkdir()
    model, name, expected = demo_model, "siamattn", "vot initialize STACK"
    if case == "no stack":
        (ws / "config.yaml").write_text("registry:\n- ./trackers.ini\n")
        expected = "has no stack in config.yaml"
    elif case == "bad name":
        (ws / "config.yaml").write_text("stack: vot2018/shortterm\n")
        name, expected = "my tracker", "no VOT tracker identifier"
    elif case == "bad model":
        (ws / "config.yaml").write_text("stack: vot2018/shortterm\n")
        model, expected = tmp_path / "nothing", "nothing"
    rc = main(["vot", "--model", str(model), "--write-trackers", str(ws), "--name", name])
    out, err = capsys.readouterr()
    assert rc == 2 and out == "" and len(err.strip().splitlines()) == 1 and expected in err, err
    assert not (ws / "trackers.ini").exists()


# ------------------------------------------------------------------------------------------------ the toolkit


def _vot(*args: object, cwd: Path, tmp: Path) -> str:
    """A ``vot`` command; fails the test on a non-zero exit. TMPDIR: the dummy sequence of ``vot test`` and the
    tracker's work folders stay in the test's folder."""
    env = dict(os.environ, TMPDIR=str(tmp), PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    r = subprocess.run(["vot", *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r.stdout + r.stderr


def readme_vot_block() -> list[str]:
    """The README's VOT toolkit block: its command lines, comments dropped."""
    import re

    blocks = [b for b in re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
              if "vot initialize" in b]
    assert len(blocks) == 1, "the README has one bash block with the VOT toolkit's commands"
    return [re.sub(r"\s+#.*$", "", line).strip() for line in blocks[0].splitlines() if line.strip()]


def test_readme_vot_lines_as_typed_and_vot_test_of_a_multi_object_entry(demo_model, tmp_path):
    """The README's lines in a fresh folder holding the export as model/: initialise a workspace offline, write
    the entry, `vot test` it on the toolkit's own generated sequence (single object); then a multi-object entry,
    which `vot test` runs on three objects."""
    (tmp_path / "model").symlink_to(demo_model)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = dict(os.environ, TMPDIR=str(tmp), PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    lines = readme_vot_block()
    assert [line.split()[0] for line in lines] == ["vot", "siamattn", "cd"], lines
    for line in lines:
        r = subprocess.run(["bash", "-c", line], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, line + "\n" + r.stdout[-3000:] + r.stderr[-3000:]
    assert "Test concluded successfuly" in r.stdout + r.stderr and "Error" not in r.stdout + r.stderr
    assert (r.stdout + r.stderr).count("@@TRAX:initialize") == 1  # one object
    ws = tmp_path / "vot_ws"
    assert main(["vot", "--model", str(tmp_path / "model"), "--write-trackers", str(ws), "--name", "multi",
                 "--multiobject", "--backend", "onnxruntime", "--quiet"]) == 0
    log = _vot("test", "multi", cwd=ws, tmp=tmp)
    assert "Test concluded successfuly" in log and "Error" not in log
    assert "trax.multiobject=1" in log and log.count("@@TRAX:initialize") == 3
    assert log.count("@@TRAX:state") == 3 * 50  # 50 frames of 3 objects


def _fill_sequences(ws: Path, generated: Path, masks: bool) -> list[str]:
    """The generated sequences in the toolkit's layout (frames linked, not copied): rectangles in groundtruth.txt,
    or (VOTS) masks in groundtruth_000.txt, written by the toolkit's own region writer."""
    from vot.region import Mask
    from vot.region.io import write_trajectory

    names = []
    for seq in _sequences(generated):
        d = ws / "sequences" / seq.name
        (d / "color").mkdir(parents=True)
        for f in sorted(seq.glob("*.jpg")):
            (d / "color" / f.name).symlink_to(f)
        if masks:
            write_trajectory(str(d / "groundtruth_000.txt"), [Mask(_mask(seq, i)) for i in range(SEQ_LEN)])
        else:
            shutil.copy(seq / "groundtruth.txt", d / "groundtruth.txt")
        (d / "sequence").write_text("channels.color=color/%08d.jpg\nfps=30\nformat=default\nchannel.default=color\n")
        names.append(seq.name)
    (ws / "sequences" / "list.txt").write_text("\n".join(names) + "\n")
    return names


def _analysis(ws: Path, experiment: str) -> list:
    (report,) = (ws / "analysis").rglob("*.json")
    return json.loads(report.read_text())["results"][experiment]["results"]


def _toolkit_run(ws: Path, tracker: str, experiment: str, seq: str) -> list:
    """The regions the toolkit recorded for a sequence (its binary result format, read by its own reader)."""
    from vot.region.io import read_trajectory_binary

    with (ws / "results" / tracker / experiment / seq / f"{seq}_001.bin").open("rb") as f:
        return read_trajectory_binary(f)


def test_vot_evaluate_and_analysis_agree_with_siamattn_eval(demo_model, generated, tmp_path, capsys):
    """A VOT2018 workspace with the generated sequences (rectangles). VOT2018's baseline (reset-based) experiment
    cannot run in toolkit 0.9 (docs/EVALUATION.md), its unsupervised one can: one pass from the first frame, the
    protocol of `siamattn eval --dataset got10k`. The same runs: the toolkit's recorded boxes equal siamattn
    eval's; its accuracy (overlaps after a 10-frame burn-in, sequences weighted by length) equals the same measure
    computed with siamattn's VOT overlap on siamattn eval's result files, within the toolkit's rasterisation."""
    from siamattn.toolkit import metrics as M

    ws = _workspace(tmp_path, "vot2018/shortterm")
    names = _fill_sequences(ws, generated, masks=False)
    assert main(["vot", "--model", str(demo_model), "--write-trackers", str(ws), "--backend", "onnxruntime",
                 "--device", "cpu", "--region", "rectangle", "--quiet"]) == 0
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    assert "Evaluation concluded successfuly" in _vot("evaluate", "--experiments", "unsupervised", "siamattn",
                                                      cwd=ws, tmp=tmp)
    assert "Analysis successful" in _vot("analysis", "--experiments", "unsupervised", "siamattn", cwd=ws, tmp=tmp)
    toolkit_accuracy = _analysis(ws, "unsupervised")[0][0][0]

    out = tmp_path / "eval"
    assert main(["eval", "--model", str(demo_model), "--backend", "onnxruntime", "--device", "cpu", "--dataset",
                 "got10k", "--root", str(generated), "--split", "val", "--out", str(out), "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    weighted, frames = 0.0, 0
    for name in names:
        ours = np.loadtxt(out / "results" / "siamattn" / name / f"{name}_001.txt", delimiter=",")
        theirs = _toolkit_run(ws, "siamattn", "unsupervised", name)
        assert len(theirs) == len(ours) == SEQ_LEN
        boxes = np.array([[r.x, r.y, r.width, r.height] for r in theirs[1:]])
        np.testing.assert_allclose(boxes, ours[1:], atol=2e-3)  # the same run (4 decimals in siamattn's files)
        gt = _boxes(generated / "val" / name)
        # VOT's overlap: both regions cut to the frame (region_overlap, exact geometry; GOT-10k's bound moves a box
        # that crosses the top or left border instead), the toolkit's burn-in: 10 frames from the initialisation
        ious = [M.region_overlap(b, g, (320, 240)) for b, g in zip(ours[10:], gt[10:], strict=True)]
        weighted += float(np.mean(ious)) * SEQ_LEN
        frames += SEQ_LEN
    ours_accuracy = weighted / frames
    print(f"toolkit unsupervised accuracy {toolkit_accuracy:.4f}, ours on siamattn eval's files {ours_accuracy:.4f}, "
          f"siamattn eval AO {summary['overall']['ao']:.4f}")
    assert 0.05 < toolkit_accuracy < 1.0
    assert toolkit_accuracy == pytest.approx(ours_accuracy, abs=0.003)  # the toolkit rasterises the regions


def test_vots_workspace_masks_in_and_out(demo_model, generated, tmp_path):
    """A VOTS-style workspace (the toolkit's multi-object test stack) with the generated sequences' masks as ground
    truth: the tracker starts from each first-frame mask and answers with masks; evaluate and analysis complete,
    and the masks the toolkit recorded are the ones our tracker gives in this process."""
    from siamattn.runtime.tracker import MultiTracker

    ws = _workspace(tmp_path, "tests/multiobject")
    names = _fill_sequences(ws, generated, masks=True)
    assert main(["vot", "--model", str(demo_model), "--write-trackers", str(ws), "--backend", "onnxruntime",
                 "--device", "cpu", "--quiet"]) == 0
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    assert "Evaluation concluded successfuly" in _vot("evaluate", "siamattn", cwd=ws, tmp=tmp)
    assert "Analysis successful" in _vot("analysis", "siamattn", cwd=ws, tmp=tmp)
    quality = _analysis(ws, "baseline")[0][0][0]
    print(f"VOTS-style quality (mask IoU) {quality:.4f}")
    assert 0.05 < quality < 1.0

    seq = generated / "val" / names[0]
    recorded = _toolkit_run(ws, "siamattn", "baseline", names[0])
    tracker = MultiTracker(demo_model, backend="onnxruntime", device="cpu")
    frames = [cv2.imread(str(seq / f"{i + 1:08d}.jpg")) for i in range(SEQ_LEN)]
    tid = tracker.add(frames[0], _mask_box(_mask(seq, 0)))
    boxes_sent = 0
    for i in range(1, SEQ_LEN):
        r = tracker.track(frames[i])[tid]
        mine = r.mask.to_frame() > 0
        if not mine.any():  # an empty mask goes out as the box (runtime/trax_server.py)
            x, y, w, h = (round(v) for v in r.box)
            mine[max(0, y):y + h + 1, max(0, x):x + w + 1] = True
            boxes_sent += 1
        theirs = recorded[i].rasterize((0, 0, 319, 239)) > 0
        assert _iou(mine, theirs) > 0.9 if not r.mask.patch.any() else _iou(mine, theirs) > 0.99, i
    assert boxes_sent < SEQ_LEN // 2  # masks, mostly
