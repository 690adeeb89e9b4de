"""The solver interface: a ``Backend`` protocol, typed options, one status enum and one registry.

A backend receives the (frozen) ``SelectionProblem`` and its parsed options and returns a
``RawResult``: a status, the chosen indices (or None) and, when it has one, a valid upper ``bound``.
Everything after that — the independent check, the objective, the gap, the final status and the
infeasibility explanation — happens once in ``gdo_opt.selection.solve``, never in a backend.
This split follows cvxpy (problem / reductions / solver interfaces) and apricot's optimizer
registry: the CLI, ``build``, the demo and the docs all read ``backend_names()``.

This module imports nothing heavy: ``backend_names()`` serves ``--help``.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, ClassVar, Protocol, runtime_checkable

from gdo_opt.errors import SolverOptionError

# The CLI's default time limit per solve (seconds; ``--time-limit`` changes it). The library itself
# has none: ``SelectionProblem.solve(time_limit=None)`` runs to the requested gap.
DEFAULT_TIME_LIMIT = 600.0

# Absolute gap under which an answer counts as optimal whatever the relative gap (HiGHS's default
# mip_abs_gap): it absorbs CP-SAT's objective rounding (≤ K / 2S) and float noise at mip_gap = 0.
ABS_GAP_TOL = 1e-6


class Status(str, Enum):
    """What a solve ended with; the same meaning for every backend.

    optimal     a subset within the requested ``mip_gap`` of a certified bound
    feasible    a checked subset whose certified gap is above ``mip_gap`` (or has no bound)
    infeasible  no subset satisfies every constraint (the message explains why)
    time_limit  stopped at the time limit: the best checked subset so far (may be none), its gap
    error       the backend failed; the message says how
    """

    OPTIMAL = "optimal"
    FEASIBLE = "feasible"
    INFEASIBLE = "infeasible"
    TIME_LIMIT = "time_limit"
    ERROR = "error"

    def __str__(self) -> str:
        return self.value

    @property
    def has_selection(self) -> bool:
        """optimal and feasible always carry a checked subset; time_limit may."""
        return self in (Status.OPTIMAL, Status.FEASIBLE)


def relative_gap(objective: float, bound: float) -> float:
    """(bound − objective) / max(1, |bound|), the convention HiGHS uses; inf without a bound."""
    if not (math.isfinite(objective) and math.isfinite(bound)):
        return math.inf
    return max(0.0, bound - objective) / max(1.0, abs(bound))


# --------------------------------------------------------------------------- options


@dataclass
class SolveOptions:
    """Options every backend understands. Backends subclass it with their own typed fields.

    ``deadline`` is set by ``gdo_opt.selection.solve`` (one stopwatch per solve); every internal
    call a backend makes gets ``remaining()`` seconds, so the phases share one time limit.
    """

    time_limit: float | None = None
    mip_gap: float = 1e-4
    seed: int = 0
    threads: int | None = None
    verbose: bool = False
    progress: Callable | None = None  # called with one dict per phase event (``solvers/progress.py``)
    deadline: float | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.time_limit is not None:
            value = _number(self.time_limit, "time_limit")
            if not (math.isfinite(value) and value > 0):
                raise SolverOptionError("time_limit", "must be a positive number of seconds (or None for "
                                        "no limit)", self.time_limit)
            self.time_limit = value
        gap = _number(self.mip_gap, "mip_gap")
        if not (0.0 <= gap < 1.0):
            raise SolverOptionError("mip_gap", "must be in [0, 1)", self.mip_gap)
        self.mip_gap = gap
        if isinstance(self.seed, bool) or not _is_int(self.seed) or int(self.seed) < 0:
            raise SolverOptionError("seed", "must be a non-negative integer", self.seed)
        self.seed = int(self.seed)
        if self.threads is not None and (isinstance(self.threads, bool) or not _is_int(self.threads)
                                         or int(self.threads) < 1):
            raise SolverOptionError("threads", "must be a positive integer or None", self.threads)
        if not isinstance(self.verbose, bool):
            raise SolverOptionError("verbose", "must be True or False", self.verbose)
        if self.progress is not None and not callable(self.progress):
            raise SolverOptionError("progress", "must be a callable taking one dict, or None", self.progress)

    def start_clock(self) -> None:
        self.deadline = None if self.time_limit is None else time.perf_counter() + self.time_limit

    def remaining(self, floor: float = 0.0) -> float | None:
        """Seconds left of the time limit (None without one), at least ``floor``."""
        if self.deadline is None:
            return None
        return max(floor, self.deadline - time.perf_counter())

    def report(self, event: str, **fields) -> None:
        """Tell ``progress`` (if any) what a phase did: ``report("pricing", round=2, core=25310)``."""
        if self.progress is not None:
            self.progress({"event": event, **fields})

    def expired(self) -> bool:
        return self.deadline is not None and time.perf_counter() >= self.deadline


def _number(value, name: str) -> float:
    if isinstance(value, bool):
        raise SolverOptionError(name, "must be a number", value)
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise SolverOptionError(name, "must be a number", value) from None
    if math.isnan(out):
        raise SolverOptionError(name, "must be a number, not NaN", value)
    return out


def _is_int(value) -> bool:
    try:
        return float(value) == int(value)
    except (TypeError, ValueError, OverflowError):
        return False


def check_option_types(options: SolveOptions, backend: str) -> None:
    """Backend-specific fields must have the type of their default (bool stays bool, numbers
    stay finite numbers); None defaults accept anything (the backend checks them)."""
    defaults = {f.name: f for f in dataclasses.fields(SolveOptions)}
    for f in dataclasses.fields(options):
        if f.name in defaults or not f.init:
            continue
        default = f.default if f.default is not dataclasses.MISSING else None
        value = getattr(options, f.name)
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise SolverOptionError(f.name, f"must be True or False (option of solver {backend!r})", value)
        elif isinstance(default, (int, float)) and not isinstance(default, bool):
            number = _number(value, f.name)
            if not math.isfinite(number):
                raise SolverOptionError(f.name, f"must be finite (option of solver {backend!r})", value)
        elif isinstance(default, str) and not isinstance(value, str):
            raise SolverOptionError(f.name, f"must be a string (option of solver {backend!r})", value)


# --------------------------------------------------------------------------- results and backends


@dataclass
class RawResult:
    """A backend's answer before post-processing. ``indices`` None = no subset found.

    ``bound`` must be a valid upper bound on the optimum (NaN when the backend has none); the
    post-processing withholds a bound that is below the returned subset's value.
    """

    status: Status | str
    indices: Any = None
    bound: float = math.nan
    message: str = ""
    info: dict = field(default_factory=dict)


@runtime_checkable
class Backend(Protocol):
    """What ``SelectionProblem.solve(solver=...)`` accepts besides a registered name."""

    name: str

    def available(self) -> bool: ...

    def options(self, **kwargs) -> SolveOptions: ...

    def solve(self, problem, options: SolveOptions) -> RawResult: ...


class BaseBackend:
    """Convenience base: set ``name`` and ``Options`` (a ``SolveOptions`` subclass), write ``solve``.

    ``options(**kwargs)`` builds the typed options and rejects unknown keys, naming the key and
    the closest known one; ``available()`` imports ``requires`` (module names) if given.
    """

    name: ClassVar[str] = ""
    Options: ClassVar[type[SolveOptions]] = SolveOptions
    requires: ClassVar[tuple[str, ...]] = ()

    def available(self) -> bool:
        try:
            for module in self.requires:
                importlib.import_module(module)
        except ImportError:
            return False
        return True

    def options(self, **kwargs) -> SolveOptions:
        known = [f.name for f in dataclasses.fields(self.Options) if f.init]
        for key in kwargs:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise SolverOptionError(
                    key, f"unknown option of solver {self.name!r}{hint}; known options: {', '.join(known)}"
                )
        options = self.Options(**kwargs)
        check_option_types(options, self.name)
        return options

    def solve(self, problem, options: SolveOptions) -> RawResult:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


# --------------------------------------------------------------------------- the registry

# name -> a backend instance, or "module:Class" for the built-ins (imported on first use, so that
# listing names for --help stays light)
_REGISTRY: dict[str, Backend | str] = {
    "auto": "gdo_opt.solvers.auto:AutoBackend",
    "highs": "gdo_opt.solvers.highs:HighsBackend",
    "cpsat": "gdo_opt.solvers.cpsat:CpsatBackend",
    "greedy": "gdo_opt.solvers.greedy:GreedyBackend",
    "cvxpy": "gdo_opt.solvers.cvxpy_backend:CvxpyBackend",
}


def register_backend(backend: Backend | type | Callable, name: str | None = None, replace: bool = False) -> Backend:
    """Make a backend selectable by name (``problem.solve(solver=name)``, ``--solver`` lists it).

    ``backend`` is an instance or a class (instantiated without arguments). Registering an
    existing name raises unless ``replace=True``.
    """
    if isinstance(backend, type):
        backend = backend()
    if not isinstance(backend, Backend):
        raise SolverOptionError("backend", "needs name, available(), options(**kwargs) and solve(problem, options)")
    key = name or backend.name
    if not isinstance(key, str) or not key:
        raise SolverOptionError("name", "a backend needs a non-empty name", key)
    if key in _REGISTRY and not replace:
        raise SolverOptionError("name", "is already registered (pass replace=True)", key)
    _REGISTRY[key] = backend
    return backend


def unregister_backend(name: str) -> None:
    _REGISTRY.pop(name, None)


def backend_names() -> list[str]:
    """Every registered name, built-ins first (``auto`` is the default)."""
    return list(_REGISTRY)


def get_backend(solver: str | Backend) -> Backend:
    """A backend by name (imported on first use), or the given instance after a protocol check."""
    if not isinstance(solver, str):
        if isinstance(solver, type):
            solver = solver()
        if not isinstance(solver, Backend):
            raise SolverOptionError(
                "solver", "is neither a registered name nor a backend (name, available(), "
                "options(**kwargs), solve(problem, options))", solver)
        return solver
    if solver not in _REGISTRY:
        close = difflib.get_close_matches(solver, list(_REGISTRY), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise SolverOptionError("solver", f"unknown solver{hint}; choose one of {', '.join(_REGISTRY)}", solver)
    entry = _REGISTRY[solver]
    if isinstance(entry, str):
        module, cls = entry.split(":")
        entry = getattr(importlib.import_module(module), cls)()
        _REGISTRY[solver] = entry
    return entry


__all__ = [
    "ABS_GAP_TOL", "DEFAULT_TIME_LIMIT", "Backend", "BaseBackend", "RawResult", "SolveOptions", "Status", "backend_names",
    "get_backend", "register_backend", "relative_gap", "unregister_backend",
]
