"""The published builder's pool-side quantities: keys, ρ and budget against hand-computed cases.

Every expected number below is worked out by hand from the formulas of rujiewu/GDO gdo/build_pair.py
(recommend_target_count, apply_legacy_vds3_budget, target_quotas, compute_source_group_floor_
requirements, candidate_score), not taken from our implementation.
"""

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from gdo_opt.errors import GdoError
from gdo_opt.goal.metrics import align_metrics
from gdo_opt.goal.paper import ENV_KEYS
from gdo_opt.goal.preset import BUILTIN, load_preset
from gdo_opt.goal.published import (
    Legacy,
    ScoreSwitches,
    largest_remainder,
    legacy_from,
    published_pool,
    published_score,
    recommend_count,
    source_floors,
    source_group,
    vds3_budget,
)

RELEASED = {  # configs/temp_plus.env of the published repository, typed from the file
    "auto_min_count": 16000, "auto_max_count": 110000, "auto_min_ratio": 0.001, "auto_max_ratio": 0.018,
    "auto_effective_strata_mult": 22.0, "auto_coverage_mass": 0.95, "auto_tail_target": 16.0,
    "auto_vds3_target_positive": 9000, "auto_vds3_threshold": 0.0, "auto_vds3_max_mult": 3.2,
    "min_video_ratio": 0.50, "max_video_ratio": 0.64, "min_temporal_in_video_ratio": 0.38,
    "temporal_categories": ("Temporal", "Mixed"), "oversample_factor": 1.35, "video_oversample_factor": 2.9,
    "temporal_oversample_factor": 4.2, "source_group_floor_topk": 16, "min_source_group_ratio": 0.0025,
    "source_group_floor_frac_of_expected": 0.38,
}


def test_paper_presets_carry_every_released_value():
    p = load_preset("temp_plus").published
    assert {k: getattr(p, k) for k in RELEASED} == RELEASED
    assert set(ENV_KEYS) == set(RELEASED)
    for name in BUILTIN:
        preset = load_preset(name)
        assert preset.is_paper and preset.score is None
        assert preset.published.max_qa_per_video == 8 and preset.published.target_frames == 32
    assert load_preset("minloss").published.auto_min_count == 12000
    assert load_preset("diverse").published.video_oversample_factor == 1.9
    assert load_preset("temp").published.source_group_floor_topk == 18


def test_paper_preset_needs_every_released_key(tmp_path):
    text = (tmp_path / "x.toml")
    body = load_preset("temp").published.env()
    lines = [f"{k.lower()} = {v!r}" if not isinstance(v, str) else f'{k.lower()} = {v.split(",")!r}'
             for k, v in body.items() if k != "AUTO_TAIL_TARGET"]
    text.write_text("[published]\n" + "\n".join(lines).replace("'", '"') + "\n")
    with pytest.raises(GdoError, match="published.auto_tail_target: missing"):
        load_preset(text)


@pytest.mark.parametrize("raw,group", [
    ("0_30_s_academic_v0_1", "0_30_s_academic"), ("CLEVR-Math(MathV360K)", "CLEVR-Math"),
    ("ai2d(cauldron,llava_format)", "ai2d"), ("ureader_kg", "ureader_kg"), ("a_b_c_d", "a_b_c_d"),
    ("  spaced   name ", "spaced name"), ("", "unknown"), ("(x)", "unknown"),
])
def test_source_group_key(raw, group):
    assert source_group(raw) == group


def _frame(rows):
    cols = ["qa_uid", "question", "answer", "bucket", "n_frames", "source", "video_uid"]
    return pd.DataFrame(rows, columns=cols)


def test_seven_field_strata_and_text_key():
    frame = _frame([
        ("ov::a::t0", "What colour is the ball?", "Red", "image_qa", 1, "CLEVR-Math(MathV360K)", ""),
        ("vv::b::t0", "What happens after the ball moves?\nChoices: A. x", "It falls down to the floor",
         "short_video", 40, "0_30_s_academic_v0_1", "v1"),
        ("vv::c::t0", "What   happens after the ball moves?\nChoices: A. x", "It falls down to the floor",
         "short_video", 6, "0_30_s_academic_v0_1", "v1"),
        ("vv::d::t0", "Describe it " + "word " * 70, " ".join(["w"] * 70), "short_video", 20, "x", "v2"),
    ])
    pool = published_pool(frame)
    assert list(pool.stratum_labels[pool.stratum]) == [
        "image_qa|image|Static|Open|q_tiny|a_tiny|CLEVR-Math",
        # 9 tokens after whitespace normalization; 40 frames resample to 32 -> medium; "choices" -> MCQ
        "short_video|medium|Temporal|MCQ|q_short|a_short|0_30_s_academic",
        "short_video|very_short|Temporal|MCQ|q_short|a_short|0_30_s_academic",
        "short_video|short|Mixed|Open|q_very_long|a_very_long|x",
    ]
    assert pool.q_tokens.tolist() == [5, 9, 9, 72] and pool.a_tokens.tolist() == [1, 6, 6, 70]
    assert pool.a_distinct.tolist() == [1, 6, 6, 1]
    assert pool.text_key[1] == pool.text_key[2] != pool.text_key[0]  # same text once whitespace is normalized
    assert pool.video_uid[0] == -1 and pool.video_uid[1] == pool.video_uid[2] != pool.video_uid[3]


def test_budget_rule_hand_computed():
    p = SimpleNamespace(min_count=10, max_count=1000, min_ratio=0.001, max_ratio=0.5, effective_strata_mult=16.0,
                        coverage_mass=0.93, tail_target=3.5)
    # p = .5/.3/.2: H = 1.02965, N_eff = 2.80004, 16 N_eff = 44.80 -> 45; tail: all 3 strata, p_tail .2 -> 18
    k, info = recommend_count(1000, np.array([500, 300, 200]), p)
    assert (k, info["n_from_effective_strata"], info["n_from_tail_coverage"]) == (45, 45, 18)
    # p = .75/.125/.125, coverage .8 -> 2 strata, p_tail = .125 -> ceil(10/.125) = 80 beats 20 N_eff = 41.7
    p2 = SimpleNamespace(**{**vars(p), "coverage_mass": 0.8, "tail_target": 10.0, "effective_strata_mult": 20.0})
    k, info = recommend_count(1000, np.array([750, 125, 125]), p2)
    assert (k, info["covered_strata"], info["n_from_effective_strata"]) == (80, 2, 42)
    # capped by floor(max_ratio N) and by min_count from below
    assert recommend_count(1000, np.array([750, 125, 125]), SimpleNamespace(**{**vars(p2), "max_ratio": 0.05}))[0] \
        == 50
    assert recommend_count(1000, np.array([500, 500]), SimpleNamespace(**{**vars(p), "min_count": 300}))[0] == 300


def test_vds3_budget_hand_computed():
    # only a vds column: vds3 = z(vds); 4 of 10 rows above the mean 0.4 -> ratio .4 -> ceil(100/.4) = 250,
    # capped at ceil(80 x 3.0) = 240
    vds = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 1], dtype=float)
    legacy = Legacy({"vds": (0.4, float(np.std(vds, ddof=1)))}, {}, np.zeros(0, bool), {"vds": vds})
    p = SimpleNamespace(vds3_threshold=0.0, vds3_target_positive=100, vds3_max_mult=3.0, max_count=1000,
                        max_ratio=0.5)
    k, info = vds3_budget(80, 1000, legacy, p, 4.0)
    assert (k, info["vds3_positive_count"], info["n_from_vds3_positive"], info["vds3_adjust_cap"]) == \
        (240, 4, 250, 240)
    assert vds3_budget(80, 1000, legacy, SimpleNamespace(**{**vars(p), "vds3_target_positive": 40}), 4.0)[0] == 100


def test_quotas_and_source_floors_hand_computed():
    assert largest_remainder(np.array([5, 3, 2]), 7).tolist() == [4, 2, 1]  # 3.5/2.1/1.4: .5 gets the extra
    assert largest_remainder(np.array([1, 1, 1]), 2).tolist() == [1, 1, 0]  # ties: first appearance
    groups = np.array(["A"] * 600 + ["B"] * 300 + ["C"] * 100, dtype=object)
    p = SimpleNamespace(source_floor_topk=2, min_source_group_ratio=0.05, source_floor_frac_of_expected=0.38)
    # floor_abs = ceil(100 x .05) = 5; A: ceil(.38 x 60) = 23; B: ceil(.38 x 30) = 12; C not in the top 2
    assert source_floors(groups, 100, p) == {"A": 23, "B": 12}
    # a floor above the expected mass is dropped: B expected 3 < floor_abs ceil(10 x .5) = 5
    p2 = SimpleNamespace(source_floor_topk=3, min_source_group_ratio=0.5, source_floor_frac_of_expected=0.0)
    assert source_floors(groups, 10, p2) == {"A": 5}


def _reference_score(q_tok, a_tok, a_distinct, align, spr, video, temporal, z, present, sw):
    """candidate_score for one row, written out from the published formula."""
    qn, an = max(1, q_tok), max(1, a_tok)
    qlty = -abs(math.log(qn) - math.log(14.0)) + 1.25 * -abs(math.log(an) - math.log(16.0)) \
        - 1.2 * max(0.0, 0.55 - a_distinct / an)
    x = max(1.0, q_tok + 0.5 * a_tok)
    diff = math.exp(-(abs(math.log(x) - math.log(22.0)) ** 2) / (2 * 0.85 * 0.85))
    ppl = 0.0 if sw.disable_ppl else qlty
    if video:
        base = ppl + 0.85 * diff + 0.9 * align + 0.55 * (1.0 if temporal else 0.2) + 0.15 * spr
    else:
        base = 1.1 * ppl + 0.85 * diff + 0.9 * align + 0.15 * spr
    lv, lb, fd, vd, qs = z
    if None not in (lv, lb, fd):
        vds3 = -lv + lb + fd
    elif vd is not None and fd is not None:
        vds3 = vd + 0.5 * fd
    elif vd is not None:
        vds3 = vd
    else:
        vds3 = 0.0
    quality = qs if qs is not None else 0.0
    bn = math.tanh(base / 3.0)
    if video:
        out = 0.35 * bn
        if present:
            out += (0 if sw.disable_vds else 0.95 * max(-4, min(4, vds3)) / 4) + \
                (0 if sw.disable_sc else 0.35 * quality / 4)
        else:
            out -= 0.15
        return out
    return 0.9 * bn + (0.15 * quality / 4 if present and not sw.disable_sc else 0.0)


@pytest.mark.parametrize("switches", [ScoreSwitches(), ScoreSwitches(disable_vds=True, disable_ppl=True),
                                      ScoreSwitches(disable_sc=True)])
def test_score_matches_the_published_formula_with_fallbacks(switches):
    frame = _frame([
        ("ov::a::t0", "What colour is the ball?", "Red", "image_qa", 1, "src_a", ""),
        ("vv::b::t0", "What happens after the ball moves?", "It falls down", "short_video", 32, "v_s_x_y_z", "v1"),
        ("vv::c::t0", "Describe the clip", "A dog runs and runs and runs", "short_video", 8, "v_s_x_y_z", "v2"),
        ("vv::d::t0", "Count the cars", "three", "short_video", 16, "other", "v3"),
        ("vv::e::t0", "What next?", "a b", "short_video", 16, "other", "v4"),
        ("ov::f::t0", "Is it big?", "no", "image_qa", 1, "src_a", ""),
    ])
    nan = np.nan
    table = pd.DataFrame({  # b: full (lv, lb, fd); c: vds + fd; d: vds only; e: nothing usable; f: quality only
        "qa_uid": ["vv::b::t0", "vv::c::t0", "vv::d::t0", "vv::e::t0", "ov::f::t0", "vv::zz::t0"],
        "loss_video": [1.0, nan, nan, nan, nan, 2.0], "loss_blind": [2.5, nan, nan, nan, nan, 1.0],
        "frame_diversity": [0.3, 0.1, nan, nan, nan, 0.5], "vds": [nan, 0.8, -0.4, nan, nan, 0.1],
        "quality_score": [0.6, nan, 0.2, nan, 0.9, 0.4],
    })
    metrics = align_metrics(frame["qa_uid"], table, "gdo-jsonl", "m.jsonl")
    legacy = legacy_from(metrics)
    pool = published_pool(frame)
    got = published_score(pool, legacy, switches)["score"]
    # statistics over every file row (the unmatched "zz" row included), sample std
    stats = {c: (table[c].dropna().mean(), table[c].dropna().std(ddof=1)) for c in table.columns[1:]}

    def z(c, uid):
        v = table.set_index("qa_uid").get(c).get(uid, nan)
        return None if not np.isfinite(v) else max(-4.0, min(4.0, (v - stats[c][0]) / stats[c][1]))

    prof = {f: pd.Series(pool.fields[f]).value_counts(normalize=True) for f in pool.fields}
    raw_source = [" ".join(str(x).strip().split()) for x in frame["source"]]  # the builder's normalization
    src = pd.Series(raw_source).value_counts()
    for i, uid in enumerate(frame["qa_uid"]):
        align = np.mean([math.log(prof[f][pool.fields[f][i]]) for f in list(pool.fields)[1:]])
        spr = math.log((len(frame) + 1) / (src[raw_source[i]] + 1))
        zs = tuple(z(c, uid) for c in ("loss_video", "loss_blind", "frame_diversity", "vds", "quality_score"))
        ref = _reference_score(pool.q_tokens[i], pool.a_tokens[i], pool.a_distinct[i], align, spr,
                               bool(pool.video[i]), pool.fields["temporal_category"][i] == "Temporal", zs,
                               uid in set(table["qa_uid"]), switches)
        assert got[i] == pytest.approx(ref, abs=1e-12), uid


def test_token_counts_match_word_re_on_lower_cased_text():
    import re

    import pyarrow as pa

    from gdo_opt.goal.published_text import _token_stats

    texts = ["", "a a a A", "__ _ 9x9", "Ünïcode wörds ÄB ab_c", "It's 3:45, isn't it?\nYes - 100%",
             "The cat; the CAT; the dog.", "x" * 300 + " y"]
    word = re.compile(r"[A-Za-z0-9_]+")
    count, distinct = _token_stats(pa.array(texts), distinct=True)
    assert count.tolist() == [len(word.findall(t.lower())) for t in texts]
    assert distinct.tolist() == [len(set(word.findall(t.lower()))) for t in texts]
    for chunk in (1, 5, 64):  # the pool is hashed in byte-bounded slices: any slicing gives the same counts
        c, d = _token_stats(pa.array(texts * 3), distinct=True, chunk_bytes=chunk)
        assert c.tolist() == count.tolist() * 3 and d.tolist() == distinct.tolist() * 3


def test_powers_equal_the_long_cumulative_product():
    import numpy as np

    from gdo_opt.goal.published_text import _powers

    base = np.uint64(0x100000001B3)
    for n in (0, 1, 5, 4096, 4097, 10_001):
        with np.errstate(over="ignore"):
            expected = np.cumprod(np.full(n, base, dtype=np.uint64))
        assert np.array_equal(_powers(base, n, block=64 if n > 100 else 4096), expected)
