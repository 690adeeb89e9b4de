"""How well the first-order OST estimate (η ∇L_val · ∇L_x) ranks candidates like the exact step.

Demo pool + tiny offline Qwen3-VL proxy, whole model and LoRA adapters, with media; the validation set is
a second demo pool (another seed, LLaVA-Video rows, media included, decontaminated). For each candidate
the gradient is computed once and the exact utility L_val(θ) − L_val(θ − η g) evaluated at several step
sizes η, so the Spearman correlation to the first-order estimate is measured per η.
Writes experiments/out/ost_agreement.csv; docs/ost.md quotes the numbers.

    .venv/bin/python experiments/ost_agreement.py [--candidates 24] [--val 4] [--frames 8] [--device cpu]
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=24)
    parser.add_argument("--val", type=int, default=4)
    parser.add_argument("--frames", type=int, default=8, help="model frames per clip (published: 32)")
    parser.add_argument("--lrs", default="1e-3,1e-2,1e-1")
    parser.add_argument("--params", default="all,lora")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=str(Path(__file__).parent / "out" / "ost_agreement.csv"))
    args = parser.parse_args()

    import torch
    from scipy.stats import spearmanr

    from gdo_opt.descriptors.model import load_model
    from gdo_opt.descriptors.ost_step import StepScorer, read_validation
    from gdo_opt.descriptors.settings import resolve
    from gdo_opt.descriptors.tiny_model import make_tiny_model
    from gdo_opt.ingest.demo_pool import make_demo_pool
    from gdo_opt.ingest.pool import ingest

    torch.set_num_threads(1)
    root = Path(tempfile.mkdtemp(prefix="ost-agree-"))
    pool = make_demo_pool(root / "pool", seed=0, n_images=12, n_videos=6)
    cands = ingest(onevision=[pool.onevision], video=[pool.video], progress=False).to_pandas()
    cands = cands.sample(n=min(args.candidates, len(cands)), random_state=0).sort_values("qa_uid")
    target = make_demo_pool(root / "target", seed=1, n_images=3, n_videos=4)
    val, dropped = read_validation(str(target.video), cands["question"].tolist())
    model, proc = load_model(make_tiny_model(root / "model"), args.device)
    settings = {**resolve({}), "frames": args.frames}
    rows = cands.to_dict("records")
    lrs = [float(x) for x in args.lrs.split(",")]
    out = []
    for params in args.params.split(","):
        start = time.perf_counter()
        scorer = StepScorer(model, proc, val[: args.val], settings, params=params, lr=lrs[0])
        target_grad = scorer.val_grad()
        exact = np.zeros((len(lrs), len(rows)))
        dots = np.zeros(len(rows))
        for i, row in enumerate(rows):
            g = scorer.grad(scorer.inputs(row))
            dots[i] = float(sum((g[n].double() * target_grad[n].double()).sum() for n in g))
            with torch.no_grad():
                for j, lr in enumerate(lrs):
                    stepped = {n: p - lr * g[n] for n, p in scorer.params.items()}
                    exact[j, i] = scorer.base_val_loss - scorer.val_loss(stepped)
        seconds = time.perf_counter() - start
        for j, lr in enumerate(lrs):
            rho = float(spearmanr(exact[j], lr * dots)[0])
            rel = float(np.median(np.abs(exact[j] - lr * dots) / np.maximum(np.abs(exact[j]), 1e-12)))
            out.append({"params": params, "n_params": scorer.n_params, "lr": lr, "candidates": len(rows),
                        "val_items": len(scorer.val), "frames": args.frames, "spearman": round(rho, 4),
                        "median_rel_error": round(rel, 4), "seconds_all_lrs": round(seconds, 1)})
            print(out[-1], flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(out[0]))
        writer.writeheader()
        writer.writerows(out)
    print(f"validation items dropped as pool duplicates: {dropped}; wrote {args.out}")


if __name__ == "__main__":
    main()
