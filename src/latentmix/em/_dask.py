"""Dask arrays and DataFrames as a data source: statistics per block, tree-summed on the workers.

Each EM iteration builds one small graph: ``fn(block, weights)`` for every row block, then
a tree of ``+`` over the results, grouped ``split_every`` at a time. Only the final
statistics (for a Gaussian mixture K·D² numbers, whatever N) travel to the client, where
the M-step runs. The tree has a fixed shape given the blocks, so the result does not
depend on which worker computed what, nor on retries after a lost worker.

A running ``distributed.Client`` is used when there is one; otherwise Dask's default
scheduler (threads). Dask retries the tasks of a worker that dies, because every block is
recomputable from the graph.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from latentmix.em._data import DataSource

__all__ = ["DEFAULT_SPLIT_EVERY", "DaskData", "get_client", "is_dask_collection"]

S = TypeVar("S")

#: Partial results added per task of the tree-sum.
DEFAULT_SPLIT_EVERY = 8


def is_dask_collection(X: Any) -> bool:
    """True for a Dask array, DataFrame or Series (without importing Dask otherwise)."""
    if type(X).__module__.split(".")[0] not in ("dask", "dask_expr"):
        return False
    try:
        import dask
    except ImportError:  # pragma: no cover - dask is installed with the scale-out extra
        return False
    return bool(dask.is_dask_collection(X))


def get_client() -> Any:
    """The running ``distributed.Client``, or None (then the default scheduler is used)."""
    try:
        from distributed import get_client as _get_client
    except ImportError:  # pragma: no cover
        return None
    try:
        return _get_client()
    except ValueError:  # no client running
        return None


def _as_dask_array(X: Any, name: str) -> Any:
    """A 2-D (or, for weights, 1-D) Dask array with known chunk sizes."""
    import dask.array as da

    if not isinstance(X, da.Array):
        if not hasattr(X, "to_dask_array"):
            raise TypeError(
                f"{name} must be a Dask array, DataFrame or Series, got {type(X).__name__}."
            )
        from pandas.api.types import is_bool_dtype, is_numeric_dtype

        dtypes = getattr(X, "dtypes", None)
        listed = [X.dtype] if dtypes is None or not hasattr(dtypes, "items") else list(dtypes)
        bad = [str(t) for t in listed if not (is_numeric_dtype(t) or is_bool_dtype(t))]
        if bad:
            raise ValueError(
                f"{name} has non-numeric columns (dtypes {bad}); select the numeric feature "
                "columns before fitting."
            )
        # lengths=True computes the partition lengths once, so row counts are known.
        X = X.to_dask_array(lengths=True)
    if any(np.isnan(c) for c in X.chunks[0]):
        raise ValueError(
            f"{name} is a Dask array with unknown chunk sizes (NaN in .chunks). Call "
            f"{name}.compute_chunk_sizes() first, or build it from a DataFrame with "
            "to_dask_array(lengths=True)."
        )
    return X


class DaskData(DataSource):
    """A Dask array or DataFrame (and optional Dask or NumPy weights) as a data source.

    Parameters
    ----------
    X : dask.array.Array or dask.dataframe.DataFrame of shape (n_samples, n_features)
        The rows. A DataFrame is converted with ``to_dask_array(lengths=True)``; all its
        columns must be numeric. Row blocks are kept as they are; column blocks are
        merged (each task needs whole rows).
    sample_weight : dask array, Series or ndarray of shape (n_samples,), default=None
        Non-negative row weights; rechunked to the row blocks of ``X``.
    client : distributed.Client, default=None
        Where to compute; ``None`` uses the running client if there is one, else Dask's
        default scheduler.
    split_every : int, default=8
        Partial results added per task of the tree-sum.

    Examples
    --------
    >>> import dask.array as da
    >>> from latentmix.em._dask import DaskData
    >>> data = DaskData(da.ones((10, 2), chunks=(4, 2)))
    >>> data.n_samples, data.n_features, data.n_blocks
    (10, 2, 3)
    >>> float(data.reduce(lambda X, w: X.sum()))
    20.0
    """

    def __init__(
        self,
        X: Any,
        sample_weight: Any = None,
        *,
        client: Any = None,
        split_every: int = DEFAULT_SPLIT_EVERY,
    ) -> None:
        import dask.array as da

        X = _as_dask_array(X, "X")
        if X.ndim != 2:
            raise ValueError(
                f"X must be 2-D (n_samples, n_features), got a Dask array of shape {X.shape}."
            )
        if X.dtype.kind not in "biuf":
            raise ValueError(f"X must be numeric, got dtype {X.dtype}.")
        if X.dtype not in (np.float32, np.float64):
            X = X.astype(np.float64)
        if len(X.chunks[1]) > 1:
            X = X.rechunk({1: -1})
        self.X = X
        self.n_samples, self.n_features = (int(s) for s in X.shape)
        self.dtype = X.dtype
        if self.n_samples == 0:
            raise ValueError("Cannot fit on a Dask array with no rows.")
        self.sample_weight: Any = None
        if sample_weight is not None:
            if isinstance(sample_weight, np.ndarray) or np.isscalar(sample_weight):
                w = np.broadcast_to(np.asarray(sample_weight, dtype=np.float64), (self.n_samples,))
                sw = da.from_array(np.ascontiguousarray(w), chunks=(X.chunks[0],))
            else:
                sw = _as_dask_array(sample_weight, "sample_weight").astype(np.float64)
            if sw.ndim != 1 or sw.shape[0] != self.n_samples:
                raise ValueError(
                    f"sample_weight must have the shape ({self.n_samples},), one weight per "
                    f"row of X, got {sw.shape}."
                )
            if sw.chunks[0] != X.chunks[0]:
                sw = sw.rechunk((X.chunks[0],))
            self.sample_weight = sw
        if split_every < 2:
            raise ValueError(f"split_every must be at least 2, got {split_every}.")
        self.split_every = int(split_every)
        self.client = client
        self._total_weight: float | None = None

    @property
    def n_blocks(self) -> int:
        """Number of row blocks (tasks per pass)."""
        return len(self.X.chunks[0])

    def _blocks(self) -> list[tuple[Any, Any]]:
        xs = self.X.to_delayed().ravel().tolist()
        if self.sample_weight is None:
            return [(x, None) for x in xs]
        ws = self.sample_weight.to_delayed().ravel().tolist()
        return list(zip(xs, ws, strict=True))

    def _compute(self, obj: Any) -> Any:
        client = self.client if self.client is not None else get_client()
        if client is not None:
            return client.compute(obj, sync=True)
        import dask

        return dask.compute(obj)[0]

    def reduce_delayed(self, fn: Callable[[NDArray[Any], NDArray[np.float64] | None], S]) -> Any:
        """The lazy tree-sum of ``fn`` over the blocks (a ``dask.delayed`` object)."""
        import dask

        # One graph node holds fn (with the current parameters), so it is sent once per
        # worker, not once per block.
        fn_node = dask.delayed(fn, pure=False, traverse=False)
        level = [dask.delayed(_apply, pure=True)(fn_node, x, w) for x, w in self._blocks()]
        while len(level) > 1:
            level = [
                dask.delayed(_add_all, pure=True)(*level[i : i + self.split_every])
                for i in range(0, len(level), self.split_every)
            ]
        return level[0]

    def reduce(
        self,
        fn: Callable[[NDArray[Any], NDArray[np.float64] | None], S],
        *,
        width: int = 1,
    ) -> S:
        """``fn`` over every row block on the workers, summed there; returns the small sum.

        ``width`` is accepted for the :class:`DataSource` interface; the blocks are the
        Dask array's own (rechunk the array to change them).
        """
        return self._compute(self.reduce_delayed(fn))  # type: ignore[no-any-return]

    def total_weight(self) -> float:
        if self._total_weight is None:
            if self.sample_weight is None:
                self._total_weight = float(self.n_samples)
            else:
                self._total_weight = float(self._compute(self.sample_weight.sum()))
        return self._total_weight


def _apply(fn: Callable[..., S], X: NDArray[Any], w: NDArray[np.float64] | None) -> S:
    return fn(np.asarray(X), None if w is None else np.asarray(w, dtype=np.float64))


def _add_all(*parts: Any) -> Any:
    # Left to right, so the sum has one fixed order whatever the scheduling.
    return functools.reduce(operator.add, parts)
