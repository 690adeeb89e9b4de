"""Pool ingest: every input format and spelling, every bad-input reason, strata, determinism, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gdo_opt.cli import main
from gdo_opt.errors import GdoError, ParameterError
from gdo_opt.ingest import read as pool_read
from gdo_opt.ingest.candidates import load_candidates
from gdo_opt.ingest.pool import ingest
from gdo_opt.ingest.profile import build_profile
from gdo_opt.ingest.schema import COLUMNS


def _write_jsonl(path: Path, rows: list) -> Path:
    """Rows may be dicts (dumped) or raw bytes/str lines (written verbatim)."""
    with open(path, "wb") as handle:
        for row in rows:
            if isinstance(row, dict):
                row = json.dumps(row)
            handle.write(row if isinstance(row, bytes) else row.encode("utf-8"))
            handle.write(b"\n")
    return path


def _ov(i, q="What color is the ball?", a="red", **extra):
    row = {"id": f"o{i}", "images": [f"img/{i}.png", "img/extra.png"],
           "messages": [{"role": "user", "content": f"<image>\n{q}"}, {"role": "assistant", "content": a}]}
    row.update(extra)
    return row


def _run(tmp_path, **kw):
    kw.setdefault("progress", False)
    return ingest(**kw)


def test_onevision_spellings_and_uids(tmp_path):
    rows = [
        _ov(0, data_source="llava_ov/general"),
        {"id": "o1", "images": ["img/1.png"], "conversations": [
            {"from": "human", "value": "<image>\nWhat shape is it?"}, {"from": "gpt", "value": "circle"},
            {"from": "human", "value": "Which side?"}, {"from": "gpt", "value": "left"}]},
        {"id": "o2", "images": ["/abs/2.png"], "messages": [
            {"role": "system", "content": "Be brief."},
            {"from": "user", "value": "<image> Is it big?"}, {"from": "assistant", "value": "no"}]},
        {"id": 7, "images": ["img/7.png"], "messages": [  # numeric id
            {"role": "user", "content": "Q7?"}, {"role": "assistant", "content": "A7"}]},
    ]
    f = _write_jsonl(tmp_path / "ov.jsonl", rows)
    df = _run(tmp_path, onevision=[f]).to_pandas()
    assert df["qa_uid"].tolist() == ["ov::o0::t0", "ov::o1::t0", "ov::o1::t1", "ov::o2::t0", "ov::7::t0"]
    assert df["question"].tolist()[:4] == ["What color is the ball?", "What shape is it?", "Which side?", "Is it big?"]
    assert df["answer"].tolist()[:3] == ["red", "circle", "left"]
    assert df["turn"].tolist() == [0, 0, 1, 0, 0]
    assert set(df["bucket"]) == {"image_qa"} and set(df["video_uid"]) == {""}
    # only the first image, resolved against the JSONL's folder; absolute paths kept
    assert list(df["media"][0]) == [str(tmp_path / "img/0.png")]
    assert list(df["media"][3]) == ["/abs/2.png"]
    assert df["source"].tolist()[:2] == ["llava_ov/general", "ov"]  # data_source, else the file stem
    assert df["source_group"][0] == "llava_ov"
    assert df["line"].tolist() == [1, 2, 2, 3, 4]
    assert list(df.columns) == COLUMNS


def test_video_formats_and_frame_resampling(tmp_path):
    frames = [f"v/f{i:03d}.jpg" for i in range(100)]
    msgs = [{"role": "user", "content": "<video>\nWhat happens first?"}, {"role": "assistant", "content": "It moves."},
            {"role": "user", "content": "What color is it?"}, {"role": "assistant", "content": "blue"}]
    rows = [
        {"id": "a", "video_id": "vid_a", "images": frames, "messages": msgs, "duration": 45.0},
        {"id": "b", "video_id": "vid_b", "images": frames[:10], "messages": msgs[:2]},
        {"id": "c", "video": "clips/c.mp4", "messages": msgs[:2]},
        {"id": "d", "videos": ["clips/d.mp4"], "conversations": [{"from": "human", "value": "Q?"},
                                                                 {"from": "gpt", "value": "A"}]},
    ]
    f = _write_jsonl(tmp_path / "vid.jsonl", rows)
    df = _run(tmp_path, video=[f], target_frames=32).to_pandas()
    assert df["qa_uid"].tolist() == ["vv::a::t0", "vv::a::t1", "vv::b::t0", "vv::c::t0", "vv::d::t0"]
    assert set(df["bucket"]) == {"short_video"}
    a = df.iloc[0]
    expect = np.rint(np.linspace(0, 99, 32)).astype(int)
    assert list(a["media"]) == [str(tmp_path / frames[i]) for i in expect]
    assert a["n_frames"] == 100 and a["media_kind"] == "frames" and a["video_uid"] == "vid_a"
    assert a["duration_bucket"] == "30-60s" and a["temporal_category"] == "temporal"
    assert df.iloc[1]["temporal_category"] == "static"
    b = df.iloc[2]
    assert len(b["media"]) == 10 and b["n_frames"] == 10 and b["duration_bucket"] == "0-10s"  # 10 frames @1fps
    c, d = df.iloc[3], df.iloc[4]
    assert c["media_kind"] == "video" and list(c["media"]) == [str(tmp_path / "clips/c.mp4")]
    assert c["video_uid"] == str(tmp_path / "clips/c.mp4") and c["n_frames"] == 0
    assert c["duration_bucket"] == "unknown" and d["media_kind"] == "video"


def test_generic_jsonl_and_parquet(tmp_path):
    rows = [
        {"messages": [{"role": "user", "content": "<image>Describe."}, {"role": "assistant", "content": "A cat."}],
         "images": ["a.png", "b.png"]},
        {"id": "g2", "messages": [{"role": "user", "content": "<video>What happens?"},
                                  {"role": "assistant", "content": "It rains."}], "videos": ["x.mp4"]},
    ]
    f = _write_jsonl(tmp_path / "swift.jsonl", rows)
    pq_path = tmp_path / "swift.parquet"
    keys = ("id", "messages", "images", "videos")
    pq.write_table(pa.Table.from_pylist([{k: r.get(k) for k in keys} for r in rows]), pq_path)
    res = _run(tmp_path, pool=[f, pq_path], media_root=tmp_path / "m")
    df = res.to_pandas()
    # id-less rows get "<file name>-L<line>" ids; the Parquet file repeats g2 -> duplicate_id
    assert df["qa_uid"].tolist() == ["gen::swift.jsonl-L1::t0", "gen::g2::t0", "gen::swift.parquet-L1::t0"]
    assert list(df["media"][0]) == [str(tmp_path / "m/a.png"), str(tmp_path / "m/b.png")]
    assert df["media_kind"].tolist() == ["image", "video", "image"]
    assert df["bucket"].tolist() == ["image_qa", "short_video", "image_qa"]
    assert df["question"].tolist() == ["Describe.", "What happens?", "Describe."]
    assert df["file"].tolist() == [str(f), str(f), str(pq_path)]
    assert res.skipped == {"duplicate_id": 1}
    assert res.examples["duplicate_id"][0].startswith(f"{pq_path}:2: duplicate_id")


def test_every_bad_input_reason_is_counted_with_file_line(tmp_path):
    lines = [
        _ov(1),                                                    # 1 ok
        '{"id": "o2", "images": ["x.png"], "messages": [',          # 2 malformed
        {"id": "o3", "messages": _ov(3)["messages"]},              # 3 no media
        {"id": "o4", "images": ["x.png"], "messages": [            # 4 user, user
            {"role": "user", "content": "a"}, {"role": "user", "content": "b"}]},
        _ov(5, a="   "),                                           # 5 empty answer
        b'{"id": "o6", "images": ["x.png"], "messages": [{"role": "user", "content": "\xff"}]}',  # 6 non-UTF-8
        _ov(1, q="again"),                                         # 7 duplicate id
        "",                                                        # 8 blank line: ignored
        [1, 2],                                                    # 9 not an object -> malformed
        {"id": "o10", "images": ["x.png"], "messages": [{"role": "user", "content": "only a question"}]},
        _ov(11),
    ]
    lines[8] = json.dumps([1, 2])
    f = _write_jsonl(tmp_path / "bad.jsonl", lines)
    res = _run(tmp_path, onevision=[f])
    assert res.skipped == {"malformed_json": 2, "no_media": 1, "non_alternating": 2, "empty_answer": 1,
                           "non_utf8": 1, "duplicate_id": 1}
    ex = res.examples
    assert ex["malformed_json"][0].startswith(f"{f}:2: malformed_json")
    assert ex["malformed_json"][1].startswith(f"{f}:9: malformed_json")
    assert ex["no_media"] == [f"{f}:3: no_media"]
    assert [e.split(": ")[0] for e in ex["non_alternating"]] == [f"{f}:4", f"{f}:10"]
    assert ex["empty_answer"][0].startswith(f"{f}:5: empty_answer")
    assert ex["non_utf8"][0].startswith(f"{f}:6: non_utf8")
    assert ex["duplicate_id"][0].startswith(f"{f}:7: duplicate_id")
    assert res.to_pandas()["qa_uid"].tolist() == ["ov::o1::t0", "ov::o11::t0"]
    assert res.profile["ingest"]["skipped"]["non_alternating"] == 2
    with pytest.raises(ParameterError, match=r"^strict: 8 bad input rows .*bad.jsonl:\d+"):
        _run(tmp_path, onevision=[f], strict=True)


def test_fast_and_fallback_paths_and_block_boundaries_agree(tmp_path, monkeypatch):
    rows = [_ov(i, q=f"Question {i} before the move?", a=f"answer {i}") for i in range(300)]
    clean = _write_jsonl(tmp_path / "clean.jsonl", rows)
    dirty = _write_jsonl(tmp_path / "dirty.jsonl", rows[:150] + ["{not json"] + rows[150:])
    a = _run(tmp_path, onevision=[clean]).to_pandas()
    monkeypatch.setattr(pool_read, "BLOCK_BYTES", 1500)  # many blocks, one of them on the slow path
    b = _run(tmp_path, onevision=[dirty], workers=2)
    bdf = b.to_pandas()
    assert b.skipped == {"malformed_json": 1} and b.examples["malformed_json"][0].startswith(f"{dirty}:151:")
    cols = [c for c in COLUMNS if c not in ("file", "line", "media", "source", "source_group")]
    assert a[cols].equals(bdf[cols])
    assert (bdf["line"].to_numpy() == np.r_[1:151, 152:302]).all()


def test_decontamination(tmp_path):
    f = _write_jsonl(tmp_path / "ov.jsonl", [
        _ov(0, q="What is the capital of France?", a="Paris"),
        _ov(1, q="what is the CAPITAL of france", a="Lyon"),     # same question after normalization
        _ov(2, q="How many dogs?", a="2"),                       # same QA as the chat-style bench row
        _ov(3, q="How many cats?", a="4"),
    ])
    bench = _write_jsonl(tmp_path / "bench.jsonl", [
        {"question": "What is the capital of France?", "answer": "Paris"},
        {"messages": [{"role": "user", "content": "<image>\nHow many dogs?"}, {"role": "assistant", "content": "2"}]},
    ])
    res = _run(tmp_path, onevision=[f], exclude=[bench])
    assert res.decontaminated == 3 and res.profile["ingest"]["decontaminated"] == 3
    assert res.to_pandas()["qa_uid"].tolist() == ["ov::o3::t0"]
    bad = _write_jsonl(tmp_path / "badbench.jsonl", ['{"question": "x"}', "oops"])
    with pytest.raises(GdoError, match="badbench.jsonl:2"):
        _run(tmp_path, onevision=[f], exclude=[bad])


def test_strata_fingerprints_and_profile(tmp_path):
    f = _write_jsonl(tmp_path / "ov.jsonl", [
        _ov(0, q="Which color?\nA. red\nB. blue\nC. green", a="A"),
        _ov(1, q="Pick one: (A) cat (B) dog", a="(B) dog"),
        _ov(2, q="What color is the ball?", a="Red."),
        _ov(3, q="what COLOR is the ball", a="red", data_source="sharegpt4v_coco"),
        _ov(4, q="Describe what happens after the man opens the door in this long scene with many objects",
            a=" ".join(["word"] * 12)),
    ])
    df = _run(tmp_path, onevision=[f]).to_pandas()
    assert df["question_form"].tolist() == ["MCQ", "MCQ", "Open", "Open", "Open"]
    assert df["temporal_category"].tolist() == ["static"] * 4 + ["temporal"]
    assert df["q_len_bucket"].tolist()[-1] == "9-20w" and df["a_len_bucket"].tolist() == ["1w", "2-10w", "1w", "1w",
                                                                                            "11-50w"]
    assert df["dedup_key"][2] == df["dedup_key"][3] and df["dedup_key_q"][2] == df["dedup_key_q"][3]
    assert df["dedup_key"][0] != df["dedup_key"][1] and len(df["dedup_key"][0]) == 16
    assert df["stratum"][0] == "image_qa|image|static|MCQ|1-8w|1w"
    assert df["source_group"][3] == "sharegpt4v"
    prof = build_profile(df)
    assert prof["candidates"] == 5 and prof["duplicates"]["qa"] == 1 and prof["mcq_share"] == 0.4
    assert prof["counts"]["question_form"] == {"Open": 3, "MCQ": 2}
    assert sum(prof["strata"].values()) == 5 and prof["source_groups"]["sharegpt4v"]["candidates"] == 1


def test_source_group_mapping_and_check_media(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "img/0.png").write_bytes(b"x")
    f = _write_jsonl(tmp_path / "ov.jsonl", [_ov(0, data_source="ai2d"), _ov(1, data_source="ai2d")])
    res = _run(tmp_path, onevision=[f], source_groups={"ai2d": "diagrams"}, check_media=True)
    df = res.to_pandas()
    assert df["qa_uid"].tolist() == ["ov::o0::t0"] and df["source_group"].tolist() == ["diagrams"]
    assert res.skipped == {"missing_media": 1}


def test_missing_and_unusable_files_are_errors(tmp_path):
    with pytest.raises(GdoError, match="nope.jsonl: no such file"):
        _run(tmp_path, onevision=[tmp_path / "nope.jsonl"])
    bad = _write_jsonl(tmp_path / "allbad.jsonl", ["{", {"id": "x", "messages": []}])
    with pytest.raises(GdoError, match=r"allbad.jsonl: no usable rows \(2 skipped: malformed_json 1, no_media 1\)"):
        _run(tmp_path, onevision=[bad])
    with pytest.raises(GdoError, match="no input files"):
        _run(tmp_path)


def test_determinism_outputs_and_load(tmp_path, monkeypatch):
    rows = [_ov(i, q=f"Q{i} then?", a=f"A{i}") for i in range(50)]
    f = _write_jsonl(tmp_path / "ov.jsonl", rows)
    monkeypatch.setattr(pool_read, "BLOCK_BYTES", 1000)  # several blocks: worker processes kick in
    r1 = _run(tmp_path, onevision=[f], out_dir=tmp_path / "o1", workers=1)
    r2 = _run(tmp_path, onevision=[f], out_dir=tmp_path / "o2", workers=3)
    for name in ("candidates.parquet", "profile.json"):
        assert (tmp_path / "o1" / name).read_bytes() == (tmp_path / "o2" / name).read_bytes()
    assert not [p for p in (tmp_path / "o1").iterdir() if p.name.endswith(".tmp")]
    df = load_candidates(r1.paths["candidates"])
    assert len(df) == 50 and df["qa_uid"].is_unique and r2.profile["candidates"] == 50
    with pytest.raises(GdoError, match="not a candidate table"):
        pq.write_table(pa.table({"x": [1]}), tmp_path / "x.parquet")
        load_candidates(tmp_path / "x.parquet")


def test_cli_ingest_and_errors(tmp_path, capsys):
    f = _write_jsonl(tmp_path / "ov.jsonl", [_ov(0), "{broken"])
    out = tmp_path / "out"
    assert main(["ingest", "--onevision", str(f), "--out", str(out), "--no-progress"]) == 0
    assert (out / "candidates.parquet").exists() and json.loads((out / "profile.json").read_text())["candidates"] == 1
    err = capsys.readouterr().err
    assert "malformed_json 1" in err and f"{f}:2" in err
    assert main(["ingest", "--onevision", str(f), "--out", str(out), "--strict", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gdo-opt ingest: error: --strict") and f"{f}:2" in err[0]
    assert main(["ingest", "--video", str(tmp_path / "missing.jsonl"), "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == f"gdo-opt ingest: error: {tmp_path / 'missing.jsonl'}: no such file"
