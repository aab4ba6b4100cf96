"""Training loop: a few steps of `tiny` reduce the loss on a fixed batch; resume is bit-identical; the
schedule and backbone freezing follow the config; the CLI rejects bad runs with one-line errors."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from siamattn.cli import main
from siamattn.config import load_config
from siamattn.training.losses import siamattn_loss
from siamattn.training.model import build_model
from siamattn.training.model.checkpoint import read_checkpoint
from siamattn.training.pairs import collate
from siamattn.training.trainer import (
    Dist,
    StepState,
    _step,
    apply_trainable,
    backbone_stages,
    backbone_trainable,
    bn_frozen,
    build_optimizer,
    build_pairs,
    lr_at,
    set_modes,
)


def write_got10k(root: Path, num: int = 3, length: int = 6, size: tuple[int, int] = (160, 120),
                 seed: int = 0) -> Path:
    """A tiny GOT-10k-layout train split: textured ellipses moving over smooth noise, with masks."""
    rng = np.random.default_rng(seed)
    w, h = size
    split = root / "train"
    names = []
    for s in range(num):
        name = f"GOT-10k_Train_{s + 1:06d}"
        names.append(name)
        d = split / name
        (d / "masks").mkdir(parents=True)
        bg = cv2.resize(rng.integers(0, 255, (h // 8, w // 8, 3), dtype=np.uint8), (w, h),
                        interpolation=cv2.INTER_CUBIC)
        colour = rng.integers(40, 255, 3).tolist()
        ow, oh = rng.integers(20, 40, 2)
        x0, y0 = rng.uniform(10, w - ow - 10), rng.uniform(10, h - oh - 10)
        vx, vy = rng.uniform(-3, 3, 2)
        lines = []
        for f in range(length):
            x, y = x0 + vx * f, y0 + vy * f
            img = bg.copy()
            mask = np.zeros((h, w), np.uint8)
            centre = (round(x + ow / 2), round(y + oh / 2))
            cv2.ellipse(mask, centre, (int(ow // 2), int(oh // 2)), 0, 0, 360, 255, -1)
            img[mask > 0] = colour
            ys, xs = np.nonzero(mask)
            lines.append(f"{xs.min()},{ys.min()},{xs.max() - xs.min() + 1},{ys.max() - ys.min() + 1}")
            cv2.imwrite(str(d / f"{f + 1:08d}.jpg"), img)
            cv2.imwrite(str(d / "masks" / f"{f + 1:08d}.png"), mask)
        (d / "groundtruth.txt").write_text("\n".join(lines) + "\n")
    (split / "list.txt").write_text("\n".join(names) + "\n")
    return root


pytestmark = pytest.mark.usefixtures("one_torch_thread")


FAST = ["train.pairs_per_epoch=8", "train.batch_size=4", "train.workers=0"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_got10k(tmp_path_factory.mktemp("got10k"))


def _batch(cfg, data: Path, n: int = 4, start: int = 0) -> dict[str, torch.Tensor]:
    pairs = build_pairs(cfg, [str(data)])
    return collate([pairs[k] for k in range(start, start + n)])


def train_steps(cfg, batch: dict[str, torch.Tensor], steps: int = 6) -> tuple[torch.nn.Module, list[dict]]:
    """A fresh model of ``cfg`` trained ``steps`` single-process CPU steps on one fixed batch (epoch-0
    trainable flags, as the trainer sets them); returns it and each step's losses."""
    model = build_model(cfg)
    flags = backbone_trainable(cfg.train, 0)
    apply_trainable(model, flags)
    opt, sched = build_optimizer(model, cfg.train, 10)
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    losses = []
    for _ in range(steps):
        set_modes(model, flags)
        losses.append(_step(model, model, batch, cfg.train, StepState(opt, sched, scaler, torch.device("cpu"), False,
                                                                      Dist())))
    return model, losses


def test_a_few_steps_reduce_the_loss_on_a_fixed_batch(data):
    torch.manual_seed(0)
    cfg = load_config("tiny", ["train.warmup_epochs=0", "train.lr_start=0.01", "train.lr_end=0.01"])
    batch = _batch(cfg, data)
    assert batch["positive"].any() and batch["has_mask"].any()  # every loss term is exercised
    _, losses = train_steps(cfg, batch)
    first, last = losses[0], losses[-1]
    assert last["total"] < 0.8 * first["total"], [round(x["total"], 4) for x in losses]
    assert last["cls"] < first["cls"] and last["loc"] < first["loc"]


def test_one_step_of_the_authors_network_reaches_every_parameter(data):
    # tiny_authors: the switches of siamattn_r50 (box xcorr blocks, mask laterals, BN mask head, deformable
    # mask pooling, shared gamma_c). The zero-initialised scalars and last offset layers are set non-zero
    # first, as after a few steps, so every parameter behind them sees a gradient too.
    torch.manual_seed(0)
    cfg = load_config("tiny_authors", ["train.backbone_train_layers=[0,1,2,3,4]"])
    batch = _batch(cfg, data)
    assert batch["positive"].any() and batch["has_mask"].any()
    model = build_model(cfg)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.rsplit(".", 1)[-1] in ("alpha", "gamma_c"):
                p.fill_(0.5)
            elif name.endswith(("out.offset.weight", "offset_fc.4.weight")):
                p.normal_(0.0, 0.01)
    flags = backbone_trainable(cfg.train, 0)
    apply_trainable(model, flags)
    set_modes(model, flags)
    opt, sched = build_optimizer(model, cfg.train, 10)
    _step(model, model, batch, cfg.train, StepState(opt, sched, torch.amp.GradScaler("cuda", enabled=False),
                                                    torch.device("cpu"), False, Dist()))
    # _step clears gradients before its backward, not after: they are this step's
    zero = [n for n, p in model.named_parameters() if p.grad is None or not bool(p.grad.abs().sum() > 0)]
    assert zero == []
    names = {n for n, _ in model.named_parameters()}
    for new in ("dsa.0.gamma_c", "refine.box_xcorr.2.conv_kernel.0.weight", "refine.mask_lateral.0.0.weight",
                "refine.mask_lateral.4.1.weight", "refine.mask_pool.offset_fc.0.weight", "refine.mask_head.10.weight"):
        assert new in names


def test_loss_is_a_mean_over_pairs_so_splits_do_not_change_it(data):
    cfg = load_config("tiny")
    batch = _batch(cfg, data)
    torch.manual_seed(1)
    b, k, r = 4, cfg.anchors.num, cfg.train.num_rois
    out = {"cls": torch.randn(b, 2 * k, 25, 25), "loc": torch.randn(b, 4 * k, 25, 25),
           "box": torch.randn(b * r, 4), "mask_logits": torch.randn(b * r, 1, 64, 64)}
    full = siamattn_loss(out, batch, cfg.train)
    halves = []
    for c in range(2):
        sub = {key: v[c::2] for key, v in batch.items()}
        o = {"cls": out["cls"][c::2], "loc": out["loc"][c::2],
             "box": out["box"].view(b, r, 4)[c::2].reshape(-1, 4),
             "mask_logits": out["mask_logits"].view(b, r, 1, 64, 64)[c::2].reshape(-1, 1, 64, 64)}
        halves.append(siamattn_loss(o, sub, cfg.train))
    for key in full:
        torch.testing.assert_close(full[key], (halves[0][key] + halves[1][key]) / 2)
    # weights from the config: total = cls + 0.2 loc + 0.2 box + 0.1 mask
    t = cfg.train
    expect = t.cls_weight * full["cls"] + t.loc_weight * full["loc"] + t.refine_box_weight * full["box"] \
        + t.refine_mask_weight * full["mask"]
    torch.testing.assert_close(full["total"], expect)


def test_negative_pairs_only_contribute_to_cls(data):
    cfg = load_config("tiny", ["train.neg_prob=1.0"])
    batch = _batch(cfg, data)
    assert not batch["positive"].any() and (batch["labels"] == 1).sum() == 0
    out = {"cls": torch.randn(4, 10, 25, 25), "loc": torch.randn(4, 20, 25, 25),
           "box": torch.randn(4 * cfg.train.num_rois, 4), "mask_logits": torch.randn(4 * cfg.train.num_rois, 1, 64, 64)}
    loss = siamattn_loss(out, batch, cfg.train)
    assert loss["cls"] > 0 and loss["loc"] == 0 and loss["box"] == 0 and loss["mask"] == 0


def test_schedule_warms_up_then_decays_exponentially():
    t = load_config("siamattn_r50").train  # paper: 5 warm-up epochs from 1e-3, then 5e-3 -> 5e-4 over 15
    assert lr_at(0, t) == pytest.approx(1e-3)
    assert lr_at(2.5, t) == pytest.approx((1e-3 * 5e-3) ** 0.5)
    assert lr_at(5, t) == pytest.approx(5e-3)
    assert lr_at(12.5, t) == pytest.approx((5e-3 * 5e-4) ** 0.5)
    assert lr_at(20, t) == pytest.approx(5e-4)
    decay = [lr_at(e, t) for e in np.linspace(5, 20, 31)]
    assert all(a > b for a, b in itertools.pairwise(decay))
    model = build_model(load_config("tiny"))
    opt, sched = build_optimizer(model, t, steps_per_epoch=10)
    for _ in range(50):
        opt.step()
        sched.step()
    heads, backbone = (g["lr"] for g in opt.param_groups)
    assert heads == pytest.approx(5e-3) and backbone == pytest.approx(5e-3 * t.backbone_lr_mult)


def test_backbone_is_frozen_before_its_epoch_then_only_listed_stages_train(data):
    cfg = load_config("tiny", ["train.backbone_train_epoch=1", "train.backbone_train_layers=[3,4]"])
    batch = _batch(cfg, data)
    model = build_model(cfg)
    opt, sched = build_optimizer(model, cfg.train, 10)
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    stages = backbone_stages(model.backbone)

    def snapshot():
        return [torch.cat([t.detach().flatten().clone() for t in s.state_dict().values() if t.is_floating_point()])
                for s in stages]

    head = model.rpn.state_dict()
    head0 = {k: v.clone() for k, v in head.items()}
    for epoch, moved in ((0, [False] * 5), (1, [False, False, False, True, True])):
        flags = backbone_trainable(cfg.train, epoch)
        apply_trainable(model, flags)
        set_modes(model, flags)
        before = snapshot()
        _step(model, model, batch, cfg.train, StepState(opt, sched, scaler, torch.device("cpu"), False, Dist()))
        after = snapshot()
        # frozen stages keep weights and BatchNorm statistics; trained ones change
        assert [not torch.equal(a, b) for a, b in zip(before, after, strict=True)] == moved
    assert any(not torch.equal(head0[k], v) for k, v in model.rpn.state_dict().items())


def _crop_log_sizes(cfg, data: Path, n: int = 32) -> np.ndarray:
    """log(w), log(h) of the gt in the search crop of ``n`` positive pairs (from the RPN deltas of anchor 0)."""
    pairs = build_pairs(cfg, [str(data)])
    out = []
    for k in range(n):
        p = pairs[k]
        if p["positive"]:
            out.append(p["deltas"][2:, 0, 0, 0])  # log(gt / anchor 0): the same anchor for every pair
    return np.array(out)


def test_search_zoom_widens_the_targets_size_in_the_crop_and_defaults_off(data):
    plain = load_config("tiny")
    assert plain.train.search_zoom == 0.0
    base = _crop_log_sizes(plain, data)
    # the zoom is isotropic: the aspect spread stays that of the per-axis jitter
    zoomed = _crop_log_sizes(load_config("tiny", ["train.search_zoom=0.5"]), data)
    assert len(base) >= 16 and len(zoomed) >= 16
    assert zoomed.mean(1).std() > 1.8 * base.mean(1).std(), (zoomed.mean(1).std(), base.mean(1).std())
    assert (zoomed[:, 0] - zoomed[:, 1]).std() < 1.5 * (base[:, 0] - base[:, 1]).std()


def _bn_stats(model_or_state) -> dict[str, torch.Tensor]:
    state = model_or_state if isinstance(model_or_state, dict) else model_or_state.state_dict()
    return {k: v.clone() for k, v in state.items() if k.endswith(("running_mean", "running_var"))}


@pytest.mark.parametrize("frozen_epoch", [-1, 0])
def test_frozen_batchnorm_keeps_its_statistics_while_its_weights_train(data, frozen_epoch):
    torch.manual_seed(0)
    cfg = load_config("tiny", [f"train.bn_frozen_epoch={frozen_epoch}", "train.backbone_train_epoch=0"])
    assert bn_frozen(cfg.train, 0) == (frozen_epoch == 0)
    assert not bn_frozen(cfg.train, 5) if frozen_epoch < 0 else bn_frozen(cfg.train, 5)
    batch = _batch(cfg, data)
    model = build_model(cfg)
    flags = backbone_trainable(cfg.train, 0)
    apply_trainable(model, flags)
    set_modes(model, flags, bn_frozen(cfg.train, 0))
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    outside = [m for n, m in model.named_modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
               and not n.startswith("backbone.")]
    assert bns and outside  # the neck/heads' BatchNorm, shared by template and search, is what this is about
    assert all(not m.training for m in bns) == (frozen_epoch == 0)
    before = _bn_stats(model)
    weights = [m.weight.detach().clone() for m in outside]
    opt, sched = build_optimizer(model, cfg.train, 10)
    _step(model, model, batch, cfg.train, StepState(opt, sched, torch.amp.GradScaler("cuda", enabled=False),
                                                    torch.device("cpu"), False, Dist()))
    after = _bn_stats(model)
    same = [k for k in before if torch.equal(before[k], after[k])]
    if frozen_epoch == 0:
        assert same == list(before)
    else:
        assert len(same) < len(before) / 2
    # the affine weights still train either way
    assert any(not torch.equal(w, m.weight) for w, m in zip(weights, outside, strict=True))


def _state(path: Path) -> dict[str, torch.Tensor]:
    return read_checkpoint(path)["model"]


def test_resume_continues_bit_identically(data, tmp_path):
    args = ["train", "--config", "tiny", "--data", str(data), "--no-progress", "--threads", "1"]
    sets = [a for s in FAST for a in ("--set", s)]
    assert main([*args, *sets, "--out", str(tmp_path / "a")]) == 0
    a = tmp_path / "a"
    assert sorted(p.name for p in (a / "checkpoints").iterdir()) == ["epoch_001.pt", "epoch_002.pt"]
    rows = (a / "log.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,step,lr,total") and len(rows) == 1 + 2 * 2
    # an interrupted run: only epoch 1's checkpoint survived as last.pt
    b = tmp_path / "b"
    b.mkdir()
    (b / "last.pt").write_bytes((a / "checkpoints" / "epoch_001.pt").read_bytes())
    assert main([*args, "--out", str(b), "--resume"]) == 0
    sa, sb = _state(a / "model.pt"), _state(b / "model.pt")
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa), [k for k in sa if not torch.equal(sa[k], sb[k])][:5]
    ca, cb = read_checkpoint(a / "last.pt"), read_checkpoint(b / "last.pt")
    assert ca["epoch"] == cb["epoch"] == 2
    assert ca["scheduler"]["last_epoch"] == cb["scheduler"]["last_epoch"] == 4
    # and training moved the weights at all (an unchanged model would pass the equality trivially)
    init = build_model(load_config("tiny")).state_dict()
    assert any(not torch.equal(init[k], sa[k]) for k in sa if k.startswith("rpn."))


def test_resume_takes_train_settings_and_refuses_network_changes(data, tmp_path, capsys):
    args = ["train", "--config", "tiny", "--data", str(data), "--no-progress", "--threads", "1"]
    a = tmp_path / "a"
    assert main([*args, *[x for s in FAST for x in ("--set", s)], "--out", str(a)]) == 0
    b = tmp_path / "b"
    b.mkdir()
    first = a / "checkpoints" / "epoch_001.pt"
    (b / "last.pt").write_bytes(first.read_bytes())
    assert main([*args, "--out", str(b), "--resume", "--set", "train.bn_frozen_epoch=1"]) == 0
    assert read_checkpoint(b / "last.pt")["config"]["train"]["bn_frozen_epoch"] == 1
    assert "bn_frozen_epoch: 1" in (b / "config.yaml").read_text()
    # epoch 2 ran with frozen statistics: b keeps epoch 1's, the uninterrupted run a moved them
    s1, sa, sb = _bn_stats(_state(first)), _bn_stats(_state(a / "model.pt")), _bn_stats(_state(b / "model.pt"))
    assert all(torch.equal(s1[k], sb[k]) for k in s1)
    assert not all(torch.equal(s1[k], sa[k]) for k in s1)
    assert not all(torch.equal(v, _state(first)[k]) for k, v in _state(b / "model.pt").items()
                   if k.endswith(".weight"))
    capsys.readouterr()
    assert main([*args, "--out", str(b), "--resume", "--set", "model.neck.channels=8"]) == 2
    err = capsys.readouterr().err
    assert "only train.* keys" in err and err.count("\n") == 1


def test_cli_errors_are_one_line(data, tmp_path, capsys):
    base = ["train", "--config", "tiny", "--no-progress", *[a for s in FAST for a in ("--set", s)]]
    assert main([*base, "--data", str(data), "--out", str(tmp_path / "r"), "--resume"]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    (tmp_path / "r2").mkdir()
    (tmp_path / "r2" / "last.pt").write_bytes(b"x")
    assert main([*base, "--data", str(data), "--out", str(tmp_path / "r2")]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main([*base, "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r3")]) == 2
    err = capsys.readouterr().err
    assert "no GOT-10k layout" in err and err.count("\n") == 1
    assert main([*base, "--data", str(data), "--out", str(tmp_path / "r4"), "--set", "train.accum_steps=3"]) == 2
    assert "train.accum_steps" in capsys.readouterr().err


WORKERS = ["train", "--config", "tiny", "--no-progress", "--set", "train.pairs_per_epoch=8", "--set",
           "train.batch_size=4", "--set", "train.workers=2"]


def test_malformed_groundtruth_fails_in_one_line_before_the_run_folder(data, tmp_path, capsys):
    root = shutil.copytree(data, tmp_path / "data")
    gt = root / "train" / "GOT-10k_Train_000002" / "groundtruth.txt"
    rows = gt.read_text().splitlines()
    rows[2] = rows[2].replace(",", ";", 1) + ",oops"
    gt.write_text("\n".join(rows) + "\n")
    out = tmp_path / "run"
    assert main([*WORKERS, "--data", str(root), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {gt}:3: ") and err.count("\n") == 1, err
    assert not out.exists()  # checked before anything was written


def test_a_data_error_inside_a_worker_is_the_same_one_line(data, tmp_path, capsys):
    root = shutil.copytree(data, tmp_path / "data")
    for frame in (root / "train").glob("*/*.jpg"):
        frame.write_bytes(b"not a JPEG")  # annotations stay valid: only a worker reading a frame finds out
    assert main([*WORKERS, "--data", str(root), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: could not read frame '") and err.count("\n") == 1, err
    assert "Traceback" not in err and "worker" not in err
