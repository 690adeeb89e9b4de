"""The GDO build end to end on a synthetic pool: constraints, baseline, determinism, CLI behaviour."""

import json
from pathlib import Path

import numpy as np
import pytest

from gdo_opt.atomic import write_parquet
from gdo_opt.cli import main
from gdo_opt.errors import GdoError
from gdo_opt.goal.metrics import align_metrics
from gdo_opt.goal.preset import BUILTIN, WEIGHTED, load_preset
from gdo_opt.subset.export import check_sft_row
from gdo_opt.subset.pipeline import SelectConfig, select_subset, write_outputs
from gdo_opt.testing import pools as bench
from tests.subset.oracle import eligible_view, violations

ROOT = Path(__file__).resolve().parents[2]

N = 3000


@pytest.fixture(scope="module")
def pool():
    frame = bench.make_candidates(N, seed=1)
    table = bench.make_gdo_metrics(frame, seed=1, missing=0.02)
    return frame, table, align_metrics(frame["qa_uid"], table, "gdo-jsonl", "metrics.jsonl")


def test_oracle_catches_broken_subsets(pool):
    """The independent oracle is not vacuous: it flags a short subset, a duplicate and a flooded video."""
    frame, _, metrics = pool
    preset = load_preset("temp_weighted")
    result = select_subset(frame, metrics, preset, SelectConfig(solver="highs", target_count=150))
    sub, tp, chosen = eligible_view(frame, metrics, result)
    assert violations(sub, tp, preset, 150, chosen) == []
    assert any(v.startswith("budget") for v in violations(sub, tp, preset, 150, chosen[1:]))
    keys = sub["dedup_key"].to_numpy()
    pair = np.flatnonzero(keys == sub["dedup_key"].value_counts().index[0])[:2]
    assert pair.size == 2
    assert any(v.startswith("dedup") for v in violations(sub, tp, preset, 152, [*chosen, *pair]))
    uid = next(u for u, n in sub["video_uid"].value_counts().items() if u and n > 8)
    flood = [*chosen, *[i for i in range(len(sub)) if sub["video_uid"].iloc[i] == uid][:9]]
    assert any(v.startswith("per_video_cap") for v in violations(sub, tp, preset, len(flood), flood))


@pytest.mark.parametrize("name", WEIGHTED)
def test_each_preset_satisfies_its_constraints(pool, name, tmp_path):
    frame, _, metrics = pool
    preset = load_preset(name)
    result = select_subset(frame, metrics, preset, SelectConfig(solver="highs", seed=3))
    assert result.report["solve"]["status"] in ("optimal", "feasible")
    sub, tp, chosen = eligible_view(frame, metrics, result)
    assert violations(sub, tp, preset, result.report["budget"]["k"], chosen) == []
    names = {row["name"] for row in result.report["constraints"]}
    assert {"budget", "stratum_quota", "per_video_cap", "dedup", "video_share", "temporal_share",
            "source_floor"} <= names
    share = next(r for r in result.report["constraints"] if r["name"] == "video_share")
    lo, hi = preset.feasibility.video_share
    assert lo - 1e-9 <= share["achieved"] <= hi + 1e-9
    video = (frame["bucket"] == "short_video").to_numpy()[result.indices]
    assert video.mean() == pytest.approx(share["achieved"], abs=1e-6)
    assert result.indices.size == result.report["budget"]["k"]
    # the "drop ρ terms the metrics lack" rule is visible in the report (GDO JSONL has no amm)
    if any(t.descriptor == "amm" for t in preset.score.terms):
        assert "amm" in result.report["score"]["dropped_terms"]
    out = write_outputs(result, frame, metrics, tmp_path / name, console=False)
    rows = [json.loads(x) for x in (out / "gdo_1x.jsonl").read_text().splitlines()]
    assert len(rows) == result.indices.size and all(check_sft_row(r) == [] for r in rows)
    assert sorted(p.name for p in out.iterdir()) == ["gdo_1x.jsonl", "report.html", "report.json", "timings.json",
                                                    "uni_10x.jsonl"]


def test_baseline_respects_dedup_and_caps(pool):
    frame, _, metrics = pool
    preset = load_preset("temp_weighted")
    result = select_subset(frame, metrics, preset, SelectConfig(solver="highs", target_count=120))
    base = result.baseline
    assert base.size == 1200 and np.unique(base).size == base.size
    assert frame["dedup_key"].to_numpy()[base].size == np.unique(frame["dedup_key"].to_numpy()[base]).size
    uids = frame["video_uid"].to_numpy()[base]
    _, counts = np.unique(uids[uids != ""], return_counts=True)
    assert counts.max() <= 8
    other = select_subset(frame, metrics, preset,
                          SelectConfig(solver="highs", target_count=120, seed=7)).baseline
    assert not np.array_equal(base, other)  # seeded: another seed draws another sample


def test_determinism_same_seed_same_bytes(pool, tmp_path):
    frame, _, metrics = pool
    preset = load_preset("temp_plus_weighted")
    for run in ("a", "b"):
        result = select_subset(frame, metrics, preset, SelectConfig(solver="highs", seed=42))
        write_outputs(result, frame, metrics, tmp_path / run, console=False)
    for name in ("gdo_1x.jsonl", "uni_10x.jsonl", "report.json", "report.html"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    # wall-clock numbers live beside the report, never in it
    timings = json.loads((tmp_path / "a" / "timings.json").read_text())
    assert timings["solve_s"] >= 0 and "solve_s" not in (tmp_path / "a" / "report.json").read_text()


def test_missing_descriptor_policies(pool, tmp_path):
    frame, table, metrics = pool
    missing = int(len(frame) - metrics.matched)
    assert missing > 0
    preset = load_preset("minloss_weighted")
    penal = select_subset(frame, metrics, preset, SelectConfig(solver="highs"))
    assert penal.report["score"]["missing_candidates"] == missing
    entry = penal.report["missing_descriptors"]
    assert entry["candidates"] == missing and entry["policy"] == "penalty"
    assert entry["selected"] == int((~np.isin(frame["qa_uid"].to_numpy()[penal.indices],
                                              table["qa_uid"].to_numpy())).sum())
    assert f"{missing:,} of {len(frame):,} candidates lack every descriptor" in entry["text"]
    assert "ρ = -5" in entry["text"]
    text = Path(preset.source.replace("presets/", str(ROOT / "presets") + "/")).read_text()
    custom = tmp_path / "exclude.toml"
    custom.write_text(text.replace('missing = "penalty"', 'missing = "exclude"'))
    excl = select_subset(frame, metrics, load_preset(custom), SelectConfig(solver="highs"))
    assert excl.report["pool"]["excluded_missing_descriptors"] == missing
    assert "excluded from the problem" in excl.report["missing_descriptors"]["text"]
    no_metrics = ~np.isin(frame["qa_uid"].to_numpy(), table["qa_uid"].to_numpy())
    assert not no_metrics[excl.indices].any() and not no_metrics[excl.baseline].any()


def _cli_inputs(pool, tmp_path):
    frame, table, _ = pool
    write_parquet(tmp_path / "candidates.parquet", frame)
    metrics = tmp_path / "merged_metrics.jsonl"
    bench.write_jsonl_fast(table, metrics)
    return tmp_path / "candidates.parquet", metrics


def test_cli_select_gdo_metrics_path(pool, tmp_path, capsys):
    candidates, metrics = _cli_inputs(pool, tmp_path)
    out = tmp_path / "out"
    code = main(["select", "--candidates", str(candidates), "--metrics", str(metrics), "--preset", "diverse_weighted",
                 "--solver", "highs", "--target-count", "150", "--baseline-multiplier", "0", "--no-html",
                 "--out", str(out)])
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["gdo_1x.jsonl", "report.json", "timings.json"]
    report = json.loads((out / "report.json").read_text())
    assert report["metrics"]["source"] == "gdo-jsonl" and report["selected"] == 150
    assert report["budget"]["kind"] == "override"


def test_cli_parquet_beside_jsonl_holds_the_same_rows(pool, tmp_path):
    import pyarrow.parquet as pq

    candidates, metrics = _cli_inputs(pool, tmp_path)
    out = tmp_path / "pq"
    assert main(["select", "--candidates", str(candidates), "--metrics", str(metrics), "--preset", "temp",
                 "--solver", "highs", "--target-count", "120", "--baseline-multiplier", "2", "--no-html",
                 "--parquet", "--out", str(out)]) == 0
    for stem in ("gdo_1x", "uni_2x"):
        rows = [json.loads(x) for x in (out / f"{stem}.jsonl").read_text().splitlines()]
        table = pq.read_table(out / f"{stem}.parquet")
        assert table.num_rows == len(rows) and table.column("qa_uid").to_pylist() == [r["qa_uid"] for r in rows]
        assert table.column("messages").to_pylist() == [r["messages"] for r in rows]
        assert table.column("meta").to_pylist()[0]["rho"] == pytest.approx(rows[0]["meta"]["rho"])
    report = json.loads((out / "report.json").read_text())
    assert report["outputs"]["gdo_1x_parquet"] == "gdo_1x.parquet"


def test_cli_infeasible_preset_exits_nonzero_and_writes_nothing(pool, tmp_path, capsys):
    candidates, metrics = _cli_inputs(pool, tmp_path)
    preset = tmp_path / "impossible.toml"
    preset.write_text('[[score.terms]]\ndescriptor = "vds"\n[budget]\nkind = "fixed"\ncount = 2500\n'
                      '[feasibility]\nvideo_share = [0.9, 1.0]\n')
    out = tmp_path / "never"
    code = main(["select", "--candidates", str(candidates), "--metrics", str(metrics), "--preset", str(preset),
                 "--solver", "highs", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    line = err.strip()
    assert "\n" not in line and "infeasible" in line and "impossible.toml" in line


def test_cli_one_line_errors(tmp_path, capsys):
    assert main(["select", "--candidates", str(tmp_path / "none.parquet"), "--preset", "temp",
                 "--out", str(tmp_path / "o")]) == 2
    assert main(["select", "--preset", "nope", "--out", str(tmp_path / "o")]) == 2
    assert main(["select", "--candidates", str(tmp_path / "none.parquet"), "--out", str(tmp_path / "o")]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 3 and "none.parquet" in errors[0] and "'nope'" in errors[1]
    assert "no goal" in errors[2] and all(g in errors[2] for g in BUILTIN)  # no silent default goal
    with pytest.raises(GdoError, match="expected one of"):
        select_subset(*bench_frame_and_metrics(), load_preset("temp_weighted"), SelectConfig(solver="magic"))


def bench_frame_and_metrics():
    frame = bench.make_candidates(200, seed=2)
    return frame, align_metrics(frame["qa_uid"], bench.make_gdo_metrics(frame), "gdo-jsonl", "m.jsonl")


def test_cli_progress_lines_on_request(pool, tmp_path, capsys):
    candidates, metrics = _cli_inputs(pool, tmp_path)
    args = ["select", "--candidates", str(candidates), "--metrics", str(metrics), "--preset", "diverse",
            "--solver", "auto", "--target-count", "150", "--baseline-multiplier", "0", "--no-html"]
    assert main([*args, "--progress", "--out", str(tmp_path / "a")]) == 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert any("diverse" in line and "done" in line and "gap" in line for line in lines), lines
    assert main([*args, "--no-progress", "--out", str(tmp_path / "b")]) == 0
    assert "done" not in capsys.readouterr().err


def test_report_message_quotes_no_seconds():
    """report.json is the same bytes for the same inputs: the solver's phase times go to timings.json."""
    from gdo_opt.subset.report import timeless_message

    msg = ("auto: core + pricing (nnz 900612 > 250000); pricing: round 0: core 101645, LP -6696640.4, "
           "+10164 columns, 3.17s; greedy 2132.23892 in 0.22s; no time for the LP (0.5 s left); gap 1.28e-15")
    assert timeless_message(msg) == (
        "auto: core + pricing (nnz 900612 > 250000); pricing: round 0: core 101645, LP -6696640.4, "
        "+10164 columns, …; greedy 2132.23892 in …; no time for the LP (… left); gap 1.28e-15")
