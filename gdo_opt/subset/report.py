"""What a build did and why: report.json (deterministic) and the console summaries.

report.json carries no wall-clock number (they go to timings.json), so two runs with the same
inputs and seed give the same bytes. report.html is ``report_html``.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

FIELDS = ("bucket", "source_group", "duration_bucket", "temporal_category", "question_form",
          "q_len_bucket", "a_len_bucket")


_SECONDS = re.compile(r"\b\d+\.\d+ ?s\b")  # how the solvers quote phase times ("in 0.22s")


def timeless_message(message) -> str:
    """The solver's message for report.json: one line, phase seconds replaced by "…" (they differ
    between two runs of the same inputs; the full message goes to timings.json)."""
    return _SECONDS.sub("…", " ".join(str(message).split()))


def _num(x) -> float | None:
    """JSON-safe, stable float: 6 significant digits; None for NaN/inf."""
    if x is None:
        return None
    x = float(x)
    if not math.isfinite(x):
        return None
    return float(f"{x:.6g}")


def js_divergence(p_counts: np.ndarray, q_counts: np.ndarray) -> float:
    """Jensen–Shannon divergence (base 2, in [0, 1]) between two count vectors."""
    if p_counts.sum() == 0 or q_counts.sum() == 0:
        return math.nan
    # numpy, not scipy.spatial.distance.jensenshannon: that import alone costs ~1 s and ~20 MB in
    # `select`; tests/subset check the two agree
    p = np.asarray(p_counts, dtype=np.float64) / float(np.sum(p_counts))
    q = np.asarray(q_counts, dtype=np.float64) / float(np.sum(q_counts))
    m = 0.5 * (p + q)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log2(p / m), 0.0).sum()
        kl_q = np.where(q > 0, q * np.log2(q / m), 0.0).sum()
    return float(max(0.0, 0.5 * (kl_p + kl_q)))


def field_distributions(frame: pd.DataFrame, subsets: dict[str, np.ndarray], fields=FIELDS) -> dict:
    """Per field: counts and shares in the pool and each subset, plus JS divergence vs the pool."""
    out = {}
    for name in fields:
        if name not in frame.columns:
            continue
        codes, labels = pd.factorize(frame[name], sort=True)
        pool = np.bincount(codes, minlength=labels.size).astype(np.float64)
        entry = {"pool": {str(lab): int(c) for lab, c in zip(labels, pool)}}
        for subset, idx in subsets.items():
            counts = np.bincount(codes[idx], minlength=labels.size).astype(np.float64)
            entry[subset] = {str(lab): int(c) for lab, c in zip(labels, counts) if c > 0}
            entry[f"js_{subset}_vs_pool"] = _num(js_divergence(counts, pool))
        out[name] = entry
    return out


def _summary(values: np.ndarray) -> dict:
    ok = values[np.isfinite(values)]
    if ok.size == 0:
        return {"count": 0}
    q = np.percentile(ok, [10, 50, 90])
    return {"count": int(ok.size), "mean": _num(ok.mean()), "p10": _num(q[0]), "median": _num(q[1]),
            "p90": _num(q[2])}


def descriptor_summaries(values: dict[str, np.ndarray], subsets: dict[str, np.ndarray]) -> dict:
    out = {}
    for name in sorted(values):
        v = values[name]
        out[name] = {"pool": _summary(v), **{s: _summary(v[idx]) for s, idx in subsets.items()}}
    return out


def clean_constraint_rows(rows: list[dict]) -> list[dict]:
    """Engine constraint table made JSON-safe (inf -> None, numpy -> Python)."""
    out = []
    for row in rows:
        clean = {}
        for key, value in row.items():
            if isinstance(value, (bool, np.bool_)):
                clean[key] = bool(value)
            elif isinstance(value, (int, np.integer)):
                clean[key] = int(value)
            elif isinstance(value, (float, np.floating)):
                clean[key] = _num(value)
            else:
                clean[key] = None if value is None else str(value)
        out.append(clean)
    return out


# ------------------------------------------------------------------------------------------ console


def print_summary(report: dict, console=None) -> None:
    """Rich tables on stderr (80 columns): solve result, constraint families, field shares, missing."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from gdo_opt.subset.report_html import fmt

    console = console or Console(stderr=True)
    s, b = report["solve"], report["budget"]
    console.print(f"[bold]{report['preset']['name']}[/]: {fmt(report['selected'])} selected of "
                  f"{fmt(report['pool']['eligible'])} (K = {fmt(b['k'])}, {b['kind']} budget)", highlight=False)
    console.print(f"solver {s['solver']}: {s['status']}, objective {fmt(s['objective'])}, bound {fmt(s['bound'])}, "
                  f"gap {_gap(s['gap'])}", highlight=False)
    table = Table(title="constraints", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("family", "scope", "lo", "hi", "achieved", "binding"):
        table.add_column(col, no_wrap=True, overflow="ellipsis",
                         justify="right" if col in ("lo", "hi", "achieved", "binding") else "left")
    detailed = {r["name"] for r in report["constraints"] if r.get("group") == "*"}
    for row in report["constraints"]:
        star = row.get("group") == "*"
        if row["name"] in detailed and not star:
            continue  # per-group rows live in report.json / report.html
        binding = f"{row.get('binding')}/{row.get('bounded_groups')}" if star else ("yes" if row.get("binding") else "")
        scope = "all groups" if star else ("" if row.get("group") is None else str(row["group"])[:18])
        table.add_row(str(row["name"]), scope, fmt(row.get("lo"), 4), fmt(row.get("hi"), 4),
                      fmt(row.get("achieved"), 4), binding)
    console.print(table)
    fields = Table(title="JS divergence vs pool", box=box.SIMPLE_HEAD, pad_edge=False)
    fields.add_column("field")
    fields.add_column("JS 1x", justify="right")
    fields.add_column("JS uni", justify="right")
    for name, entry in report["fields"].items():
        fields.add_row(name, fmt(entry.get("js_gdo_1x_vs_pool"), 3), fmt(entry.get("js_uni_vs_pool"), 3))
    console.print(fields)
    missing = report.get("missing_descriptors")
    if missing:
        console.print(f"descriptors: {missing['text']}", highlight=False)


def _gap(gap) -> str:
    """Short gap for narrow tables: 0, 2e-05, 0.013."""
    if gap is None:
        return "-"
    if gap == 0:
        return "0"
    return f"{gap:.0e}" if abs(gap) < 1e-3 else f"{gap:.2g}"


def summary_table(reports: list[dict], console=None) -> None:
    """One row per preset (used by `build` and `demo`)."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console(stderr=True)
    from rich import box

    solvers = sorted({r["solve"]["solver"] for r in reports})
    # one space between columns and no edge padding: 9 columns fit 80 characters at 1M-row sizes
    table = Table(title="GDO subsets", caption=f"solver: {', '.join(solvers)}; video = video share, "
                  "temporal = temporal share of video, no ρ = candidates without descriptors",
                  box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 0), caption_justify="left")
    for col in ("preset", "K", "status", "objective", "gap", "video", "temporal", "uni", "no ρ"):
        table.add_column(col, no_wrap=True, min_width=len(col), justify="left" if col in ("preset", "status") else "right")

    def short(x, digits=4):
        return "" if x is None or x == "" else f"{x:.{digits}g}"

    for r in reports:
        shares = {row["name"]: row for row in r["constraints"]}
        table.add_row(
            r["preset"]["name"], str(r["selected"]), r["solve"]["status"],
            short(r["solve"]["objective"], 6), _gap(r["solve"]["gap"]),
            short(shares.get("video_share", {}).get("achieved", ""), 3),
            short(shares.get("temporal_share", {}).get("achieved", ""), 3),
            str(r.get("baseline", {}).get("size", "")), str(r["score"]["missing_candidates"]),
        )
    console.print(table)
    texts = {r["preset"]["name"]: r.get("missing_descriptors", {}).get("text", "") for r in reports}
    if len(set(texts.values())) == 1:
        console.print(f"descriptors: {next(iter(texts.values()))}", highlight=False)
    else:
        for name, text in texts.items():
            console.print(f"descriptors ({name}): {text}", highlight=False)


def output_names(config, with_baseline: bool) -> dict:
    """The file names one select run publishes, as listed in report.json (one list for every goal kind)."""
    names = {"gdo_1x": "gdo_1x.jsonl", "report": "report.json", "timings": "timings.json"}
    if with_baseline:
        names["baseline"] = f"uni_{config.baseline_multiplier:g}x.jsonl"
    if config.html:
        names["html"] = "report.html"
    if config.parquet:
        names.update({f"{k}_parquet": v.replace(".jsonl", ".parquet")
                      for k, v in list(names.items()) if v.endswith(".jsonl")})
    return names
