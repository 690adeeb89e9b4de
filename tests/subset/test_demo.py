"""`gdo-opt demo`: the whole chain on a small demo pool, every preset written, rows valid."""

import json

import numpy as np
import pandas as pd
import pytest

from gdo_opt.cli import main
from gdo_opt.goal.preset import BUILTIN, WEIGHTED
from gdo_opt.subset.export import check_sft_row

SMALL = ["--n-images", "150", "--n-videos", "30", "--solver", "highs"]


def _check_presets(out, source: str) -> list[dict]:
    reports = []
    for name in (*BUILTIN, *WEIGHTED):
        report = json.loads((out / name / "report.json").read_text())
        assert report["solve"]["status"] in ("optimal", "feasible")
        assert report["metrics"]["source"] == source
        assert not any(row["violated"] for row in report["constraints"])
        rows = [json.loads(x) for x in (out / name / "gdo_1x.jsonl").read_text().splitlines()]
        assert len(rows) == report["selected"] > 0
        assert all(check_sft_row(r) == [] for r in rows)
        assert all(p for r in rows for p in (r.get("images") or r.get("videos")))
        reports.append(report)
    return reports


def test_demo_default_runs_descriptor_stage_with_tiny_model(tmp_path, capsys):
    pytest.importorskip("torch")
    out = tmp_path / "gdo-demo"
    assert main(["demo", "--out", str(out), *SMALL]) == 0
    err = " ".join(capsys.readouterr().err.split())  # rich wraps long lines
    assert "GDO subsets" in err and "tiny offline Qwen3-VL model" in err
    processor = json.loads((out / "tiny-model" / "preprocessor_config.json").read_text())
    assert processor["size"]["longest_edge"] == 32 * 32  # 4 LLM tokens per image keeps the demo fast
    merged = pd.read_parquet(out / "descriptors" / "descriptors.parquet")
    cands = pd.read_parquet(out / "candidates" / "candidates.parquet")
    assert sorted(merged["qa_uid"]) == sorted(cands["qa_uid"]) and (merged["error"] == "").all()
    for column in ("amm", "frame_diversity", "coverage", "temporal_prob", "loss_video", "loss_blind", "vds",
                   "ppl", "stability"):
        assert np.isfinite(merged[column]).all(), column
    assert merged["loss_video"].std() > 0 and merged["amm"].max() > 0
    reports = _check_presets(out, "descriptors")
    used = {t["descriptor"] for r in reports for t in r["score"].get("terms", [])}
    assert {r["score"].get("kind") for r in reports} == {"published", None}  # the paper goals + ours
    assert {"vds", "ppl", "stability", "amm", "temporal_prob"} <= used
    # A second run in the same folder starts the descriptor stage afresh instead of refusing to resume.
    assert main(["demo", "--out", str(out), *SMALL]) == 0
    again = pd.read_parquet(out / "descriptors" / "descriptors.parquet")
    pd.testing.assert_frame_equal(again, merged)


def test_demo_proxy_mode(tmp_path, capsys):
    out = tmp_path / "gdo-demo"
    assert main(["demo", "--out", str(out), "--metrics-mode", "proxy", *SMALL]) == 0
    assert "GDO subsets" in capsys.readouterr().err
    assert (out / "metrics" / "gdo_proxy_metrics.jsonl").is_file()
    for report in _check_presets(out, "gdo-jsonl"):
        assert "proxies" in report["metrics"]["note"]
