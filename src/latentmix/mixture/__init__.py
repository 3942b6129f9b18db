"""Mixture models: Gaussian mixtures by EM (and, as they land, variational and Bernoulli)."""

from latentmix.mixture._bayesian_mixture import BayesianGaussianMixture
from latentmix.mixture._gaussian_mixture import GaussianMixture
from latentmix.mixture._selection import MixtureSelection, select_mixture

__all__ = ["BayesianGaussianMixture", "GaussianMixture", "MixtureSelection", "select_mixture"]
