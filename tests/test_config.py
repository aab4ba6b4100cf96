"""The shared typed configuration: loading, inheritance, overrides and the errors a user sees."""

from __future__ import annotations

import pytest

from siamattn.cli import main
from siamattn.config import available_configs, from_dict, load_config
from siamattn.errors import ConfigError


def test_shipped_configs_load_and_differ_where_the_paper_says():
    names = available_configs()
    assert {"siamattn_r50", "siamrpnpp_r50", "tiny", "siamattn_r50_no_deform"} <= set(names)
    paper = load_config("siamattn_r50")
    base = load_config("siamrpnpp_r50")
    assert paper.model.attention.enabled and paper.model.refine.mask
    assert not base.model.attention.enabled and not base.model.refine.enabled
    assert (paper.tracker.penalty_k, paper.tracker.window_influence, paper.tracker.lr) == (0.10, 0.25, 0.45)
    assert (base.tracker.penalty_k, base.tracker.window_influence, base.tracker.lr) == (0.05, 0.42, 0.38)
    assert load_config("tiny").model.backbone.width == 8
    assert paper.tracker.score_size == 25 and paper.anchors.num == 5


def test_siamattn_r50_is_the_authors_network_and_the_paper_variant_keeps_the_text():
    authors, text, otb = load_config("siamattn_r50"), load_config("siamattn_r50_paper"), load_config("siamattn_r50_otb")
    a, r = authors.model.attention, authors.model.refine
    assert (a.channel_softmax, a.shared_channel_scalar, a.deform_bias) == ("negated", True, False)
    assert (r.box_corr, r.mask_features, r.mask_channels, r.mask_head_bn, r.mask_deformable_pool, r.pool_mode,
            r.sampling_ratio) == ("head", "laterals", 256, True, True, "mmdet_v1", 4)
    t = authors.tracker
    assert (t.penalty_k, t.window_influence, t.lr, t.mask_threshold) == (0.10, 0.25, 0.45, 0.2)
    assert (t.geometry, t.output) == ("authors", "polygon")
    assert otb.model == authors.model
    assert (otb.tracker.penalty_k, otb.tracker.window_influence, otb.tracker.lr) == (0.20, 0.35, 0.50)
    assert (otb.tracker.geometry, otb.tracker.output) == ("authors", "box")
    assert text.tracker.geometry == "pysot" and load_config("siamrpnpp_r50").tracker.geometry == "pysot"
    assert text.model.attention.channel_softmax == "plain" and text.model.refine.box_corr == "raw"
    assert text.model.refine.mask_channels == 64 and text.model.refine.sampling_ratio == 2
    # the ablations are ablations of the authors' network
    for name in ("siamattn_r50_self_only", "siamattn_r50_cross_only", "siamattn_r50_no_deform"):
        assert load_config(name).model.refine.box_corr == "head", name
    assert not load_config("siamattn_r50_no_deform").model.refine.mask_deformable_pool


def test_unknown_key_is_named_with_its_path(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("base: tiny\nmodel:\n  attention:\n    self_atention: false\n")
    with pytest.raises(ConfigError, match=r"unknown config key 'model\.attention\.self_atention'"):
        load_config(f)


@pytest.mark.parametrize(
    "override, message",
    [
        ("tracker.lr=fast", r"'tracker\.lr' must be a number"),
        ("tracker.lr=1.5", r"'tracker\.lr' must be in \[0, 1\]"),
        ("model.attention.deformable=3", r"must be true or false"),
        ("model.backbone.blocks=[1,2]", r"four stage depths"),
        ("model.refine.enabled=false", r"'model\.refine\.mask' needs model\.refine\.enabled"),
        ("export.precision=int4", r"'export\.precision' must be one of 'fp16', 'fp32', 'int8'"),
        ("model.attention.channel_softmax=inverse", r"'model\.attention\.channel_softmax' must be 'plain' or"),
        ("model.refine.box_corr=full", r"'model\.refine\.box_corr' must be 'raw' or 'head'"),
        ("model.refine.mask_features=fpn", r"'model\.refine\.mask_features' must be 'corr' or 'laterals'"),
        ("model.refine.pool_mode=roialign", r"'model\.refine\.pool_mode' must be 'mmcv' or 'mmdet_v1'"),
        ("tracker.geometry=siamfc", r"'tracker\.geometry' must be one of 'pysot', 'authors', got 'siamfc'"),
        ("tracker.output=mask", r"'tracker\.output' must be one of 'polygon', 'box', got 'mask'"),
        ("nonsense", r"must look like key\.path=value"),
    ],
)
def test_bad_values_are_rejected_with_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("tiny", [override])


def test_unknown_config_name_lists_choices():
    with pytest.raises(ConfigError, match=r"unknown config 'nope'.*siamattn_r50"):
        load_config("nope")


def test_tracker_geometry_and_output_defaults_keep_the_pysot_tracker():
    for name in ("tiny", "demo_mobilenetv2"):  # the shipped demo and test models keep pysot's tracker
        t = load_config(name).tracker
        assert (t.geometry, t.output) == ("pysot", "polygon")
    t = load_config("tiny", ["tracker.geometry=authors", "tracker.output=box"]).tracker
    assert (t.geometry, t.output) == ("authors", "box")


def test_overrides_apply_and_dict_roundtrip():
    cfg = load_config("tiny", ["tracker.lr=0.3", "model.attention.cross_attention=false"])
    assert cfg.tracker.lr == 0.3 and not cfg.model.attention.cross_attention
    assert from_dict(cfg.to_dict()) == cfg


def test_base_cycle_is_reported(tmp_path):
    (tmp_path / "a.yaml").write_text(f"base: {tmp_path / 'b.yaml'}\n")
    (tmp_path / "b.yaml").write_text(f"base: {tmp_path / 'a.yaml'}\n")
    with pytest.raises(ConfigError, match="circular"):
        load_config(tmp_path / "a.yaml")


def test_cli_configs_lists_and_reports_errors(capsys):
    assert main(["configs"]) == 0
    assert "siamattn_r50" in capsys.readouterr().out
    assert main(["configs", "tiny", "--set", "model.nope=1"]) == 2
    assert "unknown config key 'model.nope'" in capsys.readouterr().err


# ------------------------------------------------------------------ issue 23: values that break the tracker


@pytest.mark.parametrize(
    "override, message",
    [
        ("anchors.stride=0", r"'anchors\.stride' must be >= 1"),
        ("tracker.base_size=-8", r"'tracker\.base_size' must be >= 0"),
        ("tracker.min_size=.inf", r"'tracker\.min_size' must be a finite number, got inf"),
        ("tracker.min_size=.nan", r"'tracker\.min_size' must be a finite number, got nan"),
        ("tracker.penalty_k=.nan", r"'tracker\.penalty_k' must be a finite number, got nan"),  # not "must be >= 0"
        ("tracker.lr=.nan", r"'tracker\.lr' must be a finite number"),
        ("anchors.ratios=[]", r"'anchors\.ratios' needs at least one value, each > 0, got \[\]"),
        ("anchors.scales=[]", r"'anchors\.scales' needs at least one value"),
        ("anchors.ratios=[0.5, -1]", r"'anchors\.ratios' needs at least one value, each > 0"),
        ("model.refine.box_stds=[0.1, .nan, 0.2, 0.2]", r"'model\.refine\.box_stds\[1\]' must be a finite number"),
        ("train.seed=4294967296", r"'train\.seed' must be in \[0, 4294967295\]"),
    ],
)
def test_values_that_break_the_tracker_are_refused_at_load(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("tiny", [override])


def test_override_value_that_is_not_yaml_is_one_line(capsys):
    with pytest.raises(ConfigError, match=r"override 'tracker\.lr=\[1': the value '\[1' is not valid YAML"):
        load_config("tiny", ["tracker.lr=[1"])
    assert main(["configs", "tiny", "--set", "tracker.lr=[1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize(("content", "message"), [
    (b"\xff\xfe\x00base: tiny\n", r"is not UTF-8 text \(byte 0\)"),
    (b"base: 5\n", r"'base' must be a config name or a YAML path, got 5"),
    (b"base: [tiny]\n", r"'base' must be a config name or a YAML path, got \['tiny'\]"),
    (b"model: [1\n", r"is not valid YAML \(line 2, column 1: expected ',' or '\]'"),
])
def test_bad_yaml_files_are_one_line(tmp_path, capsys, content, message):
    f = tmp_path / "c.yaml"
    f.write_bytes(content)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(f)
    assert "\n" not in str(info.value)
    assert main(["configs", str(f)]) == 2 and "Traceback" not in capsys.readouterr().err


def test_a_folder_given_as_config_is_called_a_folder(tmp_path):
    for name in ("cfgs", "cfgs.yaml"):
        (tmp_path / name).mkdir()
        with pytest.raises(ConfigError, match=f"config '{tmp_path / name}' is a folder"):
            load_config(tmp_path / name)


def test_an_unreadable_config_says_so(tmp_path, monkeypatch):
    from conftest import make_unreadable

    f = tmp_path / "c.yaml"
    f.write_text("base: tiny\n")
    make_unreadable(monkeypatch, f)
    with pytest.raises(ConfigError, match=f"config file '{f}' cannot be read \\(Permission denied\\)"):
        load_config(f)
