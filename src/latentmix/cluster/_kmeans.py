"""K-means (Lloyd's algorithm) as one more family of the EM engine, and k-means++ seeding.

The E-step of K-means is a hard assignment of every row to its nearest center and the
M-step is a weighted mean per cluster, so K-means fits :class:`~latentmix.em.EMFamily`
exactly: the per-chunk statistics (:class:`KMeansStats`) are per-cluster weighted sums of
rows, weighted counts and the weighted inertia, and they add up over chunks.

The iterations reproduce scikit-learn's ``KMeans(algorithm="lloyd")``: the same
tolerance (``tol`` times the mean per-feature variance of X, compared with the total
squared shift of the centers), the same re-seeding of empty clusters, and a final
assignment under the final centers.
"""

from __future__ import annotations

import logging
import numbers
import warnings
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    ClusterMixin,
    TransformerMixin,
)

from latentmix._exceptions import ConvergenceWarning
from latentmix._param_validation import ArrayLike as ArrayLikeC
from latentmix._param_validation import (
    Boolean,
    Constraint,
    Interval,
    Options,
    RandomStateLike,
    validate_params,
)
from latentmix._validation import (
    check_finite,
    check_n_rows,
    check_random_state,
    check_sample_weight,
    check_X_fit,
    check_X_predict,
)
from latentmix.cluster._kernels import HAVE_NUMBA, assign_chunk
from latentmix.em._dask import is_dask_collection
from latentmix.em._data import ArrayData, DataSource, chunk_rows, for_each_chunk
from latentmix.em._fit_source import is_out_of_core
from latentmix.em._loop import EMFamily, FitInterrupted, run_em

__all__ = ["KMeans", "KMeansParams", "KMeansStats", "kmeans_plusplus"]

logger = logging.getLogger("latentmix")

#: Fits with fewer than this many row × cluster pairs use NumPy: the Numba kernel's
#: one-time compilation (cached on disk afterwards) only pays off on larger data.
NUMBA_MIN_WORK = 1 << 18


def _use_numba(n_samples: int, n_clusters: int) -> bool:
    return HAVE_NUMBA and n_samples * n_clusters >= NUMBA_MIN_WORK


def _chunk_width(n_features: int, n_clusters: int, use_numba: bool) -> int:
    """Numbers per row that size Lloyd's row chunks (see ``latentmix.em.chunk_rows``).

    The Numba kernel's temporaries are per 64-row block and a float64 chunk is a view, so
    its chunks can be long: an eighth of the features (131k rows at D=16) cut the Python
    work per chunk, which holds the GIL, and made an iteration on two threads about 12%
    faster than chunks sized by the features. NumPy's temporaries are rows × clusters.
    """
    return max(n_features // 8, 1) if use_numba else n_features + n_clusters


# --------------------------------------------------------------------------------------
# Statistics and parameters


@dataclass(frozen=True)
class KMeansStats:
    """Additive statistics of a set of rows under fixed centers.

    Attributes
    ----------
    sums : ndarray of shape (n_clusters, n_features)
        Σ w·(x − shift) over the rows nearest to each center.
    weights : ndarray of shape (n_clusters,)
        Σ w over the rows nearest to each center.
    inertia : float
        Σ w·‖x − c‖² with c the nearest center.
    far_dist, far_x, far_w, far_label : ndarray
        The (at most ``n_clusters − 1``) rows farthest from their centers: squared
        distance, shifted row, weight and label. They re-seed empty clusters. Adding two
        statistics keeps the farthest of both, so the sum is still exact.
    """

    sums: NDArray[np.float64]
    weights: NDArray[np.float64]
    inertia: float
    far_dist: NDArray[np.float64]
    far_x: NDArray[np.float64]
    far_w: NDArray[np.float64]
    far_label: NDArray[np.intp]

    def __add__(self, other: KMeansStats) -> KMeansStats:
        n_keep = self.sums.shape[0] - 1
        dist = np.concatenate([self.far_dist, other.far_dist])
        # Farthest first; the stable sort keeps ties in row order (self before other).
        order = np.argsort(-dist, kind="stable")[:n_keep]
        return KMeansStats(
            self.sums + other.sums,
            self.weights + other.weights,
            self.inertia + other.inertia,
            dist[order],
            np.concatenate([self.far_x, other.far_x])[order],
            np.concatenate([self.far_w, other.far_w])[order],
            np.concatenate([self.far_label, other.far_label])[order],
        )


@dataclass(frozen=True)
class KMeansParams:
    """Centers in shifted coordinates (``center − shift``) and the re-seeding count."""

    centers: NDArray[np.float64]
    n_reseeded: int = 0


class LloydFamily(EMFamily[KMeansParams, KMeansStats]):
    """Lloyd's algorithm as an EM family; rows are shifted by ``shift`` before any product.

    ``initialize`` is not used by :class:`KMeans` (it passes the initial centers), but
    seeds by k-means++ for callers that run :func:`~latentmix.em.run_em` directly.
    """

    def __init__(
        self,
        n_clusters: int,
        n_features: int,
        shift: NDArray[np.float64],
        *,
        use_numba: bool = HAVE_NUMBA,
    ) -> None:
        self.n_clusters = n_clusters
        self.shift = shift
        self.use_numba = use_numba
        self.chunk_width = _chunk_width(n_features, n_clusters, use_numba)

    def initialize(self, data: DataSource, random_state: np.random.RandomState) -> KMeansParams:
        if not isinstance(data, ArrayData):
            raise TypeError("k-means++ seeding needs the rows in memory (an ArrayData source).")
        centers, _ = kmeans_plusplus(
            data.X, self.n_clusters, sample_weight=data.sample_weight, random_state=random_state
        )
        return KMeansParams(centers - self.shift)

    def estep_stats(
        self, X: NDArray[Any], w: NDArray[np.float64] | None, params: KMeansParams
    ) -> KMeansStats:
        res = assign_chunk(
            X, w, self.shift, params.centers, n_top=self.n_clusters - 1, use_numba=self.use_numba
        )
        rows = res.top_rows
        return KMeansStats(
            res.sums,
            res.weights,
            res.inertia,
            res.top_dist,
            np.asarray(X[rows] - self.shift, dtype=np.float64),
            np.ones(len(rows)) if w is None else np.asarray(w[rows], dtype=np.float64),
            res.top_labels,
        )

    def mstep(self, stats: KMeansStats, params: KMeansParams) -> KMeansParams:
        sums = stats.sums.copy()
        weights = stats.weights.copy()
        empty = np.flatnonzero(weights == 0)
        n_reseeded = 0
        # Like scikit-learn: each empty cluster takes the farthest remaining row from its
        # cluster (unless every row sits on its center, where re-seeding cannot help).
        if empty.size and stats.far_dist.size and stats.far_dist.max() > 0:
            farthest_first = np.argsort(-stats.far_dist, kind="stable")
            for k, j in zip(empty, farthest_first):
                old = stats.far_label[j]
                wx = stats.far_w[j] * stats.far_x[j]
                sums[old] -= wx
                sums[k] = wx
                weights[old] -= stats.far_w[j]
                weights[k] = stats.far_w[j]
                n_reseeded += 1
            logger.debug("KMeans: re-seeded %d empty clusters", n_reseeded)
        biggest = int(np.argmax(weights))
        centers = np.empty_like(sums)
        full = weights > 0
        centers[full] = sums[full] / weights[full, None]
        centers[~full] = sums[biggest] / weights[biggest]  # still empty: park on the biggest
        return KMeansParams(centers, params.n_reseeded + n_reseeded)

    def lower_bound(self, stats: KMeansStats, params: KMeansParams) -> float:
        return -stats.inertia / float(np.sum(stats.weights))

    def converged(self, change: float, tol: float, old: KMeansParams, new: KMeansParams) -> bool:
        # scikit-learn's rule: total squared center shift within the absolute tolerance.
        # Unchanged labels give unchanged centers, so strict convergence is included.
        return float(np.sum((new.centers - old.centers) ** 2)) <= tol


# --------------------------------------------------------------------------------------
# Chunked helpers


def _column_mean_var(X: NDArray[Any]) -> tuple[NDArray[np.float64], float]:
    """Column means and the mean of the per-feature variances, in float64, by chunks."""
    n = X.shape[0]
    step = chunk_rows(X.shape[1], n)
    total = np.zeros(X.shape[1])
    for s in range(0, n, step):
        total += np.sum(X[s : s + step], axis=0, dtype=np.float64)
    mean = total / n
    sq = np.zeros(X.shape[1])
    for s in range(0, n, step):
        d = X[s : s + step] - mean
        sq += np.einsum("ij,ij->j", d, d)
    return mean, float(np.mean(sq / n))


def _assign_all(
    X: NDArray[Any],
    w: NDArray[np.float64] | None,
    shift: NDArray[np.float64],
    centers: NDArray[np.float64],
) -> tuple[NDArray[np.intp], float]:
    """Labels of every row and the weighted inertia, by chunks on all cores."""
    n = X.shape[0]
    labels = np.empty(n, dtype=np.intp)
    min_dist = np.empty(n)
    use_numba = _use_numba(n, centers.shape[0])

    def one_chunk(start: int, stop: int) -> None:
        res = assign_chunk(
            X[start:stop], None, shift, centers, n_top=0, want_labels=True, use_numba=use_numba
        )
        assert res.labels is not None and res.min_dist is not None
        labels[start:stop] = res.labels
        min_dist[start:stop] = res.min_dist

    for_each_chunk(one_chunk, n, _chunk_width(X.shape[1], centers.shape[0], use_numba))
    inertia = float(np.sum(min_dist) if w is None else min_dist @ w)
    return labels, inertia


def _sq_distances(
    X: NDArray[Any], C: NDArray[np.float64], C_sq: NDArray[np.float64]
) -> NDArray[np.float64]:
    """‖x − c‖² for a chunk of rows (rows × centers), clipped at zero."""
    d = X @ (-2.0 * C.T)
    d += np.einsum("ij,ij->i", X, X)[:, None]
    d += C_sq
    np.maximum(d, 0.0, out=d)
    return d


# --------------------------------------------------------------------------------------
# k-means++


def kmeans_plusplus(
    X: ArrayLike,
    n_clusters: int,
    *,
    sample_weight: ArrayLike | None = None,
    random_state: int | np.random.RandomState | None = None,
    n_local_trials: int | None = None,
) -> tuple[NDArray[np.floating[Any]], NDArray[np.intp]]:
    """Choose initial centers by greedy k-means++.

    The first center is a row drawn with probability proportional to its weight; each
    next one is the best (lowest resulting inertia) of ``n_local_trials`` rows drawn with
    probability proportional to weight × squared distance to the nearest chosen center.
    Random draws are made in the same order as scikit-learn's ``kmeans_plusplus``, so the
    same ``random_state`` picks the same rows. Distances are computed by row chunks on
    all cores; memory beyond X is O(n_samples × n_local_trials), whatever n_clusters.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        The rows to choose from.
    n_clusters : int
        Number of centers to choose.
    sample_weight : array-like of shape (n_samples,), default=None
        Weights of the rows; ``None`` weighs every row 1.
    random_state : int, RandomState instance or None, default=None
        Seed or generator of the draws.
    n_local_trials : int, default=None
        Candidates drawn per center after the first; ``None`` means
        ``2 + int(log(n_clusters))``.

    Returns
    -------
    centers : ndarray of shape (n_clusters, n_features)
        The chosen rows, in the dtype of X.
    indices : ndarray of shape (n_clusters,)
        Their row indices: ``X[indices] == centers``.

    Examples
    --------
    >>> import numpy as np
    >>> from latentmix.cluster import kmeans_plusplus
    >>> X = np.array([[0.0, 0.0], [0.1, 0.0], [10.0, 10.0], [10.1, 10.0]])
    >>> centers, indices = kmeans_plusplus(X, 2, random_state=0)
    >>> sorted(int(i) // 2 for i in indices)
    [0, 1]
    """
    Xa = np.asarray(X)
    if Xa.ndim != 2 or Xa.dtype.kind not in "biuf":
        raise ValueError(
            f"X must be a 2-D numeric array of shape (n_samples, n_features), got shape "
            f"{Xa.shape} and dtype {Xa.dtype}."
        )
    if Xa.dtype not in (np.float32, np.float64):
        Xa = Xa.astype(np.float64)
    check_finite(Xa)
    n_samples = Xa.shape[0]
    if not isinstance(n_clusters, numbers.Integral) or n_clusters < 1:
        raise ValueError(f"n_clusters must be a positive integer, got {n_clusters!r}.")
    check_n_rows(Xa, int(n_clusters), "n_clusters")
    if n_local_trials is not None and (
        not isinstance(n_local_trials, numbers.Integral) or n_local_trials < 1
    ):
        raise ValueError(
            f"n_local_trials must be a positive integer or None, got {n_local_trials!r}."
        )
    w = check_sample_weight(sample_weight, n_samples)
    wv = np.ones(n_samples) if w is None else w
    rs = check_random_state(random_state)
    n_clusters = int(n_clusters)
    trials = 2 + int(np.log(n_clusters)) if n_local_trials is None else int(n_local_trials)

    # ‖x − m‖² − 2(x − m)·(c − m) + ‖c − m‖² with (x − m)·(c − m) = x·(c − m) − m·(c − m):
    # shifted by the mean m for fewer lost digits, yet no shifted copy of X.
    shift = np.mean(Xa, axis=0, dtype=np.float64)
    x_sq = np.empty(n_samples)

    def norms(start: int, stop: int) -> None:
        d = Xa[start:stop] - shift
        x_sq[start:stop] = np.einsum("ij,ij->i", d, d)

    for_each_chunk(norms, n_samples, Xa.shape[1])

    def min_sq_dist(
        rows: NDArray[np.intp], closest: NDArray[np.float64] | None
    ) -> NDArray[np.float64]:
        """(len(rows), n_samples): squared distances to X[rows], floored by ``closest``."""
        C = np.asarray(Xa[rows], dtype=np.float64) - shift
        neg2_ct = -2.0 * C.T
        offset = np.einsum("ij,ij->i", C, C) + 2.0 * (C @ shift)
        out = np.empty((len(rows), n_samples))

        def one_chunk(start: int, stop: int) -> None:
            d = Xa[start:stop] @ neg2_ct
            d += offset
            d += x_sq[start:stop, None]
            np.maximum(d, 0.0, out=d)
            if closest is not None:
                np.minimum(d, closest[start:stop, None], out=d)
            out[:, start:stop] = d.T

        for_each_chunk(one_chunk, n_samples, Xa.shape[1] + len(rows))
        return out

    indices = np.full(n_clusters, -1, dtype=np.intp)
    indices[0] = rs.choice(n_samples, p=wv / wv.sum())
    closest = min_sq_dist(indices[:1], None)[0]
    potential = float(closest @ wv)
    for c in range(1, n_clusters):
        draws = rs.uniform(size=trials) * potential
        candidates = np.searchsorted(np.cumsum(wv * closest), draws)
        np.clip(candidates, None, n_samples - 1, out=candidates)
        # (trials × n_samples): a few rows whatever n_clusters, never n_samples × n_clusters
        floored = min_sq_dist(candidates, closest)
        pots = floored @ wv
        best = int(np.argmin(pots))
        potential = float(pots[best])
        closest = floored[best]
        indices[c] = candidates[best]
    return Xa[indices].copy(), indices


# --------------------------------------------------------------------------------------
# The estimator


class KMeans(ClassNamePrefixFeaturesOutMixin, TransformerMixin, ClusterMixin, BaseEstimator):
    """K-means clustering by Lloyd's algorithm on the latentmix EM engine.

    Each iteration assigns every row to its nearest center and moves each center to the
    weighted mean of its rows, chunk by chunk (memory does not grow with n_samples beyond
    the labels). From the same initial centers the iterations, labels, inertia and
    ``n_iter_`` are those of scikit-learn's ``KMeans(algorithm="lloyd")``.

    Empty clusters are re-seeded after an assignment step: each cluster that received no
    weight takes the row farthest from its own center (the next farthest for the next
    empty cluster), and that row's weight moves from its old cluster to the new one, as
    in scikit-learn. ``n_reseeded_`` counts these re-seedings in the kept run.

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters.
    init : {"k-means++", "random"} or array-like of shape (n_clusters, n_features), \
default="k-means++"
        Initial centers: greedy k-means++ (:func:`kmeans_plusplus`), ``n_clusters`` rows
        drawn without replacement with probability proportional to their weight, or the
        given centers.
    n_init : "auto" or int, default="auto"
        Number of runs from different initial centers; the run with the lowest inertia is
        kept. ``"auto"`` means 1 for "k-means++" or an array and 10 for "random".
    max_iter : int, default=300
        Maximum number of Lloyd iterations per run.
    tol : float, default=1e-4
        Convergence tolerance relative to the data: a run stops when the total squared
        shift of the centers is at most ``tol`` times the mean per-feature variance of X
        (or when no label changes).
    verbose : int, default=0
        Log progress (logger ``"latentmix"``, level INFO) when positive.
    random_state : int, RandomState instance or None, default=None
        Seed of the initialisation.

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters, n_features)
        The centers.
    labels_ : ndarray of shape (n_samples,)
        Index of the nearest center of each training row.
    inertia_ : float
        Weighted sum of squared distances of the training rows to their nearest center.
    n_iter_ : int
        Number of Lloyd iterations of the kept run.
    n_reseeded_ : int
        Number of empty clusters re-seeded during the kept run.
    interrupted_ : bool
        Whether ``fit`` was stopped by a KeyboardInterrupt (see Notes).
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Feature names seen in ``fit``, when X has string column names.

    See Also
    --------
    kmeans_plusplus : The default seeding.
    silhouette_score : Judge a clustering.

    Notes
    -----
    Interrupting ``fit`` (Ctrl-C, KeyboardInterrupt): the estimator keeps the centers
    of lowest inertia seen so far (the current run's latest centers or an earlier run's),
    with ``labels_`` and ``inertia_`` computed under them and ``interrupted_ = True``,
    then re-raises the KeyboardInterrupt so that a script still stops; catch it around
    ``fit`` to keep the model. An interrupt before the first run has centers leaves the
    estimator as it was.

    Examples
    --------
    >>> import numpy as np
    >>> from latentmix.cluster import KMeans
    >>> X = np.array([[1.0, 2.0], [1.0, 4.0], [1.0, 0.0],
    ...               [10.0, 2.0], [10.0, 4.0], [10.0, 0.0]])
    >>> km = KMeans(n_clusters=2, random_state=0).fit(X)
    >>> sorted(km.cluster_centers_.tolist())
    [[1.0, 2.0], [10.0, 2.0]]
    >>> bool(km.predict([[0.0, 0.0]])[0] == km.predict([[1.0, 1.0]])[0])
    True
    """

    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        "n_clusters": [Interval(int, 1, None)],
        "init": [Options(("k-means++", "random")), ArrayLikeC],
        "n_init": [Options(("auto",)), Interval(int, 1, None)],
        "max_iter": [Interval(int, 1, None)],
        "tol": [Interval(float, 0.0, None)],
        "verbose": [Interval(int, 0, None), Boolean],
        "random_state": [RandomStateLike],
    }

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        init: str | ArrayLike = "k-means++",
        n_init: str | int = "auto",
        max_iter: int = 300,
        tol: float = 1e-4,
        verbose: int = 0,
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.verbose = verbose
        self.random_state = random_state

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    # -- fit ------------------------------------------------------------------------

    def _resolve_init(self, n_features: int, dtype: Any) -> tuple[NDArray[np.float64] | None, int]:
        """The user's centers (validated) or None, and the number of runs."""
        if isinstance(self.init, str):
            n_init = self.n_init
            if n_init == "auto":
                n_init = 1 if self.init == "k-means++" else 10
            return None, int(n_init)
        centers = np.asarray(self.init, dtype=np.float64)
        expected = (self.n_clusters, n_features)
        if centers.shape != expected:
            raise ValueError(
                f"The shape of the initial centers {centers.shape} does not match the "
                f"number of clusters and features {expected}: pass an array of shape "
                "(n_clusters, n_features) or init='k-means++'."
            )
        check_finite(centers, name="init")
        if self.n_init not in ("auto", 1):
            warnings.warn(
                f"Explicit initial center position passed: performing only one init in "
                f"KMeans instead of n_init={self.n_init}.",
                RuntimeWarning,
                stacklevel=3,
            )
        return centers, 1

    def _initial_centers(
        self,
        X: NDArray[Any],
        w: NDArray[np.float64] | None,
        rs: np.random.RandomState,
    ) -> NDArray[np.float64]:
        if self.init == "k-means++":
            centers, _ = kmeans_plusplus(X, self.n_clusters, sample_weight=w, random_state=rs)
            return np.asarray(centers, dtype=np.float64)
        wv = np.ones(X.shape[0]) if w is None else w
        n_positive = int(np.count_nonzero(wv))
        if n_positive < self.n_clusters:
            raise ValueError(
                f"init='random' draws n_clusters={self.n_clusters} distinct rows with "
                f"positive weight, but only {n_positive} rows have positive weight. Use fewer "
                "clusters or give more rows a positive weight."
            )
        seeds = rs.choice(X.shape[0], size=self.n_clusters, replace=False, p=wv / wv.sum())
        return np.asarray(X[seeds], dtype=np.float64)

    def fit(self, X: ArrayLike, y: Any = None, sample_weight: ArrayLike | None = None) -> KMeans:
        """Compute the k-means clustering.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training rows.
        y : Ignored
            Not used, present for API consistency.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the rows; ``None`` weighs every row 1. Used by the seeding too
            (not when ``init`` is an array).

        Returns
        -------
        self : KMeans
            The fitted estimator.
        """
        validate_params(self, self._parameter_constraints)
        if is_out_of_core(X):
            # Dask collections, .npy/Parquet paths and chunk factories: exact Lloyd passes.
            from latentmix.em._fit_source import as_source, fit_kmeans_on

            return fit_kmeans_on(self, as_source(X, sample_weight))  # type: ignore[no-any-return]
        self.__dict__.pop("counts_", None)  # a new fit starts a new mini-batch stream
        Xv = check_X_fit(self, X)
        check_n_rows(Xv, self.n_clusters, "n_clusters")
        w = check_sample_weight(sample_weight, Xv.shape[0])
        user_centers, n_init = self._resolve_init(Xv.shape[1], Xv.dtype)
        rs = check_random_state(self.random_state)
        shift, mean_var = _column_mean_var(Xv)
        tol = self.tol * mean_var
        use_numba = _use_numba(Xv.shape[0], self.n_clusters)
        family = LloydFamily(self.n_clusters, Xv.shape[1], shift, use_numba=use_numba)
        data = ArrayData(Xv, w)

        best: tuple[float, NDArray[np.intp], KMeansParams, int, bool] | None = None
        interrupt: KeyboardInterrupt | None = None
        for run in range(n_init):
            try:
                centers0 = (
                    user_centers if user_centers is not None else self._initial_centers(Xv, w, rs)
                )
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always", ConvergenceWarning)
                    try:
                        result = run_em(
                            family,
                            data,
                            n_init=1,
                            max_iter=self.max_iter,
                            tol=tol,
                            random_state=rs,
                            init_params=KMeansParams(centers0 - shift),
                            verbose=self.verbose,
                            name="KMeans",
                        )
                    except FitInterrupted as exc:
                        # This run's centers so far compete with the earlier runs below.
                        interrupt, result = exc, exc.result
            except KeyboardInterrupt as exc:
                if best is None:
                    raise  # no run has centers yet: leave the estimator as it was
                interrupt = exc
                break
            for wm in caught:
                if not issubclass(wm.category, ConvergenceWarning):
                    warnings.warn_explicit(wm.message, wm.category, wm.filename, wm.lineno)
            # Final assignment under the final centers (scikit-learn's last E-step).
            labels, inertia = _assign_all(Xv, w, shift, result.params.centers)
            if self.verbose:
                logger.info(
                    "KMeans: run %d, inertia %.6g, %d iterations", run, inertia, result.n_iter
                )
            if best is None or inertia < best[0]:
                best = (inertia, labels, result.params, result.n_iter, result.converged)
            if interrupt is not None:
                break
        assert best is not None
        inertia, labels, params, n_iter, converged = best
        self.interrupted_ = interrupt is not None
        if interrupt is not None:
            # Keep the best centers so far, then let the interrupt stop the caller.
            self._set_fitted(Xv, shift, params, labels, inertia, n_iter)
            raise interrupt
        if not converged:
            warnings.warn(
                f"KMeans did not converge after max_iter={self.max_iter} iterations "
                f"(tol={self.tol}). Increase max_iter or tol.",
                ConvergenceWarning,
                stacklevel=2,
            )
        n_distinct = len(np.unique(labels))
        if n_distinct < self.n_clusters:
            warnings.warn(
                f"Number of distinct clusters ({n_distinct}) found smaller than n_clusters "
                f"({self.n_clusters}). Possibly due to duplicate points in X.",
                ConvergenceWarning,
                stacklevel=2,
            )
        self._set_fitted(Xv, shift, params, labels, inertia, n_iter)
        return self

    def _set_fitted(
        self,
        Xv: NDArray[Any],
        shift: NDArray[np.float64],
        params: KMeansParams,
        labels: NDArray[np.intp],
        inertia: float,
        n_iter: int,
    ) -> None:
        self.cluster_centers_ = (params.centers + shift).astype(Xv.dtype, copy=False)
        self.labels_ = labels
        self.inertia_ = float(inertia)
        self.n_iter_ = int(n_iter)
        self.n_reseeded_ = int(params.n_reseeded)

    # -- after fit ------------------------------------------------------------------

    @property
    def _n_features_out(self) -> int:
        # transform's output width, for get_feature_names_out (a property survives save/load)
        return int(self.n_clusters)

    @property
    def _shift(self) -> NDArray[np.float64]:
        # The reference point distances are taken about after fit: a function of the fitted
        # centers alone, so a model loaded from a file predicts exactly as the original.
        return np.asarray(self.cluster_centers_, dtype=np.float64).mean(axis=0)

    def _shifted_centers(self) -> NDArray[np.float64]:
        return np.asarray(self.cluster_centers_, dtype=np.float64) - self._shift

    def predict(self, X: ArrayLike) -> NDArray[np.intp]:
        """Index of the nearest center of each row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to assign.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Cluster index of each row.
        """
        if is_dask_collection(X):
            from latentmix.em._fit_source import dask_predict

            return dask_predict(self, X)  # type: ignore[no-any-return]
        Xv = check_X_predict(self, X)
        labels, _ = _assign_all(Xv, None, self._shift, self._shifted_centers())
        return labels

    def partial_fit(
        self, X: ArrayLike, y: Any = None, sample_weight: ArrayLike | None = None
    ) -> KMeans:
        """One mini-batch k-means step (Sculley, 2010) on a batch of rows, for streams.

        Each center moves to the running weighted mean of all rows ever assigned to it
        (a per-center step size 1 / n_k). The first call seeds the centers by k-means++
        on the first batch (or takes ``init`` when it is an array); ``fit`` starts anew.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            One batch of the stream.
        y : Ignored
            Present for API consistency.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the batch's rows.

        Returns
        -------
        self : KMeans
            The updated model; ``counts_`` holds the weight assigned to each center.
        """
        from latentmix.em._online import partial_fit_kmeans

        validate_params(self, self._parameter_constraints)
        return partial_fit_kmeans(self, X, sample_weight)  # type: ignore[no-any-return]

    def fit_predict(
        self, X: ArrayLike, y: Any = None, sample_weight: ArrayLike | None = None
    ) -> NDArray[np.intp]:
        """Fit, then return the labels of the training rows (equal to ``fit(X).predict(X)``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training rows.
        y : Ignored
            Not used, present for API consistency.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the rows.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Cluster index of each row.
        """
        return self.fit(X, sample_weight=sample_weight).labels_

    def transform(self, X: ArrayLike) -> NDArray[np.floating[Any]]:
        """Euclidean distances of each row to every center.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to transform.

        Returns
        -------
        distances : ndarray of shape (n_samples, n_clusters)
            Distance of each row to each center, in the dtype of X.
        """
        if is_dask_collection(X):
            from latentmix.em._fit_source import dask_transform

            return dask_transform(self, X)  # type: ignore[no-any-return]
        Xv = check_X_predict(self, X)
        C = self._shifted_centers()
        C_sq = np.einsum("ij,ij->i", C, C)
        out = np.empty((Xv.shape[0], C.shape[0]), dtype=Xv.dtype)
        step = chunk_rows(Xv.shape[1] + C.shape[0], Xv.shape[0])
        for s in range(0, Xv.shape[0], step):
            out[s : s + step] = np.sqrt(_sq_distances(Xv[s : s + step] - self._shift, C, C_sq))
        return out

    def score(self, X: ArrayLike, y: Any = None, sample_weight: ArrayLike | None = None) -> float:
        """Opposite of the (weighted) inertia of X under the fitted centers.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to score.
        y : Ignored
            Not used, present for API consistency.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the rows.

        Returns
        -------
        score : float
            ``-Σ w·‖x − c‖²`` with c the nearest center (larger is better).
        """
        Xv = check_X_predict(self, X)
        w = check_sample_weight(sample_weight, Xv.shape[0])
        _, inertia = _assign_all(Xv, w, self._shift, self._shifted_centers())
        return -float(inertia)
