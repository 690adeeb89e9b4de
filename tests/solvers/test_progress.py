"""Progress events per solver phase, the stderr status line, and the greedy's time bound."""

from __future__ import annotations

import io

from gdo_opt.solvers import Status
from gdo_opt.solvers.progress import StderrProgress

from gdo_opt.testing.instances import make_instance


def test_auto_core_path_reports_every_phase():
    events = []
    problem = make_instance(20_000, seed=11, preset="diverse").problem
    sel = problem.solve("auto", force_core=True, progress=events.append)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "done"
    assert {"greedy", "pricing", "guided greedy"} <= set(kinds)
    pricing = [e for e in events if e["event"] == "pricing"]
    assert all("core" in e and "lp" in e for e in pricing)
    assert events[-1]["status"] == sel.status.value and events[-1]["gap"] == sel.gap


def test_greedy_and_highs_report_their_phases():
    problem = make_instance(3_000, seed=2).problem
    events = []
    problem.solve("greedy", progress=events.append)
    assert {"greedy", "bound", "guided pass", "done"} <= {e["event"] for e in events}
    events.clear()
    problem.solve("highs", progress=events.append)
    assert {"start", "mip", "done"} <= {e["event"] for e in events}


def test_stderr_line_format():
    stream = io.StringIO()
    line = StderrProgress(prefix="temp_plus", stream=stream)
    line({"event": "pricing", "round": 2, "core": 25310, "lp": 12345.678, "added": 812, "seconds": 0.4})
    text = stream.getvalue()
    assert text.count("\n") == 1 and "temp_plus · pricing · round 2 · core 25,310" in text
    assert "LP bound 12345.7" in text and "+columns 812" in text and "seconds" not in text


def test_greedy_stops_at_its_deadline():
    problem = make_instance(20_000, seed=4).problem
    sel = problem.solve("greedy", time_limit=1e-9)
    assert sel.status == Status.TIME_LIMIT and "time limit" in sel.message
    assert sel.indices.size == 0 or problem.check(sel.indices) == []
