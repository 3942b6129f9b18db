"""scikit-learn's estimator contract, checked by scikit-learn itself."""

from __future__ import annotations

from sklearn.utils.estimator_checks import parametrize_with_checks

from latentmix import GaussianMixture
from latentmix.gaussian import COVARIANCE_TYPES

# The one check we cannot pass, and why: it compares a fit on weighted rows with a fit on
# repeated rows from the same seed, but the (k-means) initialisation draws rows at random,
# so the two fits start from different points. From the same start, weighting equals
# repetition exactly: tests/mixture/test_gaussian_mixture.py::test_weight_two_equals_duplicating_the_row.
EXPECTED = {
    "check_sample_weight_equivalence_on_dense_data": (
        "random initialisation draws rows, so weighted and repeated data start differently"
    )
}


@parametrize_with_checks(
    [GaussianMixture(random_state=0)]
    + [
        GaussianMixture(n_components=2, covariance_type=ct, random_state=0)
        for ct in COVARIANCE_TYPES
    ],
    expected_failed_checks=lambda est: EXPECTED if est.n_components > 1 else {},
)
def test_sklearn_compatible(estimator, check) -> None:  # type: ignore[no-untyped-def]
    check(estimator)
