"""Exceptions and warnings raised by latentmix."""

from __future__ import annotations

from sklearn.exceptions import ConvergenceWarning, NotFittedError

__all__ = [
    "CollapseWarning",
    "ConvergenceWarning",
    "InvalidParameterError",
    "ModelFileError",
    "NotFittedError",
]


class InvalidParameterError(ValueError, TypeError):
    """A parameter of an estimator has a wrong type or value.

    Both a ValueError and a TypeError, like scikit-learn's error of the same name, so that
    code catching either (as it would around a scikit-learn estimator) catches it.
    """


class ModelFileError(ValueError):
    """A model file is missing, truncated, corrupted, foreign or of a newer format."""


class CollapseWarning(UserWarning):
    """A mixture component collapsed during EM and was re-seeded."""
