"""Out of core without a cluster: stream chunks from a file or a chunk factory, and add.

Exact EM over data that does not fit in memory: every iteration makes one pass over the
chunks, so only a bounded number of chunks is in memory at any time (at most two per
worker thread), whatever the number of rows. Three kinds of source:

* a ``.npy`` file, memory-mapped (``np.load(mmap_mode="r")``) and read in row chunks;
* a Parquet file or a directory of Parquet files, read record batch by record batch with
  pyarrow, only the selected columns;
* a re-iterable factory: a callable that returns a fresh iterator of chunks (``X`` or
  ``(X, sample_weight)`` pairs) on every call, one call per pass.

Statistics are added in chunk order, so for the same chunks the result equals the
in-memory :class:`~latentmix.em.ArrayData` bit for bit.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from latentmix.em._data import DataSource, _ordered_map, chunk_rows, n_threads

__all__ = ["ChunkFactory", "ChunkedData", "as_chunked_source"]

S = TypeVar("S")

Chunk = tuple[NDArray[Any], NDArray[np.float64] | None]
#: A callable returning a fresh iterator of chunks: ``X`` or ``(X, sample_weight)``.
ChunkFactory = Callable[[], Iterable[Any]]


def _check_chunk(X: Any, w: Any, n_features: int | None, index: int) -> Chunk:
    Xc = np.asarray(X)
    if Xc.ndim != 2:
        raise ValueError(
            f"Chunk {index} has shape {Xc.shape}; every chunk must be 2-D (rows, n_features)."
        )
    if Xc.dtype.kind not in "biuf":
        raise ValueError(f"Chunk {index} is not numeric (dtype {Xc.dtype}).")
    if Xc.dtype not in (np.float32, np.float64):
        Xc = Xc.astype(np.float64)
    if n_features is not None and Xc.shape[1] != n_features:
        raise ValueError(
            f"Chunk {index} has {Xc.shape[1]} columns, but the earlier chunks had "
            f"{n_features}: every chunk, on every pass, must have the same columns."
        )
    wc = None
    if w is not None:
        wc = np.asarray(w, dtype=np.float64)
        if wc.shape != (Xc.shape[0],):
            raise ValueError(
                f"Chunk {index}: sample_weight has shape {wc.shape}, expected "
                f"({Xc.shape[0]},), one weight per row."
            )
        if not np.all(np.isfinite(wc)) or np.any(wc < 0):
            raise ValueError(f"Chunk {index}: sample_weight must be finite and non-negative.")
    return Xc, wc


class ChunkedData(DataSource):
    """Rows streamed chunk by chunk, one pass per ``reduce`` (exact, out-of-core EM).

    Build it with :meth:`from_npy`, :meth:`from_parquet` or :meth:`from_chunks`. The first
    pass (made when the source is built) counts rows and checks columns; later passes
    check that they see the same.

    Parameters
    ----------
    factory : callable
        Returns a fresh iterator of ``(X_chunk, w_chunk_or_None)`` pairs on every call.
    n_samples, n_features : int
        Totals, as the first pass found them.
    dtype : numpy dtype
        dtype of the chunks (float32 or float64).
    total_weight : float
        Σ w over all rows.
    """

    def __init__(
        self,
        factory: Callable[[], Iterator[Chunk]],
        *,
        n_samples: int,
        n_features: int,
        dtype: np.dtype[Any],
        total_weight: float,
    ) -> None:
        self._factory = factory
        self.n_samples = int(n_samples)
        self.n_features = int(n_features)
        self.dtype = np.dtype(dtype)
        self._total_weight = float(total_weight)

    # -- constructors -------------------------------------------------------------------------
    @classmethod
    def from_npy(
        cls,
        path: str | os.PathLike[str],
        sample_weight: NDArray[Any] | str | os.PathLike[str] | None = None,
        *,
        chunk_size: int | None = None,
        width: int = 1,
    ) -> ChunkedData:
        """Memory-map a 2-D ``.npy`` file and read it in row chunks.

        Parameters
        ----------
        path : path-like
            A ``.npy`` file holding a 2-D float (or integer) array.
        sample_weight : ndarray or path-like of a 1-D ``.npy``, default=None
            Row weights (also memory-mapped when given as a path).
        chunk_size : int, default=None
            Rows per chunk; ``None`` sizes chunks as :class:`~latentmix.em.ArrayData` does
            for the given ``width``.
        width : int, default=1
            Numbers per row of the statistics function's widest temporary (see
            :meth:`DataSource.reduce`); only used when ``chunk_size`` is None.
        """
        X = np.load(path, mmap_mode="r")
        if X.ndim != 2:
            raise ValueError(f"{path} holds an array of shape {X.shape}; expected 2-D.")
        w: NDArray[np.float64] | None = None
        if sample_weight is not None:
            w = (
                np.load(sample_weight, mmap_mode="r")
                if isinstance(sample_weight, str | os.PathLike)
                else np.asarray(sample_weight)
            )
            if w.shape != (X.shape[0],):
                raise ValueError(
                    f"sample_weight has shape {w.shape}, expected ({X.shape[0]},) for {path}."
                )
        n = int(X.shape[0])
        dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.dtype(np.float64)
        step = int(chunk_size or chunk_rows(width, n, itemsize=dtype.itemsize))

        def factory() -> Iterator[Chunk]:
            for start in range(0, n, step):
                stop = min(start + step, n)
                # Copy the chunk out of the map: the pages are then released by the OS.
                Xc = np.array(X[start:stop])
                wc = None if w is None else np.array(w[start:stop], dtype=np.float64)
                yield Xc, wc

        total = float(n) if w is None else float(np.sum(w, dtype=np.float64))
        if w is not None and (not np.isfinite(total) or np.any(np.asarray(w) < 0)):
            raise ValueError("sample_weight must be finite and non-negative.")
        if X.dtype != dtype:
            base = factory

            def factory() -> Iterator[Chunk]:
                for Xc, wc in base():
                    yield Xc.astype(dtype), wc

        if n == 0:
            raise ValueError(f"{path} holds no rows.")
        return cls(
            factory, n_samples=n, n_features=int(X.shape[1]), dtype=dtype, total_weight=total
        )

    @classmethod
    def from_parquet(
        cls,
        path: str | os.PathLike[str],
        columns: Sequence[str] | None = None,
        *,
        weight_column: str | None = None,
        batch_size: int = 65536,
        dtype: Any = np.float64,
    ) -> ChunkedData:
        """Stream a Parquet file, or a directory of them, record batch by record batch.

        Parameters
        ----------
        path : path-like
            A Parquet file or a directory (a pyarrow dataset).
        columns : sequence of str, default=None
            Feature columns, in order; ``None`` means every column except
            ``weight_column``. All must be numeric.
        weight_column : str, default=None
            A column holding the row weights.
        batch_size : int, default=65536
            Rows per chunk (at most; a row group's end also ends a chunk).
        dtype : {np.float64, np.float32}, default=np.float64
            dtype the chunks are converted to.
        """
        import pyarrow.dataset as pads

        dataset = pads.dataset(os.fspath(path), format="parquet")
        names = list(dataset.schema.names)
        if columns is None:
            columns = [c for c in names if c != weight_column]
        wanted = list(columns) + ([weight_column] if weight_column is not None else [])
        missing = [c for c in wanted if c not in names]
        if missing:
            raise ValueError(
                f"Parquet data at {path} has no column(s) {missing}; its columns are {names}."
            )
        for c in wanted:
            typ = dataset.schema.field(c).type
            if not (pa_is_numeric(typ)):
                raise ValueError(
                    f"Parquet column {c!r} has type {typ}; feature and weight columns must be "
                    "numeric."
                )
        feats = list(columns)
        out_dtype = np.dtype(dtype)

        def factory() -> Iterator[Chunk]:
            for batch in dataset.to_batches(columns=wanted, batch_size=batch_size):
                if batch.num_rows == 0:
                    continue
                Xc = np.empty((batch.num_rows, len(feats)), dtype=out_dtype)
                for j, c in enumerate(feats):
                    col = batch.column(c)
                    if col.null_count:
                        # Nulls become NaN: missing values, for the families that handle them.
                        Xc[:, j] = col.to_numpy(zero_copy_only=False).astype(out_dtype)
                    else:
                        Xc[:, j] = col.to_numpy(zero_copy_only=False)
                wc = None
                if weight_column is not None:
                    wc = np.asarray(
                        batch.column(weight_column).to_numpy(zero_copy_only=False),
                        dtype=np.float64,
                    )
                yield Xc, wc

        n = int(dataset.count_rows())
        if n == 0:
            raise ValueError(f"Parquet data at {path} has no rows.")
        total = float(n)
        if weight_column is not None:
            # One pass over the weight column only, to know Σ w up front.
            total = 0.0
            for batch in dataset.to_batches(columns=[weight_column], batch_size=batch_size):
                wb = np.asarray(batch.column(0).to_numpy(zero_copy_only=False), dtype=np.float64)
                if not np.all(np.isfinite(wb)) or np.any(wb < 0):
                    raise ValueError(
                        f"Parquet weight column {weight_column!r} must be finite and "
                        "non-negative (and have no nulls)."
                    )
                total += float(wb.sum())
        return cls(factory, n_samples=n, n_features=len(feats), dtype=out_dtype, total_weight=total)

    @classmethod
    def from_chunks(cls, factory: ChunkFactory) -> ChunkedData:
        """Chunks from a re-iterable factory: ``factory()`` must start a fresh pass.

        Parameters
        ----------
        factory : callable returning an iterable
            Each item is a 2-D array ``X_chunk`` or a pair ``(X_chunk, w_chunk)``. It is
            called once when the source is built (to count rows and check columns) and
            once per pass after that; every pass must yield the same rows.

        Examples
        --------
        >>> import numpy as np
        >>> from latentmix.em._stream import ChunkedData
        >>> X = np.arange(12.0).reshape(6, 2)
        >>> data = ChunkedData.from_chunks(lambda: (X[i : i + 4] for i in (0, 4)))
        >>> data.n_samples, float(data.reduce(lambda Xc, w: Xc.sum()))
        (6, 66.0)
        """
        if not callable(factory):
            raise TypeError(
                "from_chunks needs a callable that returns a fresh iterator of chunks on every "
                "call (EM makes several passes), such as a generator function or "
                f"`lambda: iter(chunks)`; got {type(factory).__name__}."
            )

        def pairs() -> Iterator[tuple[Any, Any]]:
            it = factory()
            if it is None or not isinstance(it, Iterable):
                raise TypeError("The chunk factory must return an iterable of chunks.")
            for item in it:
                if isinstance(item, tuple):
                    if len(item) != 2:
                        raise ValueError(
                            "A chunk must be X or a pair (X, sample_weight), got a tuple of "
                            f"length {len(item)}."
                        )
                    yield item[0], item[1]
                else:
                    yield item, None

        return cls._checked(pairs)

    @classmethod
    def _checked(cls, raw: Callable[[], Iterator[tuple[Any, Any]]]) -> ChunkedData:
        # First pass: count rows and weight, fix the column count and dtype.
        n_samples, total_weight = 0, 0.0
        n_features: int | None = None
        dtype: np.dtype[Any] | None = None
        weighted: bool | None = None
        for i, (X, w) in enumerate(raw()):
            Xc, wc = _check_chunk(X, w, n_features, i)
            if weighted is not None and weighted != (wc is not None):
                raise ValueError(
                    f"Chunk {i} {'has' if wc is not None else 'lacks'} sample weights, unlike "
                    "the earlier chunks: give weights for all chunks or for none."
                )
            weighted = wc is not None
            n_features = int(Xc.shape[1])
            dtype = Xc.dtype if dtype is None else np.result_type(dtype, Xc.dtype)
            n_samples += int(Xc.shape[0])
            total_weight += float(Xc.shape[0]) if wc is None else float(wc.sum())
        if n_features is None or n_samples == 0:
            raise ValueError("The data source yielded no rows.")
        assert dtype is not None
        expected = (n_samples, n_features)

        def checked() -> Iterator[Chunk]:
            rows = 0
            for i, (X, w) in enumerate(raw()):
                Xc, wc = _check_chunk(X, w, n_features, i)
                if (wc is not None) != weighted:
                    raise ValueError(
                        f"Chunk {i} {'has' if wc is not None else 'lacks'} sample weights on "
                        "this pass, unlike the first pass: yield the same chunks every pass."
                    )
                rows += Xc.shape[0]
                yield Xc, wc
            if rows != expected[0]:
                raise ValueError(
                    f"A pass over the chunks yielded {rows} rows, the first pass "
                    f"{expected[0]}: the chunk factory must yield the same rows on every pass."
                )

        return cls(
            checked,
            n_samples=n_samples,
            n_features=n_features,
            dtype=dtype,
            total_weight=total_weight,
        )

    # -- DataSource -------------------------------------------------------------------------------
    def chunks(self) -> Iterator[Chunk]:
        """One pass over the chunks."""
        return self._factory()

    def reduce(
        self,
        fn: Callable[[NDArray[Any], NDArray[np.float64] | None], S],
        *,
        width: int = 1,
    ) -> S:
        """``fn`` over one pass of chunks (in worker threads, bounded in flight), summed in order.

        The chunks are the source's own; ``width`` is accepted for the interface.
        """
        total: Any = None
        threads = n_threads()
        for part in _ordered_map(fn, self.chunks(), threads):
            total = part if total is None else total + part
        if total is None:  # pragma: no cover - checked at construction
            raise ValueError("Cannot reduce over an empty data source.")
        return total  # type: ignore[no-any-return]

    def total_weight(self) -> float:
        return self._total_weight


def pa_is_numeric(typ: Any) -> bool:
    """Integer, floating or boolean Arrow type (what converts to a float column)."""
    import pyarrow.types as pat

    return bool(pat.is_integer(typ) or pat.is_floating(typ) or pat.is_boolean(typ))


def as_chunked_source(
    X: Any,
    sample_weight: Any = None,
    *,
    columns: Sequence[str] | None = None,
    weight_column: str | None = None,
    width: int = 1,
) -> ChunkedData:
    """A :class:`ChunkedData` for a path (``.npy``, Parquet file or directory) or a factory."""
    if isinstance(X, str | os.PathLike):
        p = Path(X)
        if p.suffix == ".npy":
            return ChunkedData.from_npy(p, sample_weight, width=width)
        if p.is_dir() or p.suffix in (".parquet", ".pq"):
            if sample_weight is not None:
                raise ValueError(
                    "For Parquet data, give the weights as a column: weight_column='...'."
                )
            return ChunkedData.from_parquet(p, columns, weight_column=weight_column)
        raise ValueError(
            f"Cannot tell how to read {X}: expected a .npy file, a .parquet file or a "
            "directory of Parquet files."
        )
    if callable(X):
        if sample_weight is not None:
            raise ValueError("For a chunk factory, yield (X, sample_weight) pairs instead.")
        return ChunkedData.from_chunks(X)
    raise TypeError(
        f"Cannot stream {type(X).__name__}: pass a path or a callable returning chunks."
    )
