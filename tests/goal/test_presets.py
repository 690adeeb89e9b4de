"""Preset loading: the packaged goals' numbers, and strict errors naming file, key and value."""

import pytest

from gdo_opt.errors import GdoError
from gdo_opt.goal.preset import BUILTIN, WEIGHTED, builtin_names, load_preset

ISSUE_SHARES = {  # video share [lo, hi], temporal share within video (issue 4)
    "temp_plus": ((0.50, 0.64), 0.38),
    "temp": ((0.35, 0.50), 0.20),
    "diverse": ((0.25, 0.45), 0.15),
    "minloss": ((0.15, 0.32), 0.05),
}


@pytest.mark.parametrize("name", BUILTIN)
def test_weighted_presets_match_the_issue(name):
    preset = load_preset(f"{name}_weighted")
    assert preset.name == f"{name}_weighted" and not preset.is_paper
    assert preset.feasibility.video_share == ISSUE_SHARES[name][0]
    assert preset.feasibility.temporal_share_within_video == ISSUE_SHARES[name][1]
    assert preset.feasibility.per_video_cap == 8 and preset.feasibility.dedup
    assert preset.score.active_terms()


def test_template_loads_and_builtins_are_listed():
    assert set(BUILTIN) | set(WEIGHTED) <= set(builtin_names())
    assert "template" not in builtin_names()
    assert load_preset("presets/template.toml").name == "my_goal"


def _write(tmp_path, text, name="p.toml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


BASE = '[[score.terms]]\ndescriptor = "vds"\n'


@pytest.mark.parametrize(
    "extra, message",
    [
        ("[feasibility]\nvideo_share = [0.7, 0.5]\n", "key feasibility.video_share = [0.7, 0.5]: lo > hi"),
        ("[feasibility]\nvideo_shar = [0.1, 0.5]\n", "key feasibility.video_shar = [0.1, 0.5]: unknown key"),
        ("[feasibility]\nper_video_cap = \"8\"\n", "key feasibility.per_video_cap = '8': expected an integer"),
        ("[feasibility]\nvideo_share = [0.1, 1.5]\n", "shares must lie in [0, 1]"),
        ("[budget]\nkind = \"fixed\"\n", "kind = 'fixed' needs budget.count"),
        ("[budget]\nkind = \"ratio\"\nratio = 2.0\n", "key budget.ratio = 2.0: must be <= 1.0"),
        ("[budget]\nmin = 10\nmax = 5\n", "key budget.max = 5: smaller than budget.min = 10"),
        ("[score.ablations]\ndrop_vds = true\n", "the ablations drop every score term"),
        ("[feasibility]\nstratum_fields = [\"colour\"]\n", "'colour' is not one of"),
    ],
)
def test_validation_errors_name_file_key_value(tmp_path, extra, message):
    path = _write(tmp_path, BASE + extra)
    with pytest.raises(GdoError) as info:
        load_preset(path)
    assert message in str(info.value)
    assert str(info.value).startswith(path)
    assert "\n" not in str(info.value)


def test_term_errors(tmp_path):
    with pytest.raises(GdoError, match=r"score.terms\[0\].sign = 2: expected 1 or -1"):
        load_preset(_write(tmp_path, BASE + "sign = 2\n"))
    with pytest.raises(GdoError, match=r"score.terms\[0\].descriptor = 'vdz'"):
        load_preset(_write(tmp_path, '[[score.terms]]\ndescriptor = "vdz"\n'))
    with pytest.raises(GdoError, match=r"score.terms\[0\].weight = true: expected a number"):
        load_preset(_write(tmp_path, BASE + "weight = true\n"))
    with pytest.raises(GdoError, match="not valid TOML"):
        load_preset(_write(tmp_path, "[[score.terms]\n"))
    with pytest.raises(GdoError, match="missing table"):
        load_preset(_write(tmp_path, 'name = "x"\n'))


def test_ablation_switches_drop_terms(tmp_path):
    text = BASE + '[[score.terms]]\ndescriptor = "ppl"\nsign = -1\n[[score.terms]]\ndescriptor = "stability"\n'
    assert [t.descriptor for t in load_preset(_write(tmp_path, text)).score.active_terms()] == ["vds", "ppl", "stability"]
    ablated = load_preset(_write(tmp_path, text + "[score.ablations]\ndrop_ppl = true\ndrop_self_consistency = true\n"))
    assert [t.descriptor for t in ablated.score.active_terms()] == ["vds"]


def test_unknown_name_and_missing_file():
    with pytest.raises(GdoError, match="no such packaged preset"):
        load_preset("nope")
    with pytest.raises(GdoError, match="preset file not found"):
        load_preset("does/not/exist.toml")
