"""The Gaussian family: parameters, additive statistics, E-step kernels and the M-step."""

from latentmix.gaussian._kernels import estep_stats, log_gaussian_prob, log_weighted_prob
from latentmix.gaussian._mstep import mstep, stats_from_labels
from latentmix.gaussian._params import (
    COVARIANCE_TYPES,
    GaussianParams,
    n_parameters,
    precisions_cholesky_from_covariances,
    precisions_cholesky_from_precisions,
    precisions_from_cholesky,
)
from latentmix.gaussian._stats import GaussianStats

__all__ = [
    "COVARIANCE_TYPES",
    "GaussianParams",
    "GaussianStats",
    "estep_stats",
    "log_gaussian_prob",
    "log_weighted_prob",
    "mstep",
    "n_parameters",
    "precisions_cholesky_from_covariances",
    "precisions_cholesky_from_precisions",
    "precisions_from_cholesky",
    "stats_from_labels",
]
