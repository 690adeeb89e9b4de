"""Greedy selection for pools too large to solve exactly, with a certified gap when possible.

1. Score order (stable, ties by index) with every upper bound checked: group hi, caps, dedup,
   budget, shares over the whole pool (a count cap ⌊hi·K⌋ on the mask), linear rows with
   non-negative coefficients. Floors are protected by reservation: an item that does not help a
   floor of a family may only use the budget the family's floors leave free (K − Σ lo).
   Candidates are taken in blocks; inside a block the sequential rule "accept j iff every group of
   j still has room after the earlier accepted items" is found by fixed-point iteration on group
   ranks (cumsums), which reproduces the one-by-one result without a Python loop per candidate.
2. Repair: every still-violated row (a floor that caps/dedup starved, a share inside a sub-pool,
   a generic row) is fixed by swaps — best candidates that raise it in, worst selected ones whose
   removal breaks nothing out — in batches that are kept only when no row gets worse.
3. If rows stay violated, HiGHS decides: it finds a feasible set or proves infeasibility. The
   answer is never an infeasible set marked feasible.
The bound is the LP relaxation (core + pricing for big pools, ``solvers/pricing.py``); extra
``bound=False`` skips it. With the bound comes a second, LP-guided pass (the same greedy in
reduced-cost order, extra ``guided=False`` turns it off); the better pass is returned.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from gdo_opt.problem import GroupFamily, LinearFamily, ShareFamily, relative_gap

TOL = 1e-9
MAX_WEIGHTED_ROWS = 64  # generic rows tracked densely by the greedy; more are left to the repair/HiGHS


@dataclass
class _Count:
    """Counts per group of a labelling, with bounds (a GroupFamily or a whole-pool share)."""

    name: str
    codes: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    count: np.ndarray
    reserve: bool  # protect its floors in phase 1

    def __post_init__(self) -> None:
        self.floored = np.flatnonzero(self.lo > 0)  # few groups: keeps per-block work O(floors)
        self.has_floor = bool(self.floored.size)


@dataclass
class _Row:
    """One generic row lo ≤ w·x ≤ hi kept dense (shares inside a sub-pool, linear rows)."""

    name: str
    w: np.ndarray
    lo: float
    hi: float
    act: float = 0.0

    @property
    def phase1(self) -> bool:
        """Checked while filling: an upper bound on non-negative weights (or its mirror)."""
        return (math.isfinite(self.hi) and bool((self.w >= 0).all())) or (
            math.isfinite(self.lo) and bool((self.w <= 0).all())
        )


# --------------------------------------------------------------------------- block machinery


class _Ranker:
    """Rank of each item among the *accepted earlier* items of its group, for one labelling."""

    def __init__(self, codes: np.ndarray) -> None:
        self.codes = codes
        self.valid = codes >= 0
        self.order = np.argsort(codes, kind="stable")
        sc = codes[self.order]
        start = np.r_[True, sc[1:] != sc[:-1]] if sc.size else np.zeros(0, dtype=bool)
        self.first = np.maximum.accumulate(np.where(start, np.arange(sc.size), 0)) if sc.size else sc

    def __call__(self, acc: np.ndarray) -> np.ndarray:
        ms = acc[self.order].astype(np.int64)
        cum = np.cumsum(ms) - ms
        out = np.empty(ms.size, dtype=np.int64)
        out[self.order] = cum - cum[self.first]
        return out


def _excl_cumsum(values: np.ndarray) -> np.ndarray:
    return np.cumsum(values) - values


def _fixed_point(rule, length: int, max_iter: int = 60) -> tuple[np.ndarray, int]:
    """Sequential acceptance by iteration: item j's verdict depends only on items before j, so
    the iteration is exact on every prefix that stopped changing. Returns (accepted, prefix
    length known to be exact)."""
    acc = np.ones(length, dtype=bool)
    for _ in range(max_iter):
        new = rule(acc)
        diff = np.flatnonzero(new != acc)
        if diff.size == 0:
            return new, length
        acc = new
        first_change = int(diff[0])
    return acc, max(1, first_change)


# --------------------------------------------------------------------------- the greedy


class Greedy:
    """State of one greedy run over a problem (x, counts per family, row activities)."""

    def __init__(self, problem, order: np.ndarray | None = None) -> None:
        self.problem = problem
        # the order candidates are considered in: score order, or an LP-guided one (see solve)
        self.by_score = order is None
        self.order = np.argsort(-problem.scores, kind="stable") if order is None else order
        self.n = problem.n
        self.scores = problem.scores
        self.k_lo, self.k_hi = problem.budget_lo, problem.budget_hi
        self.x = np.zeros(self.n, dtype=bool)
        self.total = 0
        self.counts: list[_Count] = []
        self.rows: list[_Row] = []
        self.skipped_rows = 0
        k = self.k_hi
        for fam in problem.families:
            if isinstance(fam, GroupFamily):
                hi = np.minimum(fam.hi, fam.sizes).astype(np.float64)
                self.counts.append(
                    _Count(fam.name, fam.codes, fam.lo.astype(np.float64), hi,
                           np.zeros(fam.labels.size), reserve=bool((fam.lo > 0).any()))
                )
            elif isinstance(fam, ShareFamily):
                a = fam.a_mask.astype(np.float64)
                b = fam.b_mask.astype(np.float64)
                if fam.b_mask.all():
                    lo = 0.0 if fam.lo is None else math.ceil(fam.lo * k - 1e-9)
                    hi = float(k) if fam.hi is None else math.floor(fam.hi * k + 1e-9)
                    if self.k_lo == self.k_hi:
                        # fixed budget: the share is exactly a count on the mask and on its complement
                        codes = np.where(fam.a_mask, 0, 1).astype(np.int64)
                        self.counts.append(_Count(
                            fam.name, codes, np.array([lo, k - hi]), np.array([hi, k - lo]), np.zeros(2),
                            reserve=True,
                        ))
                        continue
                    codes = np.where(fam.a_mask, 0, -1).astype(np.int64)
                    self.counts.append(
                        _Count(fam.name, codes, np.array([lo]), np.array([hi]), np.zeros(1), reserve=lo > 0)
                    )
                if fam.lo is not None and fam.lo > 0:
                    self._add_row(f"{fam.name}.lo", a - fam.lo * b, 0.0, math.inf)
                if fam.hi is not None and fam.hi < 1:
                    self._add_row(f"{fam.name}.hi", a - fam.hi * b, -math.inf, 0.0)
            elif isinstance(fam, LinearFamily):
                dense_rows = fam.matrix.shape[0]
                for r in range(dense_rows):
                    self._add_row(f"{fam.name}[{r}]", fam.matrix[r].toarray().ravel(), fam.lo[r], fam.hi[r])
        self.free = [max(0.0, k - float(c.lo.sum())) for c in self.counts]
        self.nested = self._nested_reservations()

    def _nested_reservations(self) -> list[tuple]:
        """(cap family, floor family, floor groups nested in one cap group, reserve per cap group).

        A floor group whose members all lie in one capped group (video sources inside the video
        share cap) must get its floor out of that cap, so phase 1 keeps hi_G − Σ nested lo free of
        items that do not fill those floors — otherwise the cap fills first and the floor starves.
        """
        out = []
        for ci, c in enumerate(self.counts):
            if not np.isfinite(c.hi).any():
                continue
            c_valid = c.codes >= 0
            biggest = int(np.bincount(c.codes[c_valid]).max()) if c_valid.any() else 0
            for fi, f in enumerate(self.counts):
                if fi == ci or not f.has_floor:
                    continue
                f_valid = f.codes >= 0
                f_size = np.bincount(f.codes[f_valid], minlength=f.lo.size)
                # only a floor group no bigger than the biggest capped group can nest in one
                candidate = (f.lo > 0) & (f_size <= biggest)
                if not candidate.any():
                    continue
                member = f_valid & candidate[np.maximum(f.codes, 0)]
                if not member.any():
                    continue
                fg, cg = f.codes[member], c.codes[member]
                lo_c = np.full(f.lo.size, np.iinfo(np.int64).max)
                hi_c = np.full(f.lo.size, -2)
                np.minimum.at(lo_c, fg, cg)
                np.maximum.at(hi_c, fg, cg)
                nested = (lo_c == hi_c) & (lo_c >= 0) & (f.lo > 0)
                if not nested.any():
                    continue
                inside = np.where(nested, lo_c, 0)
                reserve = np.bincount(inside[nested], weights=f.lo[nested], minlength=c.lo.size)
                if (reserve > 0).any():
                    out.append((ci, fi, nested, inside, reserve))
        return out

    def _add_row(self, name, w, lo, hi) -> None:
        if len(self.rows) >= MAX_WEIGHTED_ROWS:
            self.skipped_rows += 1
            return
        self.rows.append(_Row(name, np.asarray(w, dtype=np.float64), float(lo), float(hi)))

    # ----------------------------------------------------------------- bookkeeping

    def _apply(self, add: np.ndarray, remove: np.ndarray) -> None:
        self.x[add] = True
        self.x[remove] = False
        self.total += int(add.size) - int(remove.size)
        for c in self.counts:
            for items, sign in ((add, 1.0), (remove, -1.0)):
                codes = c.codes[items]
                codes = codes[codes >= 0]
                if codes.size:
                    np.add.at(c.count, codes, sign)  # O(items), not O(groups): 1M video groups
        for row in self.rows:
            row.act += float(row.w[add].sum()) - float(row.w[remove].sum())

    def surplus(self, c: _Count) -> float:
        """Selected items that do not help a floor of ``c`` (they use its free budget)."""
        f = c.floored
        return self.total - float(np.minimum(c.count[f], c.lo[f]).sum())

    # ----------------------------------------------------------------- phase 1

    def fill(self, block_min: int = 4096) -> None:
        """Score order with upper-bound checks and floor reservation (phase 1)."""
        order = self.order
        pos = 0
        rows1 = [r for r in self.rows if r.phase1]
        length = 0
        while pos < order.size and self.total < self.k_hi:
            if (self.by_score and self.scores[order[pos]] <= 0 and self.total >= self.k_lo
                    and not self._floors_open()):
                break
            saturated = [c for c, free in zip(self.counts, self.free)
                         if c.reserve and self.surplus(c) >= free - 0.5]
            if saturated and length:
                # only items that fill an open floor of every saturated family can still join:
                # drop the rest of the order at once instead of scanning it block by block
                rest = order[pos:]
                keep = np.ones(rest.size, dtype=bool)
                for c in saturated:
                    codes = c.codes[rest]
                    open_ = np.zeros(c.lo.size + 1, dtype=bool)
                    open_[:-1] = c.count < c.lo
                    keep &= open_[codes]  # code -1 indexes the trailing False
                order, pos, length = rest[keep], 0, 0
                if order.size == 0:
                    break
            # a block ≈ 4× the budget left; doubled while blocks accept little (deep scans for floors)
            length = min(order.size - pos, max(block_min, 4 * (self.k_hi - self.total), 2 * length))
            taken_before = self.total
            items = order[pos : pos + length]
            rankers = [_Ranker(c.codes[items]) for c in self.counts]
            codes = [c.codes[items] for c in self.counts]
            positive = self.scores[items] > 0
            weights = [r.w[items] for r in rows1]
            surplus = [self.surplus(c) for c in self.counts]

            others_before = []
            for ci, fi, nested, inside, reserve in self.nested:
                f = self.counts[fi]
                filled = np.bincount(inside[nested], weights=np.minimum(f.count, f.lo)[nested],
                                     minlength=reserve.size)
                others_before.append(self.counts[ci].count - filled)

            def rule(acc, items=items, rankers=rankers, codes=codes, positive=positive,
                     weights=weights, surplus=surplus, others_before=others_before):
                ok = np.ones(items.size, dtype=bool)
                fills_any = np.zeros(items.size, dtype=bool)
                fills_of = []
                for c, rk, cd, free, sur in zip(self.counts, rankers, codes, self.free, surplus):
                    valid = rk.valid
                    g = np.where(valid, cd, 0)
                    r = c.count[g] + rk(acc)
                    ok &= ~valid | (r < c.hi[g])
                    fills = valid & (r < c.lo[g])
                    fills_of.append(fills)
                    if c.has_floor:
                        fills_any |= fills
                        if c.reserve:
                            s = acc & ~fills
                            ok &= fills | (sur + _excl_cumsum(s) < free)
                for (ci, fi, nested, _inside, reserve), before in zip(self.nested, others_before):
                    rk = rankers[ci]
                    g = np.where(rk.valid, codes[ci], 0)
                    fg = codes[fi]
                    helps = fills_of[fi] & nested[np.maximum(fg, 0)] & (fg >= 0)
                    other = rk.valid & ~helps
                    ok &= ~other | (before[g] + rk(acc & other) < self.counts[ci].hi[g] - reserve[g])
                before = self.total + _excl_cumsum(acc.astype(np.int64))
                ok &= before < self.k_hi
                ok &= positive | fills_any | (before < self.k_lo)
                for row, w in zip(rows1, weights):
                    cum = row.act + _excl_cumsum(np.where(acc, w, 0.0))
                    if math.isfinite(row.hi):
                        ok &= (w <= 0) | (cum + w <= row.hi + TOL)
                    if math.isfinite(row.lo):
                        ok &= (w >= 0) | (cum + w >= row.lo - TOL)
                return ok

            acc, exact = _fixed_point(rule, items.size)
            self._apply(items[:exact][acc[:exact]], np.zeros(0, dtype=np.int64))
            pos += exact
            if self.total - taken_before > 0.1 * exact:
                length = 0  # the block was productive: back to ≈ 4× the budget left

    def _floors_open(self) -> bool:
        return any(bool((c.count[c.floored] < c.lo[c.floored]).any()) for c in self.counts)

    # ----------------------------------------------------------------- phase 2: repair

    def row_violations(self, form, x=None) -> np.ndarray:
        """Violation amount of every standard-form row (0 where satisfied)."""
        act = form.A @ (self.x if x is None else x).astype(np.float64)
        return np.maximum(form.row_lo - act, 0.0) + np.maximum(act - form.row_hi, 0.0)

    def _add_rule(self, items, limit_codes=None, limit=None):
        """Sequential check for adding ``items`` (best first): no count above hi, no row worse."""
        rankers = [_Ranker(c.codes[items]) for c in self.counts]
        codes = [c.codes[items] for c in self.counts]
        weights = [r.w[items] for r in self.rows]
        target = _Ranker(limit_codes) if limit_codes is not None else None

        def rule(acc):
            ok = np.ones(items.size, dtype=bool)
            for c, rk, cd in zip(self.counts, rankers, codes):
                g = np.where(rk.valid, cd, 0)
                ok &= ~rk.valid | (c.count[g] + rk(acc) < c.hi[g])
            for row, w in zip(self.rows, weights):
                new = row.act + _excl_cumsum(np.where(acc, w, 0.0)) + w
                ok &= (w <= 0) | (new <= max(row.hi, row.act) + TOL)
                ok &= (w >= 0) | (new >= min(row.lo, row.act) - TOL)
            if target is not None:
                ok &= target(acc) < limit
            return ok

        return rule

    def _remove_rule(self, items, limit_codes=None, limit=None):
        """Sequential check for removing ``items`` (worst first): no count below lo, no row worse."""
        rankers = [_Ranker(c.codes[items]) for c in self.counts]
        codes = [c.codes[items] for c in self.counts]
        weights = [r.w[items] for r in self.rows]
        target = _Ranker(limit_codes) if limit_codes is not None else None

        def rule(acc):
            ok = np.ones(items.size, dtype=bool)
            for c, rk, cd in zip(self.counts, rankers, codes):
                if not c.has_floor:
                    continue
                g = np.where(rk.valid, cd, 0)
                ok &= ~rk.valid | (c.count[g] - rk(acc) - 1 >= c.lo[g])
            for row, w in zip(self.rows, weights):
                new = row.act - _excl_cumsum(np.where(acc, w, 0.0)) - w
                ok &= (w >= 0) | (new <= max(row.hi, row.act) + TOL)
                ok &= (w <= 0) | (new >= min(row.lo, row.act) - TOL)
            if target is not None:
                ok &= target(acc) < limit
            return ok

        return rule

    def _best_addable(self, cand: np.ndarray, want: int) -> np.ndarray:
        """The best ``want`` candidates that can join together, searching a growing window."""
        window = 50 * want + 1000
        while True:
            part = cand[:window]
            got = self._accepted(part, self._add_rule(part))
            if got.size >= want or part.size == cand.size:
                return got[:want]
            window *= 16

    def _accepted(self, items, rule) -> np.ndarray:
        if items.size == 0:
            return items
        acc, exact = _fixed_point(rule, items.size)
        return items[:exact][acc[:exact]]

    def _try_swap(self, form, adds, rems, n_add, n_rem, before) -> bool:
        """Apply the first n_add adds and n_rem removals if no row gets worse; halve until it does."""
        while n_add + n_rem > 0:
            a, r = adds[:n_add], rems[:n_rem]
            x = self.x.copy()
            x[a] = True
            x[r] = False
            after = self.row_violations(form, x)
            if (after <= before + 1e-7).all() and after.sum() < before.sum() - 1e-9:
                self._apply(a, r)
                return True
            n_add, n_rem = n_add // 2, n_rem // 2
        return False

    def repair(self, form, max_rounds: int = 400) -> list[str]:
        """Swap until every row holds or nothing helps; returns the rows left violated (names)."""
        stuck: set = set()
        problem = self.problem
        order = self.order
        for _ in range(max_rounds):
            before = self.row_violations(form)
            bad = np.flatnonzero(before > 1e-9)
            bad = [int(r) for r in bad if int(r) not in stuck]
            if not bad:
                break
            progressed = False
            # group floors: all starved groups of one family at once
            fam_of = form.row_family[bad]
            for fam_index in np.unique(fam_of[fam_of >= 0]):
                fam = problem.families[int(fam_index)]
                if not isinstance(fam, GroupFamily):
                    continue
                rows = np.asarray(bad)[fam_of == fam_index]
                groups = form.row_group[rows]
                low = fam.counts(self.x.astype(np.float64))[groups] < fam.lo[groups] - 1e-9
                if low.any() and (
                    self._fill_groups(form, fam, groups[low], order, before)
                    or self._eject_fill(form, fam, groups[low], order, before)
                ):
                    progressed = True
                    break
                # nothing helped (or a group is above its cap, which phase 1 never causes):
                # these rows are left to the final check and the HiGHS fallback
                stuck.update(int(r) for r in rows)
            if progressed:
                continue
            for r in bad:
                fam_index = int(form.row_family[r])
                if fam_index >= 0 and isinstance(problem.families[fam_index], GroupFamily):
                    continue
                if self._fix_row(form, r, order, before):
                    progressed = True
                    break
                stuck.add(r)
            if not progressed and all(r in stuck for r in bad):
                break
        left = np.flatnonzero(self.row_violations(form) > 1e-9)
        return [problem.row_name(int(r)) for r in left]

    def _fill_groups(self, form, fam: GroupFamily, groups, order, before) -> bool:
        """Raise starved groups of one family: their best addable members in, worst others out."""
        deficit = np.zeros(fam.labels.size)
        counts = fam.counts(self.x.astype(np.float64))
        deficit[groups] = fam.lo[groups] - counts[groups]
        cand = order[~self.x[order]]
        cand = cand[(fam.codes[cand] >= 0)]
        cand = cand[deficit[fam.codes[cand]] > 0]
        adds = self._accepted(cand, self._add_rule(cand, fam.codes[cand], deficit[fam.codes[cand]]))
        if adds.size == 0:
            return False
        sel = order[self.x[order]][::-1]
        sel = sel[(fam.codes[sel] < 0) | (deficit[np.maximum(fam.codes[sel], 0)] <= 0)]
        rems = self._accepted(sel, self._remove_rule(sel))
        room = self.k_hi - self.total
        n_add = int(min(adds.size, rems.size + room))
        n_rem = max(0, n_add - room)
        return n_add > 0 and self._try_swap(form, adds, rems, n_add, n_rem, before)

    def _eject_fill(self, form, fam: GroupFamily, groups, order, before) -> bool:
        """Raise starved groups whose members are blocked by a full group of another family: add
        them anyway, then eject the worst removable members of every over-full group (and of the
        budget). Kept only when no row gets worse; the batch is halved until it is."""
        counts = fam.counts(self.x.astype(np.float64))
        deficit = np.zeros(fam.labels.size)
        deficit[groups] = fam.lo[groups] - counts[groups]
        cand = order[~self.x[order]]
        cand = cand[fam.codes[cand] >= 0]
        cand = cand[deficit[fam.codes[cand]] > 0]
        if cand.size == 0:
            return False
        rank = _Ranker(fam.codes[cand])(np.ones(cand.size, dtype=bool))
        adds = cand[rank < deficit[fam.codes[cand]]]
        n_add = adds.size
        empty = np.zeros(0, dtype=np.int64)
        target_total = self.total
        while n_add > 0:
            a = adds[:n_add]
            self._apply(a, empty)
            fresh = np.zeros(self.n, dtype=bool)
            fresh[a] = True
            removed = []
            for c in self.counts:
                over = c.count - c.hi
                if not (over > 0).any():
                    continue
                sel = order[self.x[order] & ~fresh[order]][::-1]
                g = c.codes[sel]
                sel = sel[(g >= 0) & (over[np.maximum(g, 0)] > 0)]
                r = self._accepted(sel, self._remove_rule(sel, c.codes[sel], over[c.codes[sel]]))
                self._apply(empty, r)
                removed.append(r)
            excess = self.total - self.k_hi
            if excess > 0:
                sel = order[self.x[order] & ~fresh[order]][::-1]
                r = self._accepted(sel, self._remove_rule(sel))[:excess]
                self._apply(empty, r)
                removed.append(r)
            refill = empty
            if self.total < target_total:  # ejections freed budget: refill with the best addable
                gone = np.zeros(self.n, dtype=bool)
                for r in removed:
                    gone[r] = True
                refill = self._best_addable(order[~self.x[order] & ~gone[order]], target_total - self.total)
                self._apply(refill, empty)
            after = self.row_violations(form)
            if (after <= before + 1e-7).all() and after.sum() < before.sum() - 1e-9:
                return True
            gone = np.concatenate(removed) if removed else empty
            self._apply(gone, np.concatenate([a, refill]))
            n_add //= 2
        return False

    def _fix_row(self, form, r: int, order, before) -> bool:
        """Fix one generic row by swaps: raise it (floor) or lower it (ceiling)."""
        A = form.A
        w = np.zeros(self.n)
        start, end = A.indptr[r], A.indptr[r + 1]
        w[A.indices[start:end]] = A.data[start:end]
        act = float(w @ self.x)
        if act < form.row_lo[r]:
            sign, need = 1.0, form.row_lo[r] - act
        else:
            sign, need = -1.0, act - form.row_hi[r]
        gain = sign * w
        unsel, sel = order[~self.x[order]], order[self.x[order]][::-1]
        room = self.k_hi - self.total
        slack = self.total - self.k_lo
        for mode in ("add", "remove"):
            if mode == "add":
                cand_a = unsel[gain[unsel] > 0]
                cand_r = sel[gain[sel] <= 0]
            else:
                cand_a = unsel[gain[unsel] >= 0]
                cand_r = sel[gain[sel] < 0]
            adds = self._accepted(cand_a, self._add_rule(cand_a))
            rems = self._accepted(cand_r, self._remove_rule(cand_r))
            if mode == "add":
                n = np.arange(min(adds.size, rems.size + max(room, 0)) + 1)
                n_rem = np.maximum(0, n - room)
                g = np.r_[0.0, np.cumsum(gain[adds])][n] - np.r_[0.0, np.cumsum(gain[rems])][n_rem]
                n_adds = n
            else:
                n = np.arange(min(rems.size, adds.size + max(slack, 0)) + 1)
                n_adds = np.minimum(n, adds.size)
                n_adds = np.maximum(n_adds, 0)
                n_rem = n
                g = np.r_[0.0, np.cumsum(gain[adds])][n_adds] - np.r_[0.0, np.cumsum(gain[rems])][n_rem]
            if n.size <= 1:
                continue
            hit = np.flatnonzero(g >= need - 1e-9)
            i = int(hit[0]) if hit.size else int(np.argmax(g))
            if g[i] <= 0:
                continue
            if self._try_swap(form, adds, rems, int(n_adds[i]), int(n_rem[i]), before):
                return True
        return False


# --------------------------------------------------------------------------- backend


def run_greedy(problem, form=None, order=None) -> tuple[np.ndarray, list[str], dict]:
    """Phase 1 + repair; returns (indices, names of rows still violated, timings)."""
    form = form or problem.standard_form()
    start = time.perf_counter()
    g = Greedy(problem, order=order)
    g.fill()
    fill_s = time.perf_counter() - start
    left = g.repair(form)
    info = dict(fill_seconds=fill_s, repair_seconds=time.perf_counter() - start - fill_s,
                skipped_rows=g.skipped_rows)
    return np.flatnonzero(g.x), left, info


def guided_pass(problem, form, result) -> tuple[np.ndarray, list[str]]:
    """The greedy again, in LP order: reduced cost d = c − Aᵀy first (items the LP takes whole
    have d ≥ 0, items it leaves have d ≤ 0), then the LP value, then the score. The LP is almost
    integral, so this pass lands next to the optimum at the cost of one more greedy run."""
    x_lp = np.zeros(problem.n)
    x_lp[result.core] = result.x_core
    order = np.lexsort((-problem.scores, -np.round(x_lp, 9), -np.round(result.reduced, 9)))
    idx, left, _ = run_greedy(problem, form, order=order)
    return idx, left


def solve(problem, options):
    """Greedy + repair; a certified LP bound (``bound=False`` skips it); HiGHS if repair fails."""
    from gdo_opt.solvers import pricing

    extra = options.extra
    deadline = None if options.time_limit is None else time.perf_counter() + float(options.time_limit)
    start = time.perf_counter()
    form = problem.standard_form()
    indices, left, info = run_greedy(problem, form)
    seconds = time.perf_counter() - start
    notes = [f"greedy {indices.size} items in {seconds:.2f}s"]
    if left:
        shown = ", ".join(left[:5]) + (f" (+{len(left) - 5} more)" if len(left) > 5 else "")
        notes.append(f"repair left {len(left)} row(s) violated ({shown}); asking HiGHS")
        sel = _highs_fallback(problem, options, deadline)
        sel.solver = "greedy"
        sel.message = "; ".join([*notes, sel.message])
        sel.info.update(info, fallback="highs")
        return sel
    sel = problem.empty_selection("greedy", "feasible", "")
    sel.indices = indices
    sel.objective = problem.objective(indices)
    sel.info.update(info)
    if extra.get("bound", True):
        result = pricing.lp_bound(problem, extra=indices, deadline=deadline, threads=options.threads)
        sel.info["bound_iterations"] = result.iterations
        if result.status == "optimal":
            sel.bound = result.bound
            notes.append(f"LP bound {sel.bound:.6g} (core {result.core.size}, {len(result.iterations)} "
                         f"pricing round(s))")
            if extra.get("guided", True):
                t = time.perf_counter()
                g_idx, g_left = guided_pass(problem, form, result)
                value = problem.objective(g_idx)
                notes.append(f"LP-guided pass {value:.6g} in {time.perf_counter() - t:.2f}s")
                sel.info["guided_objective"] = value
                if not g_left and value > sel.objective:
                    sel.indices, sel.objective = g_idx, value
            sel.gap = relative_gap(sel.objective, sel.bound)
            notes.append(f"certified gap {sel.gap:.3g}")
        else:
            notes.append(f"no LP bound ({result.status}: {result.message})")
    else:
        notes.append("bound skipped (bound=False)")
    sel.message = "; ".join(notes)
    return sel


def _highs_fallback(problem, options, deadline):
    from gdo_opt.solvers import highs

    opts = type(options)(
        time_limit=None if deadline is None else max(1.0, deadline - time.perf_counter()),
        mip_gap=max(options.mip_gap, 1e-2), seed=options.seed, threads=options.threads,
        verbose=options.verbose, extra={},
    )
    return highs.solve(problem, opts)
