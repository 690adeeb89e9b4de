"""gdo-opt merge on hand-made shards (no model): coverage checks, joins, clustering, robust z-scores."""

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from gdo_opt.atomic import write_parquet
from gdo_opt.cli import main
from gdo_opt.descriptors.merge import merge_shards
from gdo_opt.errors import GdoError
from gdo_opt.stats import robust_z


def _shard(path, uids, **cols):
    arrays = {"qa_uid": pa.array(uids, pa.string())}
    for name, values in cols.items():
        arrays[name] = pa.array(np.asarray(values, dtype=np.float64))
    arrays["error"] = pa.array([""] * len(uids), pa.string())
    write_parquet(path, pa.table(arrays))


def test_robust_z_median_iqr_and_clip():
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 1000.0, np.nan])
    z = robust_z(x, 5.0)[0]
    q25, med, q75 = np.percentile(x[:6], [25, 50, 75])
    assert z[2] == pytest.approx((3.0 - med) / ((q75 - q25) / 1.349))
    assert z[5] == 5.0 and np.isnan(z[6])
    assert (robust_z(np.ones(4))[0] == 0).all()
    assert np.isnan(robust_z(np.array([1.0, np.inf, 2.0]))[0][1])  # non-finite = missing


def test_merge_reports_missing_duplicates_and_joins_folders(tmp_path):
    cands = pd.DataFrame({"qa_uid": [f"ov::{i}::t0" for i in range(6)], "question": "q", "answer": "a",
                          "media": [["x.png"]] * 6, "media_kind": "image"})
    cands.to_parquet(tmp_path / "candidates.parquet")
    a = tmp_path / "a"
    _shard(a / "rank000-chunk000000.parquet", ["ov::0::t0", "ov::1::t0", "ov::2::t0"],
           loss_video=[1.0, 2.0, 3.0], loss_blind=[1.5, 2.0, 2.0])
    _shard(a / "rank001-chunk000001.parquet", ["ov::2::t0", "ov::3::t0", "ov::9::t0"],
           loss_video=[9.0, 4.0, 5.0], loss_blind=[1.0, 4.5, 5.0])
    b = tmp_path / "b"
    _shard(b / "rank000-chunk000000.parquet", ["ov::0::t0", "ov::3::t0"], ost=[0.1, 0.2])
    out = tmp_path / "descriptors.parquet"
    args = ["merge", str(a), str(b), "--out", str(out), "--candidates", str(tmp_path / "candidates.parquet"),
            "--normalize", "clip"]
    assert main(args) == 2  # candidates without a shard row: refused unless --allow-missing
    rc = main([*args, "--allow-missing"])
    assert rc == 0
    df = pd.read_parquet(out)
    report = json.loads((tmp_path / "descriptors.report.json").read_text())
    assert df["qa_uid"].tolist() == sorted(cands["qa_uid"])
    assert report["coverage"]["missing"] == 2 and report["coverage"]["missing_examples"] == ["ov::4::t0", "ov::5::t0"]
    assert report["coverage"]["unknown_examples"] == ["ov::9::t0"]
    assert report["coverage"]["duplicates"] == 1
    row = df.set_index("qa_uid")
    assert row.loc["ov::2::t0", "loss_video"] == 3.0  # first shard wins on a duplicate
    assert row.loc["ov::0::t0", "vds"] == pytest.approx(0.5) and row.loc["ov::0::t0", "ppl"] == pytest.approx(np.e)
    assert row.loc["ov::3::t0", "ost"] == 0.2 and np.isnan(row.loc["ov::1::t0", "ost"])
    assert row.loc["ov::4::t0", "error"] == "missing: no shard row" and np.isnan(row.loc["ov::4::t0", "loss_video"])
    assert report["errors"]["by_kind"] == {"missing": 2}
    np.testing.assert_allclose(df["z_loss_video"], robust_z(df["loss_video"].to_numpy())[0])
    assert (df["cluster"] == -1).all() and df["coverage"].isna().all()  # no features -> no clustering
    # Same inputs -> same bytes.
    first = out.read_bytes()
    merge_shards([a, b], out, candidates=tmp_path / "candidates.parquet", normalize="clip", allow_missing=True)
    assert out.read_bytes() == first


def test_merge_clusters_features(tmp_path):
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, 256)) * 5
    feat = np.concatenate([c + rng.normal(size=(20, 256)) * 0.1 for c in centers]).astype(np.float32)
    uids = [f"gen::{i:03d}::t0" for i in range(60)]
    table = pa.table({"qa_uid": pa.array(uids), "feat": pa.FixedSizeListArray.from_arrays(pa.array(feat.ravel()), 256),
                      "error": pa.array([""] * 60)})
    write_parquet(tmp_path / "s" / "rank000-chunk000000.parquet", table)
    report = merge_shards([tmp_path / "s"], tmp_path / "d.parquet", n_clusters=3)
    df = pd.read_parquet(tmp_path / "d.parquet")
    assert report["clustering"]["k"] == 3
    assert sorted(df.groupby("cluster").size()) == [20, 20, 20]
    assert ((df["coverage"] > 0) & (df["coverage"] <= 1)).all() and df["hardness"].between(0, 1).all()


def test_merge_errors_are_one_line(tmp_path):
    with pytest.raises(GdoError, match="no shard files"):
        (tmp_path / "empty").mkdir()
        merge_shards([tmp_path / "empty"], tmp_path / "o.parquet")
    assert main(["merge", str(tmp_path / "nope"), "--out", str(tmp_path / "o.parquet")]) == 2
