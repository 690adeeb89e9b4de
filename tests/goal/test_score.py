"""ρ from descriptors: normalization, signs, missing-descriptor policies, GDO JSONL compatibility."""

import json

import numpy as np
import pandas as pd
import pytest

from gdo_opt.errors import GdoError
from gdo_opt.goal.metrics import LEGACY, align_metrics, load_metrics
from gdo_opt.goal.preset import ScoreSpec, Term
from gdo_opt.goal.score import compute_score
from gdo_opt.stats import robust_z


def test_robust_z_and_clip():
    x = np.array([1.0, 2.0, 3.0, 4.0, 100.0, np.nan])
    z, stat = robust_z(x, clip=5.0)
    scale = (4.0 - 2.0) / 1.349
    assert stat["median"] == 3.0
    assert z[0] == pytest.approx((1 - 3) / scale)
    assert z[4] == 5.0 and np.isnan(z[5])


def _metrics(values, uids, candidates=None):
    frame = pd.DataFrame({"qa_uid": uids, **values})
    return align_metrics(pd.Series(candidates or uids), frame, "descriptors", "d.parquet")


def test_sign_weight_and_partial_rows():
    uids = [f"u{i}" for i in range(5)]
    m = _metrics({"vds": [0.0, 1.0, 2.0, 3.0, 4.0], "ppl": [np.e, np.e, np.nan, np.e**2, np.e]}, uids)
    spec = ScoreSpec(terms=(Term("vds", 1.0, 1), Term("ppl", 0.5, -1, "log")))
    result = compute_score(m, spec, 5)
    assert np.argmax(result.rho) == 4  # highest vds, low ppl
    assert result.rho[3] < result.rho[4]  # higher ppl is penalised
    assert not result.missing.any()  # a row with some term values is scored (missing term = median)


def test_missing_policies_and_dropped_terms():
    uids = [f"u{i}" for i in range(4)]
    m = _metrics({"vds": [1.0, np.nan, 3.0, 2.0]}, uids[:3] + ["other"], candidates=uids)
    assert m.matched == 3 and m.unmatched_metrics == 1
    spec = ScoreSpec(terms=(Term("vds"), Term("amm")), missing="penalty", missing_penalty=-7.0)
    result = compute_score(m, spec, 4)
    assert result.missing.tolist() == [False, True, False, True]  # NaN row and row with no metrics
    assert result.rho[1] == -7.0 and result.rho[3] == -7.0
    assert result.dropped == {"amm": "not in the metrics"}
    summary = result.summary("penalty", -7.0)
    assert summary["missing_candidates"] == 2
    with pytest.raises(GdoError, match="required by the preset"):
        compute_score(m, ScoreSpec(terms=(Term("vds"), Term("amm", required=True))), 4)
    with pytest.raises(GdoError, match="no term of the preset has data"):
        compute_score(m, ScoreSpec(terms=(Term("coverage"),)), 4)


def test_gdo_jsonl_compatibility(tmp_path):
    rows = [
        {"qa_uid": "ov::a::t0", "loss_video": 1.0, "loss_blind": 1.5, "frame_diversity": None, "quality_score": 0.9,
         "self_consistency": 0.7, "dataset": "x"},
        {"qa_uid": "vv::b::t0", "loss_video": 2.0, "loss_blind": 1.0, "frame_diversity": 0.3, "quality_score": 0.4,
         "self_consistency": 0.2, "dataset": "y"},
        {"qa_uid": "vv::zzz::t0", "loss_video": 0.5, "loss_blind": 0.5, "frame_diversity": 0.1, "quality_score": 0.1,
         "dataset": "z"},
    ]
    path = tmp_path / "merged_metrics.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    m = load_metrics(path, pd.Series(["ov::a::t0", "vv::b::t0", "ov::missing::t0"]))
    assert m.source == "gdo-jsonl" and m.matched == 2 and m.unmatched_metrics == 1
    assert sorted(m.derived) == ["ppl", "stability", "vds"]
    np.testing.assert_allclose(m.values["vds"][:2], [0.5, -1.0])
    np.testing.assert_allclose(m.values["ppl"][:2], np.exp([1.0, 2.0]))
    np.testing.assert_allclose(m.values["stability"][:2], [0.7, 0.2])  # self-consistency, not quality_score
    assert np.isnan(m.values["vds"][2]) and m.ignored_keys == ["dataset"]


def test_metrics_file_errors(tmp_path):
    dup = tmp_path / "dup.jsonl"
    dup.write_text('{"qa_uid": "a", "vds": 1}\n{"qa_uid": "a", "vds": 2}\n')
    with pytest.raises(GdoError, match="key qa_uid = 'a': appears more than once"):
        load_metrics(dup, pd.Series(["a"]))
    nokey = tmp_path / "nokey.jsonl"
    nokey.write_text('{"id": "a", "vds": 1}\n')
    with pytest.raises(GdoError, match="key qa_uid missing"):
        load_metrics(nokey, pd.Series(["a"]))
    with pytest.raises(GdoError, match="metrics file not found"):
        load_metrics(tmp_path / "none.jsonl", pd.Series(["a"]))


def test_every_published_merged_column_is_read(tmp_path):
    """merge_metrics.py writes these keys top level and nested; the nested ones win, as the builder reads them."""
    nested = {"loss_video": 9.0, "loss_blind": 1.0, "frame_diversity": 0.2, "vds": 0.5, "quality_score": 0.6,
              "ppl": 3.0, "amm": 0.1, "tnc_score": 0.4, "self_consistency": 0.8, "cluster_score": 0.3,
              "cluster_hardness": 0.7, "cluster_id": 12, "cluster_dist": 1.2}
    top = {**nested, "loss_video": 1.0}
    rows = [{"qa_uid": "vv::a::t0", "video_uid": "v", **top, "data_quality_metrics": nested},
            {"qa_uid": "vv::b::t0", "video_uid": "v", **top, "loss_video": 2.0,
             "data_quality_metrics": {**nested, "loss_video": None}}]
    path = tmp_path / "sixd_metrics_merged.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    m = load_metrics(path, pd.Series(["vv::a::t0", "vv::b::t0"]))
    for key, value in nested.items():
        assert m.values[key][0] == value, key
        if key in LEGACY:  # raw file columns are kept for the published ρ's statistics only
            assert m.file_columns[key][0] == value, key
    assert sorted(m.file_columns) == sorted(LEGACY)
    assert m.values["loss_video"].tolist() == [9.0, 2.0]  # nested first, top level where nested is null
    assert m.position.tolist() == [0, 1] and m.ignored_keys == ["video_uid"]
