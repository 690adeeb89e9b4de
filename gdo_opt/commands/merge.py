"""`gdo-opt merge SHARDS... --out descriptors.parquet`: one normalized descriptor table + report."""

from __future__ import annotations

import argparse

from gdo_opt import argtypes

HELP = "merge descriptor shards into one normalized table"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("shards", nargs="+", help="shard folder(s) written by `gdo-opt extract`")
    parser.add_argument("--out", required=True, help="output descriptors.parquet (report beside it)")
    parser.add_argument("--candidates", help="candidate table to check coverage against (default: from manifest)")
    parser.add_argument("--clusters", type=argtypes.positive_int,
                        help="MiniBatchKMeans k (published: 4096 capped by the rows; fast: sqrt(n/2), 2..256)")
    parser.add_argument("--normalize", choices=("published", "clip"),
                        help="published: the published clusters, scales and quality_score; clip: z clipped to "
                             "[-5, 5] (default: from the extraction's --mode)")
    parser.add_argument("--seed", type=argtypes.seed, help="clustering seed (default 42 published, 0 clip)")
    parser.add_argument("--allow-missing", action="store_true",
                        help="merge even with missing chunks, shards of another candidate table or candidates "
                             "without a shard row (they become rows with missing descriptors; listed in the report)")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from gdo_opt.descriptors.merge import merge_shards, report_path

    report = merge_shards(args.shards, args.out, candidates=args.candidates, n_clusters=args.clusters, seed=args.seed,
                          normalize=args.normalize,
                          allow_missing=args.allow_missing)
    cov = report["coverage"]
    Console(stderr=True).print(
        f"{report['rows']} rows -> {args.out}; missing {cov['missing']}, duplicates {cov['duplicates']}, "
        f"unknown {cov['unknown']}, rows with errors {report['errors']['rows']}, "
        f"clusters {report['clustering']['k']} ({report['clustering']['normalize']})"
        + (f", stability fallback on {report['published_scales']['stability_fallback_rows']} rows"
           if report["published_scales"].get("stability_fallback_rows") else "")
        + f"; report {report_path(args.out)}"
    )
    return 0
