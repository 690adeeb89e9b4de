"""`gdo-opt audit`: any subset file against a goal — Σρ, violations, the certified optimum and gap."""

import itertools
import json

import numpy as np
import pytest

from gdo_opt.atomic import write_parquet
from gdo_opt.cli import main
from gdo_opt.errors import GdoError
from gdo_opt.goal.metrics import align_metrics
from gdo_opt.goal.preset import load_preset
from gdo_opt.subset.audit import audit_file, audit_subset, match_rows, read_subset
from gdo_opt.subset.pipeline import SelectConfig, build_goal_problem, select_subset, write_outputs
from gdo_opt.testing import pools as bench


@pytest.fixture(scope="module")
def pool():
    frame = bench.make_candidates(2000, seed=5)
    table = bench.make_gdo_metrics(frame, seed=5, missing=0.02)
    return frame, table, align_metrics(frame["qa_uid"], table, "gdo-jsonl", "metrics.jsonl")


@pytest.fixture(scope="module")
def selected(pool, tmp_path_factory):
    frame, _, metrics = pool
    result = select_subset(frame, metrics, load_preset("temp_weighted"), SelectConfig(solver="highs", target_count=200,
                                                                              baseline_multiplier=0, html=False))
    out = write_outputs(result, frame, metrics, tmp_path_factory.mktemp("sel"), console=False)
    return result, out / "gdo_1x.jsonl"


def test_our_export_audits_clean_at_the_optimum(pool, selected):
    frame, _, metrics = pool
    result, path = selected
    report = audit_file(path, frame, metrics, load_preset("temp_weighted"), SelectConfig(solver="highs", target_count=200))
    assert report["format"] == "jsonl" and report["k"] == 200 == report["goal_k"]
    assert report["violations"] == [] and report["feasible"]
    assert report["objective"] == pytest.approx(result.report["solve"]["objective"], rel=1e-9)
    assert report["optimum"] == pytest.approx(report["objective"], rel=1e-3)
    assert report["gap"] <= 1e-3 and report["bound"] >= report["objective"] - 1e-6


def test_hand_made_violating_subset(pool):
    """The K best-ρ image rows: Σρ beyond the optimum's reach of K-subsets with 35-50% video, so the
    audit must name the video share (and more) as violated."""
    frame, _, metrics = pool
    preset, config = load_preset("temp_weighted"), SelectConfig(solver="highs", target_count=200)
    goal = build_goal_problem(frame, metrics, preset, config)
    image = np.flatnonzero((frame["bucket"] == "image_qa").to_numpy())
    rows = np.sort(image[np.argsort(-goal.rho[image], kind="stable")[:200]])
    report = audit_subset(frame, metrics, preset, config, rows)
    names = {v["name"] for v in report["violations"]}
    assert not report["feasible"] and "video_share" in names
    share = next(v for v in report["violations"] if v["name"] == "video_share")
    assert share["value"] == 0 and share["shortfall"] > 0
    assert report["objective"] == pytest.approx(goal.rho[rows].sum())
    assert report["gap"] is not None and report["optimum"] is not None


def test_known_optimum_by_enumeration(tmp_path):
    """A pool small enough to enumerate every K-subset: the audit's optimum is the true maximum."""
    frame = bench.make_candidates(16, seed=11)
    metrics = align_metrics(frame["qa_uid"], bench.make_gdo_metrics(frame, seed=11, missing=0.0), "gdo-jsonl", "m")
    preset = tmp_path / "small.toml"
    preset.write_text('name = "small"\n[[score.terms]]\ndescriptor = "vds"\n[budget]\nkind = "fixed"\ncount = 4\n'
                      '[feasibility]\nvideo_share = [0.25, 0.75]\nper_video_cap = 1\n')
    preset = load_preset(preset)
    config = SelectConfig(solver="highs", mip_gap=0.0)
    goal = build_goal_problem(frame, metrics, preset, config)
    assert goal.k == 4
    best = max((goal.problem.objective(c) for c in itertools.combinations(range(goal.problem.n), 4)
                if not goal.problem.check(c)), default=None)
    assert best is not None
    first_feasible = next(c for c in itertools.combinations(range(goal.problem.n), 4) if not goal.problem.check(c))
    report = audit_subset(frame, metrics, preset, config, goal.eligible[list(first_feasible)])
    assert report["optimum"] == pytest.approx(best, abs=1e-9)
    assert report["feasible"] and report["objective"] <= best + 1e-9
    assert report["gap"] == pytest.approx((best - report["objective"]) / max(1.0, abs(best)), abs=1e-7)


def test_formats_agree(pool, selected, tmp_path):
    frame, _, _ = pool
    _, path = selected
    uids, fmt = read_subset(path)
    assert fmt == "jsonl" and uids.size == 200
    (tmp_path / "list.txt").write_text("\n".join(uids[::-1]) + "\n")
    (tmp_path / "list.json").write_text(json.dumps(list(uids)))
    write_parquet(tmp_path / "sub.parquet", frame.iloc[match_rows(uids, frame["qa_uid"])[0]][["qa_uid"]])
    # the published builder's gdo_1x rows: qa_uid + messages, images, data_quality_metrics, meta
    published = [{"qa_uid": u, "video_uid": "", "question_type": "Open", "question": "q", "answer": "a",
                  "messages": [{"role": "user", "content": "<image>\nq"}, {"role": "assistant", "content": "a"}],
                  "images": ["x.jpg"], "data_quality_metrics": {"n_frames": 1, "temporal_category": "Static"},
                  "meta": {"bucket": "image_qa", "filter_score": 0.5, "filter_score_detail": {"base_score": 1.0}}}
                 for u in uids]
    (tmp_path / "gdo_1x_32f.jsonl").write_text("".join(json.dumps(r) + "\n" for r in published))
    expected = np.sort(match_rows(uids, frame["qa_uid"])[0])
    for name, kind in (("list.txt", "uid-list"), ("list.json", "json-list"), ("sub.parquet", "parquet"),
                       ("gdo_1x_32f.jsonl", "jsonl")):
        got, got_kind = read_subset(tmp_path / name)
        assert got_kind == kind
        assert np.array_equal(np.sort(match_rows(got, frame["qa_uid"])[0]), expected)


def test_unknown_and_repeated_rows(pool):
    frame = pool[0]
    uids = np.array(list(frame["qa_uid"][:5]) + ["ov::nope::t0", "vv::gone::t3", frame["qa_uid"][0]], dtype=object)
    with pytest.raises(GdoError, match=r"2 of 8 rows match no pool candidate"):
        match_rows(uids, frame["qa_uid"])
    rows, repeated = match_rows(uids[[0, 1, 7]], frame["qa_uid"])
    assert rows.tolist() == [0, 1] and repeated == 1


def _cli_inputs(pool, tmp_path):
    frame, table, _ = pool
    write_parquet(tmp_path / "candidates.parquet", frame)
    bench.write_jsonl_fast(table, tmp_path / "metrics.jsonl")
    return ["--candidates", str(tmp_path / "candidates.parquet"), "--metrics", str(tmp_path / "metrics.jsonl"),
            "--preset", "temp_weighted", "--solver", "highs", "--target-count", "200"]


def test_cli_json_and_errors(pool, selected, tmp_path, capsys):
    _, path = selected
    args = _cli_inputs(pool, tmp_path)
    assert main(["audit", "--subset", str(path), *args, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {"k", "objective", "bound", "gap", "violations"} <= set(report)
    assert report["k"] == 200 and report["violations"] == []
    assert main(["audit", "--subset", str(path), *args, "--json", "--no-solve"]) == 0
    quick = json.loads(capsys.readouterr().out)
    assert quick["bound"] is None and quick["gap"] is None and quick["objective"] == report["objective"]
    bad = tmp_path / "bad.txt"
    bad.write_text("ov::nope::t0\n" + "\n".join(json.loads(x)["qa_uid"] for x in path.read_text().splitlines()[:3]))
    assert main(["audit", "--subset", str(bad), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "1 of 4 rows match no pool candidate" in err
    assert main(["audit", "--subset", str(tmp_path / "missing.jsonl"), *args]) == 2
    assert "subset file not found" in capsys.readouterr().err


def test_cli_summary_names_violations(pool, tmp_path, capsys):
    frame = pool[0]
    image = frame["qa_uid"][(frame["bucket"] == "image_qa").to_numpy()].to_numpy()[:200]
    (tmp_path / "images.txt").write_text("\n".join(image))
    assert main(["audit", "--subset", str(tmp_path / "images.txt"), *_cli_inputs(pool, tmp_path), "--no-solve"]) == 0
    out = capsys.readouterr().out
    assert "violation" in out and "video_share" in out


def test_llava_pool_reads_and_audits(tmp_path):
    """The generated published-format pool: our ingest keys every pair like the metrics file does."""
    from gdo_opt.testing.llava_pool import METRIC_KEYS, generate

    stats = generate(3000, tmp_path, seed=3)
    from gdo_opt.goal.metrics import load_metrics
    from gdo_opt.ingest.pool import ingest

    frame = ingest(onevision=[str(tmp_path / "onevision.jsonl")], video=[str(tmp_path / "video.jsonl")],
                   progress=False).to_pandas()
    assert len(frame) == stats["pairs"] == 3000
    assert (frame["bucket"] == "short_video").sum() == stats["video_pairs"]
    metrics = load_metrics(tmp_path / "metrics.jsonl", frame["qa_uid"])
    assert metrics.matched == stats["metrics_rows"] and metrics.unmatched_metrics == 0
    first = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])
    assert set(METRIC_KEYS) <= set(first) and {"cluster_id", "cluster_dist"} <= set(first["data_quality_metrics"])
    video = json.loads((tmp_path / "video.jsonl").read_text().splitlines()[0])
    assert {"id", "video_id", "data_source", "images", "messages"} <= set(video)
    assert video["messages"][0]["content"].count("<image>") == len(video["images"])
    rows = frame["qa_uid"].to_numpy()[:50]
    (tmp_path / "some.txt").write_text("\n".join(rows))
    report = audit_file(tmp_path / "some.txt", frame, metrics, load_preset("minloss"),
                        SelectConfig(solver="highs", target_count=50), solve=False)
    assert report["k"] == 50 and report["bound"] is None
