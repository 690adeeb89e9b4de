"""Worker process pools that die with their parent, even when the parent is killed with -9.

Why: a ``kill -9`` of ``extract`` during motion chunks left 4 spawn workers (~170 MB each) and the
resource tracker alive for 42+ minutes. Two independent guards run in every worker:

* ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` (Linux, via ctypes): the kernel kills the worker the moment
  its parent dies;
* a daemon thread that polls the parent's pid (any platform): when the worker has been re-parented
  it exits at once.

Once the workers are gone the resource tracker sees its pipe close and exits by itself.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager

PR_SET_PDEATHSIG = 1
WATCH_SECONDS = 0.5


def _set_pdeathsig() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch(parent: int) -> None:
    while True:
        if os.getppid() != parent:
            os._exit(1)
        time.sleep(WATCH_SECONDS)


def tie_to_parent(parent: int, initializer=None, initargs: tuple = (), roomy_malloc: bool = False) -> None:
    """Pool initializer: die with ``parent`` (then run the caller's own initializer). ``roomy_malloc``:
    glibc keeps blocks up to ``memory.ROOMY_THRESHOLD`` on its heap for reuse (see ``process_pool``)."""
    _set_pdeathsig()
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)
    threading.Thread(target=_watch, args=(parent,), daemon=True, name="gdo-parent-watch").start()
    if roomy_malloc:
        from gdo_opt.memory import ROOMY_THRESHOLD, fix_malloc_thresholds

        fix_malloc_thresholds(ROOMY_THRESHOLD, force=True)
    if initializer is not None:
        initializer(*initargs)


def default_method() -> str:
    """fork on Linux (fast start, inherits imports), spawn elsewhere."""
    return "fork" if sys.platform.startswith("linux") and "fork" in mp.get_all_start_methods() else "spawn"


@contextmanager
def frozen_heap():
    """While forked workers run: the parent's Python objects move to the collector's permanent
    generation, so a collection in a worker does not write to (and so copy) every page of the
    parent's heap it inherited; the free pages of glibc's heap go back first, so the workers do not
    inherit them either. Undone on exit."""
    import gc

    from gdo_opt.memory import trim_heap

    trim_heap()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def process_pool(workers: int, method: str | None = None, initializer=None, initargs: tuple = (),
                 roomy_malloc: bool = False) -> ProcessPoolExecutor:
    """A ProcessPoolExecutor whose workers exit when this process dies (see the module docstring).

    ``roomy_malloc=True`` for workers that churn through large per-block temporaries (the ingest's
    text passes allocate arrays of 8 bytes per text byte): reused from glibc's heap instead of
    a fresh zeroed mapping each time, 0.5 s less of a 200k-pair ``select``; their heap goes away
    with them when the pool shuts down."""
    context = mp.get_context(method or default_method())
    return ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=tie_to_parent,
                               initargs=(os.getpid(), initializer, initargs, roomy_malloc))


def spill_table(table, path: str) -> str:
    """A worker's result table written as an Arrow IPC file for the parent (no pickling of large
    tables through the pool's pipe); returns ``path``."""
    import pyarrow as pa

    with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return path


def load_spill(path: str, unlink: bool = True):
    """The table of ``spill_table``, memory-mapped (zero copy); the file is unlinked at once, the
    mapping stays valid."""
    import pyarrow as pa

    table = pa.ipc.open_file(pa.memory_map(path)).read_all()
    if unlink:
        os.unlink(path)
    return table

