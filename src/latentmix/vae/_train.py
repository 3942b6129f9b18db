"""The training loop: minibatch Adam on the negative β-ELBO, validation, early stopping, checkpoints.

After each epoch the whole training state (weights, optimiser moments, the random generator,
the loss history, the early-stopping counters) goes to ``checkpoint.pt`` in one atomic
``os.replace``, so a crash at any moment leaves either the previous or the new checkpoint,
never half of one. Resuming restores all of it, so an interrupted and resumed run follows the
same trajectory as an uninterrupted one.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from latentmix.vae._losses import gaussian_kl, log_likelihood, reparameterize
from latentmix.vae._modules import VAENet

__all__ = ["CHECKPOINT_NAME", "TrainConfig", "TrainData", "TrainState", "train"]

logger = logging.getLogger("latentmix")

CHECKPOINT_NAME = "checkpoint.pt"
_CHECKPOINT_FORMAT = 1


@dataclass(frozen=True)
class TrainConfig:
    epochs: int
    batch_size: int
    learning_rate: float
    beta: float
    likelihood: str
    early_stopping: bool
    n_iter_no_change: int
    tol: float
    verbose: int
    fingerprint: str
    validation_seed: int


@dataclass(frozen=True)
class TrainData:
    """Rows as float32 tensors; missing entries of ``X`` already set to 0, ``mask`` marks the rest."""

    X: torch.Tensor
    mask: torch.Tensor | None
    Y: torch.Tensor | None

    def __len__(self) -> int:
        return int(self.X.shape[0])

    def rows(
        self, idx: torch.Tensor | slice
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        return (
            self.X[idx],
            None if self.mask is None else self.mask[idx],
            None if self.Y is None else self.Y[idx],
        )


@dataclass
class TrainState:
    epoch: int = 0
    train_loss: list[float] = field(default_factory=list)
    validation_elbo: list[float] = field(default_factory=list)
    best_score: float = -math.inf
    best_epoch: int = 0
    no_improvement: int = 0
    best_weights: dict[str, torch.Tensor] | None = None
    stopped_early: bool = False


def negative_elbo(
    net: VAENet,
    x: torch.Tensor,
    mask: torch.Tensor | None,
    y: torch.Tensor | None,
    beta: float,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """−(E_q[log p(x|z)] − β KL) per row, with one reparameterised sample of z."""
    mu, logvar = net.encoder(x, y)
    z = reparameterize(mu, logvar, generator)
    out = net.decoder(z, y)
    rec = log_likelihood(x, out, net.likelihood, net.log_std, mask)
    return beta * gaussian_kl(mu, logvar) - rec


def _batch_loss(
    net: VAENet,
    x: torch.Tensor,
    mask: torch.Tensor | None,
    y: torch.Tensor | None,
    beta: float,
    generator: torch.Generator,
) -> torch.Tensor:
    """Mean negative β-ELBO of a batch, as one scalar.

    The same quantity as ``negative_elbo(...).mean()``, with batch-wide sums instead of
    per-row ones: fewer autograd nodes, which is what a small-batch epoch spends its time on.
    """
    mu, logvar = net.encoder(x, y)
    z = reparameterize(mu, logvar, generator)
    out = net.decoder(z, y)
    if net.likelihood == "bernoulli" and mask is None:
        rec = -F.binary_cross_entropy_with_logits(out, x, reduction="sum")
    else:
        rec = log_likelihood(x, out, net.likelihood, net.log_std, mask).sum()
    kl = 0.5 * torch.sum(mu.pow(2) + logvar.exp() - 1.0 - logvar)
    return (beta * kl - rec) / x.shape[0]


def _run_epoch(
    net: VAENet,
    optimizer: torch.optim.Optimizer,
    data: TrainData,
    config: TrainConfig,
    generator: torch.Generator,
    progress: Any = None,
    task: Any = None,
) -> float:
    """One pass over the shuffled training rows; returns the mean loss per row."""
    net.train()
    n = len(data)
    perm = torch.randperm(n, generator=generator)
    losses = []
    for start in range(0, n, config.batch_size):
        idx = perm[start : start + config.batch_size]
        x, mask, y = data.rows(idx)
        loss = _batch_loss(net, x, mask, y, config.beta, generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.detach() * idx.shape[0])
        if progress is not None:
            seen = min(start + config.batch_size, n)
            progress.update(task, advance=1, loss=float(sum(losses)) / seen)
    mean = float(torch.stack(losses).double().sum()) / n
    if not math.isfinite(mean):
        raise FloatingPointError(
            f"The training loss became {mean}. Lower learning_rate, scale the data, or use "
            "a fixed gaussian_std."
        )
    return mean


@torch.no_grad()
def evaluate_elbo(net: VAENet, data: TrainData, seed: int, batch_size: int = 4096) -> float:
    """Mean ELBO per row (β = 1), with the same noise at every call so epochs compare fairly."""
    net.eval()
    generator = torch.Generator().manual_seed(seed)
    total = 0.0
    for start in range(0, len(data), batch_size):
        x, mask, y = data.rows(slice(start, start + batch_size))
        total -= float(negative_elbo(net, x, mask, y, 1.0, generator).sum())
    return total / len(data)


def _make_progress(config: TrainConfig) -> Any:
    if config.verbose <= 0 or not sys.stderr.isatty():
        return None
    try:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )
    except ImportError:  # rich comes with the cli extra; without it, log lines instead
        return None

    return Progress(
        TextColumn("epoch {task.fields[epoch]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}"),
        TimeElapsedColumn(),
        transient=False,
    )


def train(
    net: VAENet,
    data: TrainData,
    validation: TrainData | None,
    config: TrainConfig,
    generator: torch.Generator,
    *,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
) -> TrainState:
    """Train ``net`` in place for ``config.epochs`` epochs (fewer when stopping early)."""
    optimizer = torch.optim.Adam(net.parameters(), lr=config.learning_rate)
    state = TrainState()
    path = None if checkpoint_dir is None else Path(checkpoint_dir) / CHECKPOINT_NAME
    if resume:
        if path is None:
            raise ValueError("fit(..., resume=True) needs checkpoint_dir to be set.")
        if path.exists():
            state = load_checkpoint(path, net, optimizer, generator, config.fingerprint)
            logger.info("Resuming from %s after epoch %d.", path, state.epoch)
        else:
            logger.info("No checkpoint in %s: training from the start.", checkpoint_dir)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)

    progress = _make_progress(config)
    n_batches = math.ceil(len(data) / config.batch_size)
    try:
        if progress is not None:
            progress.start()
        while state.epoch < config.epochs and not state.stopped_early:
            task = None
            if progress is not None:
                task = progress.add_task("train", total=n_batches, epoch=state.epoch + 1, loss=0.0)
            loss = _run_epoch(net, optimizer, data, config, generator, progress, task)
            state.epoch += 1
            state.train_loss.append(loss)
            message = f"epoch {state.epoch}/{config.epochs}: train loss {loss:.4f}"
            if validation is not None:
                score = evaluate_elbo(net, validation, config.validation_seed)
                state.validation_elbo.append(score)
                message += f", validation ELBO {score:.4f}"
                _update_early_stopping(state, net, score, config)
            if config.verbose > 0 and progress is None:
                logger.info(message)
            if path is not None:
                save_checkpoint(path, net, optimizer, generator, state, config.fingerprint)
    finally:
        if progress is not None:
            progress.stop()
    if config.early_stopping and state.best_weights is not None:
        net.load_state_dict(state.best_weights)
    return state


def _update_early_stopping(
    state: TrainState, net: VAENet, score: float, config: TrainConfig
) -> None:
    if score > state.best_score + config.tol:
        state.no_improvement = 0
    else:
        state.no_improvement += 1
    if score > state.best_score:
        state.best_score = score
        state.best_epoch = state.epoch
        if config.early_stopping:
            state.best_weights = copy.deepcopy(net.state_dict())
    if config.early_stopping and state.no_improvement >= config.n_iter_no_change:
        state.stopped_early = True
        logger.info(
            "Early stopping after epoch %d: no validation improvement for %d epochs; "
            "keeping the weights of epoch %d.",
            state.epoch,
            state.no_improvement,
            state.best_epoch,
        )


def save_checkpoint(
    path: Path,
    net: VAENet,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    state: TrainState,
    fingerprint: str,
) -> None:
    """Write the training state to ``path`` atomically (temporary file, fsync, os.replace)."""
    payload = {
        "format": _CHECKPOINT_FORMAT,
        "fingerprint": fingerprint,
        "epoch": state.epoch,
        "model": net.state_dict(),
        "optimizer": optimizer.state_dict(),
        "generator": generator.get_state(),
        "train_loss": torch.tensor(state.train_loss, dtype=torch.float64),
        "validation_elbo": torch.tensor(state.validation_elbo, dtype=torch.float64),
        "best_score": state.best_score,
        "best_epoch": state.best_epoch,
        "no_improvement": state.no_improvement,
        "best_weights": state.best_weights,
        "stopped_early": state.stopped_early,
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".checkpoint-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(
    path: Path,
    net: VAENet,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    fingerprint: str,
) -> TrainState:
    """Restore what :func:`save_checkpoint` wrote (tensors only: ``weights_only=True``)."""
    try:
        payload = torch.load(path, weights_only=True)
    except Exception as exc:  # torch raises several kinds for a damaged file
        raise ValueError(
            f"Cannot read the checkpoint {path}: {exc}. Delete it or fit with resume=False."
        ) from exc
    if payload.get("format") != _CHECKPOINT_FORMAT or payload.get("fingerprint") != fingerprint:
        raise ValueError(
            f"The checkpoint {path} was written for other data or other parameters. "
            "Use another checkpoint_dir, delete the file, or fit with resume=False."
        )
    net.load_state_dict(payload["model"])
    optimizer.load_state_dict(payload["optimizer"])
    generator.set_state(payload["generator"])
    return TrainState(
        epoch=int(payload["epoch"]),
        train_loss=payload["train_loss"].tolist(),
        validation_elbo=payload["validation_elbo"].tolist(),
        best_score=float(payload["best_score"]),
        best_epoch=int(payload["best_epoch"]),
        no_improvement=int(payload["no_improvement"]),
        best_weights=payload["best_weights"],
        stopped_early=bool(payload["stopped_early"]),
    )
