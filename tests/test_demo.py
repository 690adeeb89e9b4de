"""`gdo-opt demo`: the whole chain on a small demo pool, every preset written, rows valid."""

import json

from gdo_opt.cli import main
from gdo_opt.export import check_sft_row
from gdo_opt.preset import BUILTIN


def test_demo_runs_whole_chain(tmp_path, capsys):
    out = tmp_path / "gdo-demo"
    assert main(["demo", "--out", str(out), "--n-images", "150", "--n-videos", "30", "--solver", "highs"]) == 0
    err = capsys.readouterr().err
    assert "GDO subsets" in err
    assert (out / "candidates" / "candidates.parquet").is_file()
    assert (out / "metrics" / "gdo_proxy_metrics.jsonl").is_file()
    for name in BUILTIN:
        report = json.loads((out / name / "report.json").read_text())
        assert report["solve"]["status"] in ("optimal", "feasible")
        assert report["metrics"]["source"] == "gdo-jsonl" and "proxies" in report["metrics"]["note"]
        assert not any(row["violated"] for row in report["constraints"])
        rows = [json.loads(x) for x in (out / name / "gdo_1x.jsonl").read_text().splitlines()]
        assert len(rows) == report["selected"] > 0
        assert all(check_sft_row(r) == [] for r in rows)
        assert all(p for r in rows for p in (r.get("images") or r.get("videos")))
