"""`gdo-opt extract` checks its arguments before loading or creating anything (one line, exit 2)."""

from __future__ import annotations

import pandas as pd
import pytest

from gdo_opt.cli import main


@pytest.fixture
def cands(tmp_path):
    path = tmp_path / "candidates.parquet"
    pd.DataFrame({"qa_uid": ["ov::a::t0"], "question": ["q?"], "answer": ["a"], "media": [["x.png"]],
                  "media_kind": ["image"]}).to_parquet(path)
    return path


@pytest.mark.parametrize("extra, message", [
    (["--model", "{tmp}/no-model"], "not a model folder (no config.json); for a test run use `gdo-opt make-tiny-model"),
    (["--descriptors", "motion,nope"], "--descriptors: unknown nope"),
    (["--top-p", "1.5"], "--top-p 1.5: must be in (0, 1]"),
    (["--frames", "0"], "--frames 0: must be an integer >= 1"),
    (["--stability-k", "1"], "--stability-k 1: needs >= 2 samples"),
    (["--temperature", "0"], "--temperature 0.0: must be > 0"),
    ([], "--model: required for: dependency, difficulty, temporal, stability"),
    (["--descriptors", "ost", "--ost-model", "{tmp}"], "--ost-val: required"),
    (["--descriptors", "ost", "--ost-val", "{tmp}/val.jsonl"], "--ost-val {tmp}/val.jsonl: file not found"),
])
def test_bad_arguments_fail_fast_and_create_nothing(tmp_path, cands, capsys, extra, message):
    out = tmp_path / "shards"
    extra = [e.replace("{tmp}", str(tmp_path)) for e in extra]
    assert main(["extract", "--candidates", str(cands), "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert message.replace("{tmp}", str(tmp_path)) in err and len(err.splitlines()) <= 2  # rich may wrap
    assert not out.exists()


def test_missing_candidates_is_one_line(tmp_path, capsys):
    assert main(["extract", "--candidates", str(tmp_path / "none.parquet"), "--out", str(tmp_path / "o"),
                 "--descriptors", "motion"]) == 2
    assert "candidate table not found" in capsys.readouterr().err and not (tmp_path / "o").exists()
