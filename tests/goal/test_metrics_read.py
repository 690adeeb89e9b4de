"""The metrics JSONL fast path (block reader, explicit schema) must read what the inferred whole
read reads, for any block size, and fall back to it where the schema does not fit."""

import json

import numpy as np
import pytest

from gdo_opt.errors import GdoError
from gdo_opt.goal import metrics as gm


def _rows(n):
    rows = []
    for i in range(n):
        nested = {"loss_video": 0.5 + i / n, "cluster_id": i % 7, "note": "x"}
        row = {"qa_uid": f"ov::r{i}::t0", "video_uid": f"v{i % 5}", "vds": (i % 11) / 10, "amm": i % 3,
               "data_quality_metrics": nested}
        if i > n // 2:  # integers first, floats later: the block reader's inference cannot do this
            row["amm"] = 0.25 * i
            row["temporal_prob"] = 0.01 * (i % 100)
        rows.append(row)
    return rows


def _inferred(path, uids):
    import pyarrow.json as pj

    original = gm._read_jsonl
    try:
        gm._read_jsonl = lambda p: gm._slim(gm._lift_nested(pj.read_json(p)))
        return gm.load_metrics(path, uids)
    finally:
        gm._read_jsonl = original


@pytest.mark.parametrize("block", [1 << 24, 2048])
def test_fast_read_equals_the_inferred_read(tmp_path, monkeypatch, block):
    path = tmp_path / "m.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _rows(400)))
    uids = np.array([f"ov::r{i}::t0" for i in range(0, 420, 3)], dtype=object)  # some without metrics
    ref = _inferred(path, uids)
    monkeypatch.setattr(gm, "METRICS_BLOCK", block)
    got = gm.load_metrics(path, uids)
    assert sorted(got.values) == sorted(ref.values) and "temporal_prob" in got.values
    for name in ref.values:
        np.testing.assert_array_equal(got.values[name], ref.values[name])
    for name in ref.file_columns:
        np.testing.assert_array_equal(got.file_columns[name], ref.file_columns[name])
    assert got.ignored_keys == ref.ignored_keys == ["video_uid"]
    assert got.matched == 134


def test_text_in_a_numeric_key_is_still_named(tmp_path):
    path = tmp_path / "m.jsonl"
    rows = _rows(20)
    rows[7]["vds"] = "high"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(GdoError, match="vds"):
        gm.load_metrics(path, np.array(["ov::r1::t0"], dtype=object))
