"""Keep the resident set small on million-row pools: freed Arrow buffers go back to the system.

Arrow's default allocator (mimalloc) and glibc's malloc both keep freed pages for reuse, so after the
metrics parse and the text passes `select` stayed well above what it held; jemalloc with a decay
time of 0 returns them at once (compare by setting ``ARROW_DEFAULT_MEMORY_POOL``; the peak is
measured by experiments/vs_reference.py). The environment variable must be set before pyarrow is
first imported; a user's own ``ARROW_DEFAULT_MEMORY_POOL`` wins.
"""

from __future__ import annotations

import os


def prefer_returning_allocator() -> None:
    """Call before pyarrow is imported (the CLI does, first thing)."""
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")


def return_freed_memory() -> None:
    """With Arrow's jemalloc pool, hand freed pages back immediately (no-op with other pools)."""
    import pyarrow as pa

    if pa.default_memory_pool().backend_name == "jemalloc":
        pa.jemalloc_set_decay_ms(0)
