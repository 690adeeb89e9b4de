"""``auto``: the exact MIP when the model is small; otherwise core + pricing, MIP on the core.

Small models (standard-form nnz ≤ ``direct_max_nnz``, 250k by default: about 40k candidates of a
GDO-shaped pool, solved by plain HiGHS in seconds) go straight to HiGHS. Larger ones:

1. greedy (fast, feasible) — its selection seeds the core;
2. core LP + pricing over the whole pool (``solvers/pricing.py``) — a bound L valid for the pool;
3. the greedy again in LP order (reduced costs): if it is within ``mip_gap`` of L, done;
   otherwise HiGHS MIP on the core columns, warm-started with it (reduced-cost fixing drops core
   columns that cannot reach its value: L + d_j < incumbent);
4. the pool bound is max(core MIP bound, L + max_{j outside} d_j), at most L: a selection using an
   outside column j is worth ≤ L + d_j. If the gap is still above ``mip_gap``, every column with
   d_j ≥ −(L − obj) joins and the MIP runs once more (then the core MIP bound is the pool's);
   if the MIP fails, the greedy answer with its certified gap.

Every decision, each pricing round and the timings go into ``sel.message`` / ``sel.info``.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace

import numpy as np

from gdo_opt.selection.problem import relative_gap

DIRECT_MAX_NNZ = 250_000
# auto's own options (extra); everything else in extra is passed to HiGHS
AUTO_KEYS = ("force_core", "direct_max_nnz", "progress", "core_top_factor", "core_floor_factor", "lp_method")


def solve(problem, options):
    from gdo_opt.solvers import highs

    extra = dict(options.extra)
    force_core = bool(extra.pop("force_core", False))
    direct_max = int(extra.pop("direct_max_nnz", DIRECT_MAX_NNZ))
    form = problem.standard_form()
    nnz = int(form.A.nnz)
    if not force_core and nnz <= direct_max:
        passed = {k: v for k, v in options.extra.items() if k not in AUTO_KEYS}
        sel = highs.solve(problem, replace(options, extra=passed))
        sel.solver = "auto"
        sel.message = f"auto: direct HiGHS MIP (nnz {nnz} ≤ {direct_max}); {sel.message}"
        sel.info["path"] = "direct"
        return sel
    why = "forced core path" if force_core else f"nnz {nnz} > {direct_max}"
    return solve_core(problem, options, extra, why)


def solve_core(problem, options, extra: dict, why: str):
    """Greedy → core LP + pricing → MIP on the core (see the module docstring)."""
    from gdo_opt.solvers import greedy, pricing

    from gdo_opt.selection.diagnose import explain_infeasible

    progress = extra.get("progress") if callable(extra.get("progress")) else None
    t0 = time.perf_counter()
    deadline = None if options.time_limit is None else t0 + float(options.time_limit)
    notes = [f"auto: core + pricing ({why})"]
    timings: dict[str, float] = {}

    g_idx, g_left, _ = greedy.run_greedy(problem)
    g_ok = not g_left
    g_obj = problem.objective(g_idx) if g_ok else -math.inf
    timings["greedy"] = time.perf_counter() - t0
    if progress is not None:
        progress(dict(event="greedy", objective=g_obj, seconds=timings["greedy"], feasible=g_ok))
    notes.append(
        f"greedy {g_obj:.6g} in {timings['greedy']:.2f}s" if g_ok
        else f"greedy repair left {len(g_left)} row(s) violated; not used as seed"
    )

    t = time.perf_counter()
    pricer = pricing.Pricer(problem)
    core = pricing.initial_core(
        problem, extra=g_idx if g_ok else None,
        top_factor=float(extra.get("core_top_factor", 1.2)),
        floor_factor=float(extra.get("core_floor_factor", 1.5)),
    )
    result = pricing.price(problem, core, pricer=pricer, deadline=deadline, threads=options.threads,
                           method=str(extra.get("lp_method", "choose")), on_round=progress)
    timings["pricing"] = time.perf_counter() - t
    rounds = "; ".join(
        f"round {it['round']}: core {it['core']}, LP {it['lp'] if isinstance(it['lp'], str) else format(it['lp'], '.8g')}, "
        f"+{it['added']} columns, {it['lp_seconds'] + it['price_seconds']:.2f}s"
        for it in result.iterations
    )
    notes.append(f"pricing: {rounds}")
    info = dict(path="core", iterations=result.iterations, timings=timings, initial_core=int(core.size))
    if result.status == "infeasible":
        sel = problem.empty_selection("auto", "infeasible", explain_infeasible(problem))
        sel.message = "; ".join([*notes, sel.message])
        sel.info.update(info)
        return sel
    if result.status != "optimal":
        return _fallback(problem, g_idx if g_ok else None, math.nan, notes + [result.message], info)
    bound = result.bound
    d = result.reduced
    notes.append(f"pool bound {bound:.10g} after {len(result.iterations)} round(s)")

    # the LP-guided greedy pass: usually within a hair of the bound, often within mip_gap
    t = time.perf_counter()
    lp_idx, lp_left = greedy.guided_pass(problem, pricer.form, result)
    timings["guided_greedy"] = time.perf_counter() - t
    if not lp_left and problem.objective(lp_idx) > g_obj:
        g_idx, g_obj, g_ok = lp_idx, problem.objective(lp_idx), True
    notes.append(f"LP-guided greedy {g_obj:.10g} in {timings['guided_greedy']:.2f}s")
    if progress is not None:
        progress(dict(event="guided greedy", objective=g_obj, seconds=timings["guided_greedy"]))
    if g_ok and relative_gap(g_obj, bound) <= options.mip_gap:
        sel = problem.empty_selection("auto", "optimal", "", bound)
        sel.indices, sel.objective = g_idx, g_obj
        sel.gap = relative_gap(g_obj, bound)
        notes.append(f"within mip_gap of the pool bound: MIP skipped, certified gap {sel.gap:.3g}")
        sel.message = "; ".join(notes)
        sel.info.update(info, mip_columns=0)
        return sel

    # MIP on the core, reduced-cost fixed against the best greedy value
    incumbent = g_obj
    cols = result.core
    if math.isfinite(incumbent):
        keep = d[cols] >= -(bound - incumbent) - 1e-9
        if g_ok:
            keep |= np.isin(cols, g_idx)
        cols = cols[keep]
    best = None
    for attempt in range(2):
        t = time.perf_counter()
        remaining = None if deadline is None else deadline - time.perf_counter()
        if remaining is not None and remaining <= 0.5:
            notes.append("no time left for the core MIP")
            break
        sel = _core_mip(problem, pricer, cols, options, remaining, g_idx if g_ok else None)
        timings[f"mip_{attempt}"] = time.perf_counter() - t
        notes.append(f"core MIP {attempt}: {cols.size} columns, {sel.status}, {timings[f'mip_{attempt}']:.2f}s")
        if progress is not None:
            progress(dict(event="mip", attempt=attempt, columns=int(cols.size), status=sel.status,
                          objective=sel.objective, seconds=timings[f"mip_{attempt}"]))
        if sel.status in ("optimal", "feasible"):
            # Any selection using a column j outside the MIP is worth ≤ L + d_j (Lagrangian bound
            # with x_j = 1), so max(core MIP bound, L + max outside d) bounds the whole pool.
            outside = np.ones(problem.n, dtype=bool)
            outside[cols] = False
            reach = bound + min(0.0, float(d[outside].max())) if outside.any() else -math.inf
            mip_bound = sel.bound if math.isfinite(sel.bound) else bound
            sel.bound = min(bound, max(mip_bound, reach))
            if best is None or sel.objective > best.objective or (
                sel.objective == best.objective and sel.bound < best.bound
            ):
                best = sel
        if sel.status == "infeasible":
            if cols.size == problem.n:  # the whole pool: integer infeasible although the LP is not
                sel.message = "; ".join([*notes, sel.message])
                sel.info.update(info)
                return sel
            cols = np.arange(problem.n)  # a core can miss the only integral completions
            notes.append("core MIP infeasible: retrying on the whole pool")
            continue
        if best is None:
            break
        gap = relative_gap(best.objective, best.bound)
        if gap <= options.mip_gap:
            break
        # columns that could still lift the objective to the bound
        wider = np.flatnonzero(d >= -(bound - best.objective) - 1e-9)
        wider = np.union1d(wider, cols)
        if wider.size == cols.size:
            break
        notes.append(f"gap {gap:.3g} > {options.mip_gap:g}: widening the core to {wider.size} columns")
        cols = wider
    if best is None:
        return _fallback(problem, g_idx if g_ok else None, bound, notes, info)
    best.solver = "auto"
    best.gap = relative_gap(best.objective, best.bound)
    best.status = "optimal" if best.gap <= options.mip_gap else "feasible"
    notes.append(f"pool bound {best.bound:.10g}, certified gap {best.gap:.3g}")
    best.message = "; ".join(notes)
    info["mip_columns"] = int(cols.size)
    best.info.update(info)
    return best


def _core_mip(problem, pricer, cols, options, time_limit, start_idx):
    """HiGHS MIP restricted to ``cols`` (rows without a member dropped), warm-started."""
    from gdo_opt.solvers import highs as hs

    from gdo_opt.selection.diagnose import explain_infeasible

    form = pricer.form
    sub = pricer.csc[:, cols].tocsr()
    rows = np.flatnonzero(np.diff(sub.indptr) > 0)
    model = hs.build_model(form.c[cols], sub[rows], form.row_lo[rows], form.row_hi[rows], integral=True,
                           verbose=options.verbose)
    extra = {k: v for k, v in options.extra.items() if k not in AUTO_KEYS}
    hs.apply_options(model, time_limit, options.mip_gap, options.seed, options.threads, extra)
    if start_idx is not None:
        pos = np.searchsorted(cols, start_idx)
        ok = (pos < cols.size) & (cols[np.minimum(pos, cols.size - 1)] == start_idx)
        if ok.all():
            values = np.zeros(cols.size)
            values[pos] = 1.0
            model.setSolution(int(cols.size), np.arange(cols.size, dtype=np.int32), values)
    hs.run_guarded(model, time_limit)
    return hs.selection_from_highs(problem, model, "auto", explain_infeasible, columns=cols)


def _fallback(problem, g_idx, bound, notes, info):
    """The greedy answer with whatever bound is known, when the exact path fails."""
    if g_idx is None:
        sel = problem.empty_selection("auto", "error", "; ".join([*notes, "no feasible selection found"]), bound)
        sel.info.update(info)
        return sel
    sel = problem.empty_selection("auto", "feasible", "", bound)
    sel.indices = g_idx
    sel.objective = problem.objective(g_idx)
    sel.gap = relative_gap(sel.objective, bound)
    sel.message = "; ".join([*notes, f"fell back to greedy (certified gap {sel.gap:.3g})"])
    sel.info.update(info, fallback="greedy")
    return sel
