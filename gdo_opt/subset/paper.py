"""The paper's goals on a pool: the published ρ, K and feasibility set, solved exactly.

``build_paper_goal`` turns pool + metrics + a paper preset into the goal's problem (shared with
``audit``); ``select_paper`` solves it stage by stage (``gdo_opt.goal.published_set``), relaxes the
hard rows when they cannot all hold (``on_infeasible = "relax"``) and reports every shortfall.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from gdo_opt.errors import GdoError
from gdo_opt.goal.published import FIELDS, ScoreSwitches, legacy_from, published_pool, published_score
from gdo_opt.goal.published_set import choose_k, derive, elastic_problem, solve_paper, stage_plan, survivors

ON_INFEASIBLE = ("relax", "fail")


@dataclass
class PaperScore:
    """ρ of every pool row and its parts (the builder's ``filter_score`` and ``filter_score_detail``)."""

    rho: np.ndarray
    parts: dict
    switches: ScoreSwitches
    metrics_rows: int

    def summary(self, *_args) -> dict:
        s = self.switches
        return {"kind": "published", "disable_score_vds": s.disable_vds, "disable_score_ppl": s.disable_ppl,
                "disable_score_sc": s.disable_sc, "legacy_metrics_rows": int(self.metrics_rows),
                "legacy_coverage_ratio": float(self.parts["present"].mean()) if self.rho.size else 0.0,
                "missing_candidates": int((~self.parts["present"]).sum())}


@dataclass
class Notes:
    notes: list


def effective_params(preset, config):
    """The preset's published parameters with the command line's overrides applied."""
    p = preset.published
    over = {}
    if config.quota_mode is not None:
        over["quota_mode"] = config.quota_mode
    if config.quota_penalty is not None:
        if config.quota_penalty < 0:
            raise GdoError(f"--quota-penalty = {config.quota_penalty}: must be >= 0")
        over["quota_penalty"] = float(config.quota_penalty)
    if config.oversample_caps is not None:
        over["oversample_caps"] = bool(config.oversample_caps)
    if config.target_frames is not None:
        if config.target_frames < 1:
            raise GdoError(f"--target-frames = {config.target_frames}: must be >= 1")
        over["target_frames"] = int(config.target_frames)
    return replace(p, **over) if over else p


def paper_score(frame, metrics, params, config):
    pool = published_pool(frame, params.target_frames)
    legacy = legacy_from(metrics)
    sw = ScoreSwitches(params.vds3_weight, params.zscore_cap, params.video_base_weight, params.video_quality_weight,
                       params.image_base_weight, params.image_quality_weight, params.missing_penalty,
                       disable_vds=config.disable_score_vds, disable_ppl=config.disable_score_ppl,
                       disable_sc=config.disable_score_sc)
    parts = published_score(pool, legacy, sw)
    rows = next(iter(legacy.file_values.values())).size if legacy and legacy.file_values else 0
    return pool, legacy, PaperScore(parts["score"], parts, sw, rows)


def build_paper_goal(frame, metrics, preset, config, GoalProblem):  # noqa: N803 - the class, passed in
    """The paper goal's GoalProblem (class passed by pipeline: no import cycle): single-stage objective
    Σρ − P·(quota shortfall) over the candidates."""
    if len(frame) == 0:
        raise GdoError("candidates: the table is empty")
    if config.target_ratio is not None and not 0 < config.target_ratio <= 1:
        raise GdoError(f"--target-ratio = {config.target_ratio}: must lie in (0, 1]")
    params = effective_params(preset, config)
    pool, legacy, score = paper_score(frame, metrics, params, config)
    k, budget = choose_k(pool, params, legacy, config.target_count, config.target_ratio,
                         vds3=not config.disable_vds3_budget)
    ps = derive(pool, params, k, budget)
    rows = survivors(pool, score.rho, ps.stratum_cap, ps.floors) if params.oversample_caps else np.arange(pool.n)
    ep = elastic_problem(pool, score.rho, ps, params, rows)
    objective = ep.stage_vector(ep.rho, {"quota": params.quota_penalty if params.quota_mode == "penalty" else 0.0})
    try:
        problem = ep.build(objective)
    except ValueError as error:
        raise GdoError(f"preset {preset.name}: cannot build the problem: {error}") from None
    notes = [{"name": name, "rule": rule} for name, rule in (
        ("size_k", f"exactly K = {k} rows"),
        ("per_video_cap", f"at most {params.max_qa_per_video} rows per video_uid (short_video)"),
        ("dedup", "one row per exact (question, answer) text"),
        ("video_max", f"short_video rows <= {ps.max_video}"),
        ("video_min", f"short_video rows >= {ps.min_video}"),
        ("temporal_video_min", f"temporal video rows ({','.join(params.temporal_categories)}) >= "
                               f"{ps.min_temporal_video}"),
        ("source_group_floor", f"{len(ps.floors)} source-group floors: {ps.floors}"),
        ("stratum_quota", f"{int((ps.stratum_quota > 0).sum())} stratum quotas (largest remainder of K n_s / N), "
                          f"{params.quota_mode}" + (f", P = {params.quota_penalty} per missing row"
                                                     if params.quota_mode == "penalty" else "")),
        ("candidates", f"{rows.size} of {pool.n} rows" + (" (oversample caps)" if params.oversample_caps else "")),
    )]
    goal = GoalProblem(problem, rows, score, None, k, budget, Notes(notes), None)
    goal.elastic, goal.paper = ep, {"pool": pool, "set": ps, "params": params, "legacy": legacy}
    return goal


def _unmet(solution, ps) -> list[dict]:
    """Every row that did not hold, with numbers (the builder's ``unmet_constraints``, but optimal)."""
    out = []
    for family, groups in sorted(solution.shortfall.items()):
        fam = next(f for f in solution.elastic.families if f.name == family)
        for group, missing in sorted(groups.items()):
            lo = fam.lo.get(group, fam.lo.get(_maybe_int(group), 0))
            out.append({"name": family, "group": group, "required": int(lo), "achieved": int(lo) - int(missing),
                        "shortfall": int(missing)})
    return out


def _maybe_int(x):
    try:
        return int(x)
    except (TypeError, ValueError):
        return x


def _r(x) -> float | None:
    x = float(x)
    return float(f"{x:.10g}") if np.isfinite(x) else None


def select_paper(frame, metrics, preset, config, GoalProblem, SelectResult):  # noqa: N803 - classes passed in
    """Solve a paper goal; returns a SelectResult (see pipeline.select_subset)."""
    from gdo_opt.subset.baseline import published_uniform

    if config.on_infeasible not in ON_INFEASIBLE:
        raise GdoError(f"--on-infeasible = {config.on_infeasible!r}: expected one of {', '.join(ON_INFEASIBLE)}")
    timing: dict[str, float] = {}
    t0 = time.perf_counter()
    goal = build_paper_goal(frame, metrics, preset, config, GoalProblem)
    pool, ps, params = goal.paper["pool"], goal.paper["set"], goal.paper["params"]
    timing["derive_s"] = time.perf_counter() - t0

    progress = None
    if config.progress:
        from gdo_opt.solvers.progress import StderrProgress

        progress = StderrProgress(prefix=preset.name)

    def solve(problem):
        try:
            return problem.solve(solver=config.solver, time_limit=config.time_limit, mip_gap=config.mip_gap,
                                 seed=config.seed, progress=progress)
        except ValueError as error:
            raise GdoError(f"preset {preset.name}: solver {config.solver}: {error}") from None

    t1 = time.perf_counter()
    sol = solve_paper(pool, goal.rho, ps, params, solve, config.on_infeasible)
    timing["solve_s"] = time.perf_counter() - t1
    import gc

    from gdo_opt.memory import trim_heap

    gc.collect()  # highspy's solver objects are cyclic: freed by the collector only
    trim_heap()  # the solver's freed model and work arrays go back (~15 MB at 200k rows)
    sel = sol.selection
    if not sel.has_selection:
        raise GdoError(
            f"preset {preset.name} ({Path(preset.source).name}): {sel.status} with K = {ps.k}: "
            f"{' '.join(str(sel.message).split()) or 'no explanation from the solver'} "
            "(--on-infeasible relax writes the best subset and lists the unmet constraints)")
    chosen = np.sort(sol.rows)
    t2 = time.perf_counter()
    baseline, baseline_info = None, {"multiplier": float(config.baseline_multiplier)}
    if config.baseline_multiplier > 0:
        baseline, info = published_uniform(pool, int(np.ceil(ps.k * config.baseline_multiplier)),
                                           params.max_qa_per_video, config.seed)
        baseline_info.update(info)
    timing["baseline_s"] = time.perf_counter() - t2
    from gdo_opt.subset.report import (
        descriptor_summaries,
        field_distributions,
        output_names,
        timeless_message,
    )

    subsets = {"gdo_1x": chosen} if baseline is None else {"gdo_1x": chosen, "uni": baseline}
    extra = {"published_base": goal.score.parts["base"], "published_vds3": goal.score.parts["vds3"],
             "published_quality": goal.score.parts["quality"]}
    unmet = _unmet(sol, ps)
    hard_unmet = [u for u in unmet if u["name"] != "stratum_quota"]
    quota_short = sum(u["shortfall"] for u in unmet if u["name"] == "stratum_quota")
    sigma = float(goal.rho[chosen].sum())
    cols = np.asarray(sel.indices, dtype=np.int64)
    report = {
        "preset": preset.to_dict(),
        "pool": {"candidates": int(len(frame)), "eligible": int(len(frame)), "video_candidates": int(pool.video.sum()),
                 "candidates_in_problem": int(sol.candidates.size), "candidate_set": sol.candidate_set},
        "metrics": metrics.summary(),
        "score": goal.score.summary(),
        "budget": {**goal.budget_info, "kind": "published " + str(goal.budget_info.get("mode")), "k": int(ps.k)},
        "hard_constraints": {**ps.info, "bucket_quotas": ps.bucket_quotas},
        "solve": {"solver": sel.solver, "requested": config.solver, "status": sel.status,
                  "objective": _r(sel.objective), "bound": _r(sel.bound), "gap": _r(sel.gap),
                  "mip_gap": config.mip_gap, "seed": config.seed,
                  # no wall-clock numbers in report.json (same inputs + seed -> same bytes); stage seconds
                  # go to timings.json
                  "stages": [{k: v for k, v in stage.items() if k != "seconds"} for stage in sol.stages],
                  "relaxed_hard_constraints": sol.relaxed, "on_infeasible": config.on_infeasible,
                  "attempts": sol.attempts,
                  "quota_mode": params.quota_mode, "quota_penalty": params.quota_penalty,
                  "message": timeless_message(sel.message)},
        "selected": int(chosen.size),
        "sigma_rho": _r(sigma),
        "quota_shortfall": int(quota_short),
        "unmet_constraints": unmet,
        "violations": hard_unmet,
        "constraints": _constraint_rows(sol.problem, cols),
        "derivation": goal.derived.notes,
        "baseline": baseline_info,
        "fields": field_distributions(pool.field_frame(), subsets, fields=FIELDS),  # the goal's own strata
        "descriptors": descriptor_summaries({**metrics.values, **extra}, subsets),
        "outputs": output_names(config, baseline is not None),
        "export": {"frames_as": config.frames_as, "sort": "qa_uid"},
    }
    if len(sol.attempts) > 1:
        print(f"note: preset {preset.name}: " + "; ".join(
            f"{a['candidates']} ({a['rows']} rows{', hard rows relaxed' if a['relax_hard'] else ''}): {a['status']}"
            for a in sol.attempts), file=sys.stderr)
    if hard_unmet:
        print(f"warning: preset {preset.name}: {len(hard_unmet)} hard constraint(s) unmet, best effort written: "
              + "; ".join(f"{u['name']}[{u['group']}] {u['achieved']} < {u['required']}" for u in hard_unmet[:5]),
              file=sys.stderr)
    timing["report_s"] = time.perf_counter() - t2
    timing["solver_seconds"] = float(sum(s["seconds"] for s in sol.stages))
    timing["solver_message"] = " ".join(str(sel.message).split())  # with its phase seconds
    for i, stage in enumerate(sol.stages):
        timing[f"stage_{i}_s"] = float(stage["seconds"])
    result = SelectResult(preset, config, chosen, baseline, goal.rho, np.arange(len(frame)), report, timing)
    result.stratum = pool.stratum_labels[pool.stratum]  # exported as meta.stratum: the builder's 7-field label
    return result


def _constraint_rows(problem, cols) -> list[dict]:
    from gdo_opt.subset.report import clean_constraint_rows

    return clean_constraint_rows([r for r in problem.constraint_table(cols) if not str(r["name"]).startswith("stage_")])


__all__ = ["build_paper_goal", "select_paper", "stage_plan"]
