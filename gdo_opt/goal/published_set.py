"""The published builder's feasibility set as a MIP (docs/formulation.md maps every stage to a row).

Hard rows (the builder's ``can_take`` and its stage-1 "hard" constraints): subset size K, at most
``max_qa_per_video`` rows per video, one row per exact (question, answer) text, video rows in
[ceil(min ratio·K), floor(max ratio·K)], temporal video rows ≥ the temporal floor, and the
source-group floors. Soft rows (stage 2): each stratum's largest-remainder quota, elastic with a
documented penalty per missing row (or lexicographic: fewest missing rows first). The per-stratum
oversample caps bound the candidates to each stratum's top ``cap_s`` rows by ρ, as the builder's heaps
do; when those cannot reach K the whole pool enters (the builder's reservoir fallback).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from gdo_opt.goal.elastic import ElasticProblem
from gdo_opt.goal.published import (
    VIDEO,
    PublishedPool,
    largest_remainder,
    recommend_count,
    source_floors,
    vds3_budget,
)


@dataclass
class PaperSet:
    """Every number the builder derives before selecting (reported as its ``hard_constraints``)."""

    k: int
    budget: dict
    bucket_quotas: dict[str, int]
    stratum_quota: np.ndarray  # per stratum code
    stratum_cap: np.ndarray  # oversample cap per stratum code
    min_video: int
    max_video: int
    min_temporal_video: int
    temporal: np.ndarray  # bool per row: video row in the temporal categories
    floors: dict[str, int]
    info: dict = field(default_factory=dict)


def choose_k(pool: PublishedPool, params, legacy=None, target_count: int | None = None,
             target_ratio: float | None = None, vds3: bool = True) -> tuple[int, dict]:
    """``choose_target_count`` + ``apply_legacy_vds3_budget`` (auto mode with a metrics file only)."""
    total = pool.n
    if target_count:
        return min(int(target_count), total), {"mode": "fixed_count", "requested_count": int(target_count)}
    if target_ratio:
        return min(max(1, int(total * target_ratio)), total), {"mode": "fixed_ratio", "requested_ratio": target_ratio}
    k, info = recommend_count(total, pool.stratum_counts(), params)
    has_rows = legacy is not None and any(v.size for v in legacy.file_values.values())
    if info.get("mode") == "distribution_auto" and has_rows and vds3:
        adjusted, vinfo = vds3_budget(k, total, legacy, params, params.zscore_cap)
        k = adjusted
        info.update(vds3_adjustment=vinfo, recommended_count=k, recommended_ratio=k / float(total))
    elif info.get("mode") == "distribution_auto":
        info["vds3_adjustment"] = {"enabled": False, "reason": "disabled" if not vds3 else "no_legacy_metrics"}
    return k, info


def derive(pool: PublishedPool, params, k: int, budget: dict) -> PaperSet:
    """Quotas, caps and floors exactly as the builder computes them for K."""
    total = pool.n
    bucket_codes, buckets = pool.first_codes("bucket")  # first appearance
    bucket_counts = np.bincount(bucket_codes, minlength=len(buckets))
    bq = dict(zip([str(b) for b in buckets], largest_remainder(bucket_counts, k).tolist()))
    quota = largest_remainder(pool.stratum_counts(), k)
    cats = set(params.temporal_categories)
    t_codes, t_labels = pool.coded["temporal_category"]
    temporal = pool.video & pd.Series(np.asarray(t_labels, dtype=object)).isin(list(cats)).to_numpy()[t_codes]
    n_video = int(pool.video.sum())
    full_ratio = n_video / float(total) if total else 0.0
    lo_ratio = params.min_video_ratio if params.min_video_ratio >= 0 else full_ratio
    lo_ratio = max(0.0, min(1.0, lo_ratio))
    min_video = int(math.ceil(lo_ratio * k))
    hi_ratio = 1.0 if params.max_video_ratio < 0 else max(0.0, min(1.0, params.max_video_ratio))
    max_video = max(min_video, min(int(math.floor(hi_ratio * k)), k))
    full_temporal = int(temporal.sum()) / float(n_video) if n_video else 0.0
    t_ratio = params.min_temporal_in_video_ratio
    t_ratio = max(0.0, min(1.0, t_ratio if t_ratio >= 0 else full_temporal))
    base = max(min_video, bq.get(VIDEO, 0))
    min_temporal = max(0, min(int(math.ceil(t_ratio * base)), k))
    # oversample caps (stratum_caps): max(q, ceil(q · mult)), mult by bucket / temporal tag
    labels = pool.stratum_labels.astype(str)
    parts = np.array([s.split("|") for s in labels], dtype=object).reshape(-1, 7) if labels.size else \
        np.zeros((0, 7), dtype=object)
    mult = np.full(labels.size, max(params.oversample_factor, 1.0))
    is_video = parts[:, 0] == VIDEO
    mult = np.where(is_video, np.maximum(mult, params.video_oversample_factor), mult)
    mult = np.where(is_video & np.isin(parts[:, 2], list(cats)), np.maximum(mult, params.temporal_oversample_factor),
                    mult)
    cap = np.where(quota > 0, np.maximum(quota, np.ceil(quota * mult).astype(np.int64)), 0)
    floors = source_floors(pool.first_codes("source_group"), k, params)
    info = {"temporal_categories": sorted(cats), "full_video_ratio": full_ratio,
            "full_temporal_in_video_ratio": full_temporal, "min_video_ratio_effective": lo_ratio,
            "min_video_count": min_video, "max_video_ratio_effective": hi_ratio, "max_video_count": max_video,
            "min_temporal_in_video_ratio_effective": t_ratio, "min_temporal_video_count": min_temporal,
            "source_group_floor_requirements": floors, "num_strata": int(labels.size),
            "bucket_quotas": bq}
    return PaperSet(k, budget, bq, quota, cap, min_video, max_video, min_temporal, temporal, floors, info)


def _top_per_group(codes: np.ndarray, rho: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """Rows among the top ``cap[g]`` of their group by ρ (ties: row order); codes < 0 never."""
    from gdo_opt.selection.families.group import rank_within_groups

    rank = np.empty(codes.size, dtype=np.int64)
    rank[np.argsort(-rho, kind="stable")] = np.arange(codes.size)  # position by (-ρ, row)
    within = rank_within_groups(codes, rank)
    return (codes >= 0) & (within < cap[np.maximum(codes, 0)])


def survivors(pool: PublishedPool, rho: np.ndarray, cap: np.ndarray, floors: dict | None = None) -> np.ndarray:
    """Rows kept by the builder's per-stratum heaps: each stratum's top ``cap_s`` rows by ρ. With
    ``floors``, also each floored source group's top 2·floor rows, so that a floor the heaps alone
    cannot meet (the builder then reports it unmet) stays reachable without the whole pool."""
    keep = _top_per_group(pool.stratum, rho, cap)
    if floors:
        codes, uniques = pool.first_codes("source_group")
        need = np.array([2 * floors.get(str(u), 0) for u in uniques], dtype=np.int64)
        keep |= _top_per_group(codes.astype(np.int64), rho, need)
    return np.flatnonzero(keep)


def elastic_problem(pool: PublishedPool, rho: np.ndarray, ps: PaperSet, params, rows: np.ndarray,
                    relax_hard: bool = False) -> ElasticProblem:
    """The MIP over candidate ``rows``; ``relax_hard`` makes the hard lower bounds elastic too (weight 1)."""
    ep = ElasticProblem(rho[rows])
    hard = (1.0, "hard") if relax_hard else None
    ep.add("size_k", np.full(rows.size, "K", dtype=object), lo={"K": ps.k}, hi={"K": ps.k}, elastic=hard)
    uid = pool.video_uid[rows]
    ep.add("per_video_cap", np.where(uid >= 0, uid, None), hi=params.max_qa_per_video, kind="cap")
    ep.add("dedup", pool.text_key[rows], kind="exclusive")
    video = np.where(pool.video[rows], "short_video", None)
    ep.add("video_max", video, hi={"short_video": ps.max_video})
    if ps.min_video > 0:
        ep.add("video_min", video, lo={"short_video": ps.min_video}, elastic=hard)
    if ps.min_temporal_video > 0:
        ep.add("temporal_video_min", np.where(ps.temporal[rows], "temporal", None),
               lo={"temporal": ps.min_temporal_video}, elastic=hard)
    if ps.floors:
        ep.add("source_group_floor", pool.field_values("source_group", rows), lo=dict(ps.floors), elastic=hard)
    q = ps.stratum_quota
    lo = {str(pool.stratum_labels[s]): int(q[s]) for s in np.flatnonzero(q > 0)}
    mode = params.quota_mode
    ep.add("stratum_quota", pool.stratum_labels[pool.stratum[rows]], lo=lo,
           elastic=None if mode == "hard" else (1.0, "quota"))
    return ep


@dataclass
class PaperSolution:
    """The chosen pool rows, the final stage's problem and answer, and what each elastic row lacked."""

    rows: np.ndarray
    problem: object
    selection: object
    elastic: ElasticProblem
    candidates: np.ndarray
    shortfall: dict
    stages: list[dict]
    candidate_set: str  # "oversample caps" | "whole pool"
    relaxed: bool
    attempts: list = field(default_factory=list)  # every try: candidates, relaxed, final status


def stage_plan(ep: ElasticProblem, params, relax_hard: bool) -> list[tuple[str, np.ndarray]]:
    """Stage objectives: [min hard shortfall] + the quota mode's stages."""
    plan = []
    if relax_hard:
        plan.append(("min hard shortfall", ep.stage_vector(0.0, {"hard": 1.0})))
    if params.quota_mode == "lexicographic":
        plan.append(("min quota shortfall", ep.stage_vector(0.0, {"quota": 1.0})))
        plan.append(("max rho", ep.stage_vector(ep.rho, {})))
    elif params.quota_mode == "penalty":
        plan.append(("max rho - P * quota shortfall", ep.stage_vector(ep.rho, {"quota": params.quota_penalty})))
    else:
        plan.append(("max rho", ep.stage_vector(ep.rho, {})))
    return plan


def run_stages(ep: ElasticProblem, plan, solve) -> tuple[object, object, list[dict]]:
    """Solve the stages in order, each fixed at its achieved value (c·x ≥ value − tol) for the next."""
    fixed, stages, problem, selection = [], [], None, None
    for name, vector in plan:
        problem = ep.build(vector, fixed)
        selection = solve(problem)
        stages.append({"stage": name, "status": selection.status, "objective": float(selection.objective),
                       "bound": float(selection.bound), "gap": float(selection.gap),
                       "seconds": float(selection.seconds)})
        if not selection.has_selection:
            return problem, selection, stages
        value = float(vector[selection.indices].sum())
        fixed.append((vector, value - 1e-7 * max(1.0, abs(value))))
    return problem, selection, stages


def solve_paper(pool: PublishedPool, rho: np.ndarray, ps: PaperSet, params, solve,
                on_infeasible: str = "relax") -> PaperSolution:
    """Candidates within the oversample caps first, the whole pool if they cannot reach K; when the
    hard rows still cannot all hold: ``relax`` minimizes their shortfall first, ``fail`` returns the
    infeasible answer (the caller raises)."""
    tries = []
    if params.oversample_caps:
        tries.append(("oversample caps", survivors(pool, rho, ps.stratum_cap, ps.floors)))
    tries.append(("whole pool", np.arange(pool.n)))
    attempts = [(name, rows, False) for name, rows in tries]
    if on_infeasible == "relax":
        attempts.append(("whole pool", np.arange(pool.n), True))
    log = []
    for name, rows, relax in attempts:
        ep = elastic_problem(pool, rho, ps, params, rows, relax_hard=relax)
        problem, selection, stages = run_stages(ep, stage_plan(ep, params, relax), solve)
        ok = bool(selection.has_selection)
        log.append({"candidates": name, "rows": int(rows.size), "relax_hard": relax, "status": selection.status})
        if ok or (name, relax) == (attempts[-1][0], attempts[-1][2]):
            cols = np.asarray(selection.indices, dtype=np.int64) if ok else np.zeros(0, dtype=np.int64)
            chosen = rows[cols[cols < ep.n_real]]
            return PaperSolution(chosen, problem, selection, ep, rows, ep.shortfall(cols) if ok else {}, stages,
                                 name, relax, log)
    raise AssertionError("unreachable")  # pragma: no cover
