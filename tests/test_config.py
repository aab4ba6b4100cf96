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
