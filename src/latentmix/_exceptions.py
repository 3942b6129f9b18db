"""Exceptions and warnings raised by latentmix."""

from __future__ import annotations

from sklearn.exceptions import ConvergenceWarning, NotFittedError

__all__ = ["CollapseWarning", "ConvergenceWarning", "ModelFileError", "NotFittedError"]


class ModelFileError(ValueError):
    """A model file is missing, truncated, corrupted, foreign or of a newer format."""


class CollapseWarning(UserWarning):
    """A mixture component collapsed during EM and was re-seeded."""
