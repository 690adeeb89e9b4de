"""The memory helpers: glibc thresholds, the frozen heap around forks, and the benchmarks' tree meter."""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gdo_opt import memory
from gdo_opt.workers import frozen_heap

ROOT = Path(__file__).resolve().parents[1]


def _run(code: str, env_extra: dict | None = None) -> str:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=env, cwd=ROOT, check=True).stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_malloc_thresholds_are_fixed_unless_the_user_set_them():
    code = "from gdo_opt.memory import fix_malloc_thresholds; print(fix_malloc_thresholds())"
    assert _run(code) == "True"
    assert _run(code, {"MALLOC_ARENA_MAX": "2"}) == "False"  # the user's malloc settings win
    forced = "from gdo_opt.memory import fix_malloc_thresholds as f; print(f(32 << 20, force=True))"
    assert _run(forced, {"MALLOC_ARENA_MAX": "2"}) == "True"  # what process_pool(roomy_malloc=True) runs


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork")
def test_roomy_workers_still_die_with_their_parent_and_work():
    from gdo_opt.workers import process_pool

    pool = process_pool(1, "fork", roomy_malloc=True)
    try:
        assert pool.submit(sum, range(10)).result() == 45
    finally:
        pool.shutdown()


def test_prefer_returning_allocator_keeps_a_users_choice(monkeypatch):
    monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", "system")
    memory.prefer_returning_allocator()
    import os

    assert os.environ["ARROW_DEFAULT_MEMORY_POOL"] == "system"


def test_frozen_heap_freezes_only_while_open():
    before = gc.get_freeze_count()
    with frozen_heap():
        assert gc.get_freeze_count() > before
    assert gc.get_freeze_count() == before


@pytest.mark.skipif(not Path("/proc/self/smaps_rollup").exists(), reason="needs /proc smaps_rollup")
def test_tree_meter_counts_forked_workers(tmp_path):
    """A parent that forks two children each touching 64 MB is measured above 120 MB, although no
    single process holds more than ~75 MB."""
    sys.path.insert(0, str(ROOT))
    from experiments._measure import run_measured

    script = tmp_path / "fork.py"
    script.write_text(textwrap.dedent("""
        import os, time
        kids = []
        for _ in range(2):
            pid = os.fork()
            if pid == 0:
                block = bytearray(64 << 20)
                for i in range(0, len(block), 4096):
                    block[i] = 1
                time.sleep(2.0)
                os._exit(0)
            kids.append(pid)
        for pid in kids:
            os.waitpid(pid, 0)
    """))
    run = run_measured([sys.executable, str(script)], tmp_path / "log.txt", interval=0.02)
    assert run["rc"] == 0
    assert run["gb"] * 1024 > 120  # 2 x 64 MB private, plus the interpreters


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_trim_heap_gives_freed_heap_pages_back():
    """256 MB of 64 KB heap blocks, every other one freed (holes no top-trim can reach): RSS falls
    only with trim_heap."""
    code = """
        from gdo_opt.memory import trim_heap
        def rss():
            return int([l for l in open("/proc/self/status") if l.startswith("VmRSS")][0].split()[1]) // 1024
        blocks = [bytes(65536) for _ in range(4000)]
        del blocks[::2]
        before = rss()
        print(trim_heap(), before - rss())
    """
    released, dropped = _run(code).split()
    assert released == "True" and int(dropped) > 50
