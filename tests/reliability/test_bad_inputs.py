"""Every command with the bad inputs of issue 16: one line on stderr, a non-zero exit, no traceback.

The cases are a table (command line -> words the one line must contain); ``{w}`` is the fixture
folder (``conftest.world``), ``{ro}`` a folder this process cannot write. Each case failed on the
code before the reliability pass (traceback, exit 0, or a message that did not say what was wrong).
"""

import json

import pandas as pd
import pytest

from gdo_opt import cli
from gdo_opt.cli import main

from .conftest import read_only_dir

SEL = "--candidates {w}/candidates.parquet --metrics {w}/metrics.jsonl --solver greedy --no-html"
CASES = [
    # ingest
    ("ingest --onevision {w}/ov_good.jsonl --frames-fps 0 --out {w}/o1", "--frames-fps"),
    ("ingest --onevision {w}/ov_good.jsonl --out {w}/a_file", "a_file"),
    ("ingest --onevision {w}/ov_good.jsonl --out {ro}", "gdo-opt"),
    ("ingest --onevision {w}/ov_nonutf8.jsonl --strict --out {w}/o2", "non_utf8"),
    ("ingest --onevision {w}/ov_types.jsonl --strict --out {w}/o3", "bad_field"),
    # select / build / demo
    (f"select {SEL} --seed -1 --out {{w}}/s1", "--seed"),
    (f"select {SEL} --out {{w}}/a_file", "not a folder"),
    (f"select {SEL} --out {{ro}}", "gdo-opt select"),
    (f"select {SEL} --preset {{w}}/latin1.toml --out {{w}}/s1", "not UTF-8"),
    ("select --candidates {w}/candidates.parquet --metrics {w}/metrics_inf.jsonl --non-finite reject "
     "--solver greedy --out {w}/s1", "column vds, row 1"),
    ("select --candidates {w}/candidates.parquet --metrics {w}/metrics_nomatch.jsonl --out {w}/s1",
     "no qa_uid matches"),
    ("select --candidates {w}/candidates_media_str.parquet --metrics {w}/metrics.jsonl --out {w}/s1",
     "column media"),
    (f"build {SEL} --seed -1 --out {{w}}/b1", "--seed"),
    (f"audit --subset {{w}}/ov_good.jsonl {SEL} --seed -1", "--seed"),
    ("audit --subset {w}/ov_good.jsonl --candidates {w}/candidates.parquet --metrics {w}/metrics_inf.jsonl "
     "--non-finite reject", "column vds, row 1"),
    (f"build {SEL} --presets minloss --out {{w}}/a_file", "not a folder"),
    ("demo --seed -1 --out {w}/d1", "--seed"),
    ("demo --out {w}/a_file --metrics-mode proxy", "a_file"),
    # extract / merge
    ("extract --candidates {w}/candidates.parquet --out {w}/x1 --frames 0", "--frames"),
    ("extract --candidates {w}/candidates.parquet --out {w}/x1 --stability-k 0", "--stability-k"),
    ("extract --candidates {w}/candidates.parquet --out {w}/x1 --seed -1", "--seed"),
    ("extract --candidates {w}/candidates.parquet --out {w}/x1 --top-p 0", "--top-p"),
    ("extract --candidates {w}/candidates.parquet --out {w}/x1 --device gpu0", "--device"),
    ("extract --candidates {w}/candidates.parquet --out {w}/a_file --descriptors temporal --temporal-mode regex",
     "a_file"),
    ("merge {w}/shards_gap --out {w}/m1.parquet --candidates {w}/candidates.parquet", "chunks missing"),
    ("merge {w}/shards_other --out {w}/m2.parquet --candidates {w}/candidates.parquet", "another candidate table"),
    ("merge {w}/shards_gap --out {w}/m3.parquet --seed -1", "--seed"),
    # compare / train / eval / small commands
    ("compare {w}/run.csv {w}/base.csv --out {w}/c1", "no task in common"),
    ("compare {w}/run.csv {w}/base_inf.csv --out {w}/c2", "not finite"),
    ("compare {w}/run.csv {w}/run.csv --out {w}/a_file", "a_file"),
    ("train --config {w}/folder --dry-run", "folder"),
    ("train --config {w}/latin1.toml --dry-run", "not UTF-8"),
    ("eval --config {w}/folder --dry-run", "folder"),
    ("make-tiny-model {w}/tm --seed -1", "--seed"),
    ("make-demo-pool {w}/dp --seed -1", "--seed"),
    ("make-demo-pool {w}/a_file --images 2 --videos 3", "a_file"),
]


def _argv(line: str, world) -> list[str]:
    ro = read_only_dir(world)
    argv = [part.format(w=world, ro=ro) for part in line.split()]
    if argv[0] in ("select", "audit") and "--preset" not in argv:  # a goal is required
        argv += ["--preset", "temp_plus"]
    return argv


@pytest.mark.parametrize("line,words", CASES, ids=[c[0].split(" --out")[0][:60] for c in CASES])
def test_bad_input_is_one_clean_line(world, capsys, line, words):
    rc = main(_argv(line, world))
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.strip()]
    assert rc == 2, err
    assert "Traceback" not in err and "internal error" not in err, err
    errors = [x for x in lines if ": error:" in x]
    assert len(errors) == 1 and errors[0] == lines[-1], err  # the error is one line, and the last one
    assert words in errors[0], err


def test_unexpected_exception_is_internal_error_70(monkeypatch, capsys):
    import gdo_opt.commands.make_demo_pool as command

    def boom(args):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(command, "run", boom)
    assert main(["make-demo-pool", "x"]) == 70
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error: RuntimeError: boom second line" in err and "--debug" in err
    with pytest.raises(RuntimeError):
        main(["make-demo-pool", "x", "--debug"])
    monkeypatch.setenv("GDO_DEBUG", "1")
    with pytest.raises(RuntimeError):
        main(["make-demo-pool", "x"])
    assert cli.EXIT_INTERNAL == 70


def test_nonutf8_row_is_skipped_and_counted(world, capsys):
    assert main(["ingest", "--onevision", str(world / "ov_nonutf8.jsonl"), "--out", str(world / "i1"),
                 "--no-progress"]) == 0
    profile = json.loads((world / "i1" / "profile.json").read_text())
    assert profile["ingest"]["skipped"] == {"non_utf8": 1}
    assert profile["ingest"]["skipped_examples"]["non_utf8"][0].endswith("ov_nonutf8.jsonl:3: non_utf8 (byte 120)")
    assert len(pd.read_parquet(world / "i1" / "candidates.parquet")) == 5


def test_bad_field_types_are_row_errors(world):
    assert main(["ingest", "--onevision", str(world / "ov_types.jsonl"), "--out", str(world / "i2"),
                 "--no-progress"]) == 0
    frame = pd.read_parquet(world / "i2" / "candidates.parquet")
    assert sorted(frame["row_id"]) == ["r0", "r2", "r4", "r5"]  # [null, 3] images and a list id skipped
    assert not any("None" in p for m in frame["media"] for p in m)
    profile = json.loads((world / "i2" / "profile.json").read_text())
    assert profile["ingest"]["skipped"] == {"bad_field": 2}
    assert "images[0] is null" in profile["ingest"]["skipped_examples"]["bad_field"][0]


def test_parquet_pool_with_bad_rows_skips_them(world):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [json.loads(x) for x in (world / "ov_good.jsonl").read_text().splitlines()]
    rows[2]["images"] = [None, "b.jpg"]
    pq.write_table(pa.Table.from_pylist(rows), world / "pool_bad.parquet")
    assert main(["ingest", "--pool", str(world / "pool_bad.parquet"), "--out", str(world / "i3"),
                 "--no-progress"]) == 0
    assert len(pd.read_parquet(world / "i3" / "candidates.parquet")) == 5


@pytest.mark.parametrize("policy", ["missing", "reject"])
def test_infinite_metrics_never_take_over(world, capsys, policy):
    """±inf vds on 25% of the pool: treated as missing (said on the console) or rejected."""
    out = world / f"inf_{policy}"
    rc = main(["select", "--candidates", str(world / "candidates.parquet"), "--metrics",
               str(world / "metrics_inf.jsonl"), "--preset", "temp_plus", "--solver", "greedy", "--no-html",
               "--baseline-multiplier", "0", "--non-finite", policy, "--out", str(out)])
    err = capsys.readouterr().err
    if policy == "reject":
        assert rc == 2 and "column vds, row 1: value inf is not finite" in err
        return
    assert rc == 0, err
    assert "column vds: 375 ±inf value(s) treated as missing (first row 1" in err
    report = json.loads((out / "report.json").read_text())
    assert report["metrics"]["schema_notes"] and report["solve"]["status"] in ("optimal", "feasible")
    inf_uids = set(pd.read_json(world / "metrics_inf.jsonl", lines=True).iloc[::4]["qa_uid"])
    chosen = [json.loads(x)["qa_uid"] for x in (out / "gdo_1x.jsonl").read_text().splitlines()]
    assert chosen and len(inf_uids & set(chosen)) / len(chosen) < 0.5  # was 83% of gdo_1x before
    for row in (out / "gdo_1x.jsonl").read_text().splitlines():
        assert "Infinity" not in row


def test_cuda_device_on_a_cpu_machine_is_one_line(world, capsys):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    rc = main(["extract", "--candidates", str(world / "candidates.parquet"), "--out", str(world / "x2"),
               "--descriptors", "dependency", "--model", str(world / "folder"), "--device", "cuda:0"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "--device cuda:0: CUDA is not available" in err, err
