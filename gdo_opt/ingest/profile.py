"""The pool profile: counts per field value, stratum and source group, and the shares that the
goal presets constrain (video, temporal within video, MCQ) — written beside the candidate table."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from gdo_opt.ingest.schema import PROFILE_FIELDS, STRATA, VIDEO_BUCKET


def _share(num: float, den: float) -> float:
    return round(num / den, 6) if den else 0.0


def _sorted_counts(counts: pd.Series) -> dict[str, int]:
    items = ((str(k), int(v)) for k, v in counts.items())
    return dict(sorted(items, key=lambda kv: (-kv[1], kv[0])))


def build_profile(df: pd.DataFrame | pa.Table) -> dict:
    """Counts per field value, per stratum and per source group; video / temporal / MCQ shares.

    One Arrow group-by over (stratum, source, source_group, media_kind) yields every count: the
    strata fields are the parts of the stratum key.
    """
    cols = ["stratum", "source", "source_group", "media_kind", "video_uid", "dedup_key", "dedup_key_q",
            "file", "line"]
    if isinstance(df, pd.DataFrame):
        df = pa.Table.from_pandas(df[cols], preserve_index=False)
    t = df.select(cols)
    n = t.num_rows
    keys = ["stratum", "source", "source_group", "media_kind"]
    g = t.select(keys).group_by(keys).aggregate([([], "count_all")]).to_pandas()
    g = g.rename(columns={"count_all": "n"})
    parts = g["stratum"].str.split("|", expand=True, regex=False) if len(g) else pd.DataFrame(columns=range(6))
    for i, f in enumerate(STRATA):
        g[f] = parts[i] if len(g) else []
    g["video"] = (g["bucket"] == VIDEO_BUCKET) * g["n"]
    g["temporal"] = (g["temporal_category"] == "temporal") * g["n"]
    g["tv"] = (g["bucket"] == VIDEO_BUCKET) & (g["temporal_category"] == "temporal")
    n_video, n_temporal = int(g["video"].sum()), int(g["temporal"].sum())
    n_tv = int((g["tv"] * g["n"]).sum())
    groups = {}
    for name, sub in g.groupby("source_group", sort=True):
        c = int(sub["n"].sum())
        groups[str(name)] = {"candidates": c, "video_share": _share(sub["video"].sum(), c),
                             "temporal_share": _share(sub["temporal"].sum(), c),
                             "sources": int(sub["source"].nunique())}
    vids = pc.filter(t.column("video_uid"), pc.not_equal(t.column("video_uid"), ""))
    rows = pa.table({"f": t.column("file"), "l": t.column("line")}).group_by(["f", "l"]).aggregate([]).num_rows
    n_mcq = int(g.loc[g["question_form"] == "MCQ", "n"].sum()) if len(g) else 0
    return {
        "candidates": n,
        "rows": rows,
        "videos": pc.count_distinct(vids).as_py(),
        "sources": int(g["source"].nunique()),
        "video_share": _share(n_video, n),
        "temporal_share": _share(n_temporal, n),
        "temporal_share_video": _share(n_tv, n_video),
        "temporal_share_image": _share(n_temporal - n_tv, n - n_video),
        "mcq_share": _share(n_mcq, n),
        "duplicates": {"qa": n - pc.count_distinct(t.column("dedup_key")).as_py(),
                       "question": n - pc.count_distinct(t.column("dedup_key_q")).as_py()},
        "counts": {f: _sorted_counts(g.groupby(f)["n"].sum()) for f in PROFILE_FIELDS},
        "strata": _sorted_counts(g.groupby("stratum")["n"].sum()),
        "source_groups": groups,
    }


def print_profile(profile: dict, console=None) -> None:
    """The profile as rich tables on stderr: field values, source groups, skips."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console(stderr=True)
    n = max(profile["candidates"], 1)
    head = (f"{profile['candidates']:,} candidates from {profile['rows']:,} rows, {profile['videos']:,} videos, "
            f"{profile['sources']} sources; video {profile['video_share']:.1%}, temporal "
            f"{profile['temporal_share']:.1%} (video {profile['temporal_share_video']:.1%}), "
            f"MCQ {profile['mcq_share']:.1%}; exact duplicate QA {profile['duplicates']['qa']:,}")
    table = Table(title="pool profile", caption=head)
    for col in ("field", "value", "count", "share"):
        table.add_column(col, justify="right" if col in ("count", "share") else "left")
    for f in PROFILE_FIELDS:
        items = list(profile["counts"][f].items())
        for i, (value, count) in enumerate(items[:8]):
            table.add_row(f if i == 0 else "", value, f"{count:,}", f"{count / n:.1%}")
        if len(items) > 8:
            table.add_row("", f"... {len(items) - 8} more", "", "")
    table.add_row("strata", f"{len(profile['strata'])} non-empty", "", "")
    console.print(table)
    ing = profile.get("ingest")
    if ing:
        skipped = ing["skipped"]
        line = ", ".join(f"{r} {c:,}" for r, c in sorted(skipped.items())) or "none"
        console.print(f"skipped: {line}; decontaminated: {ing['decontaminated']:,}")
        for reason in sorted(ing["skipped_examples"]):
            for ex in ing["skipped_examples"][reason][:3]:
                console.print(f"  {ex}", highlight=False, markup=False)
