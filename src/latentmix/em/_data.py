"""Where the rows come from: every reducer maps a statistics function over chunks and adds.

The EM loop never touches rows itself; it asks a :class:`DataSource` to ``reduce`` a pure
per-chunk function. Because the statistics add up exactly, the same loop serves an array in
memory (this module), a memory-mapped file, an iterator of chunks or a Dask array.
"""

from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "DEFAULT_CHUNK_ELEMENTS",
    "ArrayData",
    "DataSource",
    "as_data_source",
    "chunk_rows",
    "for_each_chunk",
    "n_threads",
]

S = TypeVar("S")

# Rows per chunk are chosen so a chunk's widest temporary (rows × width) holds about this
# many float64 numbers, or as many bytes in another dtype (twice the rows in float32):
# big enough for BLAS to run at speed, small enough that a chunk's temporaries stay in
# the caches (2 MiB per temporary) and memory is independent of N.
DEFAULT_CHUNK_ELEMENTS = 1 << 18

#: Upper bound on worker threads; ``None`` means "as many as BLAS may use" (see n_threads).
MAX_THREADS: int | None = None


def chunk_rows(
    width: int, n_samples: int, elements: int = DEFAULT_CHUNK_ELEMENTS, itemsize: int = 8
) -> int:
    """Rows per chunk so that ``rows * width`` is about ``elements`` (at least 256 rows).

    ``elements`` counts float64 numbers: with ``itemsize`` 4 (float32) a chunk takes twice
    the rows, for the same bytes. Equal bytes, not equal rows, is what keeps a chunk in
    cache, and float32 needs the longer chunks to gain on float64: each chunk costs a
    fixed ~0.1 ms of Python, and handing the GIL between the two worker threads adds
    more (one iteration of diag, D=16, K=16, on 1M float32 rows: 88 → 64 ms).
    """
    budget = elements * 8 // max(int(itemsize), 1)
    rows = max(256, budget // max(int(width), 1))
    return int(min(rows, max(n_samples, 1)))


# -- both cores busy: a small pool over chunks, BLAS pinned to one thread meanwhile -------------

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_controller: Any = None
_in_worker = threading.local()


def _blas_controller() -> Any:
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return _controller


def n_threads() -> int:
    """Worker threads for chunk loops: the cores we may use, capped by BLAS's own setting.

    Following the BLAS thread count means ``OMP_NUM_THREADS=1`` or an enclosing
    ``threadpoolctl.threadpool_limits(1)`` also keeps these loops on one core.
    """
    if getattr(_in_worker, "active", False):
        return 1  # no nested pools
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    blas = [i.get("num_threads", 1) for i in _blas_controller().select(user_api="blas").info()]
    limit = max(blas) if blas else cores
    n = min(cores, limit)
    if MAX_THREADS is not None:
        n = min(n, MAX_THREADS)
    return max(int(n), 1)


def _get_pool(n: int) -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None or _pool._max_workers < n:
            _pool = ThreadPoolExecutor(max_workers=n, thread_name_prefix="latentmix")
        return _pool


def _single_blas_thread() -> AbstractContextManager[Any]:
    # The workers already fill the cores; threaded BLAS inside them would oversubscribe.
    controller = _blas_controller().select(user_api="blas")
    if not controller.lib_controllers:
        return nullcontext()
    return controller.limit(limits=1)  # type: ignore[no-any-return]


def _run_in_worker(fn: Callable[..., S], *args: Any) -> S:
    _in_worker.active = True
    try:
        return fn(*args)
    finally:
        _in_worker.active = False


def _ordered_map(
    fn: Callable[..., S], items: Iterator[tuple[Any, ...]], threads: int
) -> Iterator[S]:
    """``fn(*item)`` for every item, in order, at most ``2·threads`` in flight (bounded memory)."""
    if threads <= 1:
        for item in items:
            yield fn(*item)
        return
    pool = _get_pool(threads)
    pending: deque[Future[S]] = deque()
    with _single_blas_thread():
        for item in items:
            pending.append(pool.submit(_run_in_worker, fn, *item))
            if len(pending) >= 2 * threads:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


#: A reduction hands its chunks to the worker threads in at most this many tasks (runs of
#: consecutive chunks), whatever the thread count. Handing over one chunk costs tens of
#: microseconds of thread wake-ups; with one task per cache-sized chunk (300 chunks per
#: iteration of diag, D=16, K=16, on 1M rows) two threads ran slower than one.
TASKS = 32


def _tasks(n_samples: int, step: int) -> list[tuple[int, int]]:
    """Row ranges of whole chunks of ``step`` rows, at most ``TASKS`` of them; depends only
    on the row count and the chunk size, so that sums do not depend on the thread count."""
    n_chunks = -(-n_samples // step)
    per_task = max(1, -(-n_chunks // TASKS))
    span = per_task * step
    return [(a, min(a + span, n_samples)) for a in range(0, n_samples, span)]


def for_each_chunk(
    fn: Callable[[int, int], None], n_samples: int, width: int = 1, itemsize: int = 8
) -> None:
    """Call ``fn(start, stop)`` over row chunks sized by ``width``, on all worker threads.

    ``fn`` must only write rows ``start:stop`` of its outputs (so the calls are independent);
    ``itemsize`` is the bytes per number of its temporaries (see ``chunk_rows``).
    """
    step = chunk_rows(width, n_samples, itemsize=itemsize)

    def task(a: int, b: int) -> None:
        for start in range(a, b, step):
            fn(start, min(start + step, b))

    tasks = _tasks(n_samples, step)
    threads = n_threads() if len(tasks) > 1 else 1
    for _ in _ordered_map(task, iter(tasks), min(threads, len(tasks))):
        pass


class DataSource(ABC):
    """Rows and their weights, reachable only through ``reduce``."""

    n_samples: int
    n_features: int
    dtype: np.dtype[Any]

    @abstractmethod
    def reduce(
        self,
        fn: Callable[[NDArray[Any], NDArray[np.float64] | None], S],
        *,
        width: int = 1,
    ) -> S:
        """Apply ``fn(X_chunk, w_chunk)`` to every chunk and return the sum of the results.

        ``width`` is the number of numbers per row of ``fn``'s widest temporary (for a
        mixture, about ``n_components * n_features``); it sizes the chunks.
        """

    @abstractmethod
    def total_weight(self) -> float:
        """Σ w over all rows (the row count when unweighted)."""


class ArrayData(DataSource):
    """An in-memory array (or a NumPy memmap), reduced over row chunks."""

    def __init__(
        self,
        X: NDArray[Any],
        sample_weight: NDArray[np.float64] | None = None,
        *,
        chunk_size: int | None = None,
    ) -> None:
        self.X = X
        self.sample_weight = sample_weight
        self.chunk_size = chunk_size
        self.n_samples, self.n_features = X.shape
        self.dtype = X.dtype
        self._itemsize = int(X.dtype.itemsize)

    def reduce(
        self,
        fn: Callable[[NDArray[Any], NDArray[np.float64] | None], S],
        *,
        width: int = 1,
    ) -> S:
        step = self.chunk_size or chunk_rows(width, self.n_samples, itemsize=self._itemsize)
        X, sw = self.X, self.sample_weight

        def task(a: int, b: int) -> S | None:
            part: Any = None
            for start in range(a, b, step):
                stop = min(start + step, b)
                one = fn(X[start:stop], None if sw is None else sw[start:stop])
                part = one if part is None else part + one
            return part  # type: ignore[no-any-return]

        tasks = _tasks(self.n_samples, step)
        threads = min(n_threads(), len(tasks)) if len(tasks) > 1 else 1
        total: Any = None
        # Summed in chunk order within a task and in task order across them: the tasks
        # depend only on the row count, so results do not depend on the thread count.
        for part in _ordered_map(task, iter(tasks), threads):
            total = part if total is None else total + part
        if total is None:
            raise ValueError("Cannot reduce over an empty data source: X has no rows.")
        return total  # type: ignore[no-any-return]

    def total_weight(self) -> float:
        if self.sample_weight is None:
            return float(self.n_samples)
        return float(np.sum(self.sample_weight))


def as_data_source(X: NDArray[Any], sample_weight: NDArray[np.float64] | None = None) -> DataSource:
    """Wrap validated rows as a data source (arrays today; other kinds register here)."""
    if isinstance(X, DataSource):
        return X
    return ArrayData(X, sample_weight)
