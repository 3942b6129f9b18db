"""Model selection in one call: a grid of mixtures over components × covariance types.

Each cell (K, covariance type) is fitted from several starts and keeps the best by the
fitted objective (the log-likelihood, or the log-posterior with a prior):

* ``"hc"``: partitions from model-based hierarchical agglomeration, cut at K: the tree
  under the unconstrained VVV model (Fraley 1998; :mod:`latentmix.mixture._hc`) on the
  scaled-SVD transform of the data (mclust's default start for every covariance type,
  ``hcUse = "SVD"``, Scrucca and Raftery 2015: the same tree as mclust's), the VVV tree
  on the standardised columns (mclust's ``hcUse = "STD"``) and Ward's tree (the EII
  model's) on the scaled SVD, each grown once for all K (nested partitions, so the
  starts reuse each other across K), plus ``n_init`` k-means runs in the scaled-SVD space
  (unit-free, unlike k-means on the raw features); identical partitions are fitted once.
  Above ``HC_MAX_ROWS`` rows the trees are grown on a random subsample, as mclust does;
* ``"kmeans"`` (or any other ``init_params`` of :class:`GaussianMixture`): ``n_init``
  restarts of the estimator's own initialisation;
* ``"split"``: chains across K that reuse solutions: the best (K−1)-component solution
  of the same covariance type with one of its three widest components split along its
  principal axis, then the best (K+1)-component solution with one of its two cheapest
  pairs of components merged; ``CHAIN_ROUNDS`` rounds up and down.

Independent starts of all cells run in parallel (threads: BLAS releases the GIL); the
``"split"`` chains then run in order of K, one chain per covariance type.
"""

from __future__ import annotations

import itertools
import logging
import numbers
import warnings
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.linalg import LinAlgWarning
from sklearn.utils.validation import _get_feature_names, check_array

from latentmix._exceptions import CollapseWarning, ConvergenceWarning
from latentmix._validation import (
    check_finite,
    check_magnitude,
    check_random_state,
    check_sample_weight,
)
from latentmix.gaussian._params import COVARIANCE_TYPES
from latentmix.gaussian._parsimonious import (
    ALIASES,
    MODELS,
    canonical_model,
    is_constrained,
    kernel_covariance_type,
)
from latentmix.gaussian._prior import prior_covariance_type
from latentmix.mixture._hc import _column_means, cut_merges, svd_transform, vvv_agglomeration

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.axes import Axes

    from latentmix.mixture._gaussian_mixture import GaussianMixture

__all__ = ["MixtureSelection", "hierarchical_partitions", "select_mixture"]

logger = logging.getLogger("latentmix")

CRITERIA = ("bic", "aic", "icl")
#: ``covariance_types="all"``: mclust's fourteen multivariate models, in mclust's order
MULTIVARIATE_MODELS = tuple(m for m in MODELS if m not in ("E", "V"))
ESTIMATOR_INITS = ("kmeans", "k-means++", "random", "random_from_data")
INIT_CHOICES = ("hc", "split", *ESTIMATOR_INITS)
#: rows above which the agglomeration tree is grown on a random subsample (mclust: 2000)
HC_MAX_ROWS = 2000
#: rounds of the split-up / merge-down passes over K
CHAIN_ROUNDS = 2

TABLE_COLUMNS = [
    "n_components",
    "covariance_type",
    "log_likelihood",
    "n_parameters",
    "bic",
    "aic",
    "icl",
    "converged",
]


# -- hierarchical agglomeration -------------------------------------------------------------
def hierarchical_partitions(
    X: ArrayLike,
    n_components: Iterable[int],
    *,
    model: str = "VVV",
    random_state: int | np.random.RandomState | None = None,
    max_rows: int = HC_MAX_ROWS,
) -> dict[int, NDArray[np.intp]]:
    """Partitions of the rows from model-based hierarchical agglomeration, cut at each K.

    The tree is grown on the scaled-SVD transform of X (mclust's default ``hcUse =
    "SVD"``, see :func:`latentmix.mixture._hc.svd_transform`) under the unconstrained
    model ``"VVV"`` (Fraley 1998, with mclust's regularisation of the criterion, see
    :mod:`latentmix.mixture._hc`; mclust's default for every covariance type) or the
    equal spherical model ``"EII"``, whose criterion is
    Ward's. Missing entries are replaced by column means for this purpose only. Above
    ``max_rows`` rows the tree is grown on a random subsample (as mclust does above 2000
    rows) and every row joins the cluster with the nearest mean in the transformed space.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        The rows (may contain NaN).
    n_components : iterable of int
        The numbers of clusters to cut the tree at.
    model : {"VVV", "EII", "VVV-STD"}, default="VVV"
        The agglomeration criterion; ``"VVV-STD"`` is VVV on the standardised columns
        (mclust's ``hcUse = "STD"``) instead of the scaled SVD.
    random_state : int, RandomState instance or None, default=None
        Chooses the subsample when there are more than ``max_rows`` rows.
    max_rows : int, default=2000
        Largest number of rows the tree is grown on (its memory is quadratic in rows, its
        time quadratic in rows and cubic in features).

    Returns
    -------
    partitions : dict of int to ndarray of shape (n_samples,)
        Labels in ``0..K-1`` for each requested K (nested: each cut refines the next).

    Examples
    --------
    >>> import numpy as np
    >>> from latentmix.mixture._selection import hierarchical_partitions
    >>> X = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0], [5.0, 5.2]])
    >>> parts = hierarchical_partitions(X, [2])
    >>> len(set(parts[2][:2].tolist())), bool(parts[2][0] != parts[2][2])
    (1, True)
    """
    if model not in ("VVV", "EII", "VVV-STD"):
        raise ValueError(f"model must be 'VVV', 'EII' or 'VVV-STD', got {model!r}.")
    Z = svd_transform(np.asarray(X), rotate=model != "VVV-STD")
    n = Z.shape[0]
    ks = sorted({int(k) for k in n_components})
    out: dict[int, NDArray[np.intp]] = {}
    if n < 2:
        return {k: np.zeros(n, dtype=np.intp) for k in ks if k <= n}
    if n > max_rows:
        rng = check_random_state(random_state)
        sub = np.sort(rng.choice(n, size=max_rows, replace=False))
    else:
        sub = np.arange(n)
    ks = [k for k in ks if 1 <= k <= sub.size]
    if not ks:
        return out
    if model != "EII":
        initial, merges = vvv_agglomeration(Z[sub])
        cuts = cut_merges(initial, merges, ks)
    else:
        from scipy.cluster.hierarchy import cut_tree, ward

        tree = cut_tree(ward(Z[sub]), n_clusters=ks)
        cuts = {k: np.asarray(tree[:, j], dtype=np.intp) for j, k in enumerate(ks)}
    for k in ks:
        if k not in cuts:  # fewer distinct rows than k
            continue
        labels_sub = cuts[k]
        if sub.size == n:
            out[k] = labels_sub
            continue
        centers = np.array([Z[sub][labels_sub == c].mean(axis=0) for c in range(k)])
        d2 = (Z * Z).sum(1)[:, None] - 2.0 * Z @ centers.T + (centers * centers).sum(1)
        out[k] = np.asarray(d2.argmin(axis=1), dtype=np.intp)
    return out


def _kmeans_partitions(
    Z: NDArray[np.float64], ks: Sequence[int], seed: int
) -> dict[int, NDArray[np.intp]]:
    """k-means++ / Lloyd partitions in the transformed space (unit-free, unlike raw X)."""
    from latentmix.cluster import KMeans

    out: dict[int, NDArray[np.intp]] = {}
    for k in ks:
        if 1 < k <= Z.shape[0]:
            km = KMeans(n_clusters=k, n_init=1, random_state=seed + k).fit(Z)
            out[k] = np.asarray(km.labels_, dtype=np.intp)
    return out


def _split_labels(
    X: NDArray[Any], est: GaussianMixture, w: NDArray[np.float64] | None, n_splits: int = 3
) -> list[NDArray[np.intp]]:
    """MAP labels of ``est`` with one of its widest components split along its principal axis.

    One partition for each of the ``n_splits`` components of largest spread (weight times
    largest variance).
    """
    resp = est.predict_proba(X).astype(np.float64)
    labels = resp.argmax(axis=1)
    Xf = np.asarray(X, dtype=np.float64)
    if np.isnan(Xf).any():
        Xf = est.impute(Xf)
    rw = resp if w is None else resp * w[:, None]
    nk = rw.sum(axis=0)
    spread = np.empty(est.n_components)
    axes = []
    for k in range(est.n_components):
        Zk = Xf - est.means_[k]
        cov = (rw[:, k, None] * Zk).T @ Zk / max(nk[k], 1e-300)
        vals, vecs = np.linalg.eigh(0.5 * (cov + cov.T))
        spread[k] = nk[k] * vals[-1]
        axes.append(vecs[:, -1])
    out = []
    for k in np.argsort(-spread)[:n_splits]:
        members = np.flatnonzero(labels == k)
        if members.size < 2:
            continue
        side = (Xf[members] - est.means_[k]) @ axes[k] > 0
        if side.all() or not side.any():
            continue
        new = labels.copy()
        new[members[side]] = est.n_components
        out.append(np.asarray(new, dtype=np.intp))
    return out


def _full_covariances(est: GaussianMixture) -> NDArray[np.float64]:
    cov = np.asarray(est.covariances_, dtype=np.float64)
    k, d = est.means_.shape
    ct = est._kernel_type  # the fourteen mclust models but the four are stored as full
    if ct == "full":
        return cov
    if ct == "tied":
        return np.broadcast_to(cov, (k, d, d))
    if ct == "diag":
        return cov[:, :, None] * np.eye(d)
    return cov[:, None, None] * np.eye(d)


def _merge_labels(
    X: NDArray[Any], est: GaussianMixture, w: NDArray[np.float64] | None, n_pairs: int = 2
) -> list[NDArray[np.intp]]:
    """MAP labels of ``est`` with the pairs of components that are cheapest to merge, merged.

    The cost of merging components a and b is the loss of classification log-likelihood
    when both are replaced by their moment-matched Gaussian:
    ``n_ab log det Σ_ab − n_a log det Σ_a − n_b log det Σ_b`` (halved, up to constants).
    """
    resp = est.predict_proba(X).astype(np.float64)
    labels = resp.argmax(axis=1)
    rw = resp if w is None else resp * w[:, None]
    nk = rw.sum(axis=0)
    means = np.asarray(est.means_, dtype=np.float64)
    covs = _full_covariances(est)
    _, logdet = np.linalg.slogdet(covs)
    costs = []
    for a, b in itertools.combinations(range(est.n_components), 2):
        n_ab = nk[a] + nk[b]
        if n_ab <= 0:
            continue
        mean = (nk[a] * means[a] + nk[b] * means[b]) / n_ab
        da, db = means[a] - mean, means[b] - mean
        cov = (nk[a] * (covs[a] + np.outer(da, da)) + nk[b] * (covs[b] + np.outer(db, db))) / n_ab
        sign, ld = np.linalg.slogdet(cov)
        if sign > 0:
            costs.append((n_ab * ld - nk[a] * logdet[a] - nk[b] * logdet[b], a, b))
    out = []
    for _, a, b in sorted(costs)[:n_pairs]:
        new = np.where(labels == b, a, labels)
        _, new = np.unique(new, return_inverse=True)
        if new.max() + 1 == est.n_components - 1:
            out.append(np.asarray(new.reshape(-1), dtype=np.intp))
    return out


# -- one cell of the grid ---------------------------------------------------------------------
@dataclass
class _Start:
    kind: str  # "labels" or an estimator init_params
    labels: NDArray[np.intp] | None = None
    seed: int = 0
    n_init: int = 1
    name: str = ""  # what the log says gave a cell its fit


def _distinct_partitions(starts: list[_Start]) -> list[_Start]:
    """The label starts with a partition not already in the list (up to label names)."""
    seen: set[bytes] = set()
    out = []
    for start in starts:
        assert start.labels is not None
        _, first, inverse = np.unique(start.labels, return_index=True, return_inverse=True)
        canonical = np.argsort(np.argsort(first))[inverse.reshape(-1)]
        key = canonical.astype(np.int64).tobytes()
        if key not in seen:
            seen.add(key)
            out.append(start)
    return out


@dataclass
class _Cell:
    estimator: GaussianMixture | None = None
    objective: float = -np.inf
    start: str = ""
    error: str | None = None


def _init_from_labels(
    X: NDArray[Any],
    labels: NDArray[np.intp],
    k: int,
    ct: str,
    w: NDArray[np.float64] | None,
    reg_covar: float,
) -> dict[str, NDArray[np.float64]] | None:
    """weights_init, means_init, precisions_init from a hard partition (one M-step)."""
    from latentmix.gaussian._mstep import mstep, parsimonious_mstep, stats_from_labels
    from latentmix.gaussian._params import precisions_from_cholesky

    model, ct = ct, kernel_covariance_type(ct)
    if np.bincount(labels, minlength=k).min() == 0:
        return None
    Xf = np.asarray(X)
    shift = _column_means(Xf.astype(np.float64))
    # A start needs complete rows; column means are good enough for one.
    Xf = np.where(np.isnan(Xf), shift.astype(Xf.dtype), Xf)
    centers = np.zeros((k, X.shape[1]))
    if ct == "full":
        counts = np.bincount(labels, minlength=k)[:, None]
        sums = np.zeros((k, X.shape[1]))
        np.add.at(sums, labels, Xf - shift)
        centers = sums / counts
    stats = stats_from_labels(Xf, labels, k, w, shift, centers, ct)
    if is_constrained(model):
        # The start satisfies the model's constraint, so EM's trace starts monotone.
        name = canonical_model(model, X.shape[1])
        params, bad, _ = parsimonious_mstep(stats, name, reg_covar)
    else:
        params, bad = mstep(stats, reg_covar)
    if bad:
        return None
    prec = precisions_from_cholesky(params.precisions_cholesky, ct)
    return {"weights_init": params.weights, "means_init": params.means, "precisions_init": prec}


def _fit_start(
    X: NDArray[Any],
    w: NDArray[np.float64] | None,
    k: int,
    ct: str,
    start: _Start,
    options: dict[str, Any],
) -> tuple[GaussianMixture, float] | None:
    from latentmix.mixture._gaussian_mixture import GaussianMixture

    kwargs = dict(options)
    if start.kind == "labels":
        assert start.labels is not None
        init = _init_from_labels(X, start.labels, k, ct, w, float(options["reg_covar"]))
        if init is None:
            return None
        kwargs.update(init)
        kwargs.update(n_init=1, init_params="random_from_data")
    else:
        kwargs.update(n_init=start.n_init, init_params=start.kind)
    est = GaussianMixture(k, covariance_type=ct, random_state=start.seed, **kwargs)
    est.fit(X, sample_weight=w)
    return est, est._objective(X, w)


def _fit_cell(
    X: NDArray[Any],
    w: NDArray[np.float64] | None,
    k: int,
    ct: str,
    starts: Sequence[_Start],
    options: dict[str, Any],
    cell: _Cell | None = None,
) -> _Cell:
    cell = cell if cell is not None else _Cell()
    for start in starts:
        name = start.name or start.kind
        try:
            fitted = _fit_start(X, w, k, ct, start, options)
        except ValueError as exc:  # IllConditionedError, repeated collapse, too few rows
            cell.error = cell.error or str(exc)
            continue
        if fitted is None:
            continue
        est, objective = fitted
        if np.isfinite(objective) and objective > cell.objective:
            cell.estimator, cell.objective, cell.start = est, objective, name
    return cell


# -- the result ---------------------------------------------------------------------------------
class MixtureSelection:
    """The result of :func:`select_mixture`: every fitted cell and the best one.

    Attributes
    ----------
    table_ : pandas.DataFrame
        One row per (n_components, covariance_type) with columns ``n_components``,
        ``covariance_type``, ``log_likelihood`` (total, weighted; with a prior, the MAP
        log-likelihood at the fitted parameters), ``n_parameters``, ``bic``, ``aic``,
        ``icl`` (all lower is better), ``converged``. A cell that could not be fitted has
        NaN criteria and ``converged=False``; its reason is in ``errors_``.
    best_estimator_ : GaussianMixture
        The fitted mixture with the lowest ``criterion``.
    best_params_ : dict
        ``{"n_components": K, "covariance_type": type}`` of the best cell.
    estimators_ : dict of (int, str) to GaussianMixture
        Every fitted cell.
    errors_ : dict of (int, str) to str
        Why a cell could not be fitted.
    criterion : str
        The criterion used to choose ``best_estimator_``.

    Examples
    --------
    >>> import numpy as np
    >>> from latentmix import select_mixture
    >>> rng = np.random.RandomState(0)
    >>> X = np.vstack([rng.randn(100, 2), rng.randn(100, 2) + 6])
    >>> sel = select_mixture(X, n_components=[1, 2, 3], covariance_types=("full",),
    ...                      init_params=("hc", "split"), random_state=0)
    >>> sel.best_params_
    {'n_components': 2, 'covariance_type': 'full'}
    >>> list(sel.table_.columns)[:3]
    ['n_components', 'covariance_type', 'log_likelihood']
    """

    def __init__(
        self,
        table: pd.DataFrame,
        estimators: dict[tuple[int, str], GaussianMixture],
        errors: dict[tuple[int, str], str],
        criterion: str,
    ) -> None:
        self.table_ = table
        self.estimators_ = estimators
        self.errors_ = errors
        self.criterion = criterion
        scores = table[criterion].to_numpy(dtype=np.float64)
        if not np.isfinite(scores).any():
            raise ValueError(
                "No cell of the grid could be fitted: "
                + "; ".join(f"{key}: {msg}" for key, msg in errors.items())
                + " Try fewer components or a larger reg_covar."
            )
        best = int(np.nanargmin(np.where(np.isfinite(scores), scores, np.nan)))
        row = table.iloc[best]
        key = (int(row["n_components"]), str(row["covariance_type"]))
        self.best_params_ = {"n_components": key[0], "covariance_type": key[1]}
        self.best_estimator_ = estimators[key]

    def __repr__(self) -> str:
        return (
            f"MixtureSelection(criterion={self.criterion!r}, best={self.best_params_}, "
            f"cells={len(self.table_)})"
        )

    def plot(self, criterion: str | None = None, ax: Axes | None = None) -> Axes:
        """Plot a criterion against the number of components, one line per covariance type.

        Parameters
        ----------
        criterion : {"bic", "aic", "icl", "log_likelihood"}, default=None
            What to plot; ``None`` plots the selection criterion.
        ax : matplotlib Axes, default=None
            Where to draw; a new figure when None.

        Returns
        -------
        ax : matplotlib Axes
        """
        import matplotlib.pyplot as plt

        what = self.criterion if criterion is None else criterion
        if what not in (*CRITERIA, "log_likelihood"):
            raise ValueError(
                f"criterion must be one of {(*CRITERIA, 'log_likelihood')}, got {what!r}."
            )
        if ax is None:
            _, ax = plt.subplots()
        # As in mclust's BIC plot, every model gets its own colour and symbol (up to 14
        # lines: the default cycle of 10 colours would repeat).
        tab20 = plt.get_cmap("tab20")
        colours = [tab20(i) for i in range(20)]  # its 20 colours (integers index them)
        markers = "osD^vP*X<>hpd8"
        groups = self.table_.groupby("covariance_type", sort=False)
        for i, (ct, part) in enumerate(groups):
            part = part.sort_values("n_components")
            ax.plot(
                part["n_components"],
                part[what],
                marker=markers[i % len(markers)],
                color=colours[(2 * i) % 20 if i < 10 else (2 * i - 19) % 20],
                label=str(ct),
            )
        best = self.best_params_
        ax.set_xlabel("number of components")
        ax.set_ylabel(what.upper() if what in CRITERIA else "log-likelihood")
        ax.set_title(
            f"best: {best['n_components']} components, {best['covariance_type']} "
            f"({self.criterion.upper()}, lower is better)"
        )
        ax.legend(title="covariance type")
        return ax


# -- the public function --------------------------------------------------------------------
def _check_grid(
    n_components: Iterable[int] | int, covariance_types: Sequence[str] | str, n_samples: int
) -> tuple[list[int], list[str]]:
    ks_in = [n_components] if isinstance(n_components, int | np.integer) else list(n_components)
    ks: list[int] = []
    for k in ks_in:
        if not isinstance(k, numbers.Integral) or isinstance(k, bool) or k < 1:
            raise ValueError(
                f"n_components must be positive integers (for instance range(1, 10)), got {k!r}."
            )
        ks.append(int(k))
    if not ks:
        raise ValueError("n_components is empty: give at least one number of components.")
    ks = sorted(set(ks))
    if ks[-1] > n_samples:
        raise ValueError(
            f"n_components goes up to {ks[-1]} but X has only {n_samples} rows: use at most "
            f"{n_samples} components."
        )
    if isinstance(covariance_types, str) and covariance_types == "all":
        covariance_types = MULTIVARIATE_MODELS
    cts = [covariance_types] if isinstance(covariance_types, str) else list(covariance_types)
    bad = [c for c in cts if c not in COVARIANCE_TYPES + MODELS]
    if bad or not cts:
        raise ValueError(
            f"covariance_types must be 'all' (mclust's fourteen models) or a non-empty subset "
            f"of {COVARIANCE_TYPES + MODELS}, got {cts!r}."
        )
    same = [c for c in cts if c in ALIASES and ALIASES[c] in cts]
    if same:
        raise ValueError(
            f"covariance_types must be a subset of distinct models: {same[0]!r} and "
            f"{ALIASES[same[0]]!r} are the same model; list it once."
        )
    return ks, list(dict.fromkeys(cts))


def _map(fn: Callable[[Any], Any], items: Sequence[Any], n_jobs: int | None) -> list[Any]:
    if n_jobs is None or n_jobs == 1 or len(items) < 2:
        return [fn(item) for item in items]
    if n_jobs < 0:
        import os

        n_jobs = max(1, (os.cpu_count() or 1) + 1 + n_jobs)
    with ThreadPoolExecutor(max_workers=min(n_jobs, len(items))) as pool:
        return list(pool.map(fn, items))


def select_mixture(
    X: ArrayLike,
    n_components: Iterable[int] | int = range(1, 10),
    covariance_types: Sequence[str] | str = COVARIANCE_TYPES,
    criterion: str = "bic",
    *,
    n_init: int = 1,
    init_params: Sequence[str] | str = ("hc", "kmeans", "split"),
    random_state: int | np.random.RandomState | None = None,
    n_jobs: int | None = None,
    sample_weight: ArrayLike | None = None,
    tol: float = 1e-3,
    reg_covar: float = 1e-6,
    max_iter: int = 100,
    prior: str | dict[str, Any] | None = None,
) -> MixtureSelection:
    """Fit Gaussian mixtures over a grid of components × covariance types; keep the best.

    Every cell is fitted from each start in ``init_params`` and keeps the start with the
    highest fitted log-likelihood (log-posterior with a ``prior``). Then the cells are
    compared by ``criterion``, lower is better (scikit-learn's sign, the opposite of
    mclust's).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Training rows; NaN marks a missing entry (fitted by missing-value EM).
    n_components : int or iterable of int, default=range(1, 10)
        Numbers of components to try.
    covariance_types : sequence of str or "all", default=("full", "tied", "diag", "spherical")
        Covariance types to try: by default the four common ones (mclust's VVV, EEE,
        VVI and VII); ``"all"`` tries mclust's fourteen models EII ... VVV; any of the
        names :class:`GaussianMixture` accepts can be listed (``E``/``V`` for one
        feature).
    criterion : {"bic", "aic", "icl"}, default="bic"
        How the best cell is chosen (lower is better). ICL is BIC plus twice the entropy
        of the responsibilities (see :meth:`GaussianMixture.icl`).
    n_init : int, default=1
        Restarts of each estimator initialisation in ``init_params`` (``"kmeans"`` etc.).
    init_params : sequence of str, default=("hc", "kmeans", "split")
        Starts tried for every cell: ``"hc"`` (model-based hierarchical agglomeration:
        VVV on the scaled-SVD transform, mclust's start; VVV on the standardised data;
        Ward's; and ``n_init`` k-means runs on the scaled-SVD transform), ``"split"``
        (chains over K: the best (K−1)-component solution with a component split, the
        best (K+1)-component one with two merged), and any ``init_params`` of
        :class:`GaussianMixture` (``"kmeans"``, ``"k-means++"``, ``"random"``,
        ``"random_from_data"``).
    random_state : int, RandomState instance or None, default=None
        Seeds every random start; the results do not depend on ``n_jobs``.
    n_jobs : int or None, default=None
        Threads to fit cells in parallel (``-1``: all cores); None fits serially.
    sample_weight : array-like of shape (n_samples,), default=None
        Non-negative row weights, passed to every fit and criterion.
    tol, reg_covar, max_iter :
        As in :class:`GaussianMixture`.
    prior : None, "default" or dict, default=None
        Conjugate prior for MAP EM, passed to every :class:`GaussianMixture` (see its
        ``prior``; mclust's ``priorControl``). Each cell then keeps the start with the
        highest log-posterior, and the criteria use the log-likelihood at the MAP
        estimate, as mclust's BIC does. Supported for full, tied, diag and spherical
        (VVV, EEE, VVI, VII) only.

    Returns
    -------
    selection : MixtureSelection
        ``table_``, ``best_estimator_``, ``best_params_``, ``estimators_``, ``plot()``.

    Notes
    -----
    Convergence and collapse warnings of the individual fits are not raised; the table's
    ``converged`` column records convergence. A ConvergenceWarning is raised if the best
    cell did not converge.

    Examples
    --------
    >>> import numpy as np
    >>> from latentmix import select_mixture
    >>> rng = np.random.RandomState(1)
    >>> X = np.vstack([rng.randn(80, 2) * 0.5, rng.randn(80, 2) * 0.5 + 4])
    >>> sel = select_mixture(X, n_components=range(1, 4), covariance_types=("spherical",),
    ...                      init_params=("hc",), random_state=0)
    >>> sel.best_params_["n_components"]
    2
    """
    import pandas as pd

    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}.")
    inits = [init_params] if isinstance(init_params, str) else list(init_params)
    unknown = [s for s in inits if s not in INIT_CHOICES]
    if unknown or not inits:
        raise ValueError(
            f"init_params must be a non-empty subset of {INIT_CHOICES}, got {inits!r}."
        )
    if not isinstance(n_init, numbers.Integral) or isinstance(n_init, bool) or n_init < 1:
        raise ValueError(f"n_init must be a positive integer, got {n_init!r}.")
    if n_jobs is not None and (not isinstance(n_jobs, numbers.Integral) or n_jobs == 0):
        raise ValueError(f"n_jobs must be None or a non-zero integer, got {n_jobs!r}.")
    Xv = check_array(X, dtype=(np.float64, np.float32), ensure_all_finite=False, ensure_2d=True)
    # Our check, not scikit-learn's: its sum of inf and -inf warns before it raises.
    check_finite(Xv, allow_nan=True)
    # float32 too large to square goes to float64 here too: the label starts square it.
    Xv = check_magnitude(Xv)
    w = check_sample_weight(sample_weight, Xv.shape[0])
    ks, cts = _check_grid(n_components, covariance_types, Xv.shape[0])
    rng = check_random_state(random_state)
    if prior is not None:
        for c in cts:  # VEE, EVE, VVE, EVV: no prior (mclust defines none either)
            if is_constrained(c):
                prior_covariance_type(c)
    options: dict[str, Any] = dict(tol=tol, reg_covar=reg_covar, max_iter=max_iter, prior=prior)

    # Label starts shared by all covariance types: the VVV trees (scaled SVD, as mclust;
    # standardised) and Ward's (nested, so they reuse each other across K) and n_init
    # k-means runs in the scaled-SVD space.
    label_starts: dict[int, list[_Start]] = {k: [] for k in ks}
    if "hc" in inits:
        hc_seed = int(rng.randint(2**31 - 1))
        for model in ("VVV", "VVV-STD", "EII"):
            parts = hierarchical_partitions(Xv, ks, model=model, random_state=hc_seed)
            for k, labels in parts.items():
                label_starts[k].append(_Start("labels", labels, name=f"hc-{model}"))
        Z = svd_transform(Xv)
        for r in range(n_init):
            for k, labels in _kmeans_partitions(Z, ks, int(rng.randint(2**30))).items():
                label_starts[k].append(_Start("labels", labels, name=f"kmeans-svd-{r}"))
        # The same partition twice gives the same fit twice: keep the first.
        label_starts = {k: _distinct_partitions(v) for k, v in label_starts.items()}
    # Seeds are drawn before any fitting, so the results do not depend on n_jobs.
    seeds = {(k, ct): int(rng.randint(2**31 - 1)) for k in ks for ct in cts}

    def independent(key: tuple[int, str]) -> _Cell:
        k, ct = key
        starts: list[_Start] = list(label_starts[k])
        for kind in inits:
            if kind in ESTIMATOR_INITS and (k > 1 or not starts):
                starts.append(_Start(kind, seed=seeds[key], n_init=n_init))
        if not starts:  # only "split" asked for: K=1 and any chain start need one
            starts.append(_Start("kmeans" if k > 1 else "random_from_data", seed=seeds[key]))
        return _fit_cell(Xv, w, k, ct, starts, options)

    def chain(ct: str) -> None:
        # Up: split a component of the best (K-1)-fit; down: merge two of the best (K+1)-fit.
        # Two rounds: an improvement at one K can open a better start for its neighbours.
        # A fit the chain already split (or merged) gives the same starts again: skipped.
        done: dict[tuple[str, int], GaussianMixture] = {}
        for _ in range(CHAIN_ROUNDS):
            for prev, k in itertools.pairwise(ks):
                est_prev = cells[(prev, ct)].estimator
                if k != prev + 1 or est_prev is None or done.get(("split", k)) is est_prev:
                    continue
                done[("split", k)] = est_prev
                split = [
                    _Start("labels", lab, name="split") for lab in _split_labels(Xv, est_prev, w)
                ]
                _fit_cell(Xv, w, k, ct, split, options, cells[(k, ct)])
            for k, nxt in reversed(list(itertools.pairwise(ks))):
                est_next = cells[(nxt, ct)].estimator
                if nxt != k + 1 or est_next is None or k < 2 or done.get(("merge", k)) is est_next:
                    continue
                done[("merge", k)] = est_next
                merged = [
                    _Start("labels", lab, name="merge") for lab in _merge_labels(Xv, est_next, w)
                ]
                _fit_cell(Xv, w, k, ct, merged, options, cells[(k, ct)])

    keys = [(k, ct) for ct in cts for k in ks]
    with warnings.catch_warnings():
        # Individual fits may not converge or may re-seed components; the table records it.
        # The filter is set here, in the calling thread, around all worker threads.
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", CollapseWarning)
        # A poor label start may give a nearly singular covariance; its fit just loses.
        warnings.simplefilter("ignore", LinAlgWarning)
        cells = dict(zip(keys, _map(independent, keys, n_jobs)))
        if "split" in inits:
            _map(chain, cts, n_jobs)

    rows = []
    estimators: dict[tuple[int, str], GaussianMixture] = {}
    errors: dict[tuple[int, str], str] = {}
    for key in keys:
        cell = cells[key]
        est = cell.estimator
        if est is None:
            errors[key] = cell.error or "no start gave a valid fit"
            rows.append(
                dict(
                    n_components=key[0],
                    covariance_type=key[1],
                    log_likelihood=np.nan,
                    n_parameters=np.nan,
                    bic=np.nan,
                    aic=np.nan,
                    icl=np.nan,
                    converged=False,
                )
            )
            continue
        estimators[key] = est
        logger.info("select_mixture: %s best start %s", key, cell.start)
        rows.append(
            dict(
                n_components=key[0],
                covariance_type=key[1],
                log_likelihood=est._total_loglik(Xv, w)[0],
                n_parameters=est._n_parameters(),
                bic=est.bic(Xv, sample_weight=w),
                aic=est.aic(Xv, sample_weight=w),
                icl=est.icl(Xv, sample_weight=w),
                converged=bool(est.converged_),
            )
        )
    names = _get_feature_names(X)
    if names is not None:
        # The cells were fitted on the bare array; they predict on frames like X.
        for est in estimators.values():
            est.feature_names_in_ = names
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    selection = MixtureSelection(table, estimators, errors, criterion)
    if not selection.best_estimator_.converged_:
        warnings.warn(
            f"The best model {selection.best_params_} did not converge in max_iter={max_iter} "
            "iterations. Try a larger max_iter or tol.",
            ConvergenceWarning,
            stacklevel=2,
        )
    return selection
