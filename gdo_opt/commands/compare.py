"""`gdo-opt compare RUN BASELINE`: final deltas, peak match and reduction of two runs, plus a PNG."""

from __future__ import annotations

import argparse

HELP = "final deltas, peak match and reduction of two runs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="the run's tidy table (results.parquet/.csv) or its `gdo-opt eval` folder (GDO 1x)")
    parser.add_argument("baseline", help="the baseline's table or folder (e.g. Uni-10x)")
    parser.add_argument("--out", required=True, help="folder for comparison.json, final_deltas.csv, curves.png")


def _fmt(value, spec: str = ",.0f") -> str:
    return "not reached" if value is None else format(value, spec)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from gdo_opt.compare.convergence import compare_runs

    console = Console(stderr=True)
    summary = compare_runs(args.run, args.baseline, args.out)
    table = Table(title=f"{summary['run']} vs {summary['baseline']}")
    for column in ("task", "subtask", "final run", "final base", "delta", "reference", "peak match", "reduction"):
        table.add_column(column)
    peaks = {(m["task"], m["subtask"]): m for m in summary["peak_match"]}
    for row in summary["final"]:
        m = peaks.get((row["task"], row["subtask"]), {})
        table.add_row(row["task"], row["subtask"] or "-", _fmt(row["run_accuracy"], ".4g"),
                      _fmt(row["baseline_accuracy"], ".4g"), _fmt(row["delta"], "+.4g"),
                      _fmt(m.get("reference"), ".4g"), _fmt(m.get("peak_match")),
                      "-" if m.get("reduction") is None else f"{m['reduction']:.1f}x")
    console.print(table)
    console.print(f"wrote {args.out}/comparison.json, final_deltas.csv, curves.png")
    return 0
