"""Run a command and measure it the same way on both sides of a comparison: wall seconds and the
peak memory of its whole process tree.

Why not ``ru_maxrss``: for a command that forks workers (``gdo-opt select`` ingests and exports in
two worker processes) ``wait4`` reports the largest *single* process, which hides the workers; and
summing RSS counts the pages parent and workers share after the fork twice. The proportional set
size (PSS, ``/proc/PID/smaps_rollup``) splits each shared page between the processes that map it, so
the sum over the tree is what the command holds. The tree is sampled every ``interval`` seconds
(peaks shorter than that can be missed, on both sides alike); ``ru_maxrss`` is kept beside it
(it can include the launcher's pages between fork and exec).
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            kids = [int(x) for x in handle.read().split()]
    except OSError:
        return []
    return kids + [g for k in kids for g in _children(k)]


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_pss_gb(pid: int) -> float:
    """PSS of ``pid`` and all its descendants now, in GB (0 when it is gone)."""
    return sum(_pss_kb(p) for p in (pid, *_children(pid))) / 1024 / 1024


def run_measured(cmd: list[str], log: Path, env: dict | None = None, interval: float = 0.05) -> dict:
    """Run ``cmd`` (output to ``log``) to completion: ``seconds``, ``gb`` (peak PSS of the process
    tree, sampled), ``max_rss_gb`` (the largest single process, ``ru_maxrss``), ``rc``, load average
    before and after."""
    load = os.getloadavg()[0]
    peak = [0.0]
    start = time.perf_counter()
    with open(log, "w") as handle:
        proc = subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT, env=env)
        done = threading.Event()

        def sample():
            while not done.is_set():
                peak[0] = max(peak[0], tree_pss_gb(proc.pid))
                done.wait(interval)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        done.set()
        sampler.join()
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "gb": peak[0], "max_rss_gb": usage.ru_maxrss / 1024 / 1024,
            "rc": os.waitstatus_to_exitcode(status), "load_before": load, "load_after": os.getloadavg()[0]}
