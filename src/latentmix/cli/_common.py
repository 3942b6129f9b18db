"""Shared pieces of the command line: exit codes, errors, consoles, progress, data and models."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    import pandas as pd
    from rich.console import Console

    from latentmix.io._readers import Features

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_BAD_MODEL",
    "EXIT_BROKEN_PIPE",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_UNAVAILABLE",
    "CLIError",
    "StdoutClosed",
    "Ui",
    "load_model",
    "model_input",
    "parse_components",
    "read_data",
]

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_BAD_INPUT = 2
EXIT_BAD_MODEL = 3
EXIT_UNAVAILABLE = 4
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141


class CLIError(Exception):
    """An error the command line reports as one line on stderr, with an exit code."""

    def __init__(self, message: str, code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.code = code


class StdoutClosed(Exception):
    """The reader of standard output went away (``| head``).

    Not an OSError on purpose: click turns an EPIPE OSError into a bare exit code 1.
    """


def unavailable(what: str, hint: str = "") -> CLIError:
    """The error for a feature whose library part is not in this build of latentmix."""
    extra = f"; {hint}" if hint else ""
    return CLIError(f"{what} is not available in this build of latentmix yet{extra}", 4)


@dataclass
class Ui:
    """Where a command prints: rich consoles for stdout and stderr, and the quiet switch."""

    quiet: bool = False
    json: bool = False

    def __post_init__(self) -> None:
        from rich.console import Console

        self.out: Console = Console(highlight=False, soft_wrap=False)
        self.err: Console = Console(stderr=True, highlight=False)

    @property
    def show_progress(self) -> bool:
        """Progress bars only for a person watching: not quiet, and stderr is a terminal."""
        return not self.quiet and self.err.is_terminal

    def info(self, message: str) -> None:
        """A human note on stderr (suppressed by --quiet and --json)."""
        if not self.quiet and not self.json:
            self.err.print(message)

    def print(self, *objects: Any) -> None:
        """Human output on stdout (suppressed by --json, which prints JSON instead)."""
        if not self.json:
            self.out.print(*objects)

    def emit_json(self, payload: dict[str, Any]) -> None:
        """Write a machine-readable summary to stdout."""
        try:
            sys.stdout.write(json.dumps(_jsonable(payload), indent=2, allow_nan=False) + "\n")
            sys.stdout.flush()
        except BrokenPipeError as exc:
            raise StdoutClosed from exc

    @contextmanager
    def progress(self, description: str, total: int | None) -> Iterator[Any]:
        """A rich progress bar (or spinner when ``total`` is None); ``advance()`` steps it."""
        if not self.show_progress:
            yield _NoProgress()
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        columns: list[Any] = [SpinnerColumn(), TextColumn("{task.description}")]
        if total is not None:
            columns += [BarColumn(), MofNCompleteColumn()]
        columns.append(TimeElapsedColumn())
        with Progress(*columns, console=self.err, transient=True) as bar:
            task = bar.add_task(description, total=total)
            yield _Advance(bar, task)


class _NoProgress:
    def advance(self, description: str | None = None) -> None:
        """Nothing to draw."""


class _Advance:
    def __init__(self, bar: Any, task: Any) -> None:
        self.bar, self.task = bar, task

    def advance(self, description: str | None = None) -> None:
        if description is None:
            self.bar.advance(self.task)
        else:
            self.bar.update(self.task, advance=1, description=description)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def parse_components(text: str) -> list[int]:
    """Parse ``3``, ``1-9`` or ``2,4,6`` into a sorted list of component counts."""
    values: set[int] = set()
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part:
                lo, hi = (int(p) for p in part.split("-", 1))
                if lo > hi:
                    raise ValueError
                values.update(range(lo, hi + 1))
            else:
                values.add(int(part))
    except ValueError:
        raise CLIError(
            f"--components {text!r} is not a number, a range such as 1-9, or a list such as 2,3,5"
        ) from None
    if not values or min(values) < 1:
        raise CLIError(f"--components {text!r}: component counts must be at least 1")
    return sorted(values)


def read_data(
    path: str,
    *,
    columns: list[str] | None = None,
    drop: list[str] | None = None,
    weight_column: str | None = None,
    dropna: bool = False,
    allow_missing: bool = False,
) -> Features:
    """Read a data file and pick its feature columns (DataError on any problem)."""
    from latentmix.io._readers import read_frame, select_features

    frame = read_frame(path)
    return select_features(
        frame,
        source=_source(path),
        columns=columns,
        drop=drop,
        weight_column=weight_column,
        dropna=dropna,
        allow_missing=allow_missing,
    )


def _source(path: str) -> str:
    return "stdin" if path == "-" else path


def load_model(path: str) -> Any:
    """Load a model file; a bad file is a CLIError with exit code 3."""
    from latentmix._exceptions import ModelFileError
    from latentmix.io import load

    try:
        return load(path)
    except ModelFileError as exc:
        raise CLIError(f"{exc}; give a model file written by 'latentmix fit'", 3) from exc
    except ImportError as exc:
        raise CLIError(f"{path}: this model needs an optional dependency: {exc}", 4) from exc


def model_input(
    model: Any,
    path: str,
    *,
    columns: list[str] | None = None,
    drop: list[str] | None = None,
    dropna: bool = False,
    allow_missing: bool = False,
) -> tuple[Any, Features]:
    """Read the data a fitted model scores: its columns by name when it knows them.

    Returns the value to pass to the model (a DataFrame with the model's feature names,
    or an array) and the selected features.
    """
    from latentmix.io._readers import DataError, read_frame, select_features

    frame = read_frame(path)
    source = _source(path)
    names = getattr(model, "feature_names_in_", None)
    n_expected = getattr(model, "n_features_in_", None)
    positional = bool(frame.attrs.get("positional", False))
    if names is not None and not columns and not positional:
        names = [str(n) for n in names]
        absent = [n for n in names if n not in frame.columns]
        if absent:
            raise DataError(
                f"{source}: lacks the column(s) {', '.join(absent)} that the model was "
                "fitted on; give data with the same columns"
            )
        columns = names
    features = select_features(
        frame,
        source=source,
        columns=columns,
        drop=drop,
        dropna=dropna,
        allow_missing=allow_missing,
    )
    if n_expected is not None and features.X.shape[1] != int(n_expected):
        raise DataError(
            f"{source}: has {features.X.shape[1]} feature columns but the model expects "
            f"{int(n_expected)}; choose the columns with --columns or --drop"
        )
    if names is not None:
        import pandas as pd

        return pd.DataFrame(features.X, columns=[str(n) for n in names]), features
    return features.X, features


def feature_names(model: Any, n_features: int) -> list[str]:
    """The model's feature names, or ``x0, x1, ...``."""
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        return [str(n) for n in names]
    return [f"x{i}" for i in range(n_features)]


def write_output(frame: pd.DataFrame, output: str | None) -> None:
    """Write a result table to a file by extension, or CSV to stdout."""
    from latentmix.io._writers import write_frame

    try:
        write_frame(frame, output or "-")
    except BrokenPipeError as exc:
        raise StdoutClosed from exc


def require_fitted(model: Any, path: str, kinds: Iterable[str]) -> None:
    """Refuse an unfitted model or one of the wrong kind (exit code 3)."""
    name = type(model).__name__
    kinds = tuple(kinds)
    if name not in kinds:
        raise CLIError(
            f"{path}: holds a {name}; this command needs a {' or '.join(kinds)} model", 3
        )
    if not any(k.endswith("_") and not k.startswith("_") for k in vars(model)):
        raise CLIError(f"{path}: the {name} in this file is not fitted; fit it first", 3)


def as_float_array(values: Any) -> NDArray[np.float64]:
    """A float64 NumPy array of ``values``."""
    return np.asarray(values, dtype=np.float64)
