"""A per-process pool of worker processes for CPU-bound ingestion work (parsing and validation).

Created lazily with the ``spawn`` start method (safe next to Dagster's threads) and shut down
at interpreter exit. Used only for batches large enough to amortise the hand-off.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

_pool: ProcessPoolExecutor | None = None


def chunk_map(n_lines: int, min_lines: int = 5000) -> Callable[..., Iterable[Any]] | None:
    """``map`` over a shared process pool when ``n_lines`` is worth it and there are ≥ 2 CPUs, else None."""
    global _pool
    cpus = os.cpu_count() or 1
    if cpus < 2 or n_lines < min_lines:
        return None
    if _pool is None:
        _pool = ProcessPoolExecutor(max_workers=cpus, mp_context=multiprocessing.get_context("spawn"))
        atexit.register(_pool.shutdown, wait=True, cancel_futures=True)
    return _pool.map
