"""Silhouette coefficient against scikit-learn, over metrics and both block layouts."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import cdist
from sklearn.metrics import silhouette_samples as sk_samples
from sklearn.metrics import silhouette_score as sk_score

from latentmix.cluster import silhouette_samples, silhouette_score

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
