"""ms-swift rows: tag count = media count, alternating roles, sorted, deterministic bytes."""

import json

import numpy as np
import pandas as pd
import pytest

from gdo_opt.errors import GdoError
from gdo_opt.subset.export import check_sft_row, write_sft


def _frame():
    return pd.DataFrame({
        "qa_uid": ["vv::b::t0", "ov::a::t1", "ov::a::t0", "vv::c::t0"],
        "video_uid": ["b", "", "", "c"],
        "question": ['What "moves"?', "Two images?", "Colour?\nSay it", "Static?"],
        "answer": ["the ball", "yes", "red", "no"],
        "media": [["f/0.png", "f/1.png", "f/2.png"], ["i/1.png", "i/2.png"], ["i/0.png"], ["clip.mp4"]],
        "media_kind": ["frames", "image", "image", "video"],
        "source": ["s1", "s2", "s2", "s3"],
        "stratum": ["x", "y", "y", "z"],
    })


def _rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("frames_as", ["video", "images"])
def test_rows_follow_ms_swift_rules(tmp_path, frames_as):
    frame = _frame()
    rho = np.array([0.5, 1.0, -2.0, 0.25])
    desc = {"vds": np.array([0.1, np.nan, 0.3, 0.123456789])}
    path = tmp_path / "out.jsonl"
    assert write_sft(path, frame, np.arange(4), rho, desc, frames_as) == 4
    rows = _rows(path)
    assert [r["qa_uid"] for r in rows] == sorted(frame["qa_uid"])
    for row in rows:
        assert check_sft_row(row) == []
        assert [m["role"] for m in row["messages"]] == ["user", "assistant"]
    by = {r["qa_uid"]: r for r in rows}
    sep = "\n" if frames_as == "images" else ""  # the published format puts a newline after the tags
    assert by["ov::a::t1"]["messages"][0]["content"] == f"<image><image>{sep}Two images?"
    assert by["ov::a::t1"]["images"] == ["i/1.png", "i/2.png"]
    assert by["vv::c::t0"]["videos"] == ["clip.mp4"]
    frames_row = by["vv::b::t0"]
    if frames_as == "video":
        assert frames_row["videos"] == [["f/0.png", "f/1.png", "f/2.png"]]
        assert frames_row["messages"][0]["content"] == '<video>What "moves"?'
    else:
        assert frames_row["images"] == ["f/0.png", "f/1.png", "f/2.png"]
        assert frames_row["messages"][0]["content"] == "<image>" * 3 + '\nWhat "moves"?'
    assert by["ov::a::t1"]["meta"]["descriptors"]["vds"] is None  # NaN -> null
    assert by["vv::c::t0"]["meta"] == {"descriptors": {"vds": 0.123457}, "rho": 0.25, "source": "s3", "stratum": "z"}
    assert by["ov::a::t0"]["messages"][0]["content"] == f"<image>{sep}Colour?\nSay it"


def test_bytes_are_deterministic_and_order_independent(tmp_path):
    frame = _frame()
    rho = np.array([0.5, 1.0, -2.0, 0.25])
    write_sft(tmp_path / "a.jsonl", frame, np.array([0, 1, 2, 3]), rho, {})
    write_sft(tmp_path / "b.jsonl", frame, np.array([3, 2, 1, 0]), rho, {})
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()


def test_check_sft_row_catches_bad_rows():
    bad_tags = {"messages": [{"role": "user", "content": "<image>q"}, {"role": "assistant", "content": "a"}],
                "images": ["1.png", "2.png"]}
    assert "1 <image> tags but 2 images" in check_sft_row(bad_tags)[0]
    bad_roles = {"messages": [{"role": "user", "content": "q"}, {"role": "user", "content": "a"}]}
    assert check_sft_row(bad_roles)


def test_row_without_media_is_an_error(tmp_path):
    frame = _frame()
    frame.at[1, "media"] = []
    with pytest.raises(GdoError, match="qa_uid = 'ov::a::t1': no media paths"):
        write_sft(tmp_path / "x.jsonl", frame, np.arange(4), np.zeros(4), {})
    assert not (tmp_path / "x.jsonl").exists()


def test_media_json_equals_json_dumps_for_any_path():
    import json

    import pyarrow as pa

    from gdo_opt.subset.export import _media_json

    lists = [["a/b.jpg", "c d/é.png"], [], None, ['q"uote.jpg', "back\\slash", "tab\there", "nl\nx", "\x01ctl"],
             ["/abs/ü/日本.jpg"]]
    expected = [json.dumps(m or [], ensure_ascii=False, separators=(",", ":")) for m in lists]
    for series in (pd.Series(lists, dtype=object),
                   pd.Series(pd.arrays.ArrowExtensionArray(pa.array(lists, pa.large_list(pa.string()))))):
        text, counts = _media_json(series)
        assert text.to_pylist() == expected
        assert counts.tolist() == [len(m or []) for m in lists]


@pytest.mark.parametrize("sorted_pool", [True, False])
def test_several_outputs_direct_and_spooled_write_the_same_lines(tmp_path, sorted_pool):
    """A pool already in qa_uid order is written straight through; any other order goes through the
    spool; both give every output its rows in qa_uid order, each line exactly once per output."""
    from gdo_opt.subset.export import sft_lines, write_sft_sets

    frame = _frame()
    if sorted_pool:
        frame = frame.sort_values("qa_uid").reset_index(drop=True)
    rho = np.arange(4, dtype=float)
    outputs = {tmp_path / "a.jsonl": np.array([0, 2]), tmp_path / "b.jsonl": np.array([3, 1, 0, 2]),
               tmp_path / "c.jsonl": np.array([], dtype=np.int64)}
    counts = write_sft_sets(outputs, frame, rho, {})
    lines = sft_lines(frame, rho, {})
    for path, rows in outputs.items():
        expected = [lines[i] for i in sorted(rows.tolist(), key=lambda i: frame["qa_uid"][i])]
        assert path.read_text().splitlines() == expected and counts[path] == rows.size


def test_lines_escape_text_as_json_dumps_does():
    """The Arrow-built lines (substring escapes, Python for rare control characters) against
    json.dumps per value, byte for byte, and parsed back."""
    import json

    from gdo_opt.subset.export import sft_encoded, sft_lines

    texts = ['plain', 'q"uote', "back\\slash", "tab\there", "nl\nx", "cr\rx", "\x01ctl", "bell\x07 \x08 \x0c",
             "ü 日本 \u2028", ""]
    n = len(texts)
    frame = pd.DataFrame({
        "qa_uid": [f"ov::{i}::t0" for i in range(n)], "video_uid": [f'v"{i}' for i in range(n)],
        "question": texts, "answer": texts[::-1], "media": [["a.jpg"]] * n, "media_kind": ["image"] * n,
        "source": ["src\\x"] * n, "stratum": ["s|t"] * n})
    rho = np.linspace(-1, 1, n)
    lines = sft_lines(frame, rho, {"vds": np.r_[np.nan, np.ones(n - 1)]})
    data, sizes = sft_encoded(frame, rho, {"vds": np.r_[np.nan, np.ones(n - 1)]})
    assert data == "".join(line + "\n" for line in lines).encode() and sizes.sum() == len(data)
    for i, line in enumerate(lines):
        row = json.loads(line)
        assert row["messages"][0]["content"] == "<image>\n" + texts[i]
        assert row["messages"][1]["content"] == texts[::-1][i]
        assert '"content":' + json.dumps("<image>\n" + texts[i], ensure_ascii=False) + "}" in line
        assert row["video_uid"] == f'v"{i}' and row["meta"]["source"] == "src\\x"
    assert json.loads(lines[0])["meta"]["descriptors"]["vds"] is None
