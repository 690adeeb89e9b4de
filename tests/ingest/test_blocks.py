"""Block reading: every block is whole lines, numbered right, for any block size (long lines, blank
lines, an unterminated last line); the re-read of picked lines returns exactly those lines."""

import numpy as np
import pytest

from gdo_opt.ingest.read import iter_jsonl_blocks, iter_jsonl_views
from gdo_opt.ingest.reload import _gather, _pick_lines

LINES = [b"a", b"bb", b"", b"  ", b"x" * 5000, b"ccc", b"d" * 17, b"last"]


@pytest.mark.parametrize("terminated", [True, False])
@pytest.mark.parametrize("block", [1, 2, 3, 7, 64, 4096, 1 << 20])
def test_blocks_are_whole_numbered_lines(tmp_path, block, terminated):
    path = tmp_path / "f.jsonl"
    data = b"\n".join(LINES) + (b"\n" if terminated else b"")
    path.write_bytes(data)
    blocks = list(iter_jsonl_blocks(path, block))
    assert b"".join(b for b, _ in blocks) == data
    line = 1
    for buf, first in blocks:
        assert first == line
        assert buf.endswith(b"\n") or buf is blocks[-1][0] and not terminated
        line += buf.count(b"\n")


@pytest.mark.parametrize("terminated", [True, False])
def test_picked_lines_are_exactly_the_wanted_ones(tmp_path, monkeypatch, terminated):
    import gdo_opt.ingest.read as read

    monkeypatch.setattr(read, "BLOCK_BYTES", 40)  # many blocks, one line longer than a block
    path = tmp_path / "f.jsonl"
    path.write_bytes(b"\n".join(LINES) + (b"\n" if terminated else b""))
    wanted = np.array([2, 5, 6, 8])
    got = b"".join(buf for buf, _ in _pick_lines(path, wanted))
    assert got == b"".join(LINES[i - 1] + b"\n" for i in wanted)
    numbers = np.concatenate([n for _, n in _pick_lines(path, wanted)])
    np.testing.assert_array_equal(numbers, wanted)


def test_gather_joins_ranges_in_order():
    buf = b"0123456789"
    assert _gather(buf, np.array([1, 5, 9]), np.array([3, 6, 10])) == b"1259\n"
    assert _gather(b"ab\ncd\n", np.array([3, 0]), np.array([6, 3])) == b"cd\nab\n"


@pytest.mark.parametrize("terminated", [True, False])
@pytest.mark.parametrize("block", [1, 3, 7, 64, 4096])
def test_views_tile_the_file_like_the_blocks(tmp_path, block, terminated):
    path = tmp_path / "f.jsonl"
    data = b"\n".join(LINES) + (b"\n" if terminated else b"")
    path.write_bytes(data)
    pieces = [(bytes(view), line, offset) for view, line, offset in iter_jsonl_views(path, block)]
    assert b"".join(p for p, _, _ in pieces) == data
    for piece, line, offset in pieces:
        assert data[offset: offset + len(piece)] == piece  # the offset is where the piece starts
        assert line == data[:offset].count(b"\n") + 1
    assert all(p.endswith(b"\n") for p, _, _ in pieces[:-1])
