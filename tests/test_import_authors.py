"""``siamattn import --from siamattn-authors``: the key table against the committed list of the authors' keys and
shapes (tests/data/siamattn_authors_keys.txt), their checkpoint containers, their YAML settings, round trips and
one-line errors. The comparison with outputs of their code is bench/compare_authors.py (docs/MODELS.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from siamattn.cli import main
from siamattn.config import load_config
from siamattn.errors import ConfigError, SiamAttnError
from siamattn.training.importers import guess_benchmark, import_config
from siamattn.training.importers import siamattn_authors as authors
from siamattn.training.importers.keymap import group_keys, map_state_dict, unwrap_state_dict
from siamattn.training.importers.yacs_yaml import read_yaml
from siamattn.training.model.attention import DSA
from siamattn.training.model.checkpoint import load_checkpoint, read_checkpoint
from siamattn.training.model.siamattn import build_model

KEYS_FILE = Path(__file__).parent / "data" / "siamattn_authors_keys.txt"


def their_keys() -> dict[str, tuple[int, ...]]:
    out = {}
    for line in KEYS_FILE.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, shape = line.split()
        out[name] = () if shape == "scalar" else tuple(int(s) for s in shape.split("x"))
    return out


def their_state(device: str = "meta", seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict in the authors' layout: their names and shapes, random values (meta: shapes only)."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for name, shape in their_keys().items():
        if name.endswith("num_batches_tracked"):
            state[name] = torch.randint(0, 1000, shape, generator=g, dtype=torch.int64, device="cpu")
        elif device == "meta":
            state[name] = torch.empty(shape, device="meta")
        else:
            state[name] = torch.randn(shape, generator=g)
    return state


@pytest.fixture(scope="module")
def r50_target() -> dict[str, torch.Tensor]:
    with torch.device("meta"):
        return build_model(load_config("siamattn_r50")).state_dict()


def test_fixture_is_the_authors_layout():
    keys = their_keys()
    assert len(keys) == 645  # SPEC: 645 entries incl. num_batches_tracked
    assert keys["feature_enhance.pams.0.query_conv.weight"] == (32, 256, 1, 1)
    assert keys["mask_head.roi_pool_m.offset_fc.0.weight"] == (1024, 65536)
    assert authors.weighted_fusion(set(keys))


def test_every_key_of_theirs_maps_to_one_of_ours_with_its_shape(r50_target):
    state = their_state()
    mapped = map_state_dict(state, authors.TABLE, r50_target, "the fixture")
    assert set(mapped) == set(r50_target)
    assert len(state) == len(r50_target)  # one to one: nothing filled in, nothing dropped
    for name, t in mapped.items():
        assert t.shape == r50_target[name].shape, name


def test_the_table_moves_values_where_the_docs_say():
    state = their_state("cpu")
    with torch.device("meta"):
        target = build_model(load_config("siamattn_r50")).state_dict()
    mapped = map_state_dict(dict(state), authors.TABLE, target, "x")
    pairs = {  # theirs -> ours, transforms included (query/key roles swapped, one channel scalar)
        "feature_enhance.pams.1.key_conv.weight": "dsa.1.query.weight",
        "feature_enhance.pams.1.query_conv.bias": "dsa.1.key.bias",
        "feature_enhance.cam_uses.2.gamma": "dsa.2.gamma_c",
        "feature_enhance.pams.0.gamma": "dsa.0.alpha",
        "neck.downsample4.downsample.1.running_var": "neck.adjust.2.1.running_var",
        "rpn_head.rpn3.loc.head.3.bias": "rpn.loc.1.head.3.bias",
        "feature_fusion.convs.1.BN256.weight": "refine.fuse.1.1.weight",
        "feature_fusion.lateral_convs.0.conv.weight": "refine.mask_lateral.0.0.weight",
        "mask_head.convs.2.BN256.running_mean": "refine.mask_head.7.running_mean",
        "mask_head.upsample.weight": "refine.mask_head.12.weight",
        "mask_head.conv_logits.bias": "refine.mask_head.14.bias",
        "bbox_head.tail_det_box.weight": "refine.box_head.5.weight",
        "backbone.layer3.5.bn2.num_batches_tracked": "backbone.layer3.5.bn2.num_batches_tracked",
    }
    for theirs, ours in pairs.items():
        assert torch.equal(mapped[ours], state[theirs]), (theirs, ours)


def test_spatial_attention_of_theirs_is_ours_with_query_and_key_swapped():
    # Their formula, written here from docs/MODELS.md: S[i,j] = q_i . k_j, softmax over j, out_i = sum_j a_ij v_j.
    torch.manual_seed(0)
    cfg = load_config("tiny_authors").model.attention
    dsa = DSA(16, cfg).eval()
    f = torch.randn(1, 16, 5, 5)
    q_w, q_b = torch.randn(2, 16, 1, 1), torch.randn(2)
    k_w, k_b = torch.randn(2, 16, 1, 1), torch.randn(2)
    gamma = torch.tensor([0.7])
    theirs = {"feature_enhance.pams.0.query_conv.weight": q_w, "feature_enhance.pams.0.query_conv.bias": q_b,
              "feature_enhance.pams.0.key_conv.weight": k_w, "feature_enhance.pams.0.key_conv.bias": k_b,
              "feature_enhance.pams.0.value_conv.weight": dsa.value.weight.detach().clone(),
              "feature_enhance.pams.0.value_conv.bias": dsa.value.bias.detach().clone(),
              "feature_enhance.pams.0.gamma": gamma}
    sub = {k: v for k, v in dsa.state_dict().items() if k.split(".")[0] in ("query", "key", "value", "alpha")}
    table = authors.KeyTable("x", tuple(r for r in authors.TABLE.rows if "pams" in r.theirs))
    mapped = map_state_dict(theirs, table, {f"dsa.0.{k}": v for k, v in sub.items()}, "x")
    dsa.load_state_dict({k.removeprefix("dsa.0."): v for k, v in mapped.items()}, strict=False)

    flat = f.flatten(2)[0]  # C x N
    q = (q_w[:, :, 0, 0] @ flat + q_b[:, None]).T  # N x C'
    k = (k_w[:, :, 0, 0] @ flat + k_b[:, None]).T
    v = dsa.value.weight[:, :, 0, 0] @ flat + dsa.value.bias[:, None]  # C x N
    att = torch.softmax(q @ k.T, dim=1)  # rows: query positions i
    expected = gamma * (v @ att.T) + flat
    with torch.no_grad():
        assert torch.allclose(dsa.spatial(f).flatten(2)[0], expected, atol=1e-5)


def test_missing_and_extra_keys_are_named_in_one_error(r50_target):
    state = their_state()
    del state["mask_head.upsample.bias"]
    state["feature_fusion.xcorr.3.head.3.bias"] = torch.empty(256, device="meta")
    with pytest.raises(SiamAttnError) as info:
        map_state_dict(state, authors.TABLE, r50_target, "checkpoint 'c.pth'")
    msg = str(info.value)
    assert "\n" not in msg
    assert "1 of its keys map to nothing in our model: feature_fusion.xcorr.3.head.3.bias" in msg
    assert "1 keys the model needs are absent: mask_head.upsample.bias" in msg  # named as THEIR key


def test_a_missing_module_is_one_group(r50_target):
    state = {k: v for k, v in their_state().items() if not k.startswith("mask_head.roi_pool_m.")}
    with pytest.raises(SiamAttnError, match=r"6 keys the model needs are absent: mask_head\.roi_pool_m\.offset_fc"):
        map_state_dict(state, authors.TABLE, r50_target, "c")
    assert group_keys(["a.b.c.weight", "a.b.c.bias", "x.y"]) == "a.b.c.bias, a.b.c.weight, x.y"
    many = [f"m.{i}.weight" for i in range(10)]
    assert group_keys(many) == "m.* (10 keys)"


def test_shape_mismatch_is_reported():
    state = their_state()
    state["bbox_head.tail_det_box.weight"] = torch.empty(8, 512, device="meta")
    with torch.device("meta"):
        target = build_model(load_config("siamattn_r50")).state_dict()
    with pytest.raises(SiamAttnError, match=r"1 shape mismatches .*bbox_head\.tail_det_box\.weight \(8, 512\) -> "
                                            r"refine\.box_head\.5\.weight \(4, 512\)"):
        map_state_dict(state, authors.TABLE, target, "c")


def test_unweighted_rpn_is_detected_from_the_keys():
    state = {k: v for k, v in their_state().items() if not k.endswith("_weight") or not k.startswith("rpn_head.")}
    assert not authors.weighted_fusion(set(state))
    cfg = load_config("siamattn_r50", ["model.rpn.weighted_fusion=false"])
    with torch.device("meta"):
        target = build_model(cfg).state_dict()
    assert set(map_state_dict(state, authors.TABLE, target, "c")) == set(target)


@pytest.mark.parametrize("prefix", ["", "module."])
@pytest.mark.parametrize("container", [True, False])
def test_containers_and_prefixes(prefix, container):
    sd = {f"{prefix}a.weight": torch.zeros(2), f"{prefix}b.bias": torch.ones(1)}
    payload = {"epoch": 19, "state_dict": sd, "optimizer": {"state": {}, "param_groups": []}} if container else sd
    out = unwrap_state_dict(payload, "c")
    assert set(out) == {"a.weight", "b.bias"}


@pytest.mark.parametrize(("payload", "pattern"), [
    ({"format": "siamattn-checkpoint", "model": {}}, "already a siamattn checkpoint"),
    ({}, "holds no state dict"),
    ([1, 2], "holds no state dict"),
    ({"epoch": 3, "weights": [1.0]}, "2 entries are not named tensors"),
])
def test_not_a_state_dict(payload, pattern):
    with pytest.raises(SiamAttnError, match=pattern):
        unwrap_state_dict(payload, "c")


# ------------------------------------------------------------------------------------------------ YAML

def write_yaml(path: Path, **changes: object) -> Path:
    """An experiment YAML in their format (model part as their code needs it), with dotted-key changes."""
    data: dict = {
        "META_ARC": "siamattn_r50_l234_dwxcorr",
        "BACKBONE": {"TYPE": "resnet50", "KWARGS": {"used_layers": [0, 1, 2, 3, 4]}},
        "ADJUST": {"ADJUST": True, "TYPE": "AdjustAllLayer",
                   "KWARGS": {"in_channels": [512, 1024, 2048], "out_channels": [256, 256, 256]}},
        "RPN": {"TYPE": "MultiRPN", "KWARGS": {"anchor_num": 5, "in_channels": [256, 256, 256], "weighted": True}},
        "MASK": {"MASK": True},
        "ANCHOR": {"STRIDE": 8, "RATIOS": [0.33, 0.5, 1, 2, 3], "SCALES": [8], "ANCHOR_NUM": 5},
        "TRACK": {"TYPE": "SiamMaskTracker", "PENALTY_K": 0.13, "WINDOW_INFLUENCE": 0.29, "LR": 0.41,
                  "MASK_THERSHOLD": 0.27, "MASK_OUTPUT_SIZE": 64, "EXEMPLAR_SIZE": 127, "INSTANCE_SIZE": 255,
                  "BASE_SIZE": 8, "CONTEXT_AMOUNT": 0.5},
        "TRAIN": {"BBOX_NORMALIZE_STDS": [0.1, 0.1, 0.25, 0.25], "EPOCH": 20},
        "DATASET": {"NAMES": ["VID", "COCO"]},
    }
    for dotted, value in changes.items():
        node = data
        *parents, last = dotted.split("__")
        for p in parents:
            node = node.setdefault(p, {})
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    path.write_text(yaml.safe_dump(data))
    return path


def test_yaml_settings_are_applied(tmp_path):
    y = write_yaml(tmp_path / "config_vot2018.yaml")
    s = authors.settings(read_yaml(y), y, weighted_from_keys=True)
    assert s["tracker.penalty_k"] == 0.13 and s["tracker.window_influence"] == 0.29 and s["tracker.lr"] == 0.41
    assert s["tracker.mask_threshold"] == 0.27 and s["model.refine.box_stds"] == [0.1, 0.1, 0.25, 0.25]
    assert s["model.rpn.weighted_fusion"] is True and s["anchors.scales"] == [8.0]


def test_absent_yaml_keys_take_their_codes_defaults(tmp_path):
    y = write_yaml(tmp_path / "c.yaml", TRACK__PENALTY_K=None, TRACK__LR=None)
    s = authors.settings(read_yaml(y), y, weighted_from_keys=True)
    assert (s["tracker.penalty_k"], s["tracker.lr"]) == (0.04, 0.4)  # their config.py defaults


@pytest.mark.parametrize(("change", "pattern"), [
    ({"BACKBONE__TYPE": "mobilenetv2"}, r"BACKBONE\.TYPE = 'mobilenetv2' is a network this project does not build"),
    ({"TRACK__TYPE": None}, r"TRACK\.TYPE = 'SiamRPNTracker' is not 'SiamMaskTracker'"),
    ({"TRACK__MASK_OUTPUT_SIZE": None}, r"TRACK\.MASK_OUTPUT_SIZE = 127 differs from MASK\.MASK_OUTSIZE = 64"),
    ({"MASK__MASK": False}, r"MASK\.MASK = False builds no refinement heads"),
    ({"RPN__KWARGS__weighted": False}, r"RPN\.KWARGS\.weighted = False .*disagrees with the checkpoint"),
    ({"TRAIN__BBOX_NORMALIZE_MEANS": [0.1, 0, 0, 0]}, r"BBOX_NORMALIZE_MEANS .* is not zero"),
    ({"TRACK__INSTANCE_SIZE": 287}, r"TRACK\.INSTANCE_SIZE = 287 is not 255"),
    ({"ANCHOR__RATIOS": [0.5, 1, 2]}, r"ANCHOR\.ANCHOR_NUM = 5 differs from len\(RATIOS\) \* len\(SCALES\) = 3"),
    ({"TRACK__PENALTY_K": "high"}, r"TRACK\.PENALTY_K = 'high' is not a finite number"),
    ({"TRACK__PENALTY_K": float("nan")}, r"TRACK\.PENALTY_K = nan is not a finite number"),  # not "must be >= 0"
])
def test_unrepresentable_yaml_is_one_line(tmp_path, change, pattern):
    y = write_yaml(tmp_path / "c.yaml", **change)
    with pytest.raises(ConfigError, match=pattern) as info:
        authors.settings(read_yaml(y), y, weighted_from_keys=True)
    assert "\n" not in str(info.value)


def test_benchmark_from_the_file_name():
    assert guess_benchmark("x/config_otb100.yaml") == "otb"
    assert guess_benchmark("x/config_vot2018.yaml") == "vot"
    assert guess_benchmark(None) == "vot"


# ------------------------------------------------------------------------------------------------ CLI

def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    rc = main(["import", "--from", "siamattn-authors", *args])
    out, err = capsys.readouterr()
    return rc, out, err


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_cli_errors_are_one_line(tmp_path, capsys):
    out = str(tmp_path / "o.pt")
    rc, _, err = run_cli(capsys, "--checkpoint", str(tmp_path / "none.pth"), "--out", out)
    assert rc == 2 and "does not exist" in one_error_line(err)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"\x00garbage" * 10)
    rc, _, err = run_cli(capsys, "--checkpoint", str(junk), "--out", out)
    assert rc == 2 and "is not a PyTorch checkpoint" in one_error_line(err)
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("TRACK: [unclosed\n")
    rc, _, err = run_cli(capsys, "--checkpoint", str(junk), "--config-file", str(bad_yaml), "--out", out)
    assert rc == 2 and "is not valid YAML" in one_error_line(err)
    wrong = tmp_path / "wrong.pth"
    torch.save({"epoch": 1, "state_dict": {"module.head.weight": torch.zeros(3)}}, wrong)
    rc, _, err = run_cli(capsys, "--checkpoint", str(wrong), "--out", out)
    line = one_error_line(err)
    assert rc == 2 and "is not the SiamAttn authors' network" in line and "head.weight" in line
    assert "backbone.* (265 keys)" in line  # grouped, named as theirs (num_batches_tracked may be absent)
    Path(out).write_bytes(b"keep")
    rc, _, err = run_cli(capsys, "--checkpoint", str(wrong), "--out", out)
    assert rc == 2 and "already exists; pass --overwrite" in one_error_line(err)
    assert Path(out).read_bytes() == b"keep"
    rc, _, err = run_cli(capsys, "--checkpoint", str(wrong), "--out", str(wrong), "--overwrite")
    assert rc == 2 and "is the input --checkpoint" in one_error_line(err)


# ------------------------------------------------------------------------------------------------ round trip

@pytest.mark.slow
def test_import_round_trip_full_size(tmp_path, capsys):
    """A synthetic checkpoint of theirs (the fixture's names and shapes, random values, training container,
    DataParallel prefix) -> siamattn import with their YAML -> a checkpoint that loads with no config, holds
    their values under our names and carries the YAML's settings."""
    state = their_state("cpu", seed=1)
    src = tmp_path / "checkpoint_otb100.pth"
    torch.save({"epoch": 20, "state_dict": {f"module.{k}": v for k, v in state.items()}, "optimizer": None}, src)
    y = write_yaml(tmp_path / "config_otb100.yaml")
    dst = tmp_path / "siamattn.pt"
    rc, out, err = run_cli(capsys, "--checkpoint", str(src), "--config-file", str(y), "--out", str(dst))
    assert rc == 0, err
    assert "imported 645 tensors" in out and "benchmark settings: otb" in out
    payload = read_checkpoint(dst)
    assert payload["source"] == {"from": "siamattn-authors", "checkpoint": src.name, "config_file": y.name}
    model = load_checkpoint(dst)  # no config: the checkpoint's own
    cfg = model.cfg
    assert cfg.name == "siamattn_r50_otb" and cfg.tracker.output == "box" and cfg.tracker.geometry == "authors"
    assert (cfg.tracker.penalty_k, cfg.tracker.window_influence, cfg.tracker.lr) == (0.13, 0.29, 0.41)
    assert cfg.model.refine.box_stds == [0.1, 0.1, 0.25, 0.25]
    assert cfg.model.attention.channel_softmax == "negated" and cfg.model.refine.pool_mode == "mmdet_v1"
    ours = model.state_dict()
    with torch.device("meta"):
        fresh = build_model(load_config("siamattn_r50")).state_dict()
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in fresh.items()}
    assert torch.equal(ours["dsa.2.query.weight"], state["feature_enhance.pams.2.key_conv.weight"])
    assert torch.equal(ours["refine.mask_pool.offset_fc.0.weight"], state["mask_head.roi_pool_m.offset_fc.0.weight"])
    with torch.no_grad():  # the imported model runs (values meaningless: N(0, 1) weights, negative variances)
        out = model.search(torch.rand(1, 3, 255, 255) * 255, model.template(torch.rand(1, 3, 127, 127) * 255))
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "cls": (1, 10, 25, 25), "loc": (1, 20, 25, 25), "box_feat": (1, 256, 25, 25), "mask_feat": (1, 256, 63, 63)}


def test_without_yaml_siamattn_r50_vot2018_settings_and_it_says_so():
    cfg, notes = import_config(set(their_keys()))
    shipped = load_config("siamattn_r50").tracker
    assert cfg.name == "siamattn_r50" and cfg.tracker.output == "polygon" and cfg.tracker.geometry == "authors"
    assert (cfg.tracker.penalty_k, cfg.tracker.lr) == (shipped.penalty_k, shipped.lr)
    assert any(n.startswith("no --config-file: siamattn_r50's VOT2018 settings") for n in notes)
    otb, _ = import_config(set(their_keys()), benchmark="otb")
    assert otb.name == "siamattn_r50_otb" and otb.tracker.output == "box"
    assert otb.tracker.penalty_k == load_config("siamattn_r50_otb").tracker.penalty_k
    unweighted, notes = import_config({k for k in their_keys() if not k.startswith("rpn_head.cls_weight")})
    assert not unweighted.model.rpn.weighted_fusion and any("averaged" in n for n in notes)
