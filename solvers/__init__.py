"""Solver backends behind one interface (shipped as ``gdo_opt.solvers``); see ``solvers/base.py``.

    auto    exact MIP when small; otherwise core + LP pricing, MIP on the core (the default)
    highs   exact MIP with HiGHS (highspy)
    cpsat   exact with OR-Tools CP-SAT on exactly (or conservatively) scaled integers; a cross-check
    greedy  score order + repair, an LP bound for its certified gap
    cvxpy   the plain problem through cvxpy (any MILP-capable cvxpy solver; HiGHS by default)

``register_backend`` adds your own; ``backend_names()`` lists them (the CLI's ``--solver`` reads it).
Importing this package is light: backends are imported when first used.
"""

from __future__ import annotations

from gdo_opt.solvers.base import (
    ABS_GAP_TOL,
    DEFAULT_TIME_LIMIT,
    Backend,
    BaseBackend,
    RawResult,
    SolveOptions,
    Status,
    backend_names,
    get_backend,
    register_backend,
    relative_gap,
    unregister_backend,
)

__all__ = [
    "ABS_GAP_TOL", "DEFAULT_TIME_LIMIT", "Backend", "BaseBackend", "RawResult", "SolveOptions", "Status", "backend_names",
    "get_backend", "register_backend", "relative_gap", "unregister_backend",
]
