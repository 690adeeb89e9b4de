"""report.html: report.json turned into a page a researcher can read, rendered with Jinja2.

The page is self-contained (CSS inline, plots as base64 PNG) and deterministic: it carries no
wall-clock number (those live in timings.json), and matplotlib's PNGs are written without a
timestamp, so the same inputs and seed give the same bytes. This module only builds the view
(numbers formatted, constraint rows grouped by family, budget and baseline in words); the layout
is ``templates/report.html``.
"""

from __future__ import annotations

import base64
import io
import math
from pathlib import Path

import numpy as np

from gdo_opt.atomic import write_text

TEMPLATES = Path(__file__).parent / "templates"
DASH = "—"


def fmt(x, digits: int = 6) -> str:
    """Numbers for people: integers with thousands separators, others to ``digits`` significant."""
    if x is None or isinstance(x, str):
        return DASH if x in (None, "") else x
    x = float(x)
    if not math.isfinite(x):
        return DASH
    if x == int(x) and abs(x) < 1e15:
        return f"{int(x):,}"
    return f"{x:.{digits}g}"


# ---------------------------------------------------------------------------------------- words
def budget_words(budget: dict, preset_budget: dict) -> list[str]:
    """The budget record as sentences: what the rule asked for, which limits applied, the result."""
    k, kind = budget.get("k"), budget.get("kind")
    out = []
    if str(kind).startswith("published"):
        return published_budget_words(budget)
    if kind == "override":
        out.append(f"K = {fmt(k)} samples, set on the command line ({budget.get('rule')}).")
    elif kind == "fixed":
        out.append(f"K = {fmt(k)} samples, fixed by the preset ({budget.get('rule')}).")
    elif kind == "ratio":
        out.append(f"K = {fmt(k)} samples: a fixed share of the {fmt(budget.get('pool'))} eligible "
                   f"candidates ({budget.get('rule')}).")
    else:
        per = preset_budget.get("per_stratum", "?")
        cover = preset_budget.get("tail_coverage", "?")
        out.append(
            f"K = {fmt(k)} samples, chosen from the pool itself. The {fmt(budget.get('pool'))} eligible "
            f"candidates fall into {fmt(budget.get('strata'))} strata whose effective number (exp of the "
            f"entropy of their shares) is {fmt(budget.get('effective_strata'), 4)}; {per} samples per "
            f"effective stratum ask for {fmt(budget.get('k_effective'))}, and {per} for each of the "
            f"{fmt(budget.get('tail_strata'))} largest strata that together hold {cover} of the pool ask "
            f"for {fmt(budget.get('k_tail'))}. The rule takes the larger.")
        limits = budget.get("limits") or {}
        if limits:
            listed = ", ".join(f"{name} {fmt(v)}" for name, v in limits.items())
            tight = min(limits.values())
            unlimited = max(budget.get("k_effective") or 0, budget.get("k_tail") or 0)
            if unlimited > tight:
                which = ", ".join(n for n, v in limits.items() if v == tight)
                out.append(f"Upper limits ({listed}): the request is capped at {fmt(tight)} by {which}.")
            else:
                out.append(f"Upper limits ({listed}): none of them binds.")
        if preset_budget.get("min") and budget.get("requested", 0) < preset_budget["min"]:
            out.append(f"The preset's minimum of {fmt(preset_budget['min'])} applies.")
    if budget.get("note"):
        out.append(budget["note"] + ".")
    out.append(f"At most {fmt(budget.get('reachable'))} rows can be chosen at all once dedup and the "
               "per-video cap are applied.")
    return out


def published_budget_words(budget: dict) -> list[str]:
    """The published builder's budget rule (paper goals) in words."""
    k, mode = budget.get("k"), budget.get("mode")
    if mode != "distribution_auto":
        return [f"K = {fmt(k)} samples ({mode}: {budget.get('requested_count', budget.get('requested_ratio', ''))})."]
    out = [f"K = {fmt(k)} samples by the published rule: the strata's effective number "
           f"{fmt(budget.get('effective_strata'), 4)} asks for {fmt(budget.get('n_from_effective_strata'))}, the "
           f"{fmt(budget.get('covered_strata'))} strata covering {budget.get('coverage_mass')} of the pool ask for "
           f"{fmt(budget.get('n_from_tail_coverage'))} (tail share {fmt(budget.get('tail_prob_at_coverage'), 4)}), "
           f"within [{fmt(budget.get('n_from_min_ratio'))}, {fmt(budget.get('n_from_max_ratio'))}] by ratio."]
    v = budget.get("vds3_adjustment") or {}
    if v.get("enabled"):
        out.append(f"VDS3 adjustment: {fmt(v.get('vds3_positive_count'))} of {fmt(v.get('vds3_total_count'))} "
                   f"metrics rows are VDS3-positive; {fmt(v.get('vds3_target_positive'))} of them ask for "
                   f"{fmt(v.get('n_from_vds3_positive'))}, capped at {fmt(v.get('vds3_adjust_cap'))}.")
    elif v:
        out.append(f"No VDS3 adjustment ({v.get('reason')}).")
    return out


def baseline_words(baseline: dict) -> tuple[str, str]:
    """(description, shortfall) of the Uni-kx baseline; shortfall is '' when it got its full size."""
    if not baseline.get("multiplier"):
        return "Skipped (--baseline-multiplier 0).", ""
    size, requested = baseline.get("size", 0), baseline.get("requested", 0)
    text = (f"A uniform random sample of {baseline['multiplier']} × K = {fmt(requested)} rows (seed "
            f"{baseline.get('seed')}) under the same dedup and per-video cap as the subset: "
            f"{fmt(size)} rows, drawn from {fmt(baseline.get('eligible'))} rows that survive dedup and the cap.")
    short = ""
    if size < requested:
        short = (f"{fmt(requested - size)} rows ({(requested - size) / requested:.0%}) short of Uni-"
                 f"{baseline['multiplier']}x: the pool has only {fmt(baseline.get('eligible'))} rows after "
                 "dedup and the cap, so the baseline is every one of them.")
    return text, short


# ---------------------------------------------------------------------------------- constraints
def _slack(row: dict) -> tuple[str, str]:
    """(slack text, css class) for one constraint row."""
    if row.get("violated"):
        return "violated", "violated"
    binding = row.get("binding")
    kind = row.get("kind")
    if row.get("group") == "*":
        n, of = int(binding or 0), row.get("bounded_groups", 0)
        text = f"{n} of {of} bounded groups at a bound"
        if kind in ("cap", "exclusive") and row.get("largest_group") is not None:
            text += f"; the fullest group has {fmt(row['largest_group'])}"
        return text, "binding" if n else ""
    lo, hi, got = row.get("lo"), row.get("hi"), row.get("achieved")
    if kind == "share":
        a, b = row.get("count", 0.0), row.get("of", 0.0)
        up = math.floor(hi * b - a + 1e-9) if hi is not None and hi < 1 else None
        down = math.floor(a - lo * b + 1e-9) if lo else None
        if binding:
            side = "exceed the upper bound" if up is not None and up < 1 else "fall below the lower bound"
            return f"none: one row more of this kind would {side}", "binding"
        bits = [f"{up} rows below the upper bound" if up is not None else "",
                f"{down} rows above the lower bound" if down is not None else ""]
        return "; ".join(b for b in bits if b) or "unbounded", ""
    if binding:
        at = "upper" if hi is not None and got is not None and abs(got - hi) < 1e-9 else "lower"
        if lo is not None and hi is not None and abs(lo - hi) < 1e-9:
            at = "fixed"
        return (f"none: at its {at} bound" if at != "fixed" else "none: fixed"), "binding"
    bits = []
    if hi is not None and got is not None:
        bits.append(f"{fmt(hi - got)} below the upper bound")
    if lo and got is not None:
        bits.append(f"{fmt(got - lo)} above the lower bound")
    return "; ".join(bits) or "unbounded", ""


def _row_view(row: dict, label: str) -> dict:
    slack, css = _slack(row)
    share = row.get("kind") == "share"
    achieved = fmt(row.get("achieved"), 4)
    if share:
        achieved = f"{row.get('achieved'):.4f} ({fmt(row.get('count'))} of {fmt(row.get('of'))})"
    lo, hi = row.get("lo"), row.get("hi")
    if share:  # a share of 0 .. 1 is no bound at all
        lo, hi = (None if lo == 0 else lo), (None if hi == 1 else hi)
    return {"group": label, "lo": fmt(lo, 4), "hi": fmt(hi, 4), "achieved": achieved,
            "slack": slack, "css": css}


def constraint_families(rows: list[dict], derivation: list[dict]) -> list[dict]:
    """Constraint rows grouped by family, in the order the build added them."""
    rules = {d.get("name"): d.get("rule", "") for d in derivation}
    order: list[str] = []
    by_name: dict[str, list[dict]] = {}
    for row in rows:
        if row["name"] not in by_name:
            order.append(row["name"])
        by_name.setdefault(row["name"], []).append(row)
    families = []
    for name in order:
        members = by_name[name]
        head = [r for r in members if r.get("group") in (None, "*") or r.get("kind") == "linear"]
        detail = [r for r in members if r not in head]
        binding = sum(int(r.get("binding") or 0) for r in (detail or head))
        violated = sum(int(r.get("violated") or 0) for r in (detail or head))
        fam = {
            "name": name, "kind": members[0].get("kind", ""), "rule": rules.get(name, ""),
            "group_header": "row" if members[0].get("kind") == "linear" else "scope",
            "rows": [_row_view(r, "all groups" if r.get("group") == "*" else
                               (str(r["group"]) if r.get("group") is not None else "whole subset")) for r in head],
            "details": [_row_view(r, str(r["group"])) for r in detail],
            "binding": f"{binding} binding" if binding else "",
            "violated": f"{violated} violated" if violated else "",
        }
        fam["detail_binding"] = sum(1 for r in fam["details"] if r["css"] == "binding")
        families.append(fam)
    return families


# ----------------------------------------------------------------------------------------- plots
def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight", metadata={"Software": None})
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def score_plot(rho: np.ndarray, subsets: dict[str, np.ndarray]) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 3.2))
    ok = np.isfinite(rho)
    bins = np.histogram_bin_edges(rho[ok], bins=50)
    ax.hist(rho[ok], bins=bins, density=True, alpha=0.45, label=f"pool ({ok.sum():,})")
    for name, idx in subsets.items():
        if idx.size:
            ax.hist(rho[idx], bins=bins, density=True, histtype="step", linewidth=1.6, label=f"{name} ({idx.size:,})")
    ax.set_xlabel("ρ (shared score)")
    ax.set_ylabel("density")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)  # outside: never on bars
    png = _png(fig)
    plt.close(fig)
    return png


def field_plot(name: str, entry: dict, subset_names: list[str], max_labels: int = 20) -> str:
    plt = _plt()
    labels = sorted(entry["pool"], key=lambda lab: -entry["pool"][lab])[:max_labels]
    series = [("pool", entry["pool"])] + [(s, entry.get(s, {})) for s in subset_names]
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(labels) * len(series) / 2 + 1.4))
    y = np.arange(len(labels))
    height = 0.8 / len(series)
    for k, (sname, counts) in enumerate(series):
        total = sum(counts.values()) or 1
        ax.barh(y + k * height, [counts.get(lab, 0) / total for lab in labels], height=height, label=sname)
    ax.set_yticks(y + 0.4 - height / 2, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("share")
    ax.set_title(name, fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    png = _png(fig)
    plt.close(fig)
    return png


def descriptor_plot(values: dict[str, np.ndarray], subsets: dict[str, np.ndarray]) -> str:
    """Small multiples: one density histogram per descriptor, pool vs each subset; one legend on top."""
    names = [n for n in sorted(values) if np.isfinite(values[n]).sum() > 1]
    if not names:
        return ""
    plt = _plt()
    cols = 3
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(9, 2.3 * rows), squeeze=False)
    handles = None
    for ax, name in zip(axes.ravel(), names):
        v = values[name]
        ok = np.isfinite(v)
        bins = np.histogram_bin_edges(v[ok], bins=30)
        ax.hist(v[ok], bins=bins, density=True, alpha=0.45, label="pool")
        for sname, idx in subsets.items():
            sub = v[idx]
            sub = sub[np.isfinite(sub)]
            if sub.size:
                ax.hist(sub, bins=bins, density=True, histtype="step", linewidth=1.4, label=sname)
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=7)
        handles = ax.get_legend_handles_labels()
    for ax in axes.ravel()[len(names):]:
        ax.axis("off")
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    if handles:
        fig.legend(*handles, loc="upper center", ncol=len(handles[0]), fontsize=8, frameon=False)
    png = _png(fig)
    plt.close(fig)
    return png


# ------------------------------------------------------------------------------------------ view
def build_view(report: dict, rho: np.ndarray, subsets: dict[str, np.ndarray],
               descriptors: dict[str, np.ndarray] | None = None) -> dict:
    from gdo_opt import __version__

    s = report["solve"]
    subset_names = list(subsets)
    fields = []
    for name, entry in report["fields"].items():
        pool_total = sum(entry["pool"].values()) or 1
        totals = {sn: sum(entry.get(sn, {}).values()) or 1 for sn in subset_names}
        rows = [{"label": lab, "shares": [f"{entry['pool'][lab] / pool_total:.1%}"]
                 + [f"{entry.get(sn, {}).get(lab, 0) / totals[sn]:.1%}" for sn in subset_names]}
                for lab in sorted(entry["pool"], key=lambda lab: -entry["pool"][lab])]
        fields.append({"name": name, "rows": rows, "png": field_plot(name, entry, subset_names),
                       "js": [fmt(entry.get(f"js_{sn}_vs_pool"), 3) for sn in subset_names]})
    desc_rows = []
    for name, entry in report.get("descriptors", {}).items():
        desc_rows.append({"name": name, "rows": [
            {"set": key, "count": fmt(st.get("count")), "mean": fmt(st.get("mean"), 4), "p10": fmt(st.get("p10"), 4),
             "median": fmt(st.get("median"), 4), "p90": fmt(st.get("p90"), 4)}
            for key, st in entry.items()]})
    missing = report.get("missing_descriptors") or {}
    by_desc = [{"name": k, "count": fmt(v), "share": f"{v / max(missing.get('pool', 1), 1):.1%}"}
               for k, v in (missing.get("by_descriptor") or {}).items()]
    score = report["score"]
    base_text, shortfall = baseline_words(report.get("baseline", {}))
    families = constraint_families(report["constraints"], report.get("derivation", []))
    n_rows = sum(len(f["rows"]) + len(f["details"]) for f in families)
    n_binding = sum(1 for f in families for r in f["rows"] + f["details"] if r["css"] == "binding")
    pool = report["pool"]
    metrics = report.get("metrics", {})
    return {
        "version": __version__,
        "preset": report["preset"],
        "selected": fmt(report["selected"]),
        "eligible": fmt(pool["eligible"]),
        "solve": {**{k: fmt(s.get(k)) for k in ("objective", "bound", "gap", "mip_gap", "seed")},
                  "status": s["status"], "solver": s["solver"], "requested": s.get("requested", s["solver"]),
                  "message": s.get("message") or DASH,
                  "time": "kept in timings.json beside this page (so the page is byte-identical across runs)"},
        "budget": budget_words(report["budget"], report["preset"].get("budget") or {}),
        "missing": {"count": missing.get("candidates", score.get("missing_candidates", 0)),
                    "text": missing.get("text", f"{score.get('missing_candidates', 0)} candidates without descriptors."),
                    "by_descriptor": by_desc},
        "families": families, "n_rows": n_rows, "n_binding": n_binding,
        "baseline": {"multiplier": report.get("baseline", {}).get("multiplier", 0), "text": base_text,
                     "shortfall": shortfall},
        "score": {"text": (f"ρ(x) = Σ sign · weight · normalized descriptor ({report['preset']['score'].get('normalization')}, "
                           f"clipped at ±{report['preset']['score'].get('clip')}).") if report["preset"].get("score") else
                          ("ρ(x) = the published builder's shared score: text heuristics, the VDS3 term and the "
                           "quality term (docs/formulation.md)."),
                  "terms": [{k: fmt(t.get(k), 4) if k not in ("descriptor", "transform") else t.get(k)
                             for k in ("descriptor", "weight", "sign", "transform", "median", "scale", "available")}
                            for t in score.get("terms", [])],
                  "dropped": "; ".join(f"{k} ({v})" for k, v in score.get("dropped_terms", {}).items()),
                  "plots": [("score distribution: pool vs subsets", score_plot(rho, subsets))]},
        "subset_names": subset_names, "fields": fields, "descriptors": desc_rows,
        "descriptor_png": descriptor_plot(descriptors, subsets) if descriptors else "",
        "metrics": {"source": metrics.get("source", DASH), "file": metrics.get("file") or DASH,
                    "matched": fmt(metrics.get("matched_candidates")),
                    "unmatched": fmt(metrics.get("unmatched_metrics_rows")), "note": metrics.get("note", "")},
        "pool_text": (f"{fmt(pool['candidates'])} candidates, {fmt(pool['eligible'])} eligible, "
                      f"{fmt(pool.get('video_candidates'))} video, {fmt(pool.get('temporal_video_candidates'))} "
                      "temporal video"),
        "temporal_rule": pool.get("temporal_rule", DASH),
        "outputs": ", ".join(sorted(report.get("outputs", {}).values())),
    }


def render_html(report: dict, rho: np.ndarray, subsets: dict[str, np.ndarray],
                descriptors: dict[str, np.ndarray] | None = None) -> str:
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True)
    return env.get_template("report.html").render(**build_view(report, rho, subsets, descriptors))


def write_html(path: str | Path, report: dict, rho: np.ndarray, subsets: dict[str, np.ndarray],
               descriptors: dict[str, np.ndarray] | None = None) -> None:
    """Render and write ``report.html`` atomically. ``subsets`` index ``rho`` / ``descriptors``."""
    write_text(path, render_html(report, rho, subsets, descriptors))
