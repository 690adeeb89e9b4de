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
    assert {"core", "pricing", "guided greedy"} <= set(kinds)
    assert kinds.index("core") < kinds.index("pricing")  # the core's size shows before the first LP
    pricing = [e for e in events if e["event"] == "pricing"]
    # every round: core size, core LP, the pool bound so far, columns added, elapsed time
    assert all({"round", "core", "lp", "bound", "added", "elapsed"} <= set(e) for e in pricing)
    assert [e["round"] for e in pricing] == list(range(len(pricing)))
    bounds = [e["bound"] for e in pricing]
    assert all(b >= sel.objective - 1e-6 for b in bounds)  # every reported bound is valid
    assert bounds == sorted(bounds, reverse=True)  # the best bound so far never rises
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
    line({"event": "pricing", "round": 2, "core": 25310, "lp": 12345.678, "bound": 12400.5, "added": 812,
          "seconds": 0.4})
    text = stream.getvalue()
    assert text.count("\n") == 1 and "temp_plus · pricing · round 2 · core 25,310" in text
    assert "core LP 12345.7 · pool bound 12400.5" in text and "+columns 812" in text and "seconds" not in text


def test_greedy_stops_at_its_deadline():
    problem = make_instance(20_000, seed=4).problem
    sel = problem.solve("greedy", time_limit=1e-9)
    assert sel.status == Status.TIME_LIMIT and "time limit" in sel.message
    assert sel.indices.size == 0 or problem.check(sel.indices) == []
