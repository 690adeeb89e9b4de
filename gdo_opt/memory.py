"""Keep the resident set small on million-row pools: freed Arrow buffers go back to the system.

Arrow's default allocator (mimalloc) and glibc's malloc both keep freed pages for reuse, so after the
metrics parse and the text passes `select` stayed well above what it held; jemalloc with a decay
time of 0 returns them at once (compare by setting ``ARROW_DEFAULT_MEMORY_POOL``; the peak is
measured by experiments/vs_reference.py). The environment variable must be set before pyarrow is
first imported; a user's own ``ARROW_DEFAULT_MEMORY_POOL`` wins.
"""

from __future__ import annotations

import os
from functools import lru_cache

MALLOC_THRESHOLD = 1 << 20  # bytes: larger blocks are mmap'd and trimmed at once
ROOMY_THRESHOLD = 32 << 20  # the same in short-lived workers with large temporaries (workers.process_pool)


def prefer_returning_allocator() -> None:
    """Call before pyarrow is imported (the CLI does, first thing)."""
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")
    fix_malloc_thresholds()


def fix_malloc_thresholds(threshold: int | None = None, force: bool = False) -> bool:
    """glibc raises its mmap threshold to the largest block freed so far (up to 32 MB), so once an
    8 MB read buffer is freed, later ones come from the heap and stay resident; fixed thresholds keep
    blocks over ``MALLOC_THRESHOLD`` in their own mappings, returned when freed: a 200k-row
    ``select`` held 128 MB of glibc heap before its solve with a 4 MB threshold (1.6 MB numpy
    temporaries leave holes the heap cannot give back) and 28 MB with 1 MB. Each mapping is zeroed
    by the kernel, so hot loops over 2 MB blocks reuse one buffer (``ingest.read.iter_jsonl_views``).
    A user's ``MALLOC_*_`` environment wins (unless ``force``); no-op off glibc."""
    if not force and any(k.startswith("MALLOC_") for k in os.environ):
        return False
    threshold = MALLOC_THRESHOLD if threshold is None else int(threshold)
    libc = _glibc()
    m_trim_threshold, m_mmap_threshold = -1, -3
    return libc is not None and bool(libc.mallopt(m_mmap_threshold, threshold)
                                     and libc.mallopt(m_trim_threshold, threshold))


def return_freed_memory() -> None:
    """With Arrow's jemalloc pool, hand freed pages back immediately (no-op with other pools)."""
    import pyarrow as pa

    if pa.default_memory_pool().backend_name == "jemalloc":
        pa.jemalloc_set_decay_ms(0)


def trim_heap() -> bool:
    """Give the free pages inside glibc's heap back to the system (``malloc_trim(0)``: a few ms).
    Called after the inputs are loaded (``commands._common.load_inputs``) and before forked workers
    start (``workers.frozen_heap``): the holes freed temporaries leave would otherwise stay resident
    through the stages after, and the workers would inherit them."""
    libc = _glibc()
    return libc is not None and bool(libc.malloc_trim(0))


@lru_cache(maxsize=1)
def _glibc():
    """glibc through ctypes, or None (another OS or C library)."""
    import sys

    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None
