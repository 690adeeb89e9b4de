"""The GDO build: pool + metrics → ρ → budget → C_g → solve → ms-swift export, baseline and report.

``select_subset`` does the computing and returns everything in memory; ``write_outputs`` writes a
result only after the solve succeeded, into a staging folder beside the output that is swapped in
as one set (``gdo_opt.publish``), so an infeasible preset, a crash or a kill leaves the old set or
the new one, never a mix.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from gdo_opt.atomic import write_json
from gdo_opt.errors import GdoError, ParameterError
from gdo_opt.goal.budget import choose_budget
from gdo_opt.goal.constraints import add_constraints, max_reachable, pool_view, share_caps
from gdo_opt.goal.metrics import Metrics
from gdo_opt.goal.preset import Preset
from gdo_opt.goal.score import compute_score
from gdo_opt.subset.baseline import uniform_baseline
from gdo_opt.subset.export import FRAMES_AS, write_sft_sets
from gdo_opt.subset.missing import missing_summary
from gdo_opt.subset.report import (
    clean_constraint_rows,
    descriptor_summaries,
    field_distributions,
    output_names,
    print_summary,
    timeless_message,
)


@dataclass
class SelectConfig:
    """How one goal is built; every value is checked here, so the library and the CLI agree."""

    target_count: int | None = None
    solver: str = "auto"
    time_limit: float | None = None
    mip_gap: float = 1e-4
    seed: int = 42
    baseline_multiplier: float = 10  # Uni-Mx: M x K rows (the published builder: ceil(M K))
    frames_as: str = "images"  # the published export: <image> x n, frames in `images`
    ablate: tuple[str, ...] = ()
    html: bool = True
    progress: bool = False  # a status line per solver phase on stderr (the CLI turns it on)
    parquet: bool = False  # also write every exported JSONL as Parquet (same rows and fields)
    # paper goals (presets with a [published] table); None = the preset's value
    on_infeasible: str = "relax"
    quota_mode: str | None = None
    quota_penalty: float | None = None
    oversample_caps: bool | None = None
    target_ratio: float | None = None
    target_frames: int | None = None
    disable_score_vds: bool = False
    disable_score_ppl: bool = False
    disable_score_sc: bool = False
    disable_vds3_budget: bool = False

    def __post_init__(self) -> None:
        from gdo_opt.solvers import backend_names

        if self.target_count is not None and self.target_count < 1:
            raise ParameterError("target_count", "must be >= 1", self.target_count)
        if isinstance(self.solver, str) and self.solver not in backend_names():
            raise ParameterError("solver", f"expected one of {', '.join(backend_names())}", self.solver)
        if self.time_limit is not None and not self.time_limit > 0:
            raise ParameterError("time_limit", "must be > 0", self.time_limit)
        if not 0 <= self.mip_gap < 1:
            raise ParameterError("mip_gap", "must be in [0, 1)", self.mip_gap)
        if self.baseline_multiplier < 0:
            raise ParameterError("baseline_multiplier", "must be >= 0", self.baseline_multiplier)
        if self.frames_as not in FRAMES_AS:
            raise ParameterError("frames_as", f"expected one of {', '.join(FRAMES_AS)}", self.frames_as)


@dataclass
class SelectResult:
    preset: Preset
    config: SelectConfig
    indices: np.ndarray  # rows of the candidate table chosen (sorted)
    baseline: np.ndarray | None  # Uni-kx rows (sorted), None when skipped
    rho: np.ndarray  # ρ per candidate (penalty applied; excluded ones keep their value for plots)
    eligible: np.ndarray  # rows that entered the problem
    report: dict
    timing: dict = field(default_factory=dict)
    stratum: np.ndarray | None = None  # per candidate: the stratum label exported in meta (paper goals: the
    # builder's 7-field label; None: the candidate table's `stratum` column)


def _r(x) -> float | None:
    x = float(x)
    return float(f"{x:.10g}") if np.isfinite(x) else None


@dataclass
class GoalProblem:
    """A goal made concrete on a pool: ρ, K and C_g as one SelectionProblem over the eligible rows.

    ``select`` solves it and ``audit`` checks any subset against it, so both see the same goal.
    """

    problem: object  # SelectionProblem over ``eligible`` (local indices)
    eligible: np.ndarray  # rows of the candidate table that entered the problem
    score: object  # the Score (ρ over all candidates, missing mask, summary)
    view: object  # PoolView of the eligible rows
    k: int
    budget_info: dict
    derived: object  # constraint derivation notes
    pool: pd.DataFrame | None  # the eligible rows of the candidate table (the table itself when all are);
    # None for paper goals (their rows are frame.iloc[eligible]: not copied, nothing reads them)
    elastic: object = None  # paper goals: the ElasticProblem (unit slack columns after the real ones)
    paper: dict | None = None  # paper goals: published pool view, derived set, parameters

    @property
    def rho(self) -> np.ndarray:
        return self.score.rho

    def embed(self, local: np.ndarray) -> np.ndarray:
        """Problem columns of a subset given by local row indices: the rows themselves, plus (paper
        goals) the fewest slack columns that make every soft quota hold, so check() reports only
        hard rows and objective() charges the quota penalty."""
        local = np.asarray(local, dtype=np.int64)
        return local if self.elastic is None else self.elastic.fill_slack(local)


def build_goal_problem(frame: pd.DataFrame, metrics: Metrics, preset: Preset, config: SelectConfig) -> GoalProblem:
    """ρ → eligible rows → budget K (``config.target_count`` overrides the rule) → constraints."""
    from gdo_opt.selection.problem import SelectionProblem

    if preset.is_paper:
        from gdo_opt.subset.paper import build_paper_goal

        return build_paper_goal(frame, metrics, preset, config, GoalProblem)
    n = len(frame)
    if n == 0:
        raise GdoError("candidates: the table is empty")
    score = compute_score(metrics, preset.score, n, ablate=config.ablate)
    if preset.score.missing == "exclude":
        eligible = np.flatnonzero(~score.missing)
        if eligible.size == 0:
            raise GdoError(f"preset {preset.name}: score.missing = 'exclude' leaves no candidate with descriptors")
        pool = frame.iloc[eligible].reset_index(drop=True) if eligible.size < n else frame
    else:
        eligible = np.arange(n)
        pool = frame
    rho = score.rho[eligible]
    temporal_prob = metrics.values.get("temporal_prob")
    feas = preset.feasibility
    view = pool_view(pool, feas, None if temporal_prob is None else temporal_prob[eligible])
    vds = metrics.values.get("vds")
    k, budget_info = choose_budget(
        preset.budget, view.n, view.stratum_codes, max_reachable(view, feas),
        vds=None if vds is None else vds[eligible], target_count=config.target_count,
        feasibility_caps=share_caps(view, feas),
    )
    try:
        problem = SelectionProblem(rho, budget=k)
        derived = add_constraints(problem, view, k, feas)
    except ValueError as error:  # the engine's input checks: a constraint we derived is malformed
        raise GdoError(f"preset {preset.name}: cannot build the problem: {error}") from None
    return GoalProblem(problem, eligible, score, view, k, budget_info, derived, pool)


def select_subset(frame: pd.DataFrame, metrics: Metrics, preset: Preset, config: SelectConfig) -> SelectResult:
    """Solve one goal on a loaded pool. Raises GdoError (with the engine's explanation) when infeasible."""
    if preset.is_paper:
        from gdo_opt.subset.paper import select_paper

        return select_paper(frame, metrics, preset, config, GoalProblem, SelectResult)
    timing: dict[str, float] = {}
    t0 = time.perf_counter()
    n = len(frame)
    goal = build_goal_problem(frame, metrics, preset, config)
    problem, eligible, score, view, k = goal.problem, goal.eligible, goal.score, goal.view, goal.k
    budget_info, derived, feas, pool = goal.budget_info, goal.derived, preset.feasibility, goal.pool
    timing["derive_s"] = time.perf_counter() - t0

    t1 = time.perf_counter()
    try:
        progress = None
        if config.progress:
            from gdo_opt.solvers.progress import StderrProgress

            progress = StderrProgress(prefix=preset.name)
        selection = problem.solve(solver=config.solver, time_limit=config.time_limit, mip_gap=config.mip_gap,
                                  seed=config.seed, progress=progress)
    except ValueError as error:
        raise GdoError(f"preset {preset.name}: solver {config.solver}: {error}") from None
    timing["solve_s"] = time.perf_counter() - t1
    if not selection.has_selection:  # optimal, feasible, or stopped at the time limit with a subset
        raise GdoError(
            f"preset {preset.name} ({Path(preset.source).name}): {selection.status} with K = {k}: "
            f"{' '.join(str(selection.message).split()) or 'no explanation from the solver'}"
            + (" (--on-infeasible relax applies to the paper goals; a weighted preset stops here)"
               if config.on_infeasible == "relax" else "")
        )
    local = np.asarray(selection.indices, dtype=np.int64)
    violations = problem.check(local)
    if violations:  # the engine re-checks too; never export a subset that breaks C_g
        raise GdoError(f"preset {preset.name}: solution violates {violations[0]}")
    chosen = eligible[local]

    t2 = time.perf_counter()
    baseline = None
    baseline_info: dict = {"multiplier": config.baseline_multiplier}
    if config.baseline_multiplier > 0:
        local_b, info = uniform_baseline(
            view.n, int(np.ceil(config.baseline_multiplier * k)), config.seed, dedup=view.dedup,
            video_uid=view.video_uid, cap=feas.per_video_cap,
        )
        baseline = eligible[local_b]
        baseline_info.update(info)
    timing["baseline_s"] = time.perf_counter() - t2

    subsets = {"gdo_1x": local}
    if baseline is not None:
        subsets["uni"] = np.searchsorted(eligible, baseline)
    report = {
        "preset": preset.to_dict(),
        "pool": {
            "candidates": int(n),
            "eligible": int(view.n),
            "excluded_missing_descriptors": int(n - view.n),
            "video_candidates": int(view.video.sum()),
            "temporal_video_candidates": int((view.video & view.temporal).sum()),
            "temporal_rule": view.temporal_source,
        },
        "metrics": metrics.summary(),
        "score": score.summary(preset.score.missing, preset.score.missing_penalty),
        "missing_descriptors": missing_summary(score, preset.score.missing, preset.score.missing_penalty, n,
                                               chosen, int(view.n)),
        "budget": budget_info,
        "solve": {
            "solver": selection.solver,
            "requested": config.solver,
            "status": selection.status,
            "objective": _r(selection.objective),
            "bound": _r(selection.bound),
            "gap": _r(selection.gap),
            "mip_gap": config.mip_gap,
            "seed": config.seed,
            "message": timeless_message(selection.message),
        },
        "selected": int(local.size),
        "constraints": clean_constraint_rows(problem.constraint_table(local)),
        "derivation": derived.notes,
        "violations": [],
        "baseline": baseline_info,
        "fields": field_distributions(pool, subsets),
        "descriptors": descriptor_summaries({k_: v[eligible] for k_, v in metrics.values.items()}, subsets),
        "outputs": output_names(config, baseline is not None),
        "export": {"frames_as": config.frames_as, "sort": "qa_uid"},
    }
    timing["report_s"] = time.perf_counter() - t2
    timing["solver_seconds"] = float(selection.seconds)
    timing["solver_message"] = " ".join(str(selection.message).split())  # with its phase seconds
    return SelectResult(preset, config, chosen, baseline, score.rho, eligible, report, timing)


def write_outputs(result: SelectResult, frame: pd.DataFrame, metrics: Metrics, out_dir: str | Path,
                  console=None) -> Path:
    """Write gdo_1x.jsonl, uni_<k>x.jsonl, report.json (+ report.html) into ``out_dir``.

    The files are written into a staging folder beside ``out_dir`` and published as one set
    (``gdo_opt.publish.publish_set``): one rename, a lock against a concurrent writer. Outputs of an
    earlier run that this run does not write (e.g. ``report.html`` after ``--no-html``) are removed.
    """
    from gdo_opt.publish import publish_set

    out = Path(out_dir)
    t0 = time.perf_counter()
    outputs = {"gdo_1x.jsonl": result.indices}
    if result.baseline is not None:
        outputs[result.report["outputs"]["baseline"]] = result.baseline
    with publish_set(out, owned=_select_output) as stage:
        union = np.unique(np.concatenate(list(outputs.values())))
        from gdo_opt.ingest.stream import LEAN_DROPPED

        source = {}  # a full frame: write_sft_sets takes its rows in slices
        if not all(c in frame.columns for c in LEAN_DROPPED):  # a lean ingest: text and media from the files
            from gdo_opt.subset.export_lean import lean_arrival, lean_lines

            source = {"encoded": lean_lines(frame, union, result.rho, metrics.values, result.config.frames_as,
                                            result.stratum), "arrival": lean_arrival(frame, union)}
        write_sft_sets({stage / name: rows for name, rows in outputs.items()}, frame, result.rho, metrics.values,
                       result.config.frames_as, stratum=result.stratum, **source)
        result.timing["export_s"] = time.perf_counter() - t0
        if result.config.parquet:
            from gdo_opt.subset.export_parquet import jsonl_to_parquet

            for name in sorted(p.name for p in stage.glob("*.jsonl")):
                jsonl_to_parquet(stage / name, stage / name.replace(".jsonl", ".parquet"))
        # report.json / report.html hold no wall-clock number: same inputs + seed -> same bytes
        write_json(stage / "report.json", result.report)
        if result.config.html:
            from gdo_opt.subset.report_html import write_html

            t1 = time.perf_counter()
            subsets = {"gdo_1x": result.indices}
            if result.baseline is not None:
                subsets["uni"] = result.baseline
            write_html(stage / "report.html", result.report, result.rho, subsets, metrics.values)
            result.timing["html_s"] = time.perf_counter() - t1
        write_json(stage / "timings.json", {k: round(v, 4) if isinstance(v, float) else v
                                            for k, v in sorted(result.timing.items())})
    if console is not False:
        print_summary(result.report, console)
    return out


def exported_only(result: SelectResult, frame: pd.DataFrame, metrics: Metrics
                  ) -> tuple[SelectResult, pd.DataFrame, Metrics]:
    """``result``, ``frame`` and ``metrics`` cut down to the rows ``write_outputs`` exports (the 1x
    subset and the baseline), for a caller that needs nothing else of the pool afterwards.

    Why: the export forks workers, and everything the parent still holds then counts once more in
    the pages the workers copy; at 200k pairs the pool, its metrics and the mapped ingest blocks are
    ~50 MB that only the exported rows' values are needed of. The outputs are the same bytes (a
    line holds no pool row number). Not for ``report.html``, which plots the whole pool: with
    ``html`` on, the inputs come back unchanged."""
    from dataclasses import replace

    if result.config.html:
        return result, frame, metrics
    parts = [result.indices] + ([] if result.baseline is None else [result.baseline])
    union = np.unique(np.concatenate(parts))
    small = frame.iloc[union].reset_index(drop=True)
    small.attrs = dict(frame.attrs)  # a lean ingest's source files (the export re-reads them)
    kept = replace(metrics, values={k: v[union] for k, v in metrics.values.items()}, file_columns={},
                   position=None)
    local = {"indices": np.searchsorted(union, result.indices), "rho": result.rho[union],
             "eligible": np.arange(union.size), "stratum": None if result.stratum is None else result.stratum[union],
             "baseline": None if result.baseline is None else np.searchsorted(union, result.baseline)}
    return replace(result, **local), small, kept


def _select_output(name: str) -> bool:
    """Files `select` writes (anything else in --out is the user's and is left alone)."""
    return name in ("gdo_1x.jsonl", "gdo_1x.parquet", "report.json", "report.html", "timings.json") or (
        name.startswith("uni_") and (name.endswith("x.jsonl") or name.endswith("x.parquet")))


def build_all(frame: pd.DataFrame, metrics: Metrics, presets: list[Preset], config: SelectConfig,
              out_dir: str | Path, console=None) -> list[SelectResult]:
    """Solve every preset first, then write ``out_dir/<preset>/``: one infeasible goal writes nothing."""
    from rich.console import Console

    from gdo_opt.subset.report import summary_table

    console = console or Console(stderr=True)
    names = [p.name for p in presets]
    if len(set(names)) != len(names):
        raise GdoError(f"presets: names repeat ({', '.join(names)}); each goal needs its own folder")
    results = []
    for preset in presets:
        console.print(f"[bold]{preset.name}[/]: solving ...", highlight=False)
        results.append(select_subset(frame, metrics, preset, config))
    finished: list[str] = []
    try:
        for result in results:  # each goal is published as one set; say which ones made it
            write_outputs(result, frame, metrics, Path(out_dir) / result.preset.name, console=False)
            finished.append(result.preset.name)
    except BaseException:
        left = [n for n in names if n not in finished]
        console.print(f"build stopped: finished {', '.join(finished) or 'none'}; not written (old outputs kept): "
                      f"{', '.join(left)}", highlight=False)
        raise
    summary_table([r.report for r in results], console)
    console.print(f"wrote {', '.join(str(Path(out_dir) / n) for n in names)}", highlight=False)
    return results
