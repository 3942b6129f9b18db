"""VAE estimator: shapes, dtypes, bounds, determinism, errors, missing values, likelihoods."""

from __future__ import annotations

import logging
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from latentmix.vae import VAE, ConditionalVAE  # noqa: E402

from .conftest import make_patterns  # noqa: E402


def test_import_latentmix_does_not_import_torch() -> None:
    code = "import sys, latentmix, latentmix.mixture._bernoulli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_shapes_and_dtypes(fitted_vae: VAE, patterns: tuple[np.ndarray, np.ndarray]) -> None:
    X, _ = patterns
    n, d = X[:7].shape
    mean, log_var = fitted_vae.encode(X[:7])
    assert mean.shape == log_var.shape == (n, 2)
    outputs = {
        "transform": (fitted_vae.transform(X[:7]), (n, 2)),
        "decode": (fitted_vae.decode(mean), (n, d)),
        "inverse_transform": (fitted_vae.inverse_transform(mean), (n, d)),
        "reconstruct": (fitted_vae.reconstruct(X[:7]), (n, d)),
        "sample": (fitted_vae.sample(5, random_state=0), (5, d)),
        "elbo": (fitted_vae.elbo(X[:7]), (n,)),
        "score_samples": (fitted_vae.score_samples(X[:7], n_importance=10), (n,)),
    }
    for kind in ("elbo", "iwae", "reconstruction", "kl"):
        outputs[kind] = (fitted_vae.anomaly_score(X[:7], kind=kind, n_importance=10), (n,))
    for name, (value, shape) in outputs.items():
        assert value.shape == shape, name
        assert value.dtype == np.float64, name
        assert np.all(np.isfinite(value)), name
    probs = fitted_vae.decode(mean)
    assert probs.min() >= 0 and probs.max() <= 1
    binary = fitted_vae.sample(20, random_state=0, noise=True)
    assert set(np.unique(binary)) <= {0.0, 1.0}
    assert isinstance(fitted_vae.score(X[:7], n_importance=10), float)
    # float32 input gives the same results
    np.testing.assert_allclose(
        fitted_vae.transform(X[:7].astype(np.float32)), fitted_vae.transform(X[:7])
    )


def test_training_reduces_the_loss_and_learns_the_data(
    fitted_vae: VAE, patterns: tuple[np.ndarray, np.ndarray]
) -> None:
    X, _ = patterns
    assert fitted_vae.n_iter_ == len(fitted_vae.loss_curve_) == 40
    assert fitted_vae.loss_curve_[-1] < 0.7 * fitted_vae.loss_curve_[0]
    # Three prototypes with 5 % flips: ~3.6 nats of flips + log 3 ≈ 4.7 nats per row
    # at best; 16 fair coins would be 11.1.
    assert fitted_vae.score(X, n_importance=50) > -7.0
    accuracy = np.mean((fitted_vae.reconstruct(X) > 0.5) == X)
    assert accuracy > 0.9


def test_iwae_is_at_least_the_elbo_and_grows_with_n_importance(
    fitted_vae: VAE, patterns: tuple[np.ndarray, np.ndarray]
) -> None:
    X, _ = patterns
    elbo = fitted_vae.elbo(X, random_state=1).mean()
    bounds = [fitted_vae.score(X, n_importance=k) for k in (1, 10, 100)]
    # K = 1 is an unbiased estimate of the ELBO itself.
    assert abs(bounds[0] - elbo) < 0.25
    assert bounds[0] < bounds[1] < bounds[2]
    assert bounds[1] > elbo


def test_deterministic_given_random_state(patterns: tuple[np.ndarray, np.ndarray]) -> None:
    X, _ = patterns
    kwargs = dict(latent_dim=2, hidden_dims=(8,), epochs=3, batch_size=64)
    a = VAE(random_state=3, **kwargs).fit(X)
    torch.manual_seed(123)  # the global seed must not matter
    b = VAE(random_state=3, **kwargs).fit(X)
    c = VAE(random_state=4, **kwargs).fit(X)
    assert a.loss_curve_ == b.loss_curve_
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    np.testing.assert_array_equal(a.score_samples(X[:5]), b.score_samples(X[:5]))
    np.testing.assert_array_equal(a.sample(3, random_state=0), b.sample(3, random_state=0))
    assert a.loss_curve_ != c.loss_curve_


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(latent_dim=0), "latent_dim"),
        (dict(likelihood="poisson"), "likelihood"),
        (dict(hidden_dims=(8, -1)), "hidden_dims"),
        (dict(image_shape=(3, 3)), "image_shape"),
        (dict(early_stopping=True, validation_fraction=0.0), "validation_fraction"),
        (dict(gaussian_std=-1.0), "gaussian_std"),
        (dict(validation_fraction=1.0), "validation_fraction"),
    ],
)
def test_bad_parameters_raise(kwargs: dict, message: str) -> None:
    X, _ = make_patterns(40)
    with pytest.raises(ValueError, match=message):
        VAE(epochs=1, **kwargs).fit(X)


def test_bad_inputs_raise(fitted_vae: VAE) -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        VAE(epochs=1).fit(np.array([[0.0, 2.0], [1.0, 0.5]]))
    with pytest.raises(ValueError, match="features"):
        fitted_vae.transform(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="infinity"):
        fitted_vae.transform(np.full((1, 16), np.inf))
    with pytest.raises(ValueError, match="latent_dim"):
        fitted_vae.decode(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="NaN"):
        fitted_vae.decode(np.full((1, 2), np.nan))
    with pytest.raises(ValueError, match="ConditionalVAE"):
        fitted_vae.transform(np.zeros((2, 16)), y=[0, 1])
    with pytest.raises(ValueError, match="kind"):
        fitted_vae.anomaly_score(np.zeros((2, 16)), kind="mahalanobis")
    with pytest.raises(ValueError, match="fit_latent_mixture"):
        fitted_vae.predict(np.zeros((2, 16)))
    with pytest.raises(ValueError, match="n_importance"):
        fitted_vae.score_samples(np.zeros((2, 16)), n_importance=0)
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        VAE().transform(np.zeros((2, 16)))


def test_gaussian_likelihood_learns_the_noise_scale() -> None:
    rng = np.random.RandomState(0)
    Z = rng.randn(400, 1)
    X = np.hstack([Z, -Z, 2 * Z]) + 0.1 * rng.randn(400, 3)
    kwargs = dict(
        latent_dim=1,
        hidden_dims=(16,),
        likelihood="gaussian",
        epochs=60,
        batch_size=32,
        learning_rate=5e-3,
    )
    learned = VAE(random_state=0, **kwargs).fit(X)
    std = np.exp(learned.module_.log_std.detach().numpy())
    assert np.all(std < 0.5)  # started at 1; the true noise is 0.1
    fixed = VAE(random_state=0, gaussian_std=0.5, **kwargs).fit(X)
    np.testing.assert_allclose(np.exp(fixed.module_.log_std.numpy()), 0.5, rtol=1e-6)
    # Real-valued data outside [0, 1] is fine for the Gaussian likelihood.
    assert learned.score(X[:50], n_importance=20) > fixed.score(X[:50], n_importance=20)


def test_early_stopping_stops_and_keeps_the_best_epoch(
    patterns: tuple[np.ndarray, np.ndarray],
) -> None:
    X, _ = patterns
    vae = VAE(
        latent_dim=2,
        hidden_dims=(8,),
        epochs=200,
        learning_rate=0.1,  # large steps: the validation ELBO soon stops improving
        early_stopping=True,
        n_iter_no_change=3,
        random_state=0,
    ).fit(X)
    assert vae.n_iter_ < 200
    assert len(vae.validation_scores_) == vae.n_iter_
    assert vae.best_validation_score_ == max(vae.validation_scores_)
    # The best epoch is within the last n_iter_no_change + 1 epochs (tol may move it later).
    assert int(np.argmax(vae.validation_scores_)) >= vae.n_iter_ - 4


def test_validation_split_without_early_stopping(patterns: tuple[np.ndarray, np.ndarray]) -> None:
    X, _ = patterns
    vae = VAE(hidden_dims=(8,), epochs=2, validation_fraction=0.2, random_state=0).fit(X)
    assert len(vae.validation_scores_) == 2
    assert VAE(hidden_dims=(8,), epochs=1, random_state=0).fit(X).validation_scores_ is None


def test_verbose_logs_one_line_per_epoch_when_not_a_terminal(
    patterns: tuple[np.ndarray, np.ndarray], caplog: pytest.LogCaptureFixture
) -> None:
    X, _ = patterns
    with caplog.at_level(logging.INFO, logger="latentmix"):
        VAE(hidden_dims=(8,), epochs=2, verbose=1, random_state=0).fit(X)
    epochs = [r for r in caplog.records if "train loss" in r.getMessage()]
    assert len(epochs) == 2
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="latentmix"):
        VAE(hidden_dims=(8,), epochs=2, verbose=0, random_state=0).fit(X)
    assert not [r for r in caplog.records if "train loss" in r.getMessage()]


def test_missing_values_masked_likelihood_and_impute(
    fitted_vae: VAE, patterns: tuple[np.ndarray, np.ndarray]
) -> None:
    X, _ = patterns
    rng = np.random.RandomState(0)
    X_missing = X.copy()
    hole = rng.rand(*X.shape) < 0.2
    X_missing[hole] = np.nan
    # The masked ELBO runs over fewer terms, each a log-probability ≤ 0: it is larger.
    assert fitted_vae.score(X_missing, n_importance=20) > fitted_vae.score(X, n_importance=20)
    filled = fitted_vae.impute(X_missing, n_importance=50)
    assert not np.isnan(filled).any()
    np.testing.assert_array_equal(filled[~hole], X[~hole])
    accuracy = np.mean((filled[hole] > 0.5) == X[hole])
    column_mean = np.mean((np.nanmean(X_missing, axis=0) > 0.5)[np.nonzero(hole)[1]] == X[hole])
    assert accuracy > 0.9 > column_mean
    np.testing.assert_array_equal(fitted_vae.impute(X[:3]), X[:3])


def test_fit_with_missing_values(patterns: tuple[np.ndarray, np.ndarray]) -> None:
    X, _ = patterns
    X_missing = X.copy()
    X_missing[np.random.RandomState(1).rand(*X.shape) < 0.3] = np.nan
    vae = VAE(latent_dim=2, hidden_dims=(32,), epochs=40, batch_size=32, random_state=0)
    vae.fit(X_missing)
    assert np.all(np.isfinite(vae.loss_curve_))
    assert np.mean((vae.reconstruct(X) > 0.5) == X) > 0.85


def test_anomaly_scores_rank_outliers_first(
    fitted_vae: VAE, patterns: tuple[np.ndarray, np.ndarray]
) -> None:
    X, _ = patterns
    outliers = (np.random.RandomState(5).rand(30, 16) > 0.5).astype(float)
    for kind in ("elbo", "iwae", "reconstruction"):
        inlier = fitted_vae.anomaly_score(X[:100], kind=kind, n_importance=20)
        outlier = fitted_vae.anomaly_score(outliers, kind=kind, n_importance=20)
        assert np.median(outlier) > np.quantile(inlier, 0.9), kind


def test_convolutional_networks_on_images() -> None:
    from sklearn.datasets import load_digits

    X = (load_digits().data[:200] > 7).astype(np.float64)
    vae = VAE(latent_dim=4, hidden_dims=(32,), image_shape=(8, 8), epochs=3, random_state=0)
    vae.fit(X)
    assert any(isinstance(m, torch.nn.Conv2d) for m in vae.module_.modules())
    assert vae.reconstruct(X[:5]).shape == (5, 64)
    assert vae.sample(4, random_state=0).shape == (4, 64)
    assert vae.score_samples(X[:5], n_importance=7).shape == (5,)
    odd = VAE(latent_dim=2, hidden_dims=(8,), image_shape=(1, 5, 3), epochs=1, random_state=0)
    assert odd.fit(np.random.RandomState(0).rand(20, 15)).reconstruct(np.zeros((2, 15))).shape == (
        2,
        15,
    )


def test_latent_mixture_sampling_and_clustering(
    fitted_vae: VAE, patterns: tuple[np.ndarray, np.ndarray]
) -> None:
    pytest.importorskip("latentmix.mixture._gaussian_mixture")
    from sklearn.metrics import adjusted_rand_score

    X, labels = patterns
    fitted_vae.fit_latent_mixture(3, random_state=0)
    assert adjusted_rand_score(labels, fitted_vae.predict(X)) > 0.9
    assert fitted_vae.predict_proba(X[:4]).shape == (4, 3)
    a = fitted_vae.sample(50, prior="mixture", random_state=0)
    b = fitted_vae.sample(50, prior="mixture", random_state=0)
    np.testing.assert_array_equal(a, b)
    # Samples from the latent mixture look like the prototypes: sharp probabilities.
    assert np.mean(np.abs(a - 0.5)) > 0.35
    fitted_vae.latent_mixture_ = None


def test_conditional_vae(patterns: tuple[np.ndarray, np.ndarray]) -> None:
    X, labels = patterns
    names = np.array(["a", "b", "c"])[labels]
    cvae = ConditionalVAE(latent_dim=2, hidden_dims=(32,), epochs=30, batch_size=32, random_state=0)
    cvae.fit(X, names)
    np.testing.assert_array_equal(cvae.classes_, ["a", "b", "c"])
    assert cvae.transform(X[:5], names[:5]).shape == (5, 2)
    # Generating a class gives that class's prototype.
    for label in range(3):
        prototype = X[labels == label].mean(0) > 0.5
        generated = cvae.sample(20, y=names[labels == label][0], random_state=0)
        assert np.mean((generated > 0.5) == prototype) > 0.9
    # The right label explains a row better than a wrong one.
    right = cvae.score_samples(X[:50], names[:50], n_importance=20)
    wrong = cvae.score_samples(
        X[:50], np.roll(np.array(["a", "b", "c"]), 1)[labels[:50]], n_importance=20
    )
    assert np.mean(right > wrong) > 0.9
    assert cvae.anomaly_score(X[:4], names[:4], kind="kl").shape == (4,)
    with pytest.raises(ValueError, match="labels"):
        ConditionalVAE(epochs=1).fit(X)
    with pytest.raises(ValueError, match="labels y"):
        cvae.transform(X[:3])
    with pytest.raises(ValueError, match="not seen"):
        cvae.transform(X[:2], ["a", "z"])
    with pytest.raises(ValueError, match="one label per row"):
        cvae.transform(X[:3], ["a", "b"])
    with pytest.raises(ValueError, match="labels y"):
        cvae.sample(3)


def test_progress_bar_on_a_terminal(
    patterns: tuple[np.ndarray, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    from latentmix.vae import _train

    X, _ = patterns
    monkeypatch.setattr(_train.sys.stderr, "isatty", lambda: True)
    config = _train.TrainConfig(1, 32, 1e-3, 1.0, "bernoulli", False, 1, 0.0, 1, "", 0)
    assert _train._make_progress(config) is not None
    assert _train._make_progress(_train.TrainConfig(**{**config.__dict__, "verbose": 0})) is None
    vae = VAE(hidden_dims=(8,), epochs=2, verbose=1, random_state=0).fit(X)
    quiet = VAE(hidden_dims=(8,), epochs=2, verbose=0, random_state=0).fit(X)
    assert vae.loss_curve_ == quiet.loss_curve_  # the bar changes nothing else
