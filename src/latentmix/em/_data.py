"""Where the rows come from: every reducer maps a statistics function over chunks and adds.

The EM loop never touches rows itself; it asks a :class:`DataSource` to ``reduce`` a pure
per-chunk function. Because the statistics add up exactly, the same loop serves an array in
memory (this module), a memory-mapped file, an iterator of chunks or a Dask array.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

__all__ = ["DEFAULT_CHUNK_ELEMENTS", "ArrayData", "DataSource", "as_data_source", "chunk_rows"]

S = TypeVar("S")

# Rows per chunk are chosen so a chunk's widest temporary (rows × width) holds about this
# many numbers: big enough for BLAS to run at speed, small enough to stay in cache-sized
# pieces and to keep memory independent of N.
DEFAULT_CHUNK_ELEMENTS = 1 << 20


def chunk_rows(width: int, n_samples: int, elements: int = DEFAULT_CHUNK_ELEMENTS) -> int:
    """Rows per chunk so that ``rows * width`` is about ``elements`` (at least 256 rows)."""
    rows = max(256, elements // max(int(width), 1))
    return int(min(rows, max(n_samples, 1)))


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

    def chunks(self, width: int = 1) -> Iterator[tuple[NDArray[Any], NDArray[np.float64] | None]]:
        step = self.chunk_size or chunk_rows(width, self.n_samples)
        for start in range(0, self.n_samples, step):
            stop = min(start + step, self.n_samples)
            w = None if self.sample_weight is None else self.sample_weight[start:stop]
            yield self.X[start:stop], w

    def reduce(
        self,
        fn: Callable[[NDArray[Any], NDArray[np.float64] | None], S],
        *,
        width: int = 1,
    ) -> S:
        total: Any = None
        for Xc, wc in self.chunks(width):
            part = fn(Xc, wc)
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
