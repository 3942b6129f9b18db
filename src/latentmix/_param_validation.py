"""Declared parameter constraints, checked at the start of ``fit`` (one table per estimator)."""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from latentmix._exceptions import InvalidParameterError

__all__ = [
    "ArrayLike",
    "Interval",
    "InvalidParameterError",
    "NoneOr",
    "Options",
    "validate_params",
]

#: Seeds NumPy's RandomState accepts (``check_random_state`` makes one of an int).
MAX_SEED = 2**32 - 1


class Constraint:
    def is_satisfied_by(self, value: Any) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass(frozen=True)
class Interval(Constraint):
    """A real or integer number in [low, high] (``None`` for an open end)."""

    kind: type
    low: float | None
    high: float | None
    closed: str = "both"  # "both", "left", "right", "neither"

    def is_satisfied_by(self, value: Any) -> bool:
        if isinstance(value, bool | np.bool_):
            return False
        if self.kind is int:
            if not isinstance(value, numbers.Integral):
                return False
        elif not isinstance(value, numbers.Real):
            return False
        if isinstance(value, float) and np.isnan(value):
            return False
        lo_ok = self.low is None or (
            value >= self.low if self.closed in ("both", "left") else value > self.low
        )
        hi_ok = self.high is None or (
            value <= self.high if self.closed in ("both", "right") else value < self.high
        )
        return bool(lo_ok and hi_ok)

    def describe(self) -> str:
        left = "[" if self.closed in ("both", "left") and self.low is not None else "("
        right = "]" if self.closed in ("both", "right") and self.high is not None else ")"
        low = "-inf" if self.low is None else f"{self.low:g}"
        high = "inf" if self.high is None else f"{self.high:g}"
        what = "an int" if self.kind is int else "a float"
        return f"{what} in the range {left}{low}, {high}{right}"


@dataclass(frozen=True)
class Options(Constraint):
    """One of a fixed set of strings."""

    values: tuple[str, ...]

    def is_satisfied_by(self, value: Any) -> bool:
        return isinstance(value, str) and value in self.values

    def describe(self) -> str:
        return "a str among {" + ", ".join(repr(v) for v in self.values) + "}"


class _ArrayLike(Constraint):
    def is_satisfied_by(self, value: Any) -> bool:
        return hasattr(value, "__array__") or (
            isinstance(value, Sequence) and not isinstance(value, str)
        )

    def describe(self) -> str:
        return "an array-like"


class _RandomState(Constraint):
    def is_satisfied_by(self, value: Any) -> bool:
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            return 0 <= int(value) <= MAX_SEED
        return value is None or isinstance(value, np.random.RandomState)

    def describe(self) -> str:
        return "None, an int in the range [0, 2**32 - 1] or a numpy RandomState"


class _Boolean(Constraint):
    def is_satisfied_by(self, value: Any) -> bool:
        return isinstance(value, bool | np.bool_)

    def describe(self) -> str:
        return "a bool"


ArrayLike = _ArrayLike()
RandomStateLike = _RandomState()
Boolean = _Boolean()


@dataclass(frozen=True)
class NoneOr(Constraint):
    inner: Constraint

    def is_satisfied_by(self, value: Any) -> bool:
        return value is None or self.inner.is_satisfied_by(value)

    def describe(self) -> str:
        return f"None or {self.inner.describe()}"


def validate_params(estimator: Any, constraints: Mapping[str, Sequence[Constraint]]) -> None:
    """Check the declared constraints; name the first bad parameter, its value and what is allowed.

    Raises
    ------
    InvalidParameterError
        A ValueError (and TypeError) for the first parameter no constraint accepts.
    """
    params = estimator.get_params(deep=False)
    for name, allowed in constraints.items():
        value = params[name]
        if any(c.is_satisfied_by(value) for c in allowed):
            continue
        options = " or ".join(c.describe() for c in allowed)
        raise InvalidParameterError(
            f"The {name!r} parameter of {type(estimator).__name__} must be {options}. "
            f"Got {value!r} instead."
        )
