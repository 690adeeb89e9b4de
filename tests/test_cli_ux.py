"""The command line as a new user meets it: help with defaults and an example, quiet by default,
tables that fit 80 columns."""

from __future__ import annotations

import argparse
import importlib
import io
import os
import subprocess
import sys
import warnings

import pytest

from gdo_opt.cli import COMMANDS, HelpFormatter, command_parser, main


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_help_has_an_example_and_its_defaults(name, capsys):
    parser = command_parser(name, importlib.import_module(COMMANDS[name][0]))
    try:  # the safety net may turn argparse's exit into a return code
        code = main([name, "--help"])
    except SystemExit as exit_:
        code = exit_.code
    assert code in (0, None)
    text = capsys.readouterr().out
    assert "example:" in text and f"gdo-opt {name}" in text.split("example:")[1]
    assert "--verbose" in text
    formatter = HelpFormatter(prog="x")
    for action in parser._actions:
        shown = action.default is not None and action.default is not False and action.default != [] \
            and action.help != argparse.SUPPRESS and action.option_strings and action.dest != "help"
        if shown:
            assert "default" in formatter._get_help_string(action), f"{name} {action.option_strings}"


def test_select_without_a_goal_lists_the_goals(tmp_path, capsys):
    assert main(["select", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "no goal" in err
    for goal in ("minloss", "diverse", "temp", "temp_plus"):
        assert goal in err


def test_quiet_libraries_filters_foreign_warnings(monkeypatch):
    from gdo_opt.quiet import quiet_libraries

    for key in ("HF_HUB_DISABLE_PROGRESS_BARS", "TRANSFORMERS_VERBOSITY", "PYTHONWARNINGS"):
        monkeypatch.delenv(key, raising=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_libraries(verbose=True)
        warnings.warn("kept", FutureWarning, stacklevel=1)
        quiet_libraries(verbose=False)
        warnings.warn("dropped", FutureWarning, stacklevel=1)
        warnings.warn("ours", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["kept", "ours"]
    assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"  # worker processes inherit it
    assert "ignore::FutureWarning" in os.environ["PYTHONWARNINGS"]


def test_make_tiny_model_is_quiet_unless_verbose(tmp_path):
    pytest.importorskip("transformers")
    env = {k: v for k, v in os.environ.items()
           if k not in ("HF_HUB_DISABLE_PROGRESS_BARS", "TRANSFORMERS_VERBOSITY", "PYTHONWARNINGS")}
    runs = {}
    for flag in ("", "--verbose"):
        cmd = [sys.executable, "-m", "gdo_opt.cli", "make-tiny-model", str(tmp_path / f"m{flag}")] + ([flag] if flag else [])
        runs[flag] = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
        assert runs[flag].returncode == 0, runs[flag].stderr[-2000:]
    assert "Writing model shards" not in runs[""].stderr and "it/s" not in runs[""].stderr
    assert "Writing model shards" in runs["--verbose"].stderr  # the bar is only hidden, not broken


def test_summary_table_fits_80_columns():
    from rich.console import Console

    from gdo_opt.subset.report import summary_table

    def report(name, gap, missing):
        return {"preset": {"name": name}, "selected": 15000, "solve": {"solver": "auto", "status": "feasible",
                "objective": 12345.678901, "gap": gap},
                "constraints": [{"name": "video_share", "achieved": 0.638462},
                                {"name": "temporal_share", "achieved": 0.740964}],
                "baseline": {"size": 150000}, "score": {"missing_candidates": missing},
                "missing_descriptors": {"text": f"{missing} of 1,050,000 candidates lack every descriptor."}}

    out = io.StringIO()
    console = Console(file=out, width=80, force_terminal=False)
    summary_table([report("temp_plus", 1.8371e-5, 1346), report("minloss", 0.0, 0)], console)
    lines = out.getvalue().splitlines()
    assert max(len(line) for line in lines) <= 80
    row = next(line for line in lines if line.strip().startswith("temp_plus"))
    assert "2e-05" in row and row.rstrip().endswith("1346") and "…" not in row
