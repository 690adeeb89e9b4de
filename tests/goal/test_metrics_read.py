"""The metrics JSONL fast path (block reader, explicit schema) must read what the inferred whole
read reads, for any block size, and fall back to it where the schema does not fit."""

import json

import numpy as np
import pytest

from gdo_opt.errors import GdoError
from gdo_opt.goal import metrics as gm
from gdo_opt.goal import metrics_read as mr


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

    original = mr._read_jsonl
    try:
        mr._read_jsonl = lambda p: mr._slim(mr._lift_nested(pj.read_json(p)))
        return gm.load_metrics(path, uids)
    finally:
        mr._read_jsonl = original


@pytest.mark.parametrize("block,chunk", [(1 << 24, 1 << 20), (2048, 1 << 20), (1 << 24, 4096)])
def test_fast_read_equals_the_inferred_read(tmp_path, monkeypatch, block, chunk):
    path = tmp_path / "m.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _rows(400)))
    uids = np.array([f"ov::r{i}::t0" for i in range(0, 420, 3)], dtype=object)  # some without metrics
    ref = _inferred(path, uids)
    monkeypatch.setattr(mr, "METRICS_BLOCK", block)
    monkeypatch.setattr(mr, "PARSE_CHUNK", chunk)  # several parallel chunks per block
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


def _pool_file(tmp_path, n: int):
    """A metrics JSONL of ``n`` rows and a candidate qa_uid list (every third, some past the file)."""
    path = tmp_path / "m.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _rows(n)))
    return path, np.array([f"ov::r{i}::t0" for i in range(0, n + 20, 3)], dtype=object)


def _same(got, ref):
    assert sorted(got.values) == sorted(ref.values)
    for name in ref.values:
        np.testing.assert_array_equal(got.values[name], ref.values[name])
    for name in ref.file_columns:
        np.testing.assert_array_equal(got.file_columns[name], ref.file_columns[name])
    assert (got.ignored_keys, got.matched, got.source) == (ref.ignored_keys, ref.matched, ref.source)


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="the worker needs fork")
def test_prefetch_in_a_worker_reads_what_the_serial_read_reads(tmp_path, monkeypatch):
    path, uids = _pool_file(tmp_path, 400)
    monkeypatch.setattr(mr, "PREFETCH_FROM", 0)
    pre = gm.MetricsPrefetch(path)
    assert pre._proc is not None  # really in another process
    _same(gm.load_metrics(path, uids, prefetched=pre), gm.load_metrics(path, uids))
    assert pre._dir is None  # its spill folder is gone


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="the worker needs fork")
def test_prefetch_errors_surface_when_asked_with_the_serial_message(tmp_path, monkeypatch):
    path = tmp_path / "m.jsonl"
    path.write_text('{"qa_uid": "a", "vds": 0.1}\n{"qa_uid": "b", "vds": [1, \n')
    with pytest.raises(GdoError) as serial:
        gm.load_metrics(path, np.array(["a"], dtype=object))
    monkeypatch.setattr(mr, "PREFETCH_FROM", 0)
    pre = gm.MetricsPrefetch(path)  # the worker fails; nothing is raised yet
    with pytest.raises(GdoError) as prefetched:
        gm.load_metrics(path, np.array(["a"], dtype=object), prefetched=pre)
    assert str(prefetched.value) == str(serial.value) and str(path) in str(serial.value)


def test_select_reports_a_bad_pool_before_a_bad_metrics_file(tmp_path, monkeypatch, capsys):
    """The metrics parse runs beside the ingest, but errors come in the serial order."""
    from gdo_opt.cli import main

    metrics = tmp_path / "m.jsonl"
    metrics.write_text('{"qa_uid": "a", "vds": [1,\n')
    pool = tmp_path / "ov.jsonl"
    pool.write_text("not json at all\n")
    monkeypatch.setattr(mr, "PREFETCH_FROM", 0)
    code = main(["select", "--onevision", str(pool), "--metrics", str(metrics), "--preset", "minloss",
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code != 0 and str(pool) in err and str(metrics) not in err


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="the worker needs fork")
@pytest.mark.parametrize("bad", [None, "text"])
def test_prefetch_streams_blocks_and_falls_back_like_the_serial_read(tmp_path, monkeypatch, bad):
    """Many small blocks streamed to the spill; an unparseable value late in the file (after blocks
    were already written) falls back to the inferred read, whose error names the key."""
    path = tmp_path / "m.jsonl"
    rows = _rows(400)
    if bad:
        rows[390]["vds"] = "high"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    uids = np.array([f"ov::r{i}::t0" for i in range(0, 420, 3)], dtype=object)
    monkeypatch.setattr(mr, "PREFETCH_FROM", 0)
    monkeypatch.setattr(mr, "METRICS_BLOCK", 2048)
    if bad:
        with pytest.raises(GdoError, match="vds") as serial:
            gm.load_metrics(path, uids)
        with pytest.raises(GdoError) as prefetched:
            gm.load_metrics(path, uids, prefetched=gm.MetricsPrefetch(path))
        assert str(prefetched.value) == str(serial.value)
        return
    got = gm.load_metrics(path, uids, prefetched=gm.MetricsPrefetch(path))
    _same(got, gm.load_metrics(path, uids))
    _same(got, _inferred(path, uids))


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="the worker needs fork")
def test_prefetch_process_that_dies_is_replaced_by_the_serial_read(tmp_path, monkeypatch):
    """A prefetch process killed mid-parse (OOM killer, a signal) costs time, never the result."""
    import os

    path, uids = _pool_file(tmp_path, 200)
    monkeypatch.setattr(mr, "PREFETCH_FROM", 0)
    monkeypatch.setattr(mr, "_parse_to_spill", lambda *_: os._exit(9))  # dies in the child only
    pre = gm.MetricsPrefetch(path)
    _same(gm.load_metrics(path, uids, prefetched=pre), gm.load_metrics(path, uids))
    assert pre._proc is None and pre._dir is None
