"""Atomic writes: all or nothing, usual file mode, deterministic JSON."""

import os
import stat

import pytest

from gdo_opt import atomic


def test_failed_block_leaves_nothing(tmp_path):
    target = tmp_path / "out.jsonl"
    with pytest.raises(RuntimeError), atomic.atomic_open(target) as handle:
        handle.write("partial\n")
        raise RuntimeError("boom")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_existing_file_is_kept_until_success(tmp_path):
    target = tmp_path / "report.json"
    atomic.write_json(target, {"b": 1, "a": [1, 2]})
    before = target.read_bytes()
    with pytest.raises(ValueError):
        atomic.write_json(target, {"x": float("nan")})  # NaN is not JSON
    assert target.read_bytes() == before
    assert before == b'{\n  "a": [\n    1,\n    2\n  ],\n  "b": 1\n}\n'


def test_files_get_the_usual_mode(tmp_path):
    target = tmp_path / "rows.jsonl"
    assert atomic.write_jsonl(target, [{"a": 1}, {"a": 2}]) == 2
    mode = stat.S_IMODE(os.stat(target).st_mode)
    assert mode == 0o666 & ~atomic._umask()
