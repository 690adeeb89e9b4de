"""`select` on JSONL keeps no text or media in memory (lean ingest) and re-reads the exported rows:
the outputs must be byte-identical to a select on the full candidate table."""

import numpy as np
import pytest

from gdo_opt.errors import GdoError
from gdo_opt.goal.metrics import load_metrics
from gdo_opt.goal.preset import load_preset
from gdo_opt.ingest.pool import ingest
from gdo_opt.ingest.reload import reload_rows
from gdo_opt.ingest.stream import LEAN_DROPPED
from gdo_opt.schema import text_column
from gdo_opt.subset.pipeline import SelectConfig, select_subset, write_outputs
from gdo_opt.testing.llava_pool import generate


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    out = tmp_path_factory.mktemp("llava")
    generate(4000, out, 3, 0.45)
    return out


def _run(pool, out, lean, goal):
    result = ingest(onevision=[str(pool / "onevision.jsonl")], video=[str(pool / "video.jsonl")], progress=False,
                    lean=lean)
    frame = result.to_pandas(arrow_backed=lean)
    assert all((c in frame.columns) != bool(lean) for c in LEAN_DROPPED)
    assert ("stratum" in frame.columns) == (lean != "paper")
    metrics = load_metrics(pool / "metrics.jsonl", frame["qa_uid"])
    chosen = select_subset(frame, metrics, load_preset(goal), SelectConfig(html=False, baseline_multiplier=3))
    write_outputs(chosen, frame, metrics, out, console=False)
    return frame


@pytest.mark.parametrize("goal,lean,parallel", [("temp_plus", True, False), ("temp_plus", "paper", True),
                                                ("minloss_weighted", True, True)])
def test_lean_select_writes_the_same_bytes(pool, tmp_path, monkeypatch, goal, lean, parallel):
    from gdo_opt.subset import export_lean

    if parallel:  # the exported rows are rebuilt in 2 forked workers even for this small pool
        monkeypatch.setattr(export_lean, "PARALLEL_FROM", 0)
    _run(pool, tmp_path / "full", False, goal)
    _run(pool, tmp_path / "lean", lean, goal)
    names = sorted(p.name for p in (tmp_path / "full").iterdir())
    assert "gdo_1x.jsonl" in names and any(n.startswith("uni_") for n in names)
    assert names == sorted(p.name for p in (tmp_path / "lean").iterdir())
    for name in names:
        if name == "timings.json":  # wall-clock seconds, the one output that may differ
            continue
        assert (tmp_path / "full" / name).read_bytes() == (tmp_path / "lean" / name).read_bytes(), name


def test_reload_returns_the_rows_asked_for_and_notices_a_changed_file(pool, tmp_path):
    full = ingest(onevision=[str(pool / "onevision.jsonl")], progress=False).table
    lean = ingest(onevision=[str(pool / "onevision.jsonl")], progress=False, lean=True)
    rows = np.array([5, 0, 17, 3, len(full) - 1])
    got = reload_rows(text_column(lean.table.column("file")).take(rows).to_numpy(zero_copy_only=False),
                      lean.table.column("line").to_numpy()[rows], text_column(lean.table.column("qa_uid")).take(rows),
                      lean.lean)
    assert got.column("qa_uid").to_pylist() == full.column("qa_uid").take(rows).to_pylist()
    assert got.column("media").to_pylist() == full.column("media").take(rows).to_pylist()
    changed = tmp_path / "ov.jsonl"
    changed.write_text("\n".join((pool / "onevision.jsonl").read_text().splitlines()[1:]) + "\n")
    lean_changed = type(lean.lean)(lean.lean.options, {str(changed): "onevision"})
    with pytest.raises(GdoError, match="changed"):
        reload_rows(np.array([str(changed)] * rows.size, dtype=object), lean.table.column("line").to_numpy()[rows],
                    text_column(lean.table.column("qa_uid")).take(rows), lean_changed)
