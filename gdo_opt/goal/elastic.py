"""Elastic lower bounds on top of SelectionProblem's public API: unit slack columns.

A soft row ``count_g ≥ lo_g`` becomes ``count_g + s_g ≥ lo_g`` where ``s_g`` is the number of
selected slack columns of group g (``lo_g`` unit columns, each labelled g in that family only and
in no other family). A slack column costs its weight in the objective (penalty mode) or is counted
by a stage objective (lexicographic mode: minimize weighted shortfall first, then maximize Σρ at that
shortfall, each stage fixed by a linear row before the next). Real columns come first, so column
``i < n_real`` is pool candidate ``i``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class _Family:
    name: str
    kind: str  # group | cap | exclusive
    labels: np.ndarray  # object labels of the real columns (None = no group)
    lo: dict | None
    hi: dict | float | None


@dataclass
class _Block:
    family: str
    labels: np.ndarray  # group label per slack column
    weight: float
    tier: str  # "hard" (relaxed hard rows) or "quota" (the builder's soft quotas)


@dataclass
class ElasticProblem:
    """Collects families and slack blocks, then builds SelectionProblems for any stage objective."""

    rho: np.ndarray  # objective of the real columns
    families: list[_Family] = field(default_factory=list)
    blocks: list[_Block] = field(default_factory=list)

    @property
    def n_real(self) -> int:
        return int(self.rho.size)

    @property
    def n(self) -> int:
        return self.n_real + sum(b.labels.size for b in self.blocks)

    def add(self, name: str, labels, lo: dict | None = None, hi=None, kind: str = "group",
            elastic: tuple[float, str] | None = None) -> None:
        """A family over the real columns; ``elastic=(weight, tier)`` makes its lower bounds soft."""
        labels = np.asarray(labels, dtype=object)
        self.families.append(_Family(name, kind, labels, lo, hi))
        if elastic is not None and lo:
            groups = [g for g, v in lo.items() if v > 0]
            counts = np.array([int(np.ceil(lo[g] - 1e-9)) for g in groups], dtype=np.int64)
            slack = np.repeat(np.asarray(groups, dtype=object), counts) if groups else np.zeros(0, dtype=object)
            self.blocks.append(_Block(name, slack, float(elastic[0]), elastic[1]))

    def block_columns(self) -> list[tuple[_Block, np.ndarray]]:
        out, start = [], self.n_real
        for b in self.blocks:
            out.append((b, np.arange(start, start + b.labels.size)))
            start += b.labels.size
        return out

    def stage_vector(self, real: np.ndarray | float, tiers: dict[str, float]) -> np.ndarray:
        """Objective over all columns: ``real`` on real columns, −weight·tiers[tier] on slack."""
        c = np.zeros(self.n)
        c[: self.n_real] = real
        for b, cols in self.block_columns():
            c[cols] = -b.weight * tiers.get(b.tier, 0.0)
        return c

    def build(self, objective: np.ndarray, fixed: list[tuple[np.ndarray, float]] = ()):
        """A SelectionProblem with ``objective``; ``fixed`` rows keep earlier stages: c·x ≥ value."""
        from gdo_opt.selection.problem import SelectionProblem

        problem = SelectionProblem(objective, budget=(0, self.n))
        pad = {b.family: [] for b in self.blocks}
        for b, _ in self.block_columns():
            pad[b.family].append(b.labels)
        for fam in self.families:
            parts = [fam.labels]
            for b in self.blocks:
                parts.append(b.labels if b.family == fam.name else np.full(b.labels.size, None, dtype=object))
            labels = np.concatenate(parts) if len(parts) > 1 else fam.labels
            if fam.kind == "cap":
                problem.add_cap(labels, at_most=fam.hi, name=fam.name)
            elif fam.kind == "exclusive":
                problem.add_exclusive(labels, name=fam.name)
            else:
                problem.add_group_bounds(labels, lo=fam.lo, hi=fam.hi, name=fam.name)
        for i, (coef, value) in enumerate(fixed):
            problem.add_linear(coef, lo=value, name=f"stage_{i}")
        return problem

    def shortfall(self, columns: np.ndarray) -> dict[str, dict[str, int]]:
        """Selected slack per family and group: how far each soft row is from its bound."""
        chosen = np.zeros(self.n, dtype=bool)
        chosen[np.asarray(columns, dtype=np.int64)] = True
        out: dict[str, dict[str, int]] = {}
        for b, cols in self.block_columns():
            picked = b.labels[chosen[cols]]
            if picked.size:
                g, c = np.unique(picked.astype(str), return_counts=True)
                out.setdefault(b.family, {}).update({str(k): int(v) for k, v in zip(g, c)})
        return out

    def fill_slack(self, real_columns: np.ndarray) -> np.ndarray:
        """Real columns + the fewest slack columns that make every elastic row hold (audits, warm starts)."""
        real_columns = np.asarray(real_columns, dtype=np.int64)
        x = np.zeros(self.n_real, dtype=bool)
        x[real_columns] = True
        extra = []
        for b, cols in self.block_columns():
            fam = next(f for f in self.families if f.name == b.family)
            have = {}
            sel = fam.labels[x]
            for g in set(b.labels.tolist()):
                have[g] = int(np.sum(sel == g))
            taken: dict = {}
            for j, g in zip(cols, b.labels):
                need = int(np.ceil(fam.lo[g] - 1e-9)) - have[g]
                if taken.get(g, 0) < need:
                    extra.append(j)
                    taken[g] = taken.get(g, 0) + 1
        return np.concatenate([real_columns, np.asarray(extra, dtype=np.int64)])
