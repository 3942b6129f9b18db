"""Data writers for the command line: CSV, TSV, Parquet, ``.npy`` or stdout, written atomically.

Every file is written to a temporary file in the target's directory, flushed, then
``os.replace``-d over the target, so a failure (or an interrupt) never leaves a partial
output file behind and never damages an existing one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from latentmix.io._readers import DataError, table_format

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["atomic_path", "write_bytes", "write_frame", "write_text"]

logger = logging.getLogger("latentmix")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it over ``path``.

    On any exception the temporary file is removed and ``path`` is left as it was.

    Raises
    ------
    DataError
        If the target's directory does not exist or is not writable.
    """
    target = Path(os.fspath(path))
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise DataError(f"{target}: the directory {directory} does not exist; create it first")
    if target.is_dir():
        raise DataError(f"{target}: is a directory; give a file name")
    try:
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=".tmp" + target.suffix, dir=directory
        )
    except OSError as exc:
        raise DataError(f"{target}: cannot write in {directory} ({exc.strerror})") from exc
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp makes the file private (0600); an output file gets the usual permissions.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    logger.info("wrote %s", target)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically (``-`` writes to stdout)."""
    if str(path) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    write_bytes(path, text.encode("utf-8"))


def write_frame(frame: pd.DataFrame, path: str, *, stdout: IO[str] | None = None) -> None:
    """Write a table to ``path`` in the format of its extension, or CSV to stdout for ``-``.

    Formats: ``.csv``/``.txt``, ``.tsv``/``.tab``, ``.parquet``/``.pq``, ``.npy`` (the
    table as one float64 array) and ``.npz`` (``X``, that array, and ``columns``, the
    column names, which :func:`~latentmix.io._readers.read_frame` restores).

    Raises
    ------
    DataError
        For an unknown extension or a directory that cannot be written.
    """
    fmt = table_format(path)
    if path == "-":
        out = stdout if stdout is not None else sys.stdout
        frame.to_csv(out, index=False, lineterminator="\n")
        out.flush()
        return
    with atomic_path(path) as tmp:
        if fmt in ("csv", "tsv"):
            frame.to_csv(tmp, index=False, sep="\t" if fmt == "tsv" else ",", lineterminator="\n")
        elif fmt == "parquet":
            frame.to_parquet(tmp, index=False)
        elif fmt == "npy":
            with open(tmp, "wb") as fh:
                np.save(fh, _numeric(frame), allow_pickle=False)
        else:
            names = np.asarray([str(c) for c in frame.columns])
            with open(tmp, "wb") as fh:
                np.savez(fh, X=_numeric(frame), columns=names)


def _numeric(frame: pd.DataFrame) -> np.ndarray[Any, Any]:
    try:
        return frame.to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(
            "a .npy or .npz file holds numbers only; write this table as .csv or .parquet"
        ) from exc
