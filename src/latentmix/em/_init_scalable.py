"""Initialisation over any data source: k-means|| seeding and mixture starts in a few passes.

Everything here is a ``reduce`` over chunks with an additive (mergeable) result, so it
runs unchanged on arrays, streamed files and Dask clusters, and only small results reach
the client:

* :func:`kmeans_parallel` — k-means|| (Bahmani, Moseley, Vattani, Kumar and Vassilvitskii,
  2012): a first row drawn by weight, then ``n_rounds`` rounds that each draw about
  ``oversampling · n_clusters`` rows with probability proportional to w·d²(x, C), then
  weighted k-means++ and a few Lloyd steps on those candidates on the client, each
  candidate weighted by the weight of the rows nearest to it. 2·n_rounds + 2 passes.
* :func:`weighted_sample` — a weighted sample of rows without replacement in one pass
  (Efraimidis and Spirakis, 2006: keep the largest keys u ** (1 / w)).
* :func:`initialize_gaussian` — the starts of ``GaussianMixture`` for every
  ``init_params`` on a non-array source.

Random draws inside a chunk come from a generator seeded by the chunk's content and the
caller's seed: the result is reproducible and does not depend on scheduling, retries or
the order of chunks, but it does depend on how the rows are chunked (so it is not the
same draw as the in-memory initialisation).
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from latentmix.em._data import DataSource

__all__ = [
    "column_moments",
    "initialize_gaussian",
    "kmeans_parallel",
    "weighted_sample",
]

Array = NDArray[np.float64]


def _chunk_rng(X: NDArray[Any], seed: int, salt: int) -> np.random.Generator:
    """A generator determined by the chunk's bytes, the caller's seed and a salt."""
    digest = hashlib.blake2b(np.ascontiguousarray(X).data, digest_size=16).digest()
    words = np.frombuffer(digest, dtype=np.uint32).tolist()
    return np.random.default_rng([seed, salt, X.shape[0], *words])


def _weights(X: NDArray[Any], w: NDArray[np.float64] | None) -> Array:
    return np.ones(X.shape[0]) if w is None else np.asarray(w, dtype=np.float64)


def _sq_dist(X: Array, C: Array) -> Array:
    """Squared distances (n, m), clipped at zero (C and X already shifted)."""
    d2 = np.einsum("ij,ij->i", X, X)[:, None] - 2.0 * (X @ C.T) + np.einsum("ij,ij->i", C, C)
    return np.maximum(d2, 0.0, out=d2)


# -- mergeable partial results --------------------------------------------------------------------


@dataclass(frozen=True)
class _TopKeys:
    """The ``keep`` rows with the largest random keys; merging keeps the largest of both."""

    rows: Array
    keys: Array
    keep: int

    def __add__(self, other: _TopKeys) -> _TopKeys:
        rows = np.concatenate([self.rows, other.rows])
        keys = np.concatenate([self.keys, other.keys])
        order = np.argsort(-keys, kind="stable")[: self.keep]
        return _TopKeys(rows[order], keys[order], self.keep)


@dataclass(frozen=True)
class _Candidates:
    """Rows drawn in one k-means|| round, and the cost Σ w·d²(x, C) of the rows seen."""

    rows: Array
    cost: float

    def __add__(self, other: _Candidates) -> _Candidates:
        return _Candidates(np.concatenate([self.rows, other.rows]), self.cost + other.cost)


@dataclass(frozen=True)
class _Counts:
    """Weight of the rows nearest to each candidate, and their total cost."""

    weights: Array
    cost: float

    def __add__(self, other: _Counts) -> _Counts:
        return _Counts(self.weights + other.weights, self.cost + other.cost)


@dataclass(frozen=True)
class _Moments:
    """Σ w, Σ w·x and Σ w·x² per column over the observed entries (NaN skipped)."""

    weight: Array
    s1: Array
    s2: Array

    def __add__(self, other: _Moments) -> _Moments:
        return _Moments(self.weight + other.weight, self.s1 + other.s1, self.s2 + other.s2)


# -- passes -------------------------------------------------------------------------------------------


def column_moments(data: DataSource, shift: Array | None = None) -> tuple[Array, Array]:
    """Weighted column means and variances in one pass (NaN entries skipped).

    ``shift`` (a point near the data, e.g. a row) keeps the variance from cancelling.
    """
    d = data.n_features
    s = np.zeros(d) if shift is None else np.asarray(shift, dtype=np.float64)

    def fn(X: NDArray[Any], w: NDArray[np.float64] | None) -> _Moments:
        Z = np.asarray(X, dtype=np.float64) - s
        seen = ~np.isnan(Z)
        Z = np.where(seen, Z, 0.0)
        ww = _weights(X, w)[:, None]
        return _Moments((ww * seen).sum(axis=0), (ww * Z).sum(axis=0), (ww * Z * Z).sum(axis=0))

    m = data.reduce(fn, width=2 * d)
    if np.any(m.weight <= 0):
        empty = np.flatnonzero(m.weight <= 0).tolist()
        raise ValueError(f"Columns {empty} have no observed value with positive weight.")
    mean = m.s1 / m.weight
    var = np.maximum(m.s2 / m.weight - mean**2, 0.0)
    return s + mean, var


def _filled(
    fn: Callable[[NDArray[Any], NDArray[np.float64] | None], Any], fill: Array | None
) -> Callable[[NDArray[Any], NDArray[np.float64] | None], Any]:
    """``fn`` on chunks whose NaN entries are replaced by ``fill`` (a start needs whole rows)."""
    if fill is None:
        return fn

    def wrapped(X: NDArray[Any], w: NDArray[np.float64] | None) -> Any:
        if np.isnan(X).any():
            X = np.where(np.isnan(X), fill.astype(X.dtype), X)
        return fn(X, w)

    return wrapped


def weighted_sample(
    data: DataSource,
    n_rows: int,
    seed: int,
    *,
    fill: Array | None = None,
) -> Array:
    """``n_rows`` rows drawn without replacement, with probability proportional to weight.

    One pass. Rows of weight zero are never drawn; fewer rows come back if fewer have
    positive weight.
    """

    def fn(X: NDArray[Any], w: NDArray[np.float64] | None) -> _TopKeys:
        ww = _weights(X, w)
        rng = _chunk_rng(X, seed, 1)
        u = rng.random(X.shape[0])
        with np.errstate(divide="ignore"):
            keys = np.where(ww > 0, np.log(u) / np.where(ww > 0, ww, 1.0), -np.inf)
        top = np.argsort(-keys, kind="stable")[:n_rows]
        top = top[np.isfinite(keys[top])]
        return _TopKeys(np.asarray(X[top], dtype=np.float64), keys[top], n_rows)

    return data.reduce(_filled(fn, fill), width=data.n_features).rows


def kmeans_parallel(
    data: DataSource,
    n_clusters: int,
    random_state: np.random.RandomState,
    *,
    oversampling: float = 2.0,
    n_rounds: int = 3,
    fill: Array | None = None,
) -> Array:
    """k-means|| seeds: ``n_clusters`` centers chosen in ``2·n_rounds + 2`` passes.

    Parameters
    ----------
    data : DataSource
        The rows (any source).
    n_clusters : int
        Centers wanted.
    random_state : RandomState
        Seeds every draw (one integer is taken from it per pass).
    oversampling : float, default=2.0
        ℓ / n_clusters: rows drawn per round, in expectation (Bahmani et al. use 2).
    n_rounds : int, default=3
        Sampling rounds (Bahmani et al. find 5 ample and Spark MLlib uses 2).
    fill : ndarray of shape (n_features,), default=None
        Values that replace NaN entries (missing values) for the distances.

    Returns
    -------
    centers : ndarray of shape (n_clusters, n_features)
        In float64, in the data's coordinates.
    """
    from latentmix.cluster import kmeans_plusplus

    k = int(n_clusters)
    ell = float(oversampling) * k
    first = weighted_sample(data, 1, int(random_state.randint(2**31 - 1)), fill=fill)
    if first.shape[0] == 0:
        raise ValueError("Every row has sample weight zero: nothing to initialise from.")
    shift = first[0].copy()
    C = first - shift  # candidates, shifted by the first one

    def cost_fn(C: Array) -> Callable[[NDArray[Any], NDArray[np.float64] | None], _Candidates]:
        def fn(X: NDArray[Any], w: NDArray[np.float64] | None) -> _Candidates:
            Z = np.asarray(X, dtype=np.float64) - shift
            d2 = _sq_dist(Z, C).min(axis=1)
            return _Candidates(np.empty((0, Z.shape[1])), float(np.dot(_weights(X, w), d2)))

        return fn

    def draw_fn(
        C: Array, psi: float, seed: int
    ) -> Callable[[NDArray[Any], NDArray[np.float64] | None], _Candidates]:
        def fn(X: NDArray[Any], w: NDArray[np.float64] | None) -> _Candidates:
            Z = np.asarray(X, dtype=np.float64) - shift
            ww = _weights(X, w)
            d2 = _sq_dist(Z, C).min(axis=1)
            p = np.minimum(1.0, ell * ww * d2 / psi)
            take = _chunk_rng(X, seed, 2).random(Z.shape[0]) < p
            return _Candidates(Z[take], float(np.dot(ww, d2)))

        return fn

    width = data.n_features + 4 * k * max(n_rounds, 1)
    for _ in range(n_rounds):
        psi = data.reduce(_filled(cost_fn(C), fill), width=width).cost
        if psi <= 0:
            break  # every row sits on a candidate
        seed = int(random_state.randint(2**31 - 1))
        drawn = data.reduce(_filled(draw_fn(C, psi, seed), fill), width=width).rows
        C = np.concatenate([C, drawn])

    def count_fn(X: NDArray[Any], w: NDArray[np.float64] | None) -> _Counts:
        Z = np.asarray(X, dtype=np.float64) - shift
        ww = _weights(X, w)
        d2 = _sq_dist(Z, C)
        nearest = d2.argmin(axis=1)
        counts = np.bincount(nearest, weights=ww, minlength=C.shape[0]).astype(np.float64)
        return _Counts(counts, float(np.dot(ww, d2[np.arange(Z.shape[0]), nearest])))

    counts = data.reduce(_filled(count_fn, fill), width=width).weights
    keep = counts > 0
    C, counts = C[keep], counts[keep]
    if C.shape[0] < k:
        raise ValueError(
            f"k-means|| found only {C.shape[0]} distinct candidate rows (with positive "
            f"weight), fewer than n_clusters={k}: the data may have fewer than {k} distinct "
            f"points. Use n_clusters <= {C.shape[0]}, or a larger oversampling."
        )
    centers, _ = kmeans_plusplus(C, k, sample_weight=counts, random_state=random_state)
    centers = _weighted_lloyd(C, counts, np.asarray(centers, dtype=np.float64))
    return centers + shift


def _weighted_lloyd(X: Array, w: Array, centers: Array, n_iter: int = 10) -> Array:
    """A few weighted Lloyd steps on the (small) candidate set, on the client."""
    C = centers.copy()
    for _ in range(n_iter):
        labels = _sq_dist(X, C).argmin(axis=1)
        wk = np.bincount(labels, weights=w, minlength=C.shape[0])
        sums = np.zeros_like(C)
        np.add.at(sums, labels, w[:, None] * X)
        full = wk > 0
        new = C.copy()
        new[full] = sums[full] / wk[full, None]
        if np.array_equal(new, C):
            break
        C = new
    return C


# -- Gaussian mixture starts --------------------------------------------------------------------------


def _hard_stats(
    data: DataSource,
    centers: Array,
    covariance_type: str,
    fill: Array | None,
) -> Any:
    """Statistics of every row given to its nearest center (about the centers, for ``full``)."""
    from latentmix.gaussian._mstep import stats_from_labels

    k = centers.shape[0]
    shift = centers.mean(axis=0)
    rel = centers - shift

    def fn(X: NDArray[Any], w: NDArray[np.float64] | None) -> Any:
        Z = np.asarray(X, dtype=np.float64) - shift
        labels = _sq_dist(Z, rel).argmin(axis=1)
        return stats_from_labels(X, labels, k, w, shift, rel, covariance_type)

    return data.reduce(_filled(fn, fill), width=2 * k + data.n_features)


def _random_resp_stats(
    data: DataSource, k: int, seed: int, covariance_type: str, fill: Array | None
) -> Any:
    """Statistics under random responsibilities (drawn per chunk from its content)."""
    from latentmix.gaussian._mstep import stats_from_resp

    def resp_pass(shift: Array, centers: Array) -> Any:
        def fn(X: NDArray[Any], w: NDArray[np.float64] | None) -> Any:
            r = _chunk_rng(X, seed, 3).random((X.shape[0], k))
            r /= r.sum(axis=1)[:, None]
            return stats_from_resp(X, r, w, shift, centers, covariance_type)

        return data.reduce(_filled(fn, fill), width=2 * k + data.n_features)

    shift = column_moments(data)[0] if fill is None else fill
    stats = resp_pass(shift, np.zeros((k, data.n_features)))
    if covariance_type == "full":
        # A second pass about the initial means, so the covariances do not cancel.
        means = shift + stats.s1 / (stats.nk[:, None] + 10 * np.finfo(float).eps)
        stats = resp_pass(shift, means - shift)
    return stats


def initialize_gaussian(family: Any, data: DataSource, random_state: np.random.RandomState) -> Any:
    """Initial ``GaussianParams`` for a ``GaussianMixture`` family on any data source.

    The same four ``init_params`` as in memory, made of passes over the source:

    * ``"kmeans"``: k-means|| seeds, then Lloyd iterations over the source (at most
      ``KMEANS_MAX_ITER``), then every row given to its nearest center;
    * ``"k-means++"``: k-means|| seeds (instead of sequential k-means++), one row per
      component as in memory;
    * ``"random_from_data"``: ``n_components`` rows drawn by weight, one per component;
    * ``"random"``: random responsibilities, drawn per chunk.

    User-given ``weights_init``/``means_init``/``precisions_init`` replace what they give.
    With missing values, the distances and starts use rows completed by column means.
    """
    from latentmix.gaussian._mstep import stats_from_resp
    from latentmix.gaussian._params import IllConditionedError

    est = family.est
    family._mstate = None  # a constrained model's warm start belongs to one run
    if all(v is not None for v in (est.weights_init, est.means_init, est.precisions_init)):
        return family._from_user(None)
    k = int(family.n_components)
    ct = str(family.covariance_type)
    fill = column_moments(data)[0] if getattr(family, "missing", False) else None
    method = est.init_params
    if method == "random":
        stats = _random_resp_stats(data, k, int(random_state.randint(2**31 - 1)), ct, fill)
    elif method == "kmeans":
        centers = _lloyd_on(data, kmeans_parallel(data, k, random_state, fill=fill), fill)
        stats = _hard_stats(data, centers, ct, fill)
    else:
        if method == "k-means++":
            rows = kmeans_parallel(data, k, random_state, fill=fill)
        else:  # random_from_data
            rows = weighted_sample(data, k, int(random_state.randint(2**31 - 1)), fill=fill)
            if rows.shape[0] < k:
                raise ValueError(
                    f"Only {rows.shape[0]} rows have positive weight, fewer than n_components={k}."
                )
        shift = rows[0].copy()
        eye = np.eye(k)
        zeros = np.zeros((k, rows.shape[1]))
        first = stats_from_resp(rows, eye, None, shift, zeros, ct)
        means = shift + first.s1 / (first.nk[:, None] + 10 * np.finfo(float).eps)
        stats = stats_from_resp(rows, eye, None, shift, means - shift, ct)
    params, bad = family.initial_mstep(stats)
    if bad:
        raise IllConditionedError(bad)
    return family._from_user(params)


#: Lloyd iterations over the source in the ``"kmeans"`` start (each one is a pass).
KMEANS_MAX_ITER = 20


def _lloyd_on(data: DataSource, seeds: Array, fill: Array | None) -> Array:
    """Lloyd's algorithm over the source from ``seeds`` (KMeans' own family and loop)."""
    from latentmix._exceptions import ConvergenceWarning
    from latentmix.cluster._kmeans import KMeansParams, LloydFamily
    from latentmix.em._loop import run_em

    shift = seeds.mean(axis=0)
    family = LloydFamily(seeds.shape[0], data.n_features, shift)
    _, var = column_moments(data, shift)
    tol = 1e-4 * float(np.mean(var))  # scikit-learn's tolerance, relative to the data's scale
    source: Any = data if fill is None else _FilledSource(data, fill)
    with warnings.catch_warnings():
        # A start need not converge: the mixture's EM takes over from here.
        warnings.simplefilter("ignore", ConvergenceWarning)
        result = run_em(
            family,
            source,
            n_init=1,
            max_iter=KMEANS_MAX_ITER,
            tol=tol,
            random_state=np.random.RandomState(0),
            init_params=KMeansParams(seeds - shift),
            name="KMeans (initialisation)",
        )
    return np.asarray(result.params.centers + shift, dtype=np.float64)


class _FilledSource(DataSource):
    """A view of a source whose NaN entries read as ``fill``."""

    def __init__(self, data: DataSource, fill: Array) -> None:
        self.data = data
        self.fill = fill
        self.n_samples, self.n_features, self.dtype = data.n_samples, data.n_features, data.dtype

    def reduce(self, fn: Any, *, width: int = 1) -> Any:
        return self.data.reduce(_filled(fn, self.fill), width=width)

    def total_weight(self) -> float:
        return self.data.total_weight()
