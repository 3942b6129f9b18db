"""Per-cluster sums of euclidean distances, compiled with Numba and spread over the cores.

The silhouette needs, for every row i and cluster c, ``Σ_{j in c} ‖x_i − x_j‖``. Rows are
sorted by label, so each cluster is a contiguous run of columns. A compiled kernel walks
tiles of ``BLOCK_ROWS × BLOCK_COLS`` (512 KiB of float64, so a tile stays in the L2
cache between the two steps; smaller if ``chunk_bytes`` asks): one BLAS product ``x·y`` for the tile (Numba's ``np.dot``),
then a single pass that forms ``‖x‖² + ‖y‖² − 2x·y``, clamps it at 0, takes the square
root and adds it to the row's sum for the column's cluster and, when the tile is off the
diagonal, to the column's sum for the row's cluster. Each distance is computed once and
credited to both its ends, so only the upper triangle is visited.

That pass replaced five full NumPy passes over 64 MiB tiles (adds, clamp, sqrt, two
``np.add.reduceat``), which were memory-bound. Measured on this session's 2-core Xeon
(N=20,000, D=16, K=16, the 2·10⁸ distances of the triangle): the products alone take
118 ms on one thread and the whole kernel 290–340 ms, 155–185 ms on two threads, against
2.1–2.5 s for the NumPy path. The fused pass is bound by the square roots: LLVM
vectorises it to 4-lane ``vsqrtpd``, and a loop of square roots alone runs at 0.76 ns
each, 150 ms for the triangle. Tile shapes from 32×2048 to 256×1024 ran within the
noise of each other (285–320 ms on one thread). Many small clusters make the runs of
columns short; writing a tile row's distances back and summing the runs in a second
loop (so the square roots always run in full-length vector loops) was no faster: 7%
slower at K=16 and K=200, 3% faster at K=2,000 (N=10,000: 5 rows per cluster, where
both take 2.5× the time of K=16).

Work on the triangle is spread over threads without locks and with results that do not
depend on the thread count: the rows are cut into ``n_panels`` panels (a number fixed by
the row count alone) and the panel pairs ``(a, b)``, ``a ≤ b``, are run in rounds of a
round-robin tournament, in which no panel appears twice. Within a round the tasks write
disjoint parts of the sums, and every sum is accumulated in the same order whichever
thread runs which task. Each off-diagonal pair is the same amount of work, so two threads
stay balanced.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from latentmix.em._data import _ordered_map, _single_blas_thread, n_threads

__all__ = [
    "BLOCK_COLS",
    "BLOCK_ROWS",
    "HAVE_NUMBA",
    "block_shape",
    "panel_bounds",
    "rounds",
    "row_sums",
    "symmetric_sums",
]

try:  # Numba is optional: without it the caller keeps its NumPy path.
    from numba import njit

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised only without numba
    HAVE_NUMBA = False

#: Tile of rows × columns of one product (64 × 1024 float64 = 512 KiB; the L2 here is
#: 2 MiB per core, so the products are still there when the fused pass reads them).
BLOCK_ROWS = 64
BLOCK_COLS = 1024

#: Rows per panel at least, and at most this many panels (a multiple of 4, so that every
#: round has an even number of tasks for two threads). 16 panels give rounds of 8 equal
#: tasks, enough for up to 8 threads; a task of 512² distances is about 0.4 ms of work,
#: far above the tens of microseconds it costs to hand it to a thread.
PANEL_ROWS = 512
MAX_PANELS = 16

#: Row tasks per block of the row-block layout (a fixed number: see ``row_sums``).
ROW_TASKS = 8


def block_shape(tile_elements: int) -> tuple[int, int]:
    """Rows and columns of a kernel tile holding at most ``tile_elements`` distances."""
    tile_elements = max(int(tile_elements), 1)
    rows = max(1, min(BLOCK_ROWS, math.isqrt(tile_elements)))
    cols = max(1, min(BLOCK_COLS, tile_elements // rows))
    return rows, cols


def panel_bounds(n_samples: int) -> NDArray[np.intp]:
    """Edges of the row panels: 1 panel below ``4 * PANEL_ROWS`` rows, else 4, 8, 12 or 16
    panels of equal size (±1 row). Depends on the row count only."""
    n_panels = 4 * min(MAX_PANELS // 4, n_samples // (4 * PANEL_ROWS))
    n_panels = max(n_panels, 1)
    return (np.arange(n_panels + 1) * n_samples // n_panels).astype(np.intp)


def rounds(n_panels: int) -> list[list[tuple[int, int]]]:
    """Every pair ``(a, b)``, ``a ≤ b < n_panels``, once, in rounds where no panel repeats.

    The diagonal pairs form the first round; the others follow the circle method (panel
    0 fixed, the rest rotating one step per round), which needs ``n_panels`` even or 1.
    """
    if n_panels != 1 and n_panels % 2:
        raise ValueError(f"n_panels must be 1 or even, got {n_panels}.")
    out = [[(a, a) for a in range(n_panels)]]
    ring = list(range(1, n_panels))
    for r in range(n_panels - 1):
        seats = [0, *ring[r:], *ring[:r]]
        out.append(
            [
                (min(seats[i], seats[-1 - i]), max(seats[i], seats[-1 - i]))
                for i in range(n_panels // 2)
            ]
        )
    return out


if HAVE_NUMBA:
    # ``reassoc`` lets LLVM vectorise the running sums (they are then added in 4 lanes, a
    # fixed order, so results stay deterministic); no ``ninf``: the diagonal uses +inf.
    _FASTMATH = {"reassoc", "contract"}

    @njit(inline="always", fastmath=_FASTMATH)
    def _run_both(sq_i, sq_c, prod, col_sums, m):  # type: ignore[no-untyped-def]
        # One run of columns of one cluster: returns Σ d for the row, adds d to columns.
        s = 0.0
        for q in range(m):
            v = sq_i + sq_c[q] - 2.0 * prod[q]
            d = np.sqrt(v if v > 0.0 else 0.0)  # the expansion can round below 0
            s += d
            col_sums[q] += d
        return s

    @njit(inline="always", fastmath=_FASTMATH)
    def _run_rows(sq_i, sq_c, prod, m):  # type: ignore[no-untyped-def]
        s = 0.0
        for q in range(m):
            v = sq_i + sq_c[q] - 2.0 * prod[q]
            s += np.sqrt(v if v > 0.0 else 0.0)
        return s

    @njit(cache=True, nogil=True, fastmath=_FASTMATH)
    def _distance_sums(
        X, sq, codes, bounds, r0, r1, c0, c1, sums, row_offset, symmetric, block_rows, block_cols
    ):  # type: ignore[no-untyped-def]
        """Add per-cluster distance sums between rows r0:r1 and columns c0:c1 to ``sums``.

        ``sums[c, i - row_offset]`` receives Σ over columns j of cluster c; with
        ``symmetric``, only pairs j > i are visited and ``sums[code_i, j]`` receives the
        same distances (so ``sums`` then spans all rows, ``row_offset`` 0). Otherwise every
        column is visited and a row's distance to itself is exactly 0.
        """
        buf = np.empty(block_rows * block_cols)
        for i0 in range(r0, r1, block_rows):
            i1 = min(i0 + block_rows, r1)
            first = max(c0, i0 + 1) if symmetric else c0
            for j0 in range(first, c1, block_cols):
                j1 = min(j0 + block_cols, c1)
                prod = buf[: (i1 - i0) * (j1 - j0)].reshape(i1 - i0, j1 - j0)
                np.dot(X[i0:i1], X[j0:j1].T, prod)
                for i in range(i0, i1):
                    row = prod[i - i0]
                    j = j0
                    if symmetric:
                        j = max(j0, i + 1)
                    elif j0 <= i < j1:
                        row[i - j0] = np.inf  # → −inf → clamped to 0: exactly 0 to itself
                    col_sums = sums[codes[i]]
                    while j < j1:
                        c = codes[j]
                        e = min(bounds[c + 1], j1)
                        prod_run = row[j - j0 : e - j0]
                        if symmetric:
                            s = _run_both(sq[i], sq[j:e], prod_run, col_sums[j:e], e - j)
                        else:
                            s = _run_rows(sq[i], sq[j:e], prod_run, e - j)
                        sums[c, i - row_offset] += s
                        j = e


def _tasks_in_rounds(tasks: list[list[tuple[Any, ...]]], fn: Any) -> None:
    """Run ``fn(*task)`` for every task, round after round (a barrier between rounds)."""
    threads = n_threads()
    with _single_blas_thread():  # tiles are small; the cores are already busy
        for batch in tasks:
            for _ in _ordered_map(fn, iter(batch), min(threads, len(batch))):
                pass


def symmetric_sums(
    X: NDArray[np.float64],
    sq: NDArray[np.float64],
    codes: NDArray[np.intp],
    bounds: NDArray[np.intp],
    tile_elements: int,
) -> NDArray[np.float64]:
    """``sums[c, i] = Σ_{j in c, j ≠ i} ‖x_i − x_j‖`` for label-sorted rows X (Numba only).

    ``X`` is C-contiguous float64, ``sq`` its rows' squared norms, ``codes`` the sorted
    cluster codes and ``bounds`` the cluster edges (length K+1). Memory: the
    (K, n_samples) sums plus one tile of ``tile_elements`` per running task.
    """
    n_samples = X.shape[0]
    sums = np.zeros((len(bounds) - 1, n_samples))
    rows, cols = block_shape(tile_elements)
    edges = panel_bounds(n_samples)

    def task(a: int, b: int) -> None:
        r0, r1, c0, c1 = edges[a], edges[a + 1], edges[b], edges[b + 1]
        _distance_sums(X, sq, codes, bounds, r0, r1, c0, c1, sums, 0, True, rows, cols)

    _tasks_in_rounds(rounds(len(edges) - 1), task)
    return sums


def row_sums(
    X: NDArray[np.float64],
    sq: NDArray[np.float64],
    codes: NDArray[np.intp],
    bounds: NDArray[np.intp],
    start: int,
    stop: int,
    tile_elements: int,
) -> NDArray[np.float64]:
    """``sums[c, i - start]`` for rows start:stop against all rows (no symmetry used).

    For when (K, n_samples) sums would not fit: only (K, stop − start) are kept, at twice
    the distances of :func:`symmetric_sums`. The rows are cut into at most ``ROW_TASKS``
    runs of whole tiles, fixed by ``stop − start``, so the result does not depend on the
    thread count either. Arguments as in :func:`symmetric_sums`.
    """
    sums = np.zeros((len(bounds) - 1, stop - start))
    rows, cols = block_shape(tile_elements)
    n_tiles = -(-(stop - start) // rows)
    step = rows * -(-n_tiles // ROW_TASKS)

    def task(r0: int) -> None:
        r1 = min(r0 + step, stop)
        _distance_sums(X, sq, codes, bounds, r0, r1, 0, X.shape[0], sums, start, False, rows, cols)

    _tasks_in_rounds([[(r0,) for r0 in range(start, stop, step)]], task)
    return sums
