"""Silhouette coefficient against scikit-learn, over metrics and both block layouts."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import cdist
from sklearn.metrics import silhouette_samples as sk_samples
from sklearn.metrics import silhouette_score as sk_score

from latentmix.cluster import _silhouette as silhouette_mod
from latentmix.cluster import _silhouette_kernels as kernels
from latentmix.cluster import silhouette_samples, silhouette_score
from latentmix.cluster._silhouette import DEFAULT_CHUNK_BYTES, _samples
from latentmix.em import _data as data_module

needs_numba = pytest.mark.skipif(not kernels.HAVE_NUMBA, reason="numba is not installed")

# chunk_bytes values that force: row blocks of one row, small square tiles, one tile.
CHUNKS = [8 * 50, 8 * 40 * 40, 64 * 2**20]


def _data(seed: int = 0, n: int = 120, k: int = 4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.RandomState(seed)
    labels = rng.randint(k, size=n)
    X = rng.randn(n, 3) + 3.0 * labels[:, None] + 20.0
    labels[0] = k  # a singleton cluster: its silhouette is 0
    return X, labels


@pytest.mark.parametrize("chunk_bytes", CHUNKS)
@pytest.mark.parametrize("metric", ["euclidean", "manhattan", "cosine", "chebyshev"])
def test_samples_match_sklearn(metric: str, chunk_bytes: int) -> None:
    X, labels = _data()
    ours = silhouette_samples(X, labels, metric=metric, chunk_bytes=chunk_bytes)
    np.testing.assert_allclose(ours, sk_samples(X, labels, metric=metric), rtol=1e-10, atol=1e-12)
    assert ours[0] == 0.0


@pytest.mark.parametrize("chunk_bytes", CHUNKS)
def test_precomputed_matches_sklearn(chunk_bytes: int) -> None:
    X, labels = _data(1)
    D = cdist(X, X)
    ours = silhouette_samples(D, labels, metric="precomputed", chunk_bytes=chunk_bytes)
    np.testing.assert_allclose(
        ours, sk_samples(D, labels, metric="precomputed"), rtol=1e-10, atol=1e-12
    )
    np.testing.assert_allclose(ours, silhouette_samples(X, labels), rtol=1e-10, atol=1e-12)


def test_metric_keywords_and_callable() -> None:
    X, labels = _data(2, n=40)
    ours = silhouette_samples(X, labels, metric="minkowski", p=3)
    np.testing.assert_allclose(ours, sk_samples(X, labels, metric="minkowski", p=3), rtol=1e-10)

    def l1(u: np.ndarray, v: np.ndarray) -> float:
        return float(np.abs(u - v).sum())

    np.testing.assert_allclose(
        silhouette_samples(X, labels, metric=l1),
        sk_samples(X, labels, metric="manhattan"),
        rtol=1e-10,
    )


def test_score_with_sample_size_draws_like_sklearn() -> None:
    X, labels = _data(3, n=200)
    for kwargs in ({}, {"sample_size": 80, "random_state": 7}):
        np.testing.assert_allclose(
            silhouette_score(X, labels, **kwargs), sk_score(X, labels, **kwargs), rtol=1e-10
        )
    D = cdist(X, X)
    np.testing.assert_allclose(
        silhouette_score(D, labels, metric="precomputed", sample_size=60, random_state=1),
        sk_score(D, labels, metric="precomputed", sample_size=60, random_state=1),
        rtol=1e-10,
    )


def test_duplicate_rows_in_two_clusters_score_zero_like_sklearn() -> None:
    X = np.array([[0.0], [0.0], [0.0], [5.0]])
    labels = np.array([0, 1, 1, 1])
    np.testing.assert_allclose(silhouette_samples(X, labels), sk_samples(X, labels), atol=1e-12)


@settings(max_examples=30)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(3, 40),
    k=st.integers(2, 6),
    chunk_bytes=st.sampled_from(CHUNKS),
)
def test_samples_match_sklearn_property(seed: int, n: int, k: int, chunk_bytes: int) -> None:
    rng = np.random.RandomState(seed)
    labels = rng.randint(min(k, n - 1), size=n)
    labels[: min(k, n - 1)] = np.arange(min(k, n - 1))  # 2 <= n_labels <= n - 1
    X = rng.randn(n, 2) * 10.0
    ours = silhouette_samples(X, labels, chunk_bytes=chunk_bytes)
    np.testing.assert_allclose(ours, sk_samples(X, labels), rtol=1e-9, atol=1e-10)


def test_bad_input_messages() -> None:
    X, labels = _data(n=10)
    with pytest.raises(
        ValueError, match=r"Number of labels is 1\. Valid values are 2 to n_samples - 1"
    ):
        silhouette_samples(X, np.zeros(10))
    with pytest.raises(ValueError, match="Number of labels is 10"):
        silhouette_score(X, np.arange(10))
    with pytest.raises(ValueError, match="one label per row"):
        silhouette_samples(X, labels[:5])
    D = cdist(X, X) + 1.0
    with pytest.raises(ValueError, match="non-zero elements on the diagonal"):
        silhouette_samples(D, labels, metric="precomputed")
    with pytest.raises(ValueError, match="square"):
        silhouette_samples(X, labels, metric="precomputed")
    bad = X.copy()
    bad[1, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        silhouette_score(bad, labels)
    with pytest.raises(ValueError, match="chunk_bytes"):
        silhouette_samples(X, labels, chunk_bytes=0)
    with pytest.raises(ValueError, match="sample_size"):
        silhouette_score(X, labels, sample_size=0)


# -- the compiled euclidean kernel ----------------------------------------------------------


def _small_tiles(monkeypatch: pytest.MonkeyPatch, rows: int = 5, cols: int = 7) -> None:
    """Tiles and panels a few rows wide, so small inputs cross many of their edges."""
    monkeypatch.setattr(kernels, "BLOCK_ROWS", rows)
    monkeypatch.setattr(kernels, "BLOCK_COLS", cols)
    monkeypatch.setattr(kernels, "PANEL_ROWS", 4)


def _sorted_problem(
    seed: int, n: int, k: int, d: int = 3
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Label-sorted rows (some clusters a single row), their squared norms, codes, edges.

    No copies of rows: their distance by expansion is rounding noise (~1e-7 here), for
    scikit-learn as for us; the integer-valued test below covers copies.
    """
    rng = np.random.RandomState(seed)
    sizes = rng.randint(1, max(2, 2 * n // k), size=k)
    codes = np.repeat(np.arange(k), sizes).astype(np.intp)
    X = rng.randn(len(codes), d) * 3.0
    bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(np.intp)
    return X, np.einsum("ij,ij->i", X, X), codes, bounds


def _reference_sums(X: np.ndarray, codes: np.ndarray, n_clusters: int) -> np.ndarray:
    D = cdist(X, X)
    return np.stack([D[:, codes == c].sum(axis=1) for c in range(n_clusters)])


@pytest.mark.parametrize("n_panels", [1, 2, 4, 6, 8, 16])
def test_rounds_visit_every_panel_pair_once_and_no_panel_twice_per_round(n_panels: int) -> None:
    schedule = kernels.rounds(n_panels)
    pairs = [pair for batch in schedule for pair in batch]
    expected = [(a, b) for a in range(n_panels) for b in range(a, n_panels)]
    assert sorted(pairs) == expected
    for batch in schedule:
        panels = [p for a, b in batch for p in ({a, b} if a != b else {a})]
        assert len(panels) == len(set(panels))


def test_rounds_reject_an_odd_number_of_panels() -> None:
    with pytest.raises(ValueError, match="1 or even"):
        kernels.rounds(3)


@pytest.mark.parametrize("n", [1, 100, 2047, 2048, 5000, 20_000, 10**6])
def test_panels_cover_the_rows_in_a_count_set_by_the_row_count(n: int) -> None:
    edges = kernels.panel_bounds(n)
    assert edges[0] == 0 and edges[-1] == n and np.all(np.diff(edges) > 0)
    assert len(edges) - 1 in (1, 4, 8, 12, 16)
    assert np.ptp(np.diff(edges)) <= 1  # equal panels: equal tasks per round


@pytest.mark.parametrize("tile_elements", [1, 7, 50, 64 * 1024, 10**9])
def test_block_shape_fits_the_tile(tile_elements: int) -> None:
    rows, cols = kernels.block_shape(tile_elements)
    assert 1 <= rows <= kernels.BLOCK_ROWS and 1 <= cols <= kernels.BLOCK_COLS
    assert rows * cols <= max(tile_elements, 1)


@needs_numba
@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(2, 60),
    k=st.integers(1, 8),
    rows=st.integers(1, 9),
    cols=st.integers(1, 13),
)
def test_kernel_sums_equal_direct_distances(
    seed: int, n: int, k: int, rows: int, cols: int
) -> None:
    X, sq, codes, bounds = _sorted_problem(seed, n, k)
    n_rows = X.shape[0]
    ref = _reference_sums(X, codes, k)
    with pytest.MonkeyPatch.context() as mp:
        _small_tiles(mp, rows, cols)
        full = kernels.symmetric_sums(X, sq, codes, bounds, 10**6)
        start, stop = n_rows // 3, n_rows - n_rows // 4
        part = kernels.row_sums(X, sq, codes, bounds, start, stop, 10**6)
    np.testing.assert_allclose(full, ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(part, ref[:, start:stop], rtol=1e-12, atol=1e-12)


@needs_numba
def test_kernel_distance_of_a_row_to_itself_and_to_its_copy_is_exactly_zero() -> None:
    # Integer coordinates: the expansion is exact, so distances between copies are 0 and
    # must not pick up a row's own rounding error either.
    X = np.array([[3.0, 4.0], [3.0, 4.0], [3.0, 4.0], [0.0, 0.0], [0.0, 0.0]])
    codes = np.array([0, 0, 1, 1, 1], dtype=np.intp)
    bounds = np.array([0, 2, 5], dtype=np.intp)
    sq = np.einsum("ij,ij->i", X, X)
    expected = np.array([[0.0, 0.0, 0.0, 10.0, 10.0], [10.0, 10.0, 10.0, 5.0, 5.0]])
    np.testing.assert_array_equal(kernels.symmetric_sums(X, sq, codes, bounds, 4), expected)
    np.testing.assert_array_equal(kernels.row_sums(X, sq, codes, bounds, 1, 4, 4), expected[:, 1:4])


@needs_numba
@pytest.mark.parametrize("layout", ["rows one at a time", "row blocks", "all sums"])
@pytest.mark.parametrize(("n", "small_tiles"), [(31, True), (301, True), (2100, False)])
def test_kernel_path_matches_numpy_path_and_sklearn(
    monkeypatch: pytest.MonkeyPatch, layout: str, n: int, small_tiles: bool
) -> None:
    # Odd sizes across tile and panel edges (2100 rows: 4 panels of 525 rows, tiles of
    # 64 × 1024), clusters smaller than a tile or a panel, a singleton (row 0).
    if small_tiles:
        _small_tiles(monkeypatch)
    X, labels = _data(n, n=n, k=5)
    sums_bytes = 8 * n * 6  # 6 clusters with the singleton
    chunk_bytes = {"rows one at a time": 8 * 6, "row blocks": sums_bytes // 3}.get(
        layout, sums_bytes
    )
    got = _samples(X, labels, "euclidean", chunk_bytes, {}, use_numba=True)
    numpy = _samples(X, labels, "euclidean", chunk_bytes, {}, use_numba=False)
    np.testing.assert_allclose(got, numpy, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got, sk_samples(X, labels), rtol=1e-10, atol=1e-12)
    assert got[0] == 0.0


@pytest.mark.parametrize("use_numba", [False, True])
@pytest.mark.parametrize("chunk_bytes", [8 * 3, 8 * 8 * 3])  # row blocks, all sums
def test_copies_of_rows_are_at_distance_zero_like_sklearn(
    monkeypatch: pytest.MonkeyPatch, use_numba: bool, chunk_bytes: int
) -> None:
    # Eight integer rows: the mean and the centred rows are exact, so are the expansions,
    # and copies are at distance 0 (clusters 0 and 1 hold the same point: a = b = 0).
    _small_tiles(monkeypatch, 3, 2)
    X = np.array([[1, 2], [1, 2], [1, 2], [1, 2], [1, 2], [4, 6], [4, 6], [0, 7]], float)
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    got = _samples(X, labels, "euclidean", chunk_bytes, {}, use_numba=use_numba)
    np.testing.assert_allclose(got, sk_samples(X, labels), rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(got[:5], 0.0)


@needs_numba
@pytest.mark.parametrize("chunk_bytes", [DEFAULT_CHUNK_BYTES, 8 * 200 * 7])  # all sums, blocks
def test_kernel_result_does_not_depend_on_the_thread_count(
    monkeypatch: pytest.MonkeyPatch, chunk_bytes: int
) -> None:
    # The parallel implementation is the same as the serial one, to the last bit: 16
    # panels of 37-38 rows, each an odd number of 5 × 7 tiles, in rounds of 8 tasks.
    _small_tiles(monkeypatch)
    X, labels = _data(4, n=600, k=6)  # 7 clusters with the singleton
    results = []
    for threads in (1, 2):
        monkeypatch.setattr(data_module, "MAX_THREADS", threads)
        results.append(_samples(X, labels, "euclidean", chunk_bytes, {}, use_numba=True))
    np.testing.assert_array_equal(results[0], results[1])


def test_no_features_give_zero_like_every_distance() -> None:
    X = np.zeros((5, 0))
    for use_numba in (False, True):
        got = _samples(
            X, [0, 0, 1, 1, 1], "euclidean", DEFAULT_CHUNK_BYTES, {}, use_numba=use_numba
        )
        np.testing.assert_array_equal(got, np.zeros(5))


def test_works_without_numba() -> None:
    # Numba is optional: with it hidden, the NumPy path gives scikit-learn's answer.
    code = (
        "import sys; sys.modules['numba'] = None\n"
        "import numpy as np\n"
        "from latentmix.cluster import _silhouette_kernels, silhouette_samples\n"
        "from sklearn.metrics import silhouette_samples as sk\n"
        "assert not _silhouette_kernels.HAVE_NUMBA\n"
        "rng = np.random.RandomState(0)\n"
        "X, labels = rng.randn(200, 3), rng.randint(4, size=200)\n"
        "for chunk in (8 * 50, 2**20):\n"
        "    got = silhouette_samples(X, labels, chunk_bytes=chunk)\n"
        "    assert np.allclose(got, sk(X, labels), rtol=1e-10, atol=1e-12)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    "n_rows", [silhouette_mod.NUMBA_MIN_ROWS - 1, silhouette_mod.NUMBA_MIN_ROWS]
)
def test_small_inputs_stay_in_numpy(monkeypatch: pytest.MonkeyPatch, n_rows: int) -> None:
    """Below NUMBA_MIN_ROWS rows the kernel (and its first compilation) is not used."""
    seen: list[bool] = []
    real = silhouette_mod._samples

    def spy(*args: Any, use_numba: bool) -> Any:
        seen.append(use_numba)
        return real(*args, use_numba=use_numba)

    monkeypatch.setattr(silhouette_mod, "_samples", spy)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n_rows, 2))
    labels = rng.integers(0, 3, size=n_rows)
    got = silhouette_samples(X, labels)
    assert seen == [kernels.HAVE_NUMBA and n_rows >= silhouette_mod.NUMBA_MIN_ROWS]
    np.testing.assert_allclose(got, sk_samples(X, labels), rtol=1e-10, atol=1e-12)
