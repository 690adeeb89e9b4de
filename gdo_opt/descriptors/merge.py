"""Merge descriptor shards into one table keyed by qa_uid (the contract's descriptor table).

Why here and not per rank: coverage clusters must be fitted over the whole pool, and robust
z-scores need the pool-wide median / IQR. Several shard folders may be merged (e.g. ``ost`` run
separately): their columns are joined on qa_uid. The output has one row per candidate, sorted by
qa_uid; candidates without shard rows keep NaN values and ``error == "missing: no shard row"``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from gdo_opt.atomic import write_json, write_parquet
from gdo_opt.errors import GdoError, ParameterError
from gdo_opt.stats import robust_z

RAW_COLUMNS = (
    "amm", "frame_diversity", "loss_video", "loss_blind", "vds", "ppl", "temporal_prob", "stability",
    "coverage", "hardness", "ost", "quality_score",
)
VECTORS = ("feat", "pub_feat")
Z_CLIP = 5.0
EXAMPLES = 20


def _read_folder(folder: Path) -> tuple[pd.DataFrame, dict[str, np.ndarray], dict]:
    files = sorted(folder.glob("rank*-chunk*.parquet"))
    if not files:
        raise GdoError(f"{folder}: no shard files (rank*-chunk*.parquet)")
    frames, vectors = [], {name: [] for name in VECTORS}
    for file in files:
        try:
            table = pq.read_table(file)
        except Exception as error:
            raise GdoError(f"{file}: unreadable shard ({error})") from error
        if "qa_uid" not in table.column_names:
            raise GdoError(f"{file}: no qa_uid column")
        for name in VECTORS:
            if name in table.column_names:
                vectors[name].append(np.asarray(table.column(name).combine_chunks().flatten(), dtype=np.float32)
                                     .reshape(table.num_rows, -1))
                table = table.drop([name])
        frames.append(table.to_pandas())
    df = pd.concat(frames, ignore_index=True)
    dup_mask = df["qa_uid"].duplicated(keep="first").to_numpy()
    duplicates = sorted(df.loc[dup_mask, "qa_uid"].unique().tolist())
    df = df.loc[~dup_mask].reset_index(drop=True)
    feat = {name: np.concatenate(v)[~dup_mask] for name, v in vectors.items() if v and len(v) == len(files)}
    manifest = {}
    if (folder / "manifest.json").is_file():
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    return df, feat, {"folder": str(folder), "files": len(files), "duplicates": duplicates, "manifest": manifest}


def _cluster(feat: np.ndarray, n_clusters: int | None, seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    """MiniBatchKMeans over all rows with finite features -> (label, distance to own centroid, k)."""
    from sklearn.cluster import MiniBatchKMeans

    n = len(feat)
    labels = np.full(n, -1, dtype=np.int64)
    dist = np.full(n, np.nan)
    ok = np.isfinite(feat).all(axis=1)
    m = int(ok.sum())
    if m < 2:
        return labels, dist, 0
    k = int(n_clusters) if n_clusters else int(np.clip(round(np.sqrt(m / 2)), 2, 256))
    k = min(k, m)
    km = MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=3, batch_size=1024, max_iter=100)
    x = feat[ok].astype(np.float64)
    lab = km.fit_predict(x)
    labels[ok] = lab
    dist[ok] = np.linalg.norm(x - km.cluster_centers_[lab], axis=1)
    return labels, dist, k


def _within_cluster_rank(values: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Percentile rank (0..1] of each value inside its cluster; NaN where value or cluster missing."""
    s = pd.Series(values).where(labels >= 0)
    return s.groupby(labels).rank(pct=True).to_numpy(dtype=np.float64)


def merge_shards(
    shards: list[str | os.PathLike],
    out: str | os.PathLike,
    candidates: str | os.PathLike | None = None,
    n_clusters: int | None = None,
    seed: int | None = None,
    normalize: str | None = None,
    allow_missing: bool = False,
) -> dict[str, Any]:
    """Join shard folders, check coverage, cluster, normalize; write ``out`` + ``<out stem>.report.json``.

    ``normalize``: ``published`` (merge_published: published clusters, scales and quality_score) or
    ``clip`` (our fast variant); default: what the extraction's mode says (manifest), else published.
    ``seed`` defaults to 42 (published) or 0 (clip). Missing chunks, shards of another candidate table
    and candidates without a shard row are errors unless ``allow_missing`` (``shard_checks.py``); then
    they are merged as missing rows and listed in the report."""
    from gdo_opt.descriptors import shard_checks

    out = Path(out)
    folders = [Path(s) for s in shards]
    for folder in folders:
        if not folder.is_dir():
            raise GdoError(f"{folder}: shard folder not found")
    parts = [_read_folder(f) for f in folders]
    notes: list[str] = []
    for folder, part in zip(folders, parts):
        notes += shard_checks.check_folder(folder, part[2]["manifest"], allow_missing)
    manifest_opts = next((p[2]["manifest"].get("options") or {} for p in parts if p[2]["manifest"]), {})
    if normalize is None:
        normalize = "clip" if manifest_opts.get("mode") == "fast" else "published"
    if normalize not in ("published", "clip"):
        raise ParameterError("normalize", "expected published or clip", normalize)
    if seed is None:
        seed = 42 if normalize == "published" else 0
    merged: pd.DataFrame | None = None
    vectors: dict[str, tuple[pd.DataFrame, np.ndarray]] = {}
    for df, feats, _ in parts:
        for name, feat in feats.items():
            vectors.setdefault(name, (pd.DataFrame({"qa_uid": df["qa_uid"].to_numpy(), "_row": np.arange(len(df))}),
                                      feat))
        df = df.drop(columns=[c for c in ("chunk",) if c in df.columns])
        if merged is None:
            merged = df
            continue
        overlap = [c for c in df.columns if c in merged.columns and c not in ("qa_uid", "error")]
        df = df.drop(columns=overlap)
        merged = merged.merge(df, on="qa_uid", how="outer", suffixes=("", "_b"))
        merged["error"] = (merged["error"].fillna("") + "; " + merged.pop("error_b").fillna("")).str.strip("; ")

    cand_path = candidates or next((p[2]["manifest"].get("candidates") for p in parts if p[2]["manifest"]), None)
    missing: list[str] = []
    unknown: list[str] = []
    if cand_path:
        from gdo_opt.ingest.candidates import load_candidates

        uids = pd.Index(load_candidates(cand_path, columns=["qa_uid"])["qa_uid"].astype(str))
        notes += shard_checks.check_candidates(cand_path, uids, [(f, p[2]["manifest"]) for f, p in zip(folders, parts)
                                                                if p[2]["manifest"]], allow_missing)
        have = pd.Index(merged["qa_uid"].astype(str))
        missing = sorted(uids.difference(have).tolist())
        notes += shard_checks.check_coverage(cand_path, missing, allow_missing)
        unknown = sorted(have.difference(uids).tolist())
        merged = merged[merged["qa_uid"].isin(uids)]
        if missing:
            merged = pd.concat([merged, pd.DataFrame({"qa_uid": missing, "error": "missing: no shard row"})])
    merged = merged.sort_values("qa_uid", kind="stable").reset_index(drop=True)
    merged["error"] = merged["error"].fillna("").astype(str)
    for column in RAW_COLUMNS:
        if column not in merged.columns:
            merged[column] = np.nan
        merged[column] = merged[column].astype(np.float64)
    fill_vds = merged["vds"].isna()
    merged.loc[fill_vds, "vds"] = (merged["loss_blind"] - merged["loss_video"])[fill_vds]
    fill_ppl = merged["ppl"].isna()
    merged.loc[fill_ppl, "ppl"] = np.exp(merged["loss_video"])[fill_ppl]

    merged["cluster"] = np.int64(-1)
    clustering: dict[str, Any] = {"k": 0, "rows": 0, "normalize": normalize}

    def aligned(name: str) -> np.ndarray:
        index, feat = vectors[name]
        rows = index.set_index("qa_uid")["_row"].reindex(merged["qa_uid"]).to_numpy()
        x = np.full((len(merged), feat.shape[1]), np.nan, dtype=np.float32)
        have_row = ~np.isnan(rows)
        x[have_row] = feat[rows[have_row].astype(np.int64)]
        return x

    if "pub_feat" in vectors:
        from gdo_opt.descriptors import merge_published as mp

        x = mp.features(aligned("pub_feat"), {c: merged[c].to_numpy() for c in merged.columns})
        labels, dist, k = mp.kmeans(x, n_clusters, seed)
        merged["cluster"] = labels
        merged["coverage"] = np.exp(-dist)
        merged["hardness"] = 1.0 - merged["coverage"]
        clustering.update(k=k, rows=int(np.isfinite(dist).sum()), features="published (27 dims)",
                          k_requested=int(n_clusters or mp.DEFAULT_K), seed=seed)
    elif "feat" in vectors:
        labels, dist, k = _cluster(aligned("feat"), n_clusters, seed)
        finite = np.isfinite(dist)
        scale = float(np.median(dist[finite])) if finite.any() else 1.0
        merged["cluster"] = labels
        merged["coverage"] = np.exp(-dist / (scale if scale > 0 else 1.0))
        basis = merged["loss_video"].to_numpy() if merged["loss_video"].notna().any() else dist
        merged["hardness"] = _within_cluster_rank(basis, labels)
        clustering.update(k=k, rows=int(finite.sum()), distance_scale=round(scale, 8), seed=seed,
                          hardness_basis="loss_video" if basis is not dist else "distance")

    scales: dict[str, Any] = {}
    if normalize == "published":
        from gdo_opt.descriptors import merge_published as mp

        if merged["loss_video"].notna().any():
            score, sc, stats, fallback = mp.quality({c: merged[c].to_numpy() for c in merged.columns},
                                                    merged["coverage"].to_numpy())
            merged["quality_score"], merged["stability"] = score, sc
            scales = {k: {"center": _r(v[0]), "scale": _r(v[1])} for k, v in stats.items()}
            scales["stability_fallback_rows"] = fallback
        for column in RAW_COLUMNS:
            merged[f"z_{column}"] = mp.published_z(merged[column].to_numpy())
    else:
        for column in RAW_COLUMNS:
            merged[f"z_{column}"] = robust_z(merged[column].to_numpy(), Z_CLIP)[0]
    order = ["qa_uid", *RAW_COLUMNS, "cluster", "error", *[f"z_{c}" for c in RAW_COLUMNS]]
    extra = [c for c in merged.columns if c not in order]
    merged = merged[order + extra]
    write_parquet(out, merged)

    errors = merged["error"][merged["error"] != ""]
    by_kind = errors.str.split("; ").explode().str.split(":").str[0].value_counts()
    report = {
        "rows": int(len(merged)),
        "shards": [{"folder": p[2]["folder"], "files": p[2]["files"], "duplicates": len(p[2]["duplicates"]),
                    "duplicate_examples": p[2]["duplicates"][:EXAMPLES]} for p in parts],
        "coverage": {"candidates": cand_path is not None and str(cand_path) or None,
                     "missing": len(missing), "missing_examples": missing[:EXAMPLES],
                     "unknown": len(unknown), "unknown_examples": unknown[:EXAMPLES],
                     "duplicates": sum(len(p[2]["duplicates"]) for p in parts)},
        "errors": {"rows": int(len(errors)), "by_kind": {str(k): int(v) for k, v in sorted(by_kind.items())}},
        "clustering": clustering,
        "published_scales": scales,
        "allowed_gaps": notes,
        "columns": {c: {"finite": int(np.isfinite(merged[c]).sum()),
                        "median": _r(np.nanmedian(merged[c])) if merged[c].notna().any() else None}
                    for c in RAW_COLUMNS},
    }
    write_json(report_path(out), report)
    return report


def _r(x: float) -> float:
    return float(round(float(x), 8))


def report_path(out: str | os.PathLike) -> Path:
    out = Path(out)
    return out.with_name(out.stem + ".report.json")
