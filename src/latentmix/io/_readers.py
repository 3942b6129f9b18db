"""Data readers for the command line: CSV, TSV, Parquet, ``.npy``, ``.npz`` and stdin.

A reader returns a :class:`pandas.DataFrame` (NumPy files get the column names ``x0``,
``x1``, ...); :func:`select_features` then picks the numeric feature matrix, the optional
sample-weight column, and says clearly what is wrong when the data cannot be used. Every
problem raises :class:`DataError` with a one-line message that names the file, the column
or the row, and what to do.
"""

from __future__ import annotations

import io
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "FORMATS",
    "DataError",
    "Features",
    "read_frame",
    "select_features",
    "table_format",
]

logger = logging.getLogger("latentmix")

#: File extensions understood by :func:`read_frame` and :mod:`latentmix.io._writers`.
FORMATS = {
    ".csv": "csv",
    ".txt": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".npy": "npy",
    ".npz": "npz",
}


class DataError(ValueError):
    """A data file is missing, unreadable, of an unknown format, or holds unusable columns."""


@dataclass(frozen=True)
class Features:
    """The numeric matrix a model sees, with the names of its columns.

    Attributes
    ----------
    X : ndarray of shape (n_samples, n_features)
        float64 feature matrix (may hold NaN only when missing values were allowed).
    columns : list of str
        Column names, one per feature.
    sample_weight : ndarray of shape (n_samples,) or None
        The weight column, when one was named.
    named : bool
        Whether the columns had real names (a table with a header) rather than the
        positional names ``x0, x1, ...`` given to NumPy arrays.
    """

    X: NDArray[np.float64]
    columns: list[str]
    sample_weight: NDArray[np.float64] | None
    named: bool

    def frame(self) -> pd.DataFrame:
        """The features as a DataFrame with their column names."""
        import pandas as pd

        return pd.DataFrame(self.X, columns=self.columns)


def table_format(path: str, *, default: str | None = None) -> str:
    """The format name (``csv``, ``tsv``, ``parquet``, ``npy``, ``npz``) of a path.

    ``-`` (stdin or stdout) is ``default`` when given, else CSV.
    """
    if path == "-":
        return default or "csv"
    suffix = Path(path).suffix.lower()
    if suffix in FORMATS:
        return FORMATS[suffix]
    known = ", ".join(sorted(set(FORMATS)))
    shown = f"extension {suffix!r}" if suffix else "no extension"
    raise DataError(f"{path}: unknown data format ({shown}); use one of {known}")


def read_frame(path: str, *, stdin: Any = None) -> pd.DataFrame:
    """Read a data file (or ``-`` for CSV on stdin) into a DataFrame.

    Parameters
    ----------
    path : str
        A ``.csv``/``.txt``, ``.tsv``/``.tab``, ``.parquet``/``.pq``, ``.npy`` or ``.npz``
        file, or ``-`` for CSV text on standard input.
    stdin : file-like, default=None
        Where ``-`` reads from (``sys.stdin`` by default); for tests.

    Returns
    -------
    frame : pandas.DataFrame

    Raises
    ------
    DataError
        If the file is missing, unreadable, empty or of an unknown format.
    """
    import pandas as pd

    fmt = table_format(path)
    if path == "-":
        text = (stdin if stdin is not None else sys.stdin).read()
        if not text.strip():
            raise DataError("stdin: no data on standard input; pipe a CSV file in")
        return _read_text(io.StringIO(text), "stdin", ",")
    p = Path(path)
    if p.is_dir():
        raise DataError(f"{path}: is a directory, not a data file")
    if not p.exists():
        raise DataError(f"{path}: no such file; check the path")
    if not os.access(p, os.R_OK):
        raise DataError(f"{path}: permission denied; make the file readable")
    if p.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty")
    try:
        if fmt in ("csv", "tsv"):
            return _read_text(p, path, "\t" if fmt == "tsv" else ",")
        if fmt == "parquet":
            frame = pd.read_parquet(p)
        elif fmt == "npy":
            frame = _array_frame(np.load(p, allow_pickle=False), path)
        else:
            frame = _read_npz(p, path)
    except DataError:
        raise
    except Exception as exc:  # the parsers raise many types; all mean "cannot read"
        raise DataError(f"{path}: cannot be read as {fmt.upper()} ({_first_line(exc)})") from exc
    if frame.shape[0] == 0:
        raise DataError(f"{path}: no data rows")
    logger.info("read %d rows x %d columns from %s", frame.shape[0], frame.shape[1], path)
    return frame


def _read_text(source: Any, name: str, sep: str) -> pd.DataFrame:
    import pandas as pd

    try:
        frame = pd.read_csv(source, sep=sep)
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{name}: the file is empty") from exc
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        kind = "TSV" if sep == "\t" else "CSV"
        raise DataError(f"{name}: cannot be read as {kind} ({_first_line(exc)})") from exc
    if frame.shape[0] == 0:
        raise DataError(f"{name}: a header but no data rows")
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def _read_npz(p: Path, name: str) -> pd.DataFrame:
    with np.load(p, allow_pickle=False) as archive:
        keys = list(archive.keys())
        if "X" in keys:
            key = "X"
        elif len(keys) == 1:
            key = keys[0]
        else:
            raise DataError(
                f"{name}: holds arrays {', '.join(keys)}; name the data array 'X' "
                "(np.savez(path, X=data)) or store a single array"
            )
        frame = _array_frame(archive[key], name)
        if "columns" in keys and key == "X":
            names = [str(c) for c in archive["columns"].tolist()]
            if len(names) == frame.shape[1]:
                frame.columns = names
                frame.attrs["positional"] = False
        return frame


def _array_frame(array: NDArray[Any], name: str) -> pd.DataFrame:
    import pandas as pd

    if array.dtype.kind not in "biuf":
        raise DataError(f"{name}: the array has dtype {array.dtype}; it must be numeric")
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise DataError(
            f"{name}: the array has shape {array.shape}; it must be 2-D (rows x features)"
        )
    frame = pd.DataFrame(array, columns=[f"x{i}" for i in range(array.shape[1])])
    frame.attrs["positional"] = True
    return frame


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _split(names: str | list[str] | None) -> list[str]:
    if names is None:
        return []
    if isinstance(names, str):
        names = [names]
    out: list[str] = []
    for item in names:
        out.extend(n.strip() for n in item.split(",") if n.strip())
    return out


def select_features(
    frame: pd.DataFrame,
    *,
    source: str,
    columns: str | list[str] | None = None,
    drop: str | list[str] | None = None,
    weight_column: str | None = None,
    allow_missing: bool = False,
    dropna: bool = False,
) -> Features:
    """Pick the numeric feature columns (and the weight column) from a table.

    Parameters
    ----------
    frame : pandas.DataFrame
        As returned by :func:`read_frame`.
    source : str
        The file name, for messages.
    columns : str or list of str, default=None
        Columns to use (comma-separated names allowed); default: every column except
        ``drop`` and the weight column.
    drop : str or list of str, default=None
        Columns to leave out.
    weight_column : str, default=None
        Column holding non-negative sample weights (never a feature).
    allow_missing : bool, default=False
        Keep NaN entries (for models that handle missing values); otherwise a missing
        value is an error unless ``dropna``.
    dropna : bool, default=False
        Drop the rows that have a missing feature value (before any other check).

    Returns
    -------
    features : Features

    Raises
    ------
    DataError
        For an unknown column, a non-numeric or empty column, missing values, or no
        columns left.
    """
    import pandas as pd

    positional = bool(frame.attrs.get("positional", False))
    names = [str(c) for c in frame.columns]
    wanted, dropped = _split(columns), _split(drop)
    for name in [*wanted, *dropped, *([weight_column] if weight_column else [])]:
        if name not in names:
            raise DataError(f"{source}: no column named {name!r}; the columns are {_show(names)}")
    use = wanted or [n for n in names if n not in dropped and n != weight_column]
    if weight_column in use:
        raise DataError(f"{source}: the weight column {weight_column!r} cannot also be a feature")
    if not use:
        raise DataError(f"{source}: no feature columns left to use")
    frame = frame.copy()
    frame.columns = names
    for name in use + ([weight_column] if weight_column else []):
        col = frame[name]
        if col.isna().all():
            raise DataError(f"{source}: column {name!r} is empty (no values)")
        if not (pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)):
            bad = col[pd.to_numeric(col, errors="coerce").isna() & col.notna()]
            row, value = bad.index[0], bad.iloc[0]
            raise DataError(
                f"{source}: column {name!r} is not numeric (value {str(value)!r} in data row "
                f"{int(row) + 1}); leave it out with --drop {name} or choose --columns"
            )
    X = frame[use].to_numpy(dtype=np.float64, na_value=np.nan)
    missing = np.isnan(X)
    if dropna and missing.any():
        keep = ~missing.any(axis=1)
        logger.info("dropping %d rows with missing values", int((~keep).sum()))
        frame, X = frame.loc[keep], X[keep]
        missing = missing[keep]
        if X.shape[0] == 0:
            raise DataError(f"{source}: every row has a missing value")
    if missing.any() and not allow_missing:
        j = int(np.flatnonzero(missing.any(axis=0))[0])
        n_rows = int(missing.any(axis=1).sum())
        raise DataError(
            f"{source}: {n_rows} rows have missing values (first in column {use[j]!r}); "
            "drop them with --dropna or fill them in first"
        )
    if not np.all(np.isfinite(X[~missing])):
        j = int(np.flatnonzero(np.isinf(X).any(axis=0))[0])
        raise DataError(f"{source}: column {use[j]!r} contains infinity; remove those rows")
    weights = None
    if weight_column:
        weights = frame[weight_column].to_numpy(dtype=np.float64, na_value=np.nan)
        if not np.all(np.isfinite(weights)) or np.any(weights < 0) or not np.any(weights > 0):
            raise DataError(
                f"{source}: the weight column {weight_column!r} must hold finite, non-negative "
                "numbers, not all zero"
            )
    return Features(
        X=np.ascontiguousarray(X),
        columns=use,
        sample_weight=weights,
        named=not positional,
    )


def _show(names: list[str], limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")
