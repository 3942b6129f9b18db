"""The EM loop, written once for every model family.

A family supplies four small pure steps (initialise, per-chunk statistics, M-step, lower
bound); the loop runs restarts, iterations, convergence and the trace. It knows only "a
lower bound": the log-likelihood per unit weight for EM, the ELBO for variational
inference, minus the inertia for K-means.
"""

from __future__ import annotations

import logging
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Generic, TypeVar

import numpy as np
from numpy.typing import NDArray

from latentmix._exceptions import ConvergenceWarning
from latentmix.em._data import DataSource

__all__ = ["EMFamily", "EMResult", "FitInterrupted", "run_em"]

logger = logging.getLogger("latentmix")

P = TypeVar("P")  # parameters
S = TypeVar("S")  # additive statistics


class EMFamily(ABC, Generic[P, S]):
    """The steps a model family fills in; the loop in :func:`run_em` does the rest."""

    #: numbers per row of the widest per-chunk temporary; sizes the chunks
    chunk_width: int = 1

    @abstractmethod
    def initialize(self, data: DataSource, random_state: np.random.RandomState) -> P:
        """Initial parameters for one restart."""

    @abstractmethod
    def estep_stats(self, X: NDArray[Any], w: NDArray[np.float64] | None, params: P) -> S:
        """Additive sufficient statistics of one chunk under ``params``."""

    @abstractmethod
    def mstep(self, stats: S, params: P) -> P:
        """New parameters from the statistics of all rows (``params`` were used to get them)."""

    @abstractmethod
    def lower_bound(self, stats: S, params: P) -> float:
        """The objective at ``params``, per unit of sample weight (larger is better)."""

    def converged(self, change: float, tol: float, old: P, new: P) -> bool:
        """Default rule (scikit-learn's): the lower bound moved by less than ``tol``."""
        return abs(change) < tol


def _estep(family: EMFamily[P, S], params: P, X: NDArray[Any], w: NDArray[np.float64] | None) -> S:
    return family.estep_stats(X, w, params)


@dataclass
class EMResult(Generic[P]):
    params: P
    lower_bound: float
    lower_bounds: list[float] = field(default_factory=list)
    n_iter: int = 0
    converged: bool = False
    best_init: int = 0
    interrupted: bool = False


class FitInterrupted(KeyboardInterrupt):
    """A KeyboardInterrupt raised by :func:`run_em` that carries the best result so far.

    It is a KeyboardInterrupt, so code that does not know it still stops. An estimator
    catches it, sets its fitted attributes from ``result`` (``result.interrupted`` is
    True, ``result.converged`` False) and re-raises it; a caller that catches the
    KeyboardInterrupt around ``fit`` then keeps a usable model.
    """

    def __init__(self, result: EMResult[Any]) -> None:
        super().__init__("EM interrupted; the best parameters so far are kept")
        self.result = result


def run_em(
    family: EMFamily[P, S],
    data: DataSource,
    *,
    n_init: int,
    max_iter: int,
    tol: float,
    random_state: np.random.RandomState,
    init_params: P | None = None,
    init_lower_bound: float = -np.inf,
    verbose: int = 0,
    verbose_interval: int = 10,
    name: str = "EM",
) -> EMResult[P]:
    """Run ``n_init`` restarts of at most ``max_iter`` iterations; keep the best.

    ``init_params`` (warm start) replaces the family's initialisation and forces a single
    restart. Each iteration computes the statistics under the current parameters, records
    their lower bound, then takes the M-step: the recorded bound belongs to the parameters
    the statistics were computed with, as in scikit-learn.

    A KeyboardInterrupt (Ctrl-C) during the loop is re-raised as :class:`FitInterrupted`
    carrying the best result so far: the better of the earlier restarts and the current
    one (its latest parameters, with the last bound recorded), marked
    ``interrupted=True, converged=False``. An interrupt before any restart has
    parameters is re-raised unchanged.
    """
    best: EMResult[P] | None = None
    restarts = 1 if init_params is not None else n_init
    # What an interrupt hands back: the parameters of the current restart and the bound
    # recorded for the statistics they came from (EM never lowers it).
    params: P | None = None
    trace: list[float] = []
    lower_bound = -np.inf
    n_iter = 0
    init = 0
    try:
        for init in range(restarts):
            params = None
            trace = []
            n_iter = 0
            params = (
                init_params if init_params is not None else family.initialize(data, random_state)
            )
            lower_bound = init_lower_bound if init_params is not None else -np.inf
            converged = False
            if verbose:
                logger.info("%s: initialisation %d", name, init)
            for n_iter in range(1, max_iter + 1):
                stats = data.reduce(partial(_estep, family, params), width=family.chunk_width)
                previous = lower_bound
                lower_bound = family.lower_bound(stats, params)
                trace.append(lower_bound)
                new_params = family.mstep(stats, params)
                change = lower_bound - previous
                if verbose and n_iter % max(verbose_interval, 1) == 0:
                    logger.info(
                        "%s: iteration %d, lower bound %.6g, change %.3g",
                        name,
                        n_iter,
                        lower_bound,
                        change,
                    )
                done = family.converged(change, tol, params, new_params)
                params = new_params
                if done:
                    converged = True
                    break
            if verbose:
                logger.info(
                    "%s: initialisation %d %s after %d iterations, lower bound %.6g",
                    name,
                    init,
                    "converged" if converged else "did not converge",
                    n_iter,
                    lower_bound,
                )
            if best is None or lower_bound > best.lower_bound or best.lower_bound == -np.inf:
                best = EMResult(params, lower_bound, trace, n_iter, converged, init)
            params = None  # this restart is in ``best`` (or lost to it) now
    except KeyboardInterrupt as exc:
        # An interrupt of a nested loop (a KMeans start, say) is ours to handle too.
        current = None
        if params is not None:
            bound = trace[-1] if trace else lower_bound
            current = EMResult(params, bound, list(trace), len(trace), False, init)
        if current is not None and (
            best is None or current.lower_bound > best.lower_bound or best.lower_bound == -np.inf
        ):
            best = current
        if best is None:
            # Nothing fitted yet: an ordinary KeyboardInterrupt (never a nested loop's
            # FitInterrupted, whose result belongs to another model).
            if isinstance(exc, FitInterrupted):
                raise KeyboardInterrupt(*exc.args) from exc
            raise
        best.converged = False
        best.interrupted = True
        logger.warning(
            "%s interrupted: keeping initialisation %d after %d iterations, lower bound %.6g",
            name,
            best.best_init,
            best.n_iter,
            best.lower_bound,
        )
        raise FitInterrupted(best) from exc
    assert best is not None
    if not best.converged and max_iter > 0:
        warnings.warn(
            f"Best of {restarts} initialisations did not converge after {max_iter} iterations "
            f"(tol={tol}). Try a larger max_iter or tol, or check the scaling of the data.",
            ConvergenceWarning,
            stacklevel=3,
        )
    return best
