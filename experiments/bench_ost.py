"""Benchmark: exact vs first-order OST on the toy pool — agreement, noise detection and throughput.

Builds the toy task of gdo_opt.testing.ost_fixtures (facts asked in pool phrasing, a corrupted share with shuffled
answers, target phrasing for the validation set), warms a tiny Qwen3 LM up on clean data, then scores
the pool with each (parameter subset, estimator) and prints, side by side: Spearman / Kendall rank
agreement with the exact utility, top-k overlap, AUC(clean vs corrupted) and samples/s.

    .venv/bin/python experiments/bench_ost.py            # ~1 min on 2 CPU cores
    .venv/bin/python experiments/bench_ost.py --n 600 --device cuda --json out/bench_ost.json
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="pool size")
    parser.add_argument("--corrupt", type=float, default=0.3)
    parser.add_argument("--steps", type=int, default=80, help="clean warm-up steps of the proxy")
    parser.add_argument("--lr", type=float, default=1e-3, help="OST step size η")
    parser.add_argument("--params", nargs="+", default=["lm_head", "last_layers:1"])
    parser.add_argument("--proj-dim", type=int, default=2048)
    parser.add_argument("--top", type=float, default=0.3, help="top-k overlap: share of the pool")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the rows here (atomic)")
    args = parser.parse_args()

    import torch
    from rich.console import Console
    from rich.table import Table
    from scipy.stats import kendalltau, spearmanr
    from sklearn.metrics import roc_auc_score

    from gdo_opt.descriptors.ost_scorer import OstScorer
    from gdo_opt.descriptors.ost_tokens import encode_pairs
    from gdo_opt.testing.ost_fixtures import toy_model, toy_pool, toy_targets, toy_tokenizer, warm_up

    console = Console(stderr=True)
    torch.manual_seed(args.seed)
    tok = toy_tokenizer()
    questions, answers, bad, clean = toy_pool(args.n, args.corrupt, seed=args.seed)
    targets = toy_targets(args.seed)
    model = toy_model(tok, seed=args.seed)
    warm = encode_pairs(tok, [q for q, _ in targets] + questions, [a for _, a in targets] + clean, 64)
    curve = warm_up(model, warm, steps=args.steps, batch=32, lr=3e-3, seed=args.seed, pad_id=tok.pad_token_id)
    model.to(args.device)
    val = encode_pairs(tok, [q for q, _ in targets], [a for _, a in targets], 64)
    pool = encode_pairs(tok, questions, answers, 64)
    console.print(f"pool {args.n} ({int(bad.sum())} corrupted), targets {len(val)}, warm-up loss "
                  f"{curve[0]:.3f} -> {curve[-1]:.3f}, η={args.lr}, device {args.device}")

    k = max(1, int(round(args.top * args.n)))

    def top(x):
        return set(np.argsort(-x, kind="stable")[:k].tolist())

    table = Table(title=f"OST exact vs first-order (n={args.n}, top-{k} overlap)")
    for col in ("params", "P", "estimator", "k", "spearman", "kendall", "top-k overlap", "AUC", "samples/s"):
        table.add_column(col, justify="right")
    rows = []
    for params in args.params:
        variants = [("exact", None), ("first_order", "none"), ("first_order", "gaussian"), ("first_order", "sketch")]
        exact = None
        for mode, projection in variants:
            proj_dim = 0 if projection == "none" else args.proj_dim
            scorer = OstScorer(model, val, params=params, lr=args.lr, proj_dim=proj_dim, seed=args.seed,
                                   projection=projection if projection not in (None, "none") else "auto",
                                   pad_id=tok.pad_token_id)
            if projection not in (None, "none") and scorer.proj_dim >= scorer.n_params:
                continue  # the subset is smaller than k: no projection to compare
            if mode == "first_order":
                scorer.val_grad_projected()  # shared set-up, not per-sample cost
            start = time.perf_counter()
            values = scorer.exact(pool) if mode == "exact" else scorer.first_order(pool)
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            rate = args.n / (time.perf_counter() - start)
            exact = values if mode == "exact" else exact
            row = {
                "params": params, "n_params": scorer.n_params, "estimator": mode if projection is None
                else f"first_order/{projection}", "proj_dim": scorer.proj_dim if projection not in (None, "none") else None,
                "spearman": float(spearmanr(exact, values)[0]), "kendall": float(kendalltau(exact, values)[0]),
                "topk_overlap": len(top(exact) & top(values)) / k, "auc": float(roc_auc_score(~bad, values)),
                "samples_per_s": rate,
            }
            rows.append(row)
            table.add_row(params, f"{scorer.n_params:,}", row["estimator"], str(row["proj_dim"] or "-"),
                          f"{row['spearman']:.3f}", f"{row['kendall']:.3f}", f"{row['topk_overlap']:.2f}",
                          f"{row['auc']:.3f}", f"{rate:.1f}")
    Console(width=150).print(table)
    if args.json:
        from gdo_opt.atomic import write_json

        write_json(args.json, {"args": vars(args), "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
