"""A LLaVA-shaped pool in the published GDO input format, generated vectorized.

    .venv/bin/python experiments/llava_pool.py --pairs 200000 --out experiments/out/llava_pool_200k

The command line of ``gdo_opt.testing.llava_pool.generate`` (its docstring lists the three files it
writes: onevision.jsonl, video.jsonl and the published merged metrics.jsonl).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from gdo_opt.testing.llava_pool import generate


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=200_000, help="QA pairs in the pool (default 200k)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--video-share", type=float, default=0.42, help="share of pairs from LLaVA-Video")
    parser.add_argument("--out", required=True, help="output folder")
    args = parser.parse_args(argv)
    if args.pairs < 10:
        parser.error("--pairs must be >= 10")
    t0 = time.perf_counter()
    stats = generate(args.pairs, Path(args.out), args.seed, args.video_share)
    print(json.dumps({**stats, "seconds": round(time.perf_counter() - t0, 2)}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
