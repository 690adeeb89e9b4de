"""kill -9 campaign: `select` killed at random moments while publishing, `extract` killed during
motion chunks. Counts how many kills left one whole output set (old or new, nothing left over after
the next run) and how many left no orphan process 15 s later (a worker killed while it still imports
notices once its import finishes: seconds on a loaded machine). Figures for README "Reliability".

    python experiments/kill_campaign.py --selects 20 --extracts 5
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--selects", type=int, default=20)
    parser.add_argument("--extracts", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    bench = _load("bench_select", ROOT / "experiments" / "bench_select.py")
    kill = _load("kill_helpers", ROOT / "tests" / "reliability" / "test_kill.py")
    from gdo_opt.atomic import write_parquet

    rng = random.Random(args.seed)
    result = {"select_kills": 0, "select_whole_set": 0, "select_clean_after_rerun": 0,
              "extract_kills": 0, "extract_no_orphans": 0, "orphans": 0, "max_seconds_to_clean": 0.0}
    with tempfile.TemporaryDirectory(prefix="gdo-kill-") as tmp:
        world = Path(tmp)
        frame = bench.make_candidates(1500, seed=1)
        write_parquet(world / "candidates.parquet", frame)
        bench.write_jsonl_fast(bench.make_gdo_metrics(frame, seed=1, missing=0.0), world / "metrics.jsonl")
        out = world / "goal"
        subprocess.run(kill._select_args(world, world / "ref", 120, 2), check=True, capture_output=True)
        new = kill._snapshot(world / "ref")
        subprocess.run(kill._select_args(world, out, 100, 1), check=True, capture_output=True)
        old = kill._snapshot(out)
        for _ in range(args.selects):
            proc = subprocess.Popen(kill._select_args(world, out, 120, 2), stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.5, 4.0))  # anywhere from start-up to publishing
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            result["select_kills"] += 1
            now = kill._snapshot(out)
            result["select_whole_set"] += kill._same_set(now, old) or kill._same_set(now, new)
            subprocess.run(kill._select_args(world, out, 100, 1), check=True, capture_output=True)  # back to old
            result["select_clean_after_rerun"] += kill._leftovers(out) == [] and kill._same_set(kill._snapshot(out), old)
        from gdo_opt.ingest.demo_pool import make_demo_pool
        from gdo_opt.ingest.pool import ingest

        pool = make_demo_pool(world / "pool", seed=0, n_images=1, n_videos=12)
        ingest(video=[pool.video], out_dir=world / "cand", progress=False)
        for k in range(args.extracts):
            cmd = kill._gdo("extract", "--candidates", world / "cand" / "candidates.parquet", "--out",
                            world / f"shards{k}", "--descriptors", "motion", "--workers", "2", "--chunk-size", "1",
                            "--frames", "4", "--no-progress")
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            seen: set[int] = set()
            deadline = time.monotonic() + 60
            while len(seen) < 2 and proc.poll() is None and time.monotonic() < deadline:
                seen.update(kill._children(proc.pid))
                time.sleep(0.005)
            time.sleep(rng.uniform(0.0, 1.0))
            seen.update(kill._children(proc.pid))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            killed = time.monotonic()
            while any(kill._alive(p) for p in seen) and time.monotonic() - killed < 15:
                time.sleep(0.05)  # a worker still importing notices at its first instruction
            result["max_seconds_to_clean"] = max(result["max_seconds_to_clean"], round(time.monotonic() - killed, 2))
            alive = [p for p in seen if kill._alive(p)]
            result["extract_kills"] += 1
            result["extract_no_orphans"] += not alive
            result["orphans"] += len(alive)
            for pid in alive:
                os.kill(pid, signal.SIGKILL)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
