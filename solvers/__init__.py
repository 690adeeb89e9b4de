"""Solver backends behind one interface (shipped as ``gdo_opt.solvers``).

A backend is a function ``solve(problem, options) -> Selection`` in its own module. It reads the
problem's standard form (or its families), never mutates the problem, and reports a valid upper
``bound`` whenever it has one. ``SelectionProblem.solve`` times the call and re-checks the answer.

    highs   exact MIP with HiGHS (highspy): the default exact solver
    cpsat   exact with OR-Tools CP-SAT on an integer-scaled objective; an independent cross-check
    cvxpy   the plain problem through cvxpy (any MILP-capable cvxpy solver; HiGHS by default)
    greedy  score order with upper-bound checks + swap repair for floors; LP bound for its gap
    auto    exact when small; otherwise core + LP pricing, exact MIP on the core, greedy fallback
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

BACKENDS: dict[str, str] = {
    "highs": "gdo_opt.solvers.highs",
    "cpsat": "gdo_opt.solvers.cpsat",
    "cvxpy": "gdo_opt.solvers.cvxpy_backend",
    "greedy": "gdo_opt.solvers.greedy",
    "auto": "gdo_opt.solvers.auto",
}


@dataclass
class SolveOptions:
    """Options every backend understands; backend-specific ones travel in ``extra``."""

    time_limit: float | None = None
    mip_gap: float = 1e-4
    seed: int = 0
    threads: int | None = None
    verbose: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def get_solver(name: str) -> Callable:
    """The ``solve(problem, options)`` function of a backend, by name."""
    if name not in BACKENDS:
        raise ValueError(f"unknown solver {name!r}; choose one of {', '.join(BACKENDS)}")
    return importlib.import_module(BACKENDS[name]).solve


__all__ = ["BACKENDS", "SolveOptions", "get_solver"]
