"""kill -9 at the worst moments: `select` publishing (old set or new set, never a mix; nothing left
over after the next run) and `extract` with motion chunks (no orphan worker survives its parent)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and kill -9")


def _gdo(*args) -> list[str]:
    return [sys.executable, "-m", "gdo_opt.cli", *map(str, args)]


def _select_args(world: Path, out: Path, k: int, seed: int) -> list[str]:
    return _gdo("select", "--candidates", world / "candidates.parquet", "--metrics", world / "metrics.jsonl",
                "--solver", "greedy", "--preset", "minloss", "--target-count", k, "--seed", seed, "--out", out)


def _snapshot(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())} if out.is_dir() else {}


def _leftovers(out: Path) -> list[str]:
    names = [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]
    if out.is_dir():
        names += [p.name for p in out.iterdir() if p.name.startswith(".")]
    return names


def _untimed(obj):
    """Drop measured seconds (solver stages report them) before comparing two reports."""
    if isinstance(obj, dict):
        return {k: _untimed(v) for k, v in obj.items() if k != "seconds"}
    if isinstance(obj, list):
        return [_untimed(v) for v in obj]
    return obj


def _same_set(files: dict[str, bytes], ref: dict[str, bytes]) -> bool:
    """The same output set: same files, same subset bytes, same report apart from time measurements
    (timings.json and the solver's message, which quotes seconds)."""
    if sorted(files) != sorted(ref):
        return False
    for name in files:
        if name == "report.json":
            a, b = json.loads(files[name]), json.loads(ref[name])
            for report in (a, b):  # run-time measurements differ between two runs of the same set
                report.pop("timing", None), report["solve"].pop("message", None)
            if _untimed(a) != _untimed(b):
                return False
        elif name.endswith(".jsonl") and files[name] != ref[name]:
            return False
    return True


def test_kill_select_while_publishing_keeps_one_whole_set(world, tmp_path):
    out = tmp_path / "goal"
    subprocess.run(_select_args(world, tmp_path / "ref_new", 120, 2), check=True, capture_output=True)
    new = _snapshot(tmp_path / "ref_new")
    subprocess.run(_select_args(world, out, 100, 1), check=True, capture_output=True)
    old = _snapshot(out)
    assert old and new and not _same_set(old, new)
    for delay in (0.0, 0.15):  # right when the staging folder appears, and while the files are written
        proc = subprocess.Popen(_select_args(world, out, 120, 2), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not _leftovers(out) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        now = _snapshot(out)
        assert _same_set(now, old) or _same_set(now, new), sorted(now)
    done = subprocess.run(_select_args(world, out, 120, 2), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert _same_set(_snapshot(out), new)
    assert _leftovers(out) == []  # staging of the killed runs cleaned, lock released


def test_concurrent_writer_is_refused(world, tmp_path, capsys):
    """A second `select` into a folder another run is writing gets a clear one-line refusal."""
    from gdo_opt.cli import main
    from gdo_opt.publish import publish_set

    out = tmp_path / "goal"
    with publish_set(out) as stage:  # this process plays the first writer
        (stage / "gdo_1x.jsonl").write_text("first\n")
        rc = main([str(a) for a in _select_args(world, out, 100, 1)[3:]])
        err = capsys.readouterr().err
        assert rc == 2 and f"another gdo-opt run (pid {os.getpid()}) is writing" in err
    assert (out / "gdo_1x.jsonl").read_text() == "first\n"
    assert main([str(a) for a in _select_args(world, out, 100, 1)[3:]]) == 0  # the lock is released


def _children(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(entry))
    return kids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def test_kill_extract_leaves_no_orphans(tmp_path):
    from gdo_opt.ingest.demo_pool import make_demo_pool
    from gdo_opt.ingest.pool import ingest

    pool = make_demo_pool(tmp_path / "pool", seed=0, n_images=1, n_videos=6)
    ingest(video=[pool.video], out_dir=tmp_path / "cand", progress=False)
    cmd = _gdo("extract", "--candidates", tmp_path / "cand" / "candidates.parquet", "--out", tmp_path / "shards",
               "--descriptors", "motion", "--workers", "2", "--chunk-size", "1", "--frames", "4", "--no-progress")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen: set[int] = set()
    try:
        deadline = time.monotonic() + 90
        while len(seen) < 2 and proc.poll() is None and time.monotonic() < deadline:  # the motion workers
            seen.update(_children(proc.pid))
            time.sleep(0.005)
        seen.update(_children(proc.pid))  # and the resource tracker, when it is up already
        assert proc.poll() is None and len(seen) >= 2, "extract finished before its workers could be seen"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in seen) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [p for p in seen if _alive(p)] == []
    finally:
        for pid in seen:  # never leave what this test started behind, even when it fails
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
