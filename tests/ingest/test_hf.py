"""Hugging Face-style pools: Parquet with embedded image bytes (the LLaVA-OneVision layout), a
`datasets` save_to_disk folder, fsspec URLs; media materialized once, content-addressed."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from gdo_opt.cli import main
from gdo_opt.ingest.pool import ingest

MSG = pa.struct([("from", pa.string()), ("value", pa.string())])
IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def _png(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _onevision_table(n: int = 24) -> pa.Table:
    """LLaVA-OneVision's Hub layout: id, image {'bytes', 'path'}, conversations, data_source."""
    pngs = [_png(i % 10) for i in range(n)]  # 10 distinct images: repeats must share one file
    convs = [[{"from": "human", "value": f"<image>\nWhat is shown in picture {i}?"},
              {"from": "gpt", "value": f"A pattern of colored noise number {i}."}] for i in range(n)]
    return pa.table({
        "id": [f"img{i}" for i in range(n)],
        "image": pa.array([{"bytes": b, "path": f"img{i}.png"} for i, b in enumerate(pngs)], IMAGE),
        "conversations": pa.array(convs, pa.list_(MSG)),
        "data_source": ["clevr_math" if i % 2 else "ai2d" for i in range(n)],
    })


def _media_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def test_parquet_with_embedded_bytes_is_materialized_once(tmp_path):
    table = _onevision_table()
    pq.write_table(table, tmp_path / "ov.parquet", row_group_size=7)
    result = ingest(onevision=[tmp_path / "ov.parquet"], out_dir=tmp_path / "run", progress=False)
    frame = result.to_pandas()
    assert len(frame) == table.num_rows
    assert frame["qa_uid"].iloc[0] == "ov::img0::t0"
    files = _media_files(tmp_path / "run" / "media")
    assert len(files) == 10  # one file per distinct blob
    for path in files:  # content-addressed: the name is the SHA-256 of the bytes
        assert path.stem == hashlib.sha256(path.read_bytes()).hexdigest() and path.suffix == ".png"
        assert path.parent.name == path.stem[:2]
    media = [m[0] for m in frame["media"]]
    assert all(Path(m).is_file() for m in media)
    assert Path(media[3]).read_bytes() == table.column("image")[3]["bytes"].as_py()
    assert Path(media[13]) == Path(media[3])  # same image, same file
    before = {p: p.stat().st_mtime_ns for p in files}
    again = ingest(onevision=[tmp_path / "ov.parquet"], out_dir=tmp_path / "run", progress=False)
    assert {p: p.stat().st_mtime_ns for p in _media_files(tmp_path / "run" / "media")} == before  # not rewritten
    assert again.table.equals(result.table)


def test_paths_folder_of_shards_and_fsspec_url(tmp_path):
    table = _onevision_table(12)
    pngs = [b["bytes"] for b in table.column("image").to_pylist()]
    (tmp_path / "imgs").mkdir()
    for i, blob in enumerate(pngs):
        (tmp_path / "imgs" / f"{i}.png").write_bytes(blob)
    by_path = table.set_column(1, "image", pa.array([{"bytes": None, "path": f"imgs/{i}.png"} for i in range(12)], IMAGE))
    shards = tmp_path / "shards"
    shards.mkdir()
    pq.write_table(by_path.slice(0, 6), shards / "train-00000.parquet")
    pq.write_table(by_path.slice(6), shards / "train-00001.parquet")
    # relative paths resolve against --media-root (the shards' folder would be the default)
    res = ingest(pool=[shards], out_dir=tmp_path / "a", media_root=tmp_path, progress=False)
    assert [Path(m[0]).name for m in res.to_pandas()["media"]] == [f"{i}.png" for i in range(12)]
    assert not (tmp_path / "a" / "media").exists()  # nothing embedded, nothing written
    # any fsspec URL: the in-memory filesystem stands in for hf:// or s3://
    import fsspec

    fs = fsspec.filesystem("memory")
    with fs.open("/pool/ov.parquet", "wb") as handle:
        pq.write_table(_onevision_table(12), handle)
    url = ingest(onevision=["memory://pool/ov.parquet"], out_dir=tmp_path / "b", progress=False).to_pandas()
    assert len(url) == 12 and all(Path(m[0]).is_file() for m in url["media"])


def test_datasets_save_to_disk_folder(tmp_path):
    datasets = pytest.importorskip("datasets")
    table = _onevision_table(8)
    ds = datasets.Dataset(table)  # the real on-disk format: Arrow IPC streams + state.json
    ds.save_to_disk(str(tmp_path / "ds"))
    res = ingest(onevision=[tmp_path / "ds"], out_dir=tmp_path / "run", progress=False).to_pandas()
    assert len(res) == 8 and all(Path(m[0]).is_file() for m in res["media"])
    datasets.DatasetDict({"train": ds, "extra": datasets.Dataset(_onevision_table(3))}).save_to_disk(str(tmp_path / "dd"))
    both = ingest(pool=[tmp_path / "dd"], out_dir=tmp_path / "run2", progress=False).to_pandas()
    assert len(both) == 8  # ids repeat across splits: the later rows are skipped as duplicate ids


def test_bad_sources_are_one_line_errors(tmp_path, capsys):
    assert main(["ingest", "--pool", str(tmp_path / "missing.parquet"), "--out", str(tmp_path / "o")]) == 2
    assert "no such file" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["ingest", "--pool", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 2
    assert "no data files" in capsys.readouterr().err


def test_embedded_bytes_ingest_extract_select_export(tmp_path):
    """The user's path: HF Parquet with image bytes -> ingest -> extract (tiny model) -> select -> export."""
    pytest.importorskip("torch")
    from gdo_opt.descriptors.tiny_model import make_tiny_model

    pq.write_table(_onevision_table(40), tmp_path / "ov.parquet")
    run = tmp_path / "run"
    assert main(["ingest", "--onevision", str(tmp_path / "ov.parquet"), "--out", str(run), "--no-progress"]) == 0
    model = make_tiny_model(tmp_path / "tiny")
    assert main(["extract", "--candidates", str(run / "candidates.parquet"), "--model", str(model),
                 "--out", str(run / "shards"), "--descriptors", "dependency,difficulty,coverage",
                 "--frames", "2", "--chunk-size", "64", "--workers", "0", "--no-progress"]) == 0
    assert main(["merge", str(run / "shards"), "--out", str(run / "descriptors.parquet")]) == 0
    desc = pd.read_parquet(run / "descriptors.parquet")
    assert len(desc) == 40 and np.isfinite(desc["vds"]).all()
    out = tmp_path / "subset"
    text = (Path(__file__).resolve().parents[2] / "presets" / "minloss_weighted.toml").read_text().replace("video_share = [0.15, 0.32]", "video_share = [0.0, 1.0]")
    (tmp_path / "images_only.toml").write_text(text.replace('name = "minloss_weighted"', 'name = "images_only"'))
    assert main(["select", "--candidates", str(run / "candidates.parquet"), "--metrics",
                 str(run / "descriptors.parquet"), "--preset", str(tmp_path / "images_only.toml"),
                 "--target-count", "10",
                 "--baseline-multiplier", "2", "--out", str(out)]) == 0
    rows = [json.loads(line) for line in (out / "gdo_1x.jsonl").read_text().splitlines()]
    assert len(rows) == 10
    for row in rows:
        assert row["messages"][0]["content"].startswith("<image>")
        assert Path(row["images"][0]).is_file() and Path(row["images"][0]).parent.parent == run / "media"
