"""Phase 2 of the greedy (``solvers/greedy/``): repair by swaps.

Every row still violated after phase 1 (``fill.py``) — a floor that caps/dedup
starved, a share inside a sub-pool, a generic row — is fixed by swaps: best candidates that raise it
in, worst selected ones whose removal breaks nothing out, in batches that are kept only when no row
gets worse. Rows that stay violated are reported by name (``solve`` then asks HiGHS).
"""

from __future__ import annotations

import numpy as np

from .fill import TOL, GreedyFill, _excl_cumsum, _fixed_point, _Ranker


class Greedy(GreedyFill):
    """The whole greedy: phase 1 (``fill``, from ``GreedyFill``) and phase 2 (``repair``)."""

    def row_violations(self, form, x=None) -> np.ndarray:
        """Violation amount of every standard-form row (0 where satisfied)."""
        act = form.A @ (self.x if x is None else x).astype(np.float64)
        return np.maximum(form.row_lo - act, 0.0) + np.maximum(act - form.row_hi, 0.0)

    def _add_rule(self, items, limit_codes=None, limit=None):
        """Sequential check for adding ``items`` (best first): no count above hi, no row worse."""
        return self._swap_rule(items, 1.0, limit_codes, limit)

    def _remove_rule(self, items, limit_codes=None, limit=None):
        """Sequential check for removing ``items`` (worst first): no count below lo, no row worse."""
        return self._swap_rule(items, -1.0, limit_codes, limit)

    def _swap_rule(self, items, sign: float, limit_codes, limit):
        """The rule for ``_fixed_point``: item j passes iff adding (``sign`` +1) or removing (−1) it
        after the earlier accepted items moves no count out of its bounds and no row further from
        its bounds; with ``limit_codes``, at most ``limit`` of its code are accepted."""
        adding = sign > 0
        rankers = [_Ranker(c.codes[items]) for c in self.counts]
        codes = [c.codes[items] for c in self.counts]
        deltas = [sign * r.w[items] for r in self.rows]  # change of each row activity per item
        target = _Ranker(limit_codes) if limit_codes is not None else None

        def rule(acc):
            ok = np.ones(items.size, dtype=bool)
            for c, rk, cd in zip(self.counts, rankers, codes):
                if not (adding or c.has_floor):
                    continue  # removing cannot break a count without floors
                g = np.where(rk.valid, cd, 0)
                if adding:
                    ok &= ~rk.valid | (c.count[g] + rk(acc) < c.hi[g])
                else:
                    ok &= ~rk.valid | (c.count[g] - rk(acc) - 1 >= c.lo[g])
            for row, d in zip(self.rows, deltas):
                new = row.act + _excl_cumsum(np.where(acc, d, 0.0)) + d
                ok &= (d <= 0) | (new <= max(row.hi, row.act) + TOL)
                ok &= (d >= 0) | (new >= min(row.lo, row.act) - TOL)
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
        for _ in range(max_rounds):  # bounded: at most max_rounds passes, and never past the deadline
            if self.out_of_time():
                break
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
                if not fam.counted:
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
                if fam_index >= 0 and problem.families[fam_index].counted:
                    continue
                if self._fix_row(form, r, order, before):
                    progressed = True
                    break
                stuck.add(r)
            if not progressed and all(r in stuck for r in bad):
                break
        left = np.flatnonzero(self.row_violations(form) > 1e-9)
        return [problem.row_name(int(r)) for r in left]

    def _fill_groups(self, form, fam, groups, order, before) -> bool:
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

    def _eject_fill(self, form, fam, groups, order, before) -> bool:
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
