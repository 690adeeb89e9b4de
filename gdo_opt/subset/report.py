"""What a build did and why: report.json (deterministic), a rich summary, report.html with plots.

report.json carries no wall-clock numbers except under ``timing`` so two runs with the same
inputs and seed can be compared byte for byte once ``timing`` is dropped.
"""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.spatial.distance import jensenshannon

from gdo_opt.atomic import write_text

FIELDS = ("bucket", "source_group", "duration_bucket", "temporal_category", "question_form",
          "q_len_bucket", "a_len_bucket")


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
    return float(jensenshannon(p_counts, q_counts, base=2) ** 2)


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
    """Rich tables on stderr: solve result, budget, constraints, field shares."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console(stderr=True)
    s = report["solve"]
    console.print(
        f"[bold]{report['preset']['name']}[/]: {report['selected']} selected of {report['pool']['eligible']} "
        f"(K = {report['budget']['k']}, {report['budget']['kind']}) | solver {s['solver']} "
        f"{s['status']} | objective {s['objective']} | bound {s['bound']} | gap {s['gap']}"
    )
    table = Table(title="constraints", show_lines=False)
    for col in ("name", "group", "lo", "hi", "achieved", "binding"):
        table.add_column(col, justify="right" if col in ("lo", "hi", "achieved") else "left")
    for row in report["constraints"]:
        if row.get("group") not in (None, "*") and row["name"] == "stratum_quota":
            continue  # per-stratum detail lives in report.json
        table.add_row(str(row["name"]), "" if row.get("group") is None else str(row["group"]),
                      str(row.get("lo")), str(row.get("hi")), str(row.get("achieved")), str(row.get("binding")))
    console.print(table)
    fields = Table(title="subset vs pool (Jensen–Shannon divergence, base 2)")
    fields.add_column("field")
    fields.add_column("JS 1x", justify="right")
    fields.add_column("JS uni", justify="right")
    for name, entry in report["fields"].items():
        fields.add_row(name, str(entry.get("js_gdo_1x_vs_pool")), str(entry.get("js_uni_vs_pool", "")))
    console.print(fields)


def summary_table(reports: list[dict], console=None) -> None:
    """One row per preset (used by `build` and `demo`)."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console(stderr=True)
    from rich import box

    solvers = sorted({r["solve"]["solver"] for r in reports})
    table = Table(title="GDO subsets", caption=f"solver: {', '.join(solvers)}", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("preset", "K", "status", "objective", "gap", "video", "temp/video", "uni", "no ρ"):
        table.add_column(col, no_wrap=True, min_width=len(col), justify="left" if col in ("preset", "status") else "right")

    def short(x, digits=4):
        return "" if x is None or x == "" else f"{x:.{digits}g}"

    for r in reports:
        shares = {row["name"]: row for row in r["constraints"]}
        table.add_row(
            r["preset"]["name"], str(r["selected"]), r["solve"]["status"],
            short(r["solve"]["objective"], 6), short(r["solve"]["gap"], 2),
            short(shares.get("video_share", {}).get("achieved", ""), 3),
            short(shares.get("temporal_share", {}).get("achieved", ""), 3),
            str(r.get("baseline", {}).get("size", "")), str(r["score"]["missing_candidates"]),
        )
    console.print(table)


# ------------------------------------------------------------------------------------------ html


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, metadata={"Software": None})
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def write_html(path: str | Path, report: dict, rho: np.ndarray, subsets: dict[str, np.ndarray]) -> None:
    """report.html: score distribution selected vs pool and shares per field, as embedded PNGs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images = []
    fig, ax = plt.subplots(figsize=(7, 3.2))
    bins = np.histogram_bin_edges(rho, bins=50)
    ax.hist(rho, bins=bins, density=True, alpha=0.45, label=f"pool ({rho.size})")
    for name, idx in subsets.items():
        if idx.size:
            ax.hist(rho[idx], bins=bins, density=True, histtype="step", linewidth=1.6, label=f"{name} ({idx.size})")
    ax.set_xlabel("ρ (shared score)")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    fig.tight_layout()
    images.append(("score distribution", _png(fig)))
    plt.close(fig)

    for name, entry in report["fields"].items():
        labels = list(entry["pool"])[:20]
        pool_total = sum(entry["pool"].values()) or 1
        fig, ax = plt.subplots(figsize=(7, 0.3 * len(labels) + 1.2))
        y = np.arange(len(labels))
        series = [("pool", entry["pool"])] + [(s, entry.get(s, {})) for s in subsets]
        height = 0.8 / len(series)
        for k, (sname, counts) in enumerate(series):
            total = sum(counts.values()) or 1
            share = [counts.get(lab, 0) / (pool_total if sname == "pool" else total) for lab in labels]
            ax.barh(y + k * height, share, height=height, label=sname)
        ax.set_yticks(y + 0.4 - height / 2, labels, fontsize=7)
        ax.set_xlabel("share")
        ax.set_title(name, fontsize=9)
        ax.legend(fontsize=7)
        fig.tight_layout()
        images.append((f"shares: {name}", _png(fig)))
        plt.close(fig)

    rows = "".join(
        f"<tr><td>{html.escape(str(r['name']))}</td><td>{html.escape(str(r.get('group', '')))}</td>"
        f"<td>{r.get('lo')}</td><td>{r.get('hi')}</td><td>{r.get('achieved')}</td><td>{r.get('binding')}</td></tr>"
        for r in report["constraints"]
    )
    s = report["solve"]
    body = [
        f"<h1>GDO subset: {html.escape(report['preset']['name'])}</h1>",
        f"<p>{report['selected']} selected of {report['pool']['eligible']} eligible; solver {html.escape(s['solver'])}, "
        f"status {html.escape(s['status'])}, objective {s['objective']}, bound {s['bound']}, gap {s['gap']}.</p>",
        f"<p>Budget: {html.escape(str(report['budget']))}</p>",
        "<h2>Constraints</h2><table border=1 cellspacing=0><tr><th>name</th><th>group</th><th>lo</th>"
        f"<th>hi</th><th>achieved</th><th>binding</th></tr>{rows}</table>",
    ]
    body += [f"<h2>{html.escape(t)}</h2><img src='data:image/png;base64,{b}'/>" for t, b in images]
    write_text(path, "<!doctype html><meta charset='utf-8'><title>GDO report</title>\n" + "\n".join(body) + "\n")
