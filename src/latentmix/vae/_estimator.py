"""The estimator facade: :class:`VAE` and :class:`ConditionalVAE` with scikit-learn's contract.

A VAE is a mixture of infinitely many Gaussians (or Bernoullis), p(x) = ∫ p(x | z) p(z) dz:
the decoder gives p(x | z), the encoder the variational posterior q(z | x), and training
maximises the ELBO E_q[log p(x | z)] − β KL(q(z | x) ‖ p(z)) with the reparameterisation
trick. Everything the networks do is in :mod:`latentmix.vae._modules`, the bounds in
:mod:`latentmix.vae._losses` and the loop in :mod:`latentmix.vae._train`; this module only
validates, converts between NumPy and torch, and batches.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections.abc import Callable, Sequence
from numbers import Integral
from typing import Any, ClassVar

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted, validate_data

from latentmix._exceptions import ModelFileError
from latentmix._param_validation import (
    ArrayLike as ArrayLikeC,
)
from latentmix._param_validation import (
    Boolean,
    Constraint,
    Interval,
    NoneOr,
    Options,
    RandomStateLike,
    validate_params,
)
from latentmix._validation import check_finite, check_random_state
from latentmix.vae._losses import (
    gaussian_kl,
    log_likelihood,
    log_normal,
    log_standard_normal,
)
from latentmix.vae._modules import VAENet, init_weights
from latentmix.vae._train import TrainConfig, TrainData, train

__all__ = ["VAE", "ConditionalVAE"]

logger = logging.getLogger("latentmix")

_FLOAT_DTYPES = (np.float64, np.float32)
_ROWS_PER_BATCH = 1024
# Numbers per importance-sampling chunk (samples × rows × features): bounds the memory of
# score_samples and impute whatever n_importance is.
_IMPORTANCE_ELEMENTS = 1 << 22
_MODEL_FORMAT = 1
_ANOMALY_KINDS = ("elbo", "iwae", "reconstruction", "kl")


def _torch_seed(random_state: np.random.RandomState) -> int:
    return int(random_state.randint(0, 2**31 - 1))


class _PathLike(Constraint):
    def is_satisfied_by(self, value: Any) -> bool:
        return isinstance(value, str | os.PathLike)

    def describe(self) -> str:
        return "a str or path"


class _BaseVAE(BaseEstimator):
    """Shared implementation; use :class:`VAE` or :class:`ConditionalVAE`."""

    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        "latent_dim": [Interval(int, 1, None)],
        "hidden_dims": [ArrayLikeC],
        "likelihood": [Options(("bernoulli", "gaussian"))],
        "gaussian_std": [Options(("learned",)), Interval(float, 0.0, None, "neither")],
        "beta": [Interval(float, 0.0, None)],
        "image_shape": [NoneOr(ArrayLikeC)],
        "epochs": [Interval(int, 0, None)],
        "batch_size": [Interval(int, 1, None)],
        "learning_rate": [Interval(float, 0.0, None, "neither")],
        "validation_fraction": [NoneOr(Interval(float, 0.0, 1.0, "left"))],
        "early_stopping": [Boolean],
        "n_iter_no_change": [Interval(int, 1, None)],
        "tol": [Interval(float, 0.0, None)],
        "random_state": [RandomStateLike],
        "checkpoint_dir": [NoneOr(_PathLike())],
        "verbose": [Interval(int, 0, None)],
    }

    _conditional: ClassVar[bool] = False

    def __init__(
        self,
        latent_dim: int = 8,
        *,
        hidden_dims: Sequence[int] = (128, 128),
        likelihood: str = "bernoulli",
        gaussian_std: float | str = "learned",
        beta: float = 1.0,
        image_shape: Sequence[int] | None = None,
        epochs: int = 50,
        batch_size: int = 128,
        learning_rate: float = 1e-3,
        validation_fraction: float | None = None,
        early_stopping: bool = False,
        n_iter_no_change: int = 10,
        tol: float = 1e-4,
        random_state: int | np.random.RandomState | None = None,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        verbose: int = 0,
    ) -> None:
        self.latent_dim = latent_dim
        self.hidden_dims = hidden_dims
        self.likelihood = likelihood
        self.gaussian_std = gaussian_std
        self.beta = beta
        self.image_shape = image_shape
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.random_state = random_state
        self.checkpoint_dir = checkpoint_dir
        self.verbose = verbose

    # ------------------------------------------------------------------ validation

    def _hidden_dims(self) -> tuple[int, ...]:
        dims = tuple(self.hidden_dims)
        if not all(isinstance(d, Integral) and not isinstance(d, bool) and d > 0 for d in dims):
            raise ValueError(
                f"hidden_dims must be a sequence of positive integers, got {self.hidden_dims!r}."
            )
        return tuple(int(d) for d in dims)

    def _image_shape(self, n_features: int) -> tuple[int, int, int] | None:
        if self.image_shape is None:
            return None
        shape = tuple(int(s) for s in self.image_shape)
        if len(shape) == 2:
            shape = (1, *shape)
        if len(shape) != 3 or min(shape) < 1:
            raise ValueError(
                f"image_shape must be (height, width) or (channels, height, width), got "
                f"{self.image_shape!r}."
            )
        if math.prod(shape) != n_features:
            raise ValueError(
                f"image_shape {self.image_shape!r} holds {math.prod(shape)} values per image but "
                f"X has {n_features} features. Flatten each image to one row of X."
            )
        return shape  # type: ignore[return-value]

    def _check_values(self, X: NDArray[np.floating[Any]], allow_nan: bool = True) -> None:
        check_finite(X, allow_nan=allow_nan)
        if self.likelihood == "bernoulli" and X.size:
            # fmin/fmax skip NaN (missing entries) without copying the observed ones out.
            low, high = np.fmin.reduce(X, axis=None), np.fmax.reduce(X, axis=None)
            if low < 0 or high > 1:
                raise ValueError(
                    'likelihood="bernoulli" needs data in [0, 1] (binary, or intensities '
                    f"scaled to [0, 1]), but X ranges over [{low:g}, {high:g}]. Rescale X "
                    'or use likelihood="gaussian".'
                )

    def _validate_X(self, X: ArrayLike, *, reset: bool) -> NDArray[np.floating[Any]]:
        if not reset:
            check_is_fitted(self)
        Xv = validate_data(
            self, X, reset=reset, dtype=_FLOAT_DTYPES, ensure_2d=True, ensure_all_finite=False
        )
        Xv = np.asarray(Xv)
        self._check_values(Xv)
        return Xv

    def _labels(self, y: ArrayLike | None, n_rows: int) -> torch.Tensor | None:
        """One-hot labels as a float32 tensor (None for the unconditional model)."""
        if not self._conditional:
            if y is not None:
                raise ValueError(
                    "VAE is unconditional and takes no labels y; use ConditionalVAE to "
                    "condition on labels."
                )
            return None
        if y is None:
            raise ValueError(
                "ConditionalVAE needs the labels y (one per row of X, or one per sample "
                "for sample()); pass y=..."
            )
        y_arr = np.asarray(y)
        if y_arr.ndim == 0:
            y_arr = np.full(n_rows, y_arr.item())
        if y_arr.ndim != 1 or y_arr.shape[0] != n_rows:
            raise ValueError(
                f"y must hold one label per row: expected shape ({n_rows},), got {y_arr.shape}."
            )
        classes: NDArray[Any] = self.classes_
        index = np.searchsorted(classes, y_arr)
        index = np.clip(index, 0, len(classes) - 1)
        unknown = classes[index] != y_arr
        if np.any(unknown):
            raise ValueError(
                f"y contains labels not seen in fit: {np.unique(y_arr[unknown])[:5].tolist()}; "
                f"the known classes are {classes.tolist()}."
            )
        onehot = np.zeros((n_rows, len(classes)), dtype=np.float32)
        onehot[np.arange(n_rows), index] = 1.0
        return torch.from_numpy(onehot)

    @staticmethod
    def _as_tensors(X: NDArray[np.floating[Any]]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """float32 rows with missing entries set to 0, and the observed mask when any is missing."""
        missing = np.isnan(X)
        if missing.any():
            Xf = np.where(missing, 0.0, X).astype(np.float32)
            return torch.from_numpy(Xf), torch.from_numpy(~missing)
        return torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32)), None

    # ------------------------------------------------------------------ fit

    def _fit(self, X: ArrayLike, y: ArrayLike | None, resume: bool) -> _BaseVAE:
        validate_params(self, self._parameter_constraints)
        Xv = self._validate_X(X, reset=True)
        n_samples, n_features = Xv.shape
        hidden_dims = self._hidden_dims()
        image_shape = self._image_shape(n_features)
        if self._conditional:
            if y is None:
                raise ValueError("ConditionalVAE.fit needs the labels: call fit(X, y).")
            y_arr = np.asarray(y)
            if y_arr.ndim != 1 or y_arr.shape[0] != n_samples:
                raise ValueError(
                    f"y must be 1-D with one label per row of X: expected ({n_samples},), "
                    f"got {y_arr.shape}."
                )
            self.classes_, counts = np.unique(y_arr, return_counts=True)
            self.class_prior_ = counts / n_samples
        Y = self._labels(y if self._conditional else None, n_samples)

        fraction = self.validation_fraction
        if fraction is None:
            fraction = 0.1 if self.early_stopping else 0.0
        if self.early_stopping and fraction == 0:
            raise ValueError("early_stopping=True needs validation_fraction > 0.")
        rng = check_random_state(self.random_state)
        seed = _torch_seed(rng)
        validation_seed = _torch_seed(rng)
        n_val = round(fraction * n_samples) if fraction > 0 else 0
        if fraction > 0:
            n_val = max(n_val, 1)
            if n_val >= n_samples:
                raise ValueError(
                    f"validation_fraction={fraction} leaves no training rows out of "
                    f"{n_samples}; lower it or provide more rows."
                )
        order = rng.permutation(n_samples) if n_val else np.arange(n_samples)

        Xt, mask = self._as_tensors(Xv)
        full = TrainData(Xt, mask, Y)
        train_idx = torch.from_numpy(order[n_val:])
        train_data = TrainData(*full.rows(train_idx)) if n_val else full
        validation = TrainData(*full.rows(torch.from_numpy(order[:n_val]))) if n_val else None

        generator = torch.Generator().manual_seed(seed)
        net = self._build_net(n_features, hidden_dims, image_shape)
        init_weights(net, generator)
        config = TrainConfig(
            epochs=int(self.epochs),
            batch_size=int(self.batch_size),
            learning_rate=float(self.learning_rate),
            beta=float(self.beta),
            likelihood=self.likelihood,
            early_stopping=bool(self.early_stopping),
            n_iter_no_change=int(self.n_iter_no_change),
            tol=float(self.tol),
            verbose=int(self.verbose),
            # Hashing the data costs a pass over it: only when checkpoints are kept.
            fingerprint="" if self.checkpoint_dir is None else self._fingerprint(Xv, y),
            validation_seed=validation_seed,
        )
        state = train(
            net,
            train_data,
            validation,
            config,
            generator,
            checkpoint_dir=self.checkpoint_dir,
            resume=resume,
        )
        net.eval()
        self.module_ = net
        self.n_iter_ = state.epoch
        self.loss_curve_ = list(state.train_loss)
        self.validation_scores_ = list(state.validation_elbo) if validation is not None else None
        self.best_validation_score_ = state.best_score if validation is not None else None
        self._inference_seed = _torch_seed(rng)
        # Posterior means of the training rows, for fit_latent_mixture.
        self.latent_codes_ = self._map_batches(
            lambda x, m, yb: self.module_.encoder(x, yb)[0], Xt, mask, Y
        )
        self.latent_mixture_: Any = None
        return self

    def _build_net(
        self,
        n_features: int,
        hidden_dims: tuple[int, ...],
        image_shape: tuple[int, int, int] | None,
    ) -> VAENet:
        return VAENet(
            n_features,
            int(self.latent_dim),
            hidden_dims,
            likelihood=self.likelihood,
            gaussian_std=self.gaussian_std,
            n_classes=len(self.classes_) if self._conditional else 0,
            image_shape=image_shape,
        )

    def _fingerprint(self, X: NDArray[Any], y: ArrayLike | None) -> str:
        """What a checkpoint must match to be resumed: the data and every training parameter."""
        params = {
            k: v
            for k, v in self.get_params().items()
            if k not in {"epochs", "verbose", "checkpoint_dir"}
        }
        digest = hashlib.sha256()
        digest.update(type(self).__name__.encode())
        digest.update(json.dumps(params, sort_keys=True, default=repr).encode())
        digest.update(str(X.shape).encode())
        digest.update(np.ascontiguousarray(X).tobytes())
        if y is not None:
            digest.update(np.asarray(y).astype(str).tobytes())
        return digest.hexdigest()

    # ------------------------------------------------------------------ batching

    def _generator(self, random_state: Any) -> torch.Generator:
        if random_state is None:
            if self.random_state is None:
                return torch.Generator().manual_seed(_torch_seed(check_random_state(None)))
            return torch.Generator().manual_seed(self._inference_seed)
        return torch.Generator().manual_seed(_torch_seed(check_random_state(random_state)))

    @torch.no_grad()
    def _map_batches(
        self,
        fn: Callable[[torch.Tensor, torch.Tensor | None, torch.Tensor | None], Any],
        X: torch.Tensor,
        mask: torch.Tensor | None,
        Y: torch.Tensor | None,
        rows: int = _ROWS_PER_BATCH,
    ) -> Any:
        """Apply ``fn`` to row batches and concatenate the results (tensors or tuples) as float64."""
        self.module_.eval()
        parts = []
        data = TrainData(X, mask, Y)
        for start in range(0, len(data), rows):
            parts.append(fn(*data.rows(slice(start, start + rows))))
        if not parts:
            raise ValueError("X has no rows.")
        if isinstance(parts[0], tuple):
            return tuple(
                torch.cat([p[i] for p in parts]).double().numpy() for i in range(len(parts[0]))
            )
        return torch.cat(parts).double().numpy()

    def _inputs(
        self, X: ArrayLike, y: ArrayLike | None
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        Xv = self._validate_X(X, reset=False)
        Xt, mask = self._as_tensors(Xv)
        return Xt, mask, self._labels(y, Xv.shape[0])

    def _mean(self, out: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(out) if self.likelihood == "bernoulli" else out

    # ------------------------------------------------------------------ latent space

    def encode(
        self, X: ArrayLike, y: ArrayLike | None = None
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Mean and log-variance of the approximate posterior q(z | x) for each row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows; NaN marks a missing entry (the encoder sees it as 0).
        y : array-like of shape (n_samples,), optional
            Labels, for :class:`ConditionalVAE` only.

        Returns
        -------
        mean, log_var : ndarray of shape (n_samples, latent_dim)
        """
        Xt, mask, Y = self._inputs(X, y)
        return self._map_batches(lambda x, m, yb: self.module_.encoder(x, yb), Xt, mask, Y)  # type: ignore[no-any-return]

    def transform(self, X: ArrayLike, y: ArrayLike | None = None) -> NDArray[np.float64]:
        """Latent codes: the posterior means E_q[z | x], of shape (n_samples, latent_dim)."""
        return self.encode(X, y)[0]

    def decode(self, Z: ArrayLike, y: ArrayLike | None = None) -> NDArray[np.float64]:
        """Mean of p(x | z) for each latent row: probabilities (Bernoulli) or means (Gaussian).

        Parameters
        ----------
        Z : array-like of shape (n_samples, latent_dim)
        y : array-like of shape (n_samples,), optional
            Labels, for :class:`ConditionalVAE` only.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        """
        check_is_fitted(self)
        Zv = np.asarray(Z, dtype=np.float64)
        if Zv.ndim != 2 or Zv.shape[1] != self.latent_dim:
            raise ValueError(
                f"Z must have shape (n_samples, latent_dim={self.latent_dim}), got {Zv.shape}."
            )
        check_finite(Zv, name="Z")
        Zt = torch.from_numpy(Zv.astype(np.float32))
        Y = self._labels(y, Zv.shape[0])
        return self._map_batches(  # type: ignore[no-any-return]
            lambda z, m, yb: self._mean(self.module_.decoder(z, yb)), Zt, None, Y
        )

    def inverse_transform(self, Z: ArrayLike, y: ArrayLike | None = None) -> NDArray[np.float64]:
        """Alias of :meth:`decode`: the mean of p(x | z)."""
        return self.decode(Z, y)

    def reconstruct(self, X: ArrayLike, y: ArrayLike | None = None) -> NDArray[np.float64]:
        """Decode the posterior means: the mean of p(x | z = E_q[z | x]) for each row."""
        Xt, mask, Y = self._inputs(X, y)
        return self._map_batches(  # type: ignore[no-any-return]
            lambda x, m, yb: self._mean(self.module_.decoder(self.module_.encoder(x, yb)[0], yb)),
            Xt,
            mask,
            Y,
        )

    def _sample(
        self,
        n_samples: int,
        y: ArrayLike | None,
        prior: str,
        random_state: Any,
        noise: bool,
    ) -> NDArray[np.float64]:
        check_is_fitted(self)
        if not isinstance(n_samples, Integral) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}.")
        if prior not in ("standard", "mixture"):
            raise ValueError(f'prior must be "standard" or "mixture", got {prior!r}.')
        Y = self._labels(y, int(n_samples))
        rng = check_random_state(random_state)
        generator = torch.Generator().manual_seed(_torch_seed(rng))
        if prior == "standard":
            Z = torch.randn((int(n_samples), int(self.latent_dim)), generator=generator)
        else:
            if self.latent_mixture_ is None:
                raise ValueError(
                    'sample(prior="mixture") needs a latent mixture: call '
                    "fit_latent_mixture(n_components) first."
                )
            Zm, _ = self.latent_mixture_.sample(int(n_samples), random_state=rng)
            Z = torch.from_numpy(np.asarray(Zm, dtype=np.float32)[rng.permutation(int(n_samples))])
        with torch.no_grad():
            out = self.module_.decoder(Z, Y)
            mean = self._mean(out)
            if noise:
                if self.likelihood == "bernoulli":
                    mean = torch.bernoulli(mean, generator=generator)
                else:
                    assert self.module_.log_std is not None
                    eps = torch.randn(mean.shape, generator=generator)
                    mean = mean + torch.exp(self.module_.log_std) * eps
        return mean.double().numpy()  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ likelihoods

    def elbo(
        self, X: ArrayLike, y: ArrayLike | None = None, *, random_state: Any = None
    ) -> NDArray[np.float64]:
        """The evidence lower bound per row (β = 1, one sample of z), over observed entries.

        ELBO(x) = E_q[log p(x | z)] − KL(q(z | x) ‖ N(0, I)), a lower bound on log p(x);
        with missing values (NaN) only the observed entries enter log p(x | z).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,), optional
            Labels, for :class:`ConditionalVAE` only.
        random_state : int, RandomState or None
            Seeds the one draw of z per row; None uses the estimator's ``random_state``.

        Returns
        -------
        elbo : ndarray of shape (n_samples,)
        """
        Xt, mask, Y = self._inputs(X, y)
        generator = self._generator(random_state)

        def fn(x: torch.Tensor, m: torch.Tensor | None, yb: torch.Tensor | None) -> torch.Tensor:
            mu, logvar = self.module_.encoder(x, yb)
            eps = torch.randn(mu.shape, generator=generator)
            out = self.module_.decoder(mu + torch.exp(0.5 * logvar) * eps, yb)
            rec = log_likelihood(x, out, self.likelihood, self.module_.log_std, m)
            return rec - gaussian_kl(mu, logvar)

        return self._map_batches(fn, Xt, mask, Y)  # type: ignore[no-any-return]

    def _importance(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None,
        y: torch.Tensor | None,
        n_importance: int,
        generator: torch.Generator,
        impute: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """log (1/K) Σ_k p(x, z_k) / q(z_k | x), z_k ~ q(z | x), chunked over k.

        With ``impute``, also Σ_k w̃_k E[x | z_k] with self-normalised weights w̃ (MIWAE's
        imputation of the missing entries).
        """
        mu, logvar = self.module_.encoder(x, y)
        n, n_features = x.shape
        per_chunk = max(1, _IMPORTANCE_ELEMENTS // max(n * n_features, 1))
        running = torch.full((n,), -math.inf)
        weighted = torch.zeros((n, n_features)) if impute else None
        std = torch.exp(0.5 * logvar)
        for start in range(0, n_importance, per_chunk):
            k = min(per_chunk, n_importance - start)
            z = mu + std * torch.randn((k, *mu.shape), generator=generator)
            out = self.module_.decoder(z, y)
            log_w = (
                log_likelihood(x, out, self.likelihood, self.module_.log_std, mask)
                + log_standard_normal(z)
                - log_normal(z, mu, logvar)
            )
            new = torch.logaddexp(running, torch.logsumexp(log_w, dim=0))
            if weighted is not None:
                scale = torch.exp(running - new).nan_to_num(0.0)
                w = torch.exp(log_w - new)  # (k, n)
                weighted = weighted * scale[:, None] + torch.einsum(
                    "kn,knd->nd", w, self._mean(out)
                )
            running = new
        return running - math.log(n_importance), weighted

    def score_samples(
        self,
        X: ArrayLike,
        y: ArrayLike | None = None,
        *,
        n_importance: int = 100,
        random_state: Any = None,
    ) -> NDArray[np.float64]:
        """Importance-weighted estimate of log p(x) per row (Burda et al. 2015).

        log p(x) ≈ log (1/K) Σ_k p(x | z_k) p(z_k) / q(z_k | x) with z_k ~ q(z | x). The
        estimate is a lower bound in expectation, at least the ELBO, and tightens as
        ``n_importance`` = K grows. For :class:`ConditionalVAE` it estimates log p(x | y).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows; NaN entries are left out (the estimate is then of log p(x_observed)).
        y : array-like of shape (n_samples,), optional
            Labels, for :class:`ConditionalVAE` only.
        n_importance : int, default=100
            Importance samples K per row.
        random_state : int, RandomState or None
            Seeds the draws; None uses the estimator's ``random_state``.

        Returns
        -------
        log_prob : ndarray of shape (n_samples,)
        """
        if not isinstance(n_importance, Integral) or n_importance < 1:
            raise ValueError(f"n_importance must be a positive integer, got {n_importance!r}.")
        Xt, mask, Y = self._inputs(X, y)
        generator = self._generator(random_state)
        rows = max(1, min(_ROWS_PER_BATCH, 256))
        return self._map_batches(  # type: ignore[no-any-return]
            lambda x, m, yb: self._importance(x, m, yb, int(n_importance), generator)[0],
            Xt,
            mask,
            Y,
            rows=rows,
        )

    def impute(
        self,
        X: ArrayLike,
        y: ArrayLike | None = None,
        *,
        n_importance: int = 100,
        random_state: Any = None,
    ) -> NDArray[np.float64]:
        """Fill the NaN entries of X with their importance-weighted conditional means.

        E[x_miss | x_obs] ≈ Σ_k w̃_k E[x_miss | z_k] with z_k ~ q(z | x_obs) and
        self-normalised weights w̃_k ∝ p(x_obs | z_k) p(z_k) / q(z_k | x_obs) (Mattei and
        Frellsen 2019, MIWAE). Observed entries are returned unchanged.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,), optional
            Labels, for :class:`ConditionalVAE` only.
        n_importance : int, default=100
        random_state : int, RandomState or None

        Returns
        -------
        X_imputed : ndarray of shape (n_samples, n_features)
        """
        Xv = self._validate_X(X, reset=False)
        Xt, mask = self._as_tensors(Xv)
        if mask is None:
            return Xv.astype(np.float64)
        Y = self._labels(y, Xv.shape[0])
        generator = self._generator(random_state)
        filled = self._map_batches(
            lambda x, m, yb: self._importance(x, m, yb, int(n_importance), generator, True)[1],
            Xt,
            mask,
            Y,
            rows=256,
        )
        return np.where(np.isnan(Xv), filled, Xv).astype(np.float64)  # type: ignore[no-any-return]

    def _score(self, X: ArrayLike, y: ArrayLike | None, n_importance: int) -> float:
        return float(np.mean(self.score_samples(X, y, n_importance=n_importance)))

    def anomaly_score(
        self,
        X: ArrayLike,
        y: ArrayLike | None = None,
        *,
        kind: str = "elbo",
        n_importance: int = 100,
        random_state: Any = None,
    ) -> NDArray[np.float64]:
        """Per-row anomaly score; larger means more anomalous.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,), optional
            Labels, for :class:`ConditionalVAE` only.
        kind : {"elbo", "iwae", "reconstruction", "kl"}, default="elbo"
            ``"elbo"``: −ELBO; ``"iwae"``: −(importance-weighted log p(x));
            ``"reconstruction"``: −log p(x | z = E_q[z | x]), the reconstruction error in
            the likelihood's own units; ``"kl"``: KL(q(z | x) ‖ p(z)), how far the code is
            from the prior.
        n_importance : int, default=100
            Importance samples for ``kind="iwae"``.
        random_state : int, RandomState or None

        Returns
        -------
        score : ndarray of shape (n_samples,)
        """
        if kind not in _ANOMALY_KINDS:
            raise ValueError(f"kind must be one of {_ANOMALY_KINDS}, got {kind!r}.")
        if kind == "elbo":
            return -self.elbo(X, y, random_state=random_state)
        if kind == "iwae":
            return -self.score_samples(X, y, n_importance=n_importance, random_state=random_state)
        Xt, mask, Y = self._inputs(X, y)

        def fn(x: torch.Tensor, m: torch.Tensor | None, yb: torch.Tensor | None) -> torch.Tensor:
            mu, logvar = self.module_.encoder(x, yb)
            if kind == "kl":
                return gaussian_kl(mu, logvar)
            out = self.module_.decoder(mu, yb)
            return -log_likelihood(x, out, self.likelihood, self.module_.log_std, m)

        return self._map_batches(fn, Xt, mask, Y)  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ latent mixture

    def fit_latent_mixture(
        self,
        n_components: int = 10,
        *,
        covariance_type: str = "full",
        random_state: Any = None,
        **kwargs: Any,
    ) -> _BaseVAE:
        """Fit :class:`latentmix.GaussianMixture` to the latent codes of the training rows.

        Afterwards ``sample(..., prior="mixture")`` draws z from this mixture instead of
        N(0, I) (often sharper samples: the aggregate posterior is not the prior), and
        :meth:`predict` clusters rows in latent space.

        Parameters
        ----------
        n_components : int, default=10
        covariance_type : {"full", "tied", "diag", "spherical"}, default="full"
        random_state : int, RandomState or None
            For the mixture's initialisation; None uses the estimator's ``random_state``.
        **kwargs
            Further parameters of :class:`latentmix.GaussianMixture`.

        Returns
        -------
        self
        """
        check_is_fitted(self)
        from latentmix.mixture._gaussian_mixture import GaussianMixture

        seed = self.random_state if random_state is None else random_state
        if isinstance(seed, np.random.RandomState):
            seed = _torch_seed(seed)
        self.latent_mixture_ = GaussianMixture(
            n_components=n_components,
            covariance_type=covariance_type,
            random_state=seed,
            **kwargs,
        ).fit(self.latent_codes_)
        return self

    def _mixture(self) -> Any:
        check_is_fitted(self)
        if self.latent_mixture_ is None:
            raise ValueError(
                "predict needs a latent mixture: call fit_latent_mixture(n_components) first."
            )
        return self.latent_mixture_

    def predict(self, X: ArrayLike, y: ArrayLike | None = None) -> NDArray[np.intp]:
        """Latent-mixture component of each row's posterior mean (after :meth:`fit_latent_mixture`)."""
        return np.asarray(self._mixture().predict(self.transform(X, y)))

    def predict_proba(self, X: ArrayLike, y: ArrayLike | None = None) -> NDArray[np.float64]:
        """Latent-mixture responsibilities of each row's posterior mean."""
        return np.asarray(self._mixture().predict_proba(self.transform(X, y)))

    # ------------------------------------------------------------------ model files

    def _model_state(self) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
        """Architecture facts and the weights as named float arrays (no pickle)."""
        check_is_fitted(self)
        meta: dict[str, Any] = {
            "format": _MODEL_FORMAT,
            "n_features_in_": int(self.n_features_in_),
            "n_iter_": int(self.n_iter_),
            "loss_curve_": [float(v) for v in self.loss_curve_],
            "validation_scores_": None
            if self.validation_scores_ is None
            else [float(v) for v in self.validation_scores_],
            "best_validation_score_": self.best_validation_score_,
            "inference_seed": int(self._inference_seed),
            "weights": sorted(self.module_.state_dict()),
            "latent_mixture": None,
        }
        arrays: dict[str, NDArray[Any]] = {
            f"module.{name}": tensor.detach().cpu().numpy().copy()
            for name, tensor in self.module_.state_dict().items()
        }
        arrays["latent_codes_"] = self.latent_codes_
        if self._conditional:
            meta["classes_"] = self.classes_.tolist()
            meta["classes_dtype"] = self.classes_.dtype.str
            arrays["class_prior_"] = np.asarray(self.class_prior_, dtype=np.float64)
        if self.latent_mixture_ is not None:
            # The mixture's parameters and public fitted attributes (arrays and numbers),
            # as the model file stores any attribute-only estimator.
            mixture = self.latent_mixture_
            meta["latent_mixture"] = {
                "params": mixture.get_params(deep=False),
                "attributes": {
                    name: value
                    for name, value in vars(mixture).items()
                    if name.endswith("_") and not name.startswith("_")
                },
            }
        return meta, arrays

    @classmethod
    def _from_model_state(
        cls, params: dict[str, Any], meta: dict[str, Any], arrays: dict[str, NDArray[Any]]
    ) -> _BaseVAE:
        """Rebuild a fitted estimator from :meth:`_model_state`'s output."""
        if meta.get("format") != _MODEL_FORMAT:
            raise ModelFileError(
                f"This {cls.__name__} model file has format {meta.get('format')!r}; this "
                f"version of latentmix reads format {_MODEL_FORMAT}. Upgrade latentmix."
            )
        params = dict(params)
        for key in ("hidden_dims", "image_shape"):
            if isinstance(params.get(key), list):
                params[key] = tuple(params[key])
        try:
            model = cls(**params)
            n_features = int(meta["n_features_in_"])
            model.n_features_in_ = n_features
            if cls._conditional:
                model.classes_ = np.asarray(meta["classes_"], dtype=np.dtype(meta["classes_dtype"]))
                model.class_prior_ = np.asarray(arrays["class_prior_"], dtype=np.float64)
            net = model._build_net(n_features, model._hidden_dims(), model._image_shape(n_features))
            state = {
                name: torch.from_numpy(np.array(arrays[f"module.{name}"]))
                for name in meta["weights"]
            }
            net.load_state_dict(state)
        except (KeyError, TypeError, RuntimeError, ValueError) as exc:
            raise ModelFileError(
                f"The {cls.__name__} model file is inconsistent ({exc}); it may be corrupted."
            ) from exc
        net.eval()
        model.module_ = net
        model.n_iter_ = int(meta["n_iter_"])
        model.loss_curve_ = list(meta["loss_curve_"])
        model.validation_scores_ = meta["validation_scores_"]
        model.best_validation_score_ = meta["best_validation_score_"]
        model._inference_seed = int(meta["inference_seed"])
        model.latent_codes_ = np.asarray(arrays["latent_codes_"], dtype=np.float64)
        model.latent_mixture_ = None
        if meta.get("latent_mixture") is not None:
            from latentmix.mixture._gaussian_mixture import GaussianMixture

            info = meta["latent_mixture"]
            mixture = GaussianMixture(**info["params"])
            for name, value in info["attributes"].items():
                setattr(mixture, name, value)
            model.latent_mixture_ = mixture
        return model


_COMMON_PARAMETERS = """
    latent_dim : int, default=8
        Dimension of the latent code z.
    hidden_dims : sequence of int, default=(128, 128)
        Widths of the hidden layers of the encoder; the decoder mirrors them.
    likelihood : {"bernoulli", "gaussian"}, default="bernoulli"
        p(x | z): independent Bernoullis for binary data or data in [0, 1], or independent
        Gaussians for real data.
    gaussian_std : "learned" or float, default="learned"
        σ of the Gaussian likelihood: one learned σ per feature, or a fixed value.
    beta : float, default=1.0
        Weight of the KL term in the training objective (β-VAE); reported ELBOs use 1.
    image_shape : tuple of int, optional
        ``(height, width)`` or ``(channels, height, width)`` of the images that the rows of
        X flatten (C-order). When given, the encoder and decoder are small convolutional
        networks (two stride-2 3×3 convolutions) followed by the MLP.
    epochs : int, default=50
    batch_size : int, default=128
    learning_rate : float, default=1e-3
        Adam's step size.
    validation_fraction : float in [0, 1), optional
        Share of the rows held out to compute a validation ELBO after each epoch. None
        means 0.1 when ``early_stopping`` is True and 0 otherwise.
    early_stopping : bool, default=False
        Stop when the validation ELBO has not improved by ``tol`` for
        ``n_iter_no_change`` epochs, and keep the weights of the best epoch.
    n_iter_no_change : int, default=10
    tol : float, default=1e-4
    random_state : int, RandomState or None
        Seeds the initial weights, the shuffling, the noise ε and the validation split;
        with an int, training is deterministic on CPU.
    checkpoint_dir : str or path, optional
        If given, the training state is written atomically to
        ``checkpoint_dir/checkpoint.pt`` after every epoch, and ``fit(..., resume=True)``
        continues from it.
    verbose : int, default=0
        0 is silent; above 0, a progress bar with the running loss per epoch (when stderr
        is a terminal, else one log line per epoch on the ``latentmix`` logger).
"""

_COMMON_ATTRIBUTES = """
    module_ : torch.nn.Module
        The trained networks (in eval mode).
    n_features_in_ : int
    n_iter_ : int
        Epochs trained.
    loss_curve_ : list of float
        Mean training loss (−β-ELBO per row) of each epoch.
    validation_scores_ : list of float or None
        Mean validation ELBO after each epoch, when rows were held out.
    best_validation_score_ : float or None
    latent_codes_ : ndarray of shape (n_samples, latent_dim)
        Posterior means of the training rows (used by :meth:`fit_latent_mixture`).
    latent_mixture_ : GaussianMixture or None
        Set by :meth:`fit_latent_mixture`.
"""


class VAE(_BaseVAE):
    __doc__ = f"""Variational autoencoder with scikit-learn's estimator interface.

    Models p(x) = ∫ p(x | z) N(z | 0, I) dz with a decoder network for p(x | z) and an
    encoder network for q(z | x) = N(μ(x), diag σ²(x)), trained by maximising the ELBO
    with the reparameterisation trick z = μ + σ ⊙ ε (Kingma and Welling 2014). Rows may
    contain NaN: the likelihood then runs over observed entries only (MIWAE).

    Parameters
    ----------{_COMMON_PARAMETERS}
    Attributes
    ----------{_COMMON_ATTRIBUTES}
    See Also
    --------
    ConditionalVAE : the same model conditioned on a label.
    latentmix.mixture.BernoulliMixture : the classic EM baseline for binary images.

    Examples
    --------
    >>> import numpy as np
    >>> from latentmix.vae import VAE
    >>> X = (np.random.RandomState(0).rand(200, 16) > 0.5).astype(float)
    >>> vae = VAE(latent_dim=2, hidden_dims=(32,), epochs=5, random_state=0).fit(X)
    >>> vae.transform(X).shape
    (200, 2)
    >>> vae.sample(3, random_state=0).shape
    (3, 16)
    >>> bool(np.all(vae.score_samples(X[:5], n_importance=50) <= 0))
    True
    """

    def fit(self, X: ArrayLike, y: None = None, *, resume: bool = False) -> VAE:
        """Train on the rows of X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training rows; NaN marks missing entries.
        y : None
            Ignored (scikit-learn's convention).
        resume : bool, default=False
            Continue from ``checkpoint_dir/checkpoint.pt`` when it exists (for example
            after a crash); it must come from the same data and parameters, except
            ``epochs``, which may be raised to train longer.

        Returns
        -------
        self
        """
        self._fit(X, None, resume)
        return self

    def sample(
        self,
        n_samples: int = 1,
        y: None = None,
        *,
        prior: str = "standard",
        random_state: Any = None,
        noise: bool = False,
    ) -> NDArray[np.float64]:
        """Generate rows: z from the prior, then the mean of p(x | z) (or a draw from it).

        Parameters
        ----------
        n_samples : int, default=1
        y : None
            For :class:`ConditionalVAE` only; must be None here.
        prior : {"standard", "mixture"}, default="standard"
            Draw z from N(0, I) or from the latent mixture of :meth:`fit_latent_mixture`.
        random_state : int, RandomState or None
        noise : bool, default=False
            Return draws from p(x | z) (binary for Bernoulli) instead of its mean.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        """
        return self._sample(n_samples, y, prior, random_state, noise)

    def score(self, X: ArrayLike, y: None = None, *, n_importance: int = 100) -> float:
        """Mean importance-weighted log-likelihood per row (see :meth:`score_samples`)."""
        return self._score(X, None, n_importance)


class ConditionalVAE(_BaseVAE):
    __doc__ = f"""Conditional variational autoencoder: p(x | y) = ∫ p(x | z, y) p(z) dz.

    Like :class:`VAE`, with the one-hot label y given to both the encoder q(z | x, y) and
    the decoder p(x | z, y) (Sohn et al. 2015), so z captures what the label does not and
    ``sample(n, y=...)`` generates rows of a chosen class. Every method that takes X also
    needs y.

    Parameters
    ----------{_COMMON_PARAMETERS}
    Attributes
    ----------{_COMMON_ATTRIBUTES}
    classes_ : ndarray of shape (n_classes,)
        The labels seen in ``fit``, sorted.
    class_prior_ : ndarray of shape (n_classes,)
        Their frequencies.

    Examples
    --------
    >>> import numpy as np
    >>> from latentmix.vae import ConditionalVAE
    >>> rng = np.random.RandomState(0)
    >>> y = rng.randint(0, 2, 200)
    >>> X = (rng.rand(200, 16) < np.where(y[:, None] == 1, 0.8, 0.2)).astype(float)
    >>> cvae = ConditionalVAE(latent_dim=2, hidden_dims=(32,), epochs=20, random_state=0)
    >>> cvae = cvae.fit(X, y)
    >>> ones = cvae.sample(50, y=1, random_state=0)
    >>> bool(ones.mean() > 0.5)
    True
    """

    _conditional = True

    def fit(
        self, X: ArrayLike, y: ArrayLike | None = None, *, resume: bool = False
    ) -> ConditionalVAE:
        """Train on rows X with labels y (one-hot encoded inside).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Class labels (any sortable values); required.
        resume : bool, default=False
            Continue from ``checkpoint_dir/checkpoint.pt`` (see :meth:`VAE.fit`).

        Returns
        -------
        self
        """
        self._fit(X, y, resume)
        return self

    def sample(
        self,
        n_samples: int = 1,
        y: ArrayLike | None = None,
        *,
        prior: str = "standard",
        random_state: Any = None,
        noise: bool = False,
    ) -> NDArray[np.float64]:
        """Generate rows of the given classes: z from the prior, then the mean of p(x | z, y).

        Parameters
        ----------
        n_samples : int, default=1
        y : label or array-like of shape (n_samples,)
            The class of every sample (one label is repeated); required.
        prior : {"standard", "mixture"}, default="standard"
        random_state : int, RandomState or None
        noise : bool, default=False
            Return draws from p(x | z, y) instead of its mean.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        """
        return self._sample(n_samples, y, prior, random_state, noise)

    def score(self, X: ArrayLike, y: ArrayLike | None = None, *, n_importance: int = 100) -> float:
        """Mean importance-weighted log p(x | y) per row (see :meth:`score_samples`)."""
        return self._score(X, y, n_importance)
