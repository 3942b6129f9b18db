"""Additive sufficient statistics of a Gaussian mixture.

Everything is a raw weighted sum in float64, taken about a fixed reference so that the
statistics of ``X[:a]`` plus those of ``X[a:]`` equal those of ``X`` exactly (up to the
order of floating-point additions):

* ``shift`` (D,): the global reference point s (the previous mixture mean);
* ``centers`` (K, D): per-component reference c_k, relative to s (the previous means for
  ``full``, zero otherwise);
* ``nk`` (K,): Σ w r_k;
* ``s1`` (K, D): Σ w r_k (x − s);
* ``s2``: ``full`` (K, D, D) Σ w r_k (z − c_k)(z − c_k)ᵀ with z = x − s; ``tied`` (D, D)
  Σ w z zᵀ; ``diag`` (K, D) Σ w r_k z²; ``spherical`` (K, D) whose row sums are
  Σ w r_k ‖z‖² (how a row total is split over the features is not kept: the kernels
  spread it evenly, and every spherical M-step reads only the totals);
* ``log_likelihood``: Σ w log p(x); ``weight``: Σ w; ``n_rows``: the row count;
* ``worst_rows``/``worst_scores``: the rows the model explains worst (lowest log p(x)),
  kept by a min-merge, which is associative too. They seed components that collapse.

Shifting keeps variances from cancelling to negative numbers on data far from the origin
(scikit-learn issue 30382).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["GaussianStats", "merge_worst"]

Array = NDArray[np.float64]


def merge_worst(
    rows_a: Array, scores_a: Array, rows_b: Array, scores_b: Array, keep: int
) -> tuple[Array, Array]:
    """Keep the ``keep`` rows with the lowest scores out of two sets (stable on ties)."""
    rows = np.concatenate([rows_a, rows_b])
    scores = np.concatenate([scores_a, scores_b])
    if scores.shape[0] <= keep:
        order = np.argsort(scores, kind="stable")
    else:
        order = np.argsort(scores, kind="stable")[:keep]
    return rows[order], scores[order]


@dataclass(frozen=True, eq=False)
class GaussianStats:
    covariance_type: str
    shift: Array
    centers: Array
    nk: Array
    s1: Array
    s2: Array
    log_likelihood: float
    weight: float
    n_rows: int
    worst_rows: Array
    worst_scores: Array

    def __post_init__(self) -> None:
        if self.covariance_type == "spherical" and self.s2.ndim == 2 and self.s2.shape[1] > 1:
            # One canonical form whichever path produced them: each row total spread evenly.
            d = self.s2.shape[1]
            total = self.s2.sum(axis=1, keepdims=True)
            object.__setattr__(self, "s2", np.repeat(total / d, d, axis=1))

    def __add__(self, other: GaussianStats) -> GaussianStats:
        if not isinstance(other, GaussianStats):
            return NotImplemented
        if (
            self.covariance_type != other.covariance_type
            or not np.array_equal(self.shift, other.shift)
            or not np.array_equal(self.centers, other.centers)
        ):
            raise ValueError(
                "Cannot add Gaussian statistics taken about different reference points or "
                "for different covariance types."
            )
        # As many as there are components (a small chunk may have held fewer rows).
        keep = int(self.nk.shape[0])
        worst_rows, worst_scores = merge_worst(
            self.worst_rows, self.worst_scores, other.worst_rows, other.worst_scores, keep
        )
        return GaussianStats(
            covariance_type=self.covariance_type,
            shift=self.shift,
            centers=self.centers,
            nk=self.nk + other.nk,
            s1=self.s1 + other.s1,
            s2=self.s2 + other.s2,
            log_likelihood=self.log_likelihood + other.log_likelihood,
            weight=self.weight + other.weight,
            n_rows=self.n_rows + other.n_rows,
            worst_rows=worst_rows,
            worst_scores=worst_scores,
        )

    def allclose(self, other: GaussianStats, rtol: float = 1e-10, atol: float = 1e-10) -> bool:
        """Equal up to floating-point reordering (the additivity tests use this)."""
        return bool(
            self.covariance_type == other.covariance_type
            and np.allclose(self.nk, other.nk, rtol=rtol, atol=atol)
            and np.allclose(self.s1, other.s1, rtol=rtol, atol=atol)
            and np.allclose(self.s2, other.s2, rtol=rtol, atol=atol)
            and np.isclose(self.log_likelihood, other.log_likelihood, rtol=rtol, atol=atol)
            and np.isclose(self.weight, other.weight, rtol=rtol, atol=atol)
            and self.n_rows == other.n_rows
            and np.allclose(self.worst_scores, other.worst_scores, rtol=rtol, atol=atol)
        )
