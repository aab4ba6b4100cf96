"""``siamattn import --from pysot``: pysot's model zoo (SiamRPN++ ResNet-50 / MobileNetV2, SiamRPN AlexNet, SiamMask).

The key tables are the committed lists of the keys and shapes pysot's own ModelBuilder produces
(tests/data/pysot_keys_*.txt, written by the harness of docs/MODELS.md); the YAMLs are written here in pysot's
format with the values of its experiment folders. The comparison with pysot's tracker is bench/compare_pysot.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from siamattn.cli import main
from siamattn.config import load_config
from siamattn.errors import SiamAttnError
from siamattn.training.importers import import_config_pysot, pysot
from siamattn.training.importers.keymap import map_state_dict
from siamattn.training.model.checkpoint import load_checkpoint, read_checkpoint
from siamattn.training.model.siamattn import build_model

DATA = Path(__file__).parent / "data"
ANCHOR = {"STRIDE": 8, "RATIOS": [0.33, 0.5, 1, 2, 3], "SCALES": [8], "ANCHOR_NUM": 5}
NECK_R50 = {"ADJUST": True, "TYPE": "AdjustAllLayer",
            "KWARGS": {"in_channels": [512, 1024, 2048], "out_channels": [256, 256, 256]}}


def _track(pk: float, wi: float, lr: float, instance: int = 255, base: int = 8) -> dict:
    return {"TYPE": "SiamRPNTracker", "PENALTY_K": pk, "WINDOW_INFLUENCE": wi, "LR": lr, "EXEMPLAR_SIZE": 127,
            "INSTANCE_SIZE": instance, "BASE_SIZE": base, "CONTEXT_AMOUNT": 0.5}


def _multi(weighted: bool) -> dict:
    return {"TYPE": "MultiRPN", "KWARGS": {"anchor_num": 5, "in_channels": [256, 256, 256], "weighted": weighted}}


ALEX = {"BACKBONE": {"TYPE": "alexnetlegacy", "KWARGS": {"width_mult": 1.0}}, "ADJUST": {"ADJUST": False},
        "RPN": {"TYPE": "DepthwiseRPN", "KWARGS": {"anchor_num": 5, "in_channels": 256, "out_channels": 256}},
        "MASK": {"MASK": False}, "ANCHOR": ANCHOR, "TRACK": _track(0.16, 0.40, 0.30, 287, 0)}
# pysot's experiments/<name>/config.yaml: (YAML, key table file, shipped config with the same network and values)
EXPERIMENTS = {
    "siamrpn_r50_l234_dwxcorr": (
        {"META_ARC": "siamrpn_r50_l234_dwxcorr", "BACKBONE": {"TYPE": "resnet50", "KWARGS": {"used_layers": [2, 3, 4]}},
         "ADJUST": NECK_R50, "RPN": _multi(True), "MASK": {"MASK": False}, "ANCHOR": ANCHOR,
         "TRACK": _track(0.05, 0.42, 0.38)}, "siamrpn_r50_l234_dwxcorr", "siamrpnpp_r50"),
    "siamrpn_r50_l234_dwxcorr_otb": (
        {"META_ARC": "siamrpn_r50_l234_dwxcorr_otb",
         "BACKBONE": {"TYPE": "resnet50", "KWARGS": {"used_layers": [2, 3, 4]}},
         "ADJUST": NECK_R50, "RPN": _multi(False), "MASK": {"MASK": False}, "ANCHOR": ANCHOR,
         "TRACK": _track(0.24, 0.5, 0.25)}, "siamrpn_r50_l234_dwxcorr", "siamrpnpp_r50_otb"),
    "siamrpn_mobilev2_l234_dwxcorr": (
        {"META_ARC": "siamrpn_mobilev2_l234_dwxcorr",
         "BACKBONE": {"TYPE": "mobilenetv2", "KWARGS": {"used_layers": [3, 5, 7], "width_mult": 1.4}},
         "ADJUST": {"ADJUST": True, "TYPE": "AdjustAllLayer",
                    "KWARGS": {"in_channels": [44, 134, 448], "out_channels": [256, 256, 256]}},
         "RPN": _multi(False), "MASK": {"MASK": False}, "ANCHOR": ANCHOR, "TRACK": _track(0.04, 0.4, 0.5)},
        "siamrpn_mobilev2_l234_dwxcorr", "siamrpnpp_mobilev2"),
    # its YAML as the model zoo has it: BACKBONE.CHANNELS, ADJUST.ADJUST_CHANNEL and RPN.WEIGHTED repeat KWARGS
    "siamrpn_r50_l234_dwxcorr_lt": (
        {"META_ARC": "siamrpn_r50_l234_dwxcorr",
         "BACKBONE": {"TYPE": "resnet50", "KWARGS": {"used_layers": [2, 3, 4]}, "CHANNELS": [512, 1024, 2048]},
         "ADJUST": {"ADJUST": True, "TYPE": "AdjustAllLayer", "ADJUST_CHANNEL": [128, 256, 512],
                    "KWARGS": {"in_channels": [512, 1024, 2048], "out_channels": [128, 256, 512]}},
         "RPN": {"TYPE": "MultiRPN", "WEIGHTED": True,
                 "KWARGS": {"anchor_num": 5, "in_channels": [128, 256, 512], "weighted": True}},
         "MASK": {"MASK": False}, "ANCHOR": ANCHOR,
         "TRACK": {**_track(0.05, 0.28, 0.22), "TYPE": "SiamRPNLTTracker", "CONFIDENCE_LOW": 0.8,
                   "CONFIDENCE_HIGH": 0.998}}, "siamrpn_r50_l234_dwxcorr_lt", "siamrpnpp_r50_lt"),
    "siammask_r50_l3": (
        {"META_ARC": "siamrpn_r50_l234_dwxcorr",
         "BACKBONE": {"TYPE": "resnet50", "KWARGS": {"used_layers": [0, 1, 2, 3]}},
         "ADJUST": {"ADJUST": True, "TYPE": "AdjustAllLayer", "KWARGS": {"in_channels": [1024], "out_channels": [256]}},
         "RPN": {"TYPE": "DepthwiseRPN", "KWARGS": {"anchor_num": 5, "in_channels": 256, "out_channels": 256}},
         "MASK": {"MASK": True, "TYPE": "MaskCorr",
                  "KWARGS": {"in_channels": 256, "hidden": 256, "out_channels": 3969}},
         "REFINE": {"REFINE": True, "TYPE": "Refine"}, "ANCHOR": ANCHOR,
         "TRACK": {**_track(0.10, 0.41, 0.32), "TYPE": "SiamMaskTracker", "MASK_THERSHOLD": 0.15}},
        "siammask_r50_l3", "siammask_r50"),
    "siamrpn_alex_dwxcorr": ({"META_ARC": "siamrpn_alex_dwxcorr", **ALEX}, "siamrpn_alex_dwxcorr", "siamrpn_alex"),
    "siamrpn_alex_dwxcorr_otb": ({"META_ARC": "siamrpn_alex_dwxcorr", **ALEX}, "siamrpn_alex_dwxcorr",
                                 "siamrpn_alex_otb"),
}


def their_keys(table: str, weighted: bool = True) -> dict[str, tuple[int, ...]]:
    out = {}
    for line in (DATA / f"pysot_keys_{table}.txt").read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, shape = line.split()
        if not weighted and name.startswith("rpn_head.") and name.endswith("_weight"):
            continue  # pysot's MultiRPN(weighted=False) has no fusion logits
        out[name] = () if shape == "scalar" else tuple(int(s) for s in shape.split("x"))
    return out


def their_state(keys: dict[str, tuple[int, ...]], device: str = "meta", seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    state = {}
    for name, shape in keys.items():
        if name.endswith("num_batches_tracked"):
            state[name] = torch.tensor(7)
        elif device == "meta":
            state[name] = torch.empty(shape, device="meta")
        elif name.endswith("running_var"):
            state[name] = 0.5 + torch.rand(shape, generator=g)
        else:
            state[name] = 0.1 * torch.randn(shape, generator=g)
    return state


def write_experiment(root: Path, name: str, data: dict | None = None) -> Path:
    path = root / "experiments" / name / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data if data is not None else EXPERIMENTS[name][0], sort_keys=False))
    return path


def _weighted(name: str) -> bool:
    return EXPERIMENTS[name][0]["RPN"].get("KWARGS", {}).get("weighted", False) is True


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_yaml_gives_the_shipped_config_and_every_key_maps(name, tmp_path):
    data, table, shipped = EXPERIMENTS[name]
    keys = their_keys(table, _weighted(name))
    cfg, _ = import_config_pysot(set(keys), write_experiment(tmp_path, name), data)
    ref = load_config(shipped)
    assert cfg.name == name  # the experiment folder (the _otb META_ARC of AlexNet is the VOT one)
    assert cfg.model == ref.model and cfg.anchors == ref.anchors
    assert cfg.tracker == ref.tracker  # penalty, window, lr, sizes, pysot geometry, box output
    with torch.device("meta"):
        target = build_model(cfg).state_dict()
    mapped = map_state_dict(their_state(keys), pysot.table(cfg), target, "the fixture")
    assert set(mapped) == set(target) and len(keys) == len(target)  # one to one


def test_fixtures_are_pysots_networks():
    alex, mbv2, r50 = (their_keys(t) for t in ("siamrpn_alex_dwxcorr", "siamrpn_mobilev2_l234_dwxcorr",
                                                "siamrpn_r50_l234_dwxcorr"))
    assert alex["backbone.features.0.weight"] == (96, 3, 11, 11)
    assert alex["rpn_head.cls.head.3.weight"] == (10, 256, 1, 1)
    # pysot's MobileNetV2 at 1.4: channels int(c * 1.4), a 1x1 expand conv in the t=1 block (layer1)
    widths = [mbv2[f"backbone.layer{i}.0.conv.7.weight"][0] for i in range(1, 8)]
    assert [mbv2["backbone.layer0.0.weight"][0], *widths] == [44, 22, 33, 44, 89, 134, 224, 448]
    assert mbv2["backbone.layer1.0.conv.0.weight"] == (44, 44, 1, 1)
    assert r50["rpn_head.cls_weight"] == (3,) and r50["neck.downsample4.downsample.0.weight"] == (256, 2048, 1, 1)
    lt = their_keys("siamrpn_r50_l234_dwxcorr_lt")  # a width per level, each RPN block at its level's width
    assert lt["neck.downsample2.downsample.0.weight"] == (128, 512, 1, 1)
    assert lt["rpn_head.rpn2.cls.conv_kernel.0.weight"] == (128, 128, 3, 3)
    assert lt["rpn_head.rpn4.loc.head.0.weight"] == (512, 512, 1, 1)


def test_the_table_moves_values_where_the_docs_say(tmp_path):
    name = "siamrpn_mobilev2_l234_dwxcorr"
    keys = their_keys(EXPERIMENTS[name][1], False)
    cfg, _ = import_config_pysot(set(keys), write_experiment(tmp_path, name), EXPERIMENTS[name][0])
    state = their_state(keys, "cpu")
    with torch.device("meta"):
        target = build_model(cfg).state_dict()
    mapped = map_state_dict(dict(state), pysot.table(cfg), target, "x")
    pairs = {"backbone.layer0.1.running_mean": "backbone.features.0.1.running_mean",
             "backbone.layer1.0.conv.0.weight": "backbone.features.1.conv.0.weight",
             "backbone.layer4.3.conv.6.weight": "backbone.features.10.conv.6.weight",
             "backbone.layer7.0.conv.7.bias": "backbone.features.17.conv.7.bias",
             "neck.downsample3.downsample.1.weight": "neck.adjust.1.1.weight",
             "rpn_head.rpn4.loc.head.3.bias": "rpn.loc.2.head.3.bias"}
    for theirs, ours in pairs.items():
        assert torch.equal(mapped[ours], state[theirs]), (theirs, ours)


def _alex_forward_by_hand(state: dict[str, torch.Tensor], z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """pysot's AlexNetLegacy + DepthwiseRPN cls branch written from the layer list in docs/MODELS.md."""
    F = torch.nn.functional

    def bn(t, p):
        return F.batch_norm(t, state[p + "running_mean"], state[p + "running_var"], state[p + "weight"],
                            state[p + "bias"], False, 0.0, 1e-5)

    def backbone(t):
        for i, (conv, norm, pool, relu) in enumerate(((0, 1, True, True), (4, 5, True, True), (8, 9, False, True),
                                                      (11, 12, False, True), (14, 15, False, False))):
            w, b = state[f"backbone.features.{conv}.weight"], state[f"backbone.features.{conv}.bias"]
            t = bn(F.conv2d(t, w, b, 2 if i == 0 else 1), f"backbone.features.{norm}.")
            t = F.max_pool2d(t, 3, 2) if pool else t
            t = F.relu(t) if relu else t
        return t

    def branch(t, p):
        return F.relu(bn(F.conv2d(t, state[p + "0.weight"]), p + "1."))

    zf, xf = backbone(z), backbone(x)
    k, s = branch(zf, "rpn_head.cls.conv_kernel."), branch(xf, "rpn_head.cls.conv_search.")
    corr = torch.cat([F.conv2d(s[:, c:c + 1], k[:, c:c + 1]) for c in range(k.shape[1])], 1)
    h = F.relu(bn(F.conv2d(corr, state["rpn_head.cls.head.0.weight"]), "rpn_head.cls.head.1."))
    return F.conv2d(h, state["rpn_head.cls.head.3.weight"], state["rpn_head.cls.head.3.bias"])


def test_cli_import_of_alexnet_matches_its_layers_and_tracks_without_config(tmp_path, capsys, one_torch_thread):
    name = "siamrpn_alex_dwxcorr_otb"
    state = their_state(their_keys(EXPERIMENTS[name][1]), "cpu")
    src = tmp_path / "model.pth"
    torch.save({"epoch": 20, "state_dict": {f"module.{k}": v for k, v in state.items()}}, src)  # their trainer's
    out = tmp_path / "alex.pt"
    rc = main(["import", "--from", "pysot", "--checkpoint", str(src), "--config-file",
               str(write_experiment(tmp_path, name)), "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    assert read_checkpoint(out)["source"]["from"] == "pysot"
    model = load_checkpoint(out)  # its own config: no --config
    assert model.cfg.tracker.instance_size == 287 and model.cfg.tracker.score_size == 21
    g = torch.Generator().manual_seed(1)
    z, x = torch.rand(1, 3, 127, 127, generator=g) * 255, torch.rand(1, 3, 287, 287, generator=g) * 255
    with torch.no_grad():
        ours = model.search(x, model.template(z))["cls"]
        ref = _alex_forward_by_hand(state, z, x)
    assert ours.shape == (1, 10, 21, 21)
    assert float((ours - ref).abs().max()) <= 1e-5 * float(ref.abs().max())

    from siamattn.runtime import Tracker
    from siamattn.runtime.torch_backend import TorchBackend

    tracker = Tracker(TorchBackend(model), model.cfg)
    frame = np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    tracker.init(frame, (100, 80, 60, 50))
    r = tracker.track(frame)
    assert len(r.box) == 4 and r.polygon is None and r.region == tuple(r.box)


def _err(tmp_path, name: str, data: dict, keys: dict | None = None) -> str:
    keys = keys if keys is not None else their_keys(EXPERIMENTS[name][1], _weighted(name))
    with pytest.raises(SiamAttnError) as e:
        cfg, _ = import_config_pysot(set(keys), write_experiment(tmp_path, name, data), data)
        with torch.device("meta"):
            target = build_model(cfg).state_dict()
        map_state_dict(their_state(keys), pysot.table(cfg), target, "checkpoint 'm.pth'")
    assert "\n" not in str(e.value)
    return str(e.value)


def _edit(name: str, dotted: str, value: object) -> dict:
    data = yaml.safe_load(yaml.safe_dump(EXPERIMENTS[name][0]))
    node = data
    *parents, last = dotted.split(".")
    for p in parents:
        node = node.setdefault(p, {})
    node[last] = value
    return data


def test_yaml_errors_name_the_key(tmp_path):
    alex, r50, lt = "siamrpn_alex_dwxcorr", "siamrpn_r50_l234_dwxcorr", "siamrpn_r50_l234_dwxcorr_lt"
    mask = "siammask_r50_l3"
    cases = [
        (alex, "TRACK.PENALTY", 0.1, "TRACK.PENALTY is not a key of pysot's config"),
        (alex, "BACKBONE.KWARGS.width", 1, "BACKBONE.KWARGS.width is not an argument of pysot's alexnetlegacy"),
        (alex, "BACKBONE.TYPE", "resnet18", "BACKBONE.TYPE = 'resnet18' is not one this project builds"),
        (alex, "TRACK.BASE_SIZE", 8, "29x29 anchor grid, but the network computes 21x21"),
        (alex, "RPN.TYPE", "MultiRPN", "RPN.TYPE = 'MultiRPN' does not fit 1 backbone level"),
        (r50, "MASK.MASK", True, "REFINE.REFINE = False (or a missing REFINE section): SiamMask's tracker needs"),
        (r50, "RPN.KWARGS.weighted", False, "disagrees with the checkpoint, which has rpn_head.cls_weight"),
        (r50, "ADJUST.KWARGS.in_channels", [512, 1024, 1024], "differs from the backbone's level widths"),
        (r50, "TRACK.TYPE", "SiamMaskTracker", "TRACK.TYPE = 'SiamMaskTracker' needs the mask branch"),
        (r50, "TRACK.TYPE", "SiamFCTracker", "TRACK.TYPE = 'SiamFCTracker' is not one of 'SiamRPNTracker', "
         "'SiamRPNLTTracker', 'SiamMaskTracker'"),
        (mask, "TRACK.TYPE", "SiamRPNTracker", "TRACK.TYPE = 'SiamRPNTracker' is not 'SiamMaskTracker'"),
        (mask, "TRACK.MASK_OUTPUT_SIZE", 63, "TRACK.MASK_OUTPUT_SIZE = 63 is not 127"),
        (mask, "MASK.KWARGS.out_channels", 4000, "MASK.KWARGS.out_channels = 4000 is not a square"),
        (mask, "BACKBONE.KWARGS.used_layers", [0, 1, 2], "BACKBONE.KWARGS.used_layers = [0, 1, 2] is not [2, 3, 4]"),
        (lt, "TRACK.LOST_INSTANCE_SIZE", 255, "TRACK.LOST_INSTANCE_SIZE = 255 is not an integer at least 8 px larger "
         "than TRACK.INSTANCE_SIZE (255)"),
        (lt, "TRACK.CONFIDENCE_LOW", 0.999, "TRACK.CONFIDENCE_LOW = 0.999 is not in [0, TRACK.CONFIDENCE_HIGH"),
        (lt, "ADJUST.ADJUST_CHANNEL", [256, 256, 256], "ADJUST.ADJUST_CHANNEL = [256, 256, 256] differs from "
         "ADJUST.KWARGS.out_channels"),
        (lt, "RPN.KWARGS.in_channels", [256, 256, 256], "differs from the neck's widths [128, 256, 512]"),
    ]
    for name, key, value, expected in cases:
        err = _err(tmp_path, name, _edit(name, key, value))
        assert expected in err and "config.yaml" in err, (key, err)


def test_siammask_yaml_without_refine_section_is_one_line(tmp_path):
    data = yaml.safe_load(yaml.safe_dump(EXPERIMENTS["siammask_r50_l3"][0]))
    del data["REFINE"]
    err = _err(tmp_path, "siammask_r50_l3", data)
    assert "REFINE.REFINE = False (or a missing REFINE section): SiamMask's tracker needs the refine module" in err


@pytest.mark.parametrize(("yaml_of", "keys_of", "expected"), [
    ("siammask_r50_l3", "siamrpn_r50_l234_dwxcorr", "is not pysot's siammask_r50_l3 network as the config describes "
     "it: 198 of its keys map to nothing in our model: backbone.* (60 keys)"),
    ("siamrpn_r50_l234_dwxcorr", "siammask_r50_l3", "disagrees with the checkpoint, which has no rpn_head.cls_weight"),
])
def test_siammask_yaml_and_checkpoint_mismatch_is_one_line(tmp_path, yaml_of, keys_of, expected):
    """Either way round: SiamRPN++'s (unweighted, as its _otb model) checkpoint with SiamMask's YAML and back."""
    err = _err(tmp_path, yaml_of, EXPERIMENTS[yaml_of][0], their_keys(keys_of, _weighted(yaml_of)))
    assert expected in err, err


def test_lt_yaml_with_another_experiments_checkpoint_is_one_line(tmp_path):
    """The long-term YAML (neck 128/256/512) with the 256-wide siamrpn_r50_l234_dwxcorr checkpoint: same keys,
    other shapes."""
    err = _err(tmp_path, "siamrpn_r50_l234_dwxcorr_lt", EXPERIMENTS["siamrpn_r50_l234_dwxcorr_lt"][0],
               their_keys("siamrpn_r50_l234_dwxcorr"))
    assert "neck.downsample2.downsample.0.weight" in err and "shape" in err, err


def test_key_errors_name_unknown_and_missing_keys(tmp_path):
    name = "siamrpn_r50_l234_dwxcorr"
    keys = their_keys(EXPERIMENTS[name][1])
    keys["rpn_head.rpn5.cls.head.3.bias"] = (10,)
    del keys["neck.downsample3.downsample.0.weight"]
    err = _err(tmp_path, name, EXPERIMENTS[name][0], keys)
    assert "1 of its keys map to nothing in our model: rpn_head.rpn5.cls.head.3.bias" in err
    assert "1 keys the model needs are absent: neck.downsample3.downsample.0.weight" in err


def test_cli_refuses_pysot_without_yaml_or_with_benchmark(tmp_path, capsys):
    src = tmp_path / "model.pth"
    torch.save({"backbone.features.0.weight": torch.zeros(1)}, src)
    rc = main(["import", "--from", "pysot", "--checkpoint", str(src), "--out", str(tmp_path / "o.pt")])
    assert rc == 2 and "--from pysot needs --config-file" in capsys.readouterr().err
    cfg = write_experiment(tmp_path, "siamrpn_alex_dwxcorr")
    rc = main(["import", "--from", "pysot", "--checkpoint", str(src), "--config-file", str(cfg), "--benchmark", "otb",
               "--out", str(tmp_path / "o.pt")])
    assert rc == 2 and "--benchmark is for --from siamattn-authors" in capsys.readouterr().err
