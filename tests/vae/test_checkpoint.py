"""Checkpoints after every epoch, atomic writes, and resume after a crash."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from latentmix.vae import (  # noqa: E402
    VAE,
    ConditionalVAE,
    _train,
)

KWARGS = dict(latent_dim=2, hidden_dims=(16,), epochs=6, batch_size=32, random_state=0)


class SimulatedCrash(RuntimeError):
    pass


def crash_after(monkeypatch: pytest.MonkeyPatch, n_epochs: int) -> None:
    """Make the training loop die at the start of epoch ``n_epochs + 1``."""
    real = _train._run_epoch
    calls = {"n": 0}

    def epoch(*args, **kwargs):  # type: ignore[no-untyped-def]
        if calls["n"] == n_epochs:
            raise SimulatedCrash("killed")
        calls["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(_train, "_run_epoch", epoch)


def test_checkpoint_written_every_epoch(tmp_path: Path, patterns) -> None:  # type: ignore[no-untyped-def]
    X, _ = patterns
    VAE(checkpoint_dir=tmp_path, **KWARGS).fit(X)
    payload = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert payload["epoch"] == 6
    assert len(payload["train_loss"]) == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]  # no temporaries


def test_resume_after_crash_matches_uninterrupted_run(
    tmp_path: Path, patterns, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    X, _ = patterns
    reference = VAE(**KWARGS).fit(X)

    with monkeypatch.context() as m:
        crash_after(m, 3)
        with pytest.raises(SimulatedCrash):
            VAE(checkpoint_dir=tmp_path, **KWARGS).fit(X)
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["epoch"] == 3

    resumed = VAE(checkpoint_dir=tmp_path, **KWARGS).fit(X, resume=True)
    assert resumed.n_iter_ == 6
    # The generator, the optimiser moments and the weights were all restored, so the
    # resumed run follows the same trajectory as the uninterrupted one.
    np.testing.assert_allclose(resumed.loss_curve_, reference.loss_curve_, rtol=1e-6)
    np.testing.assert_allclose(resumed.transform(X), reference.transform(X), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        resumed.score_samples(X[:20], random_state=0),
        reference.score_samples(X[:20], random_state=0),
        rtol=1e-5,
    )


def test_resume_to_more_epochs_and_without_a_checkpoint(tmp_path: Path, patterns) -> None:  # type: ignore[no-untyped-def]
    X, _ = patterns
    VAE(checkpoint_dir=tmp_path, **KWARGS).fit(X)
    longer = VAE(checkpoint_dir=tmp_path, **{**KWARGS, "epochs": 8}).fit(X, resume=True)
    assert longer.n_iter_ == 8 and len(longer.loss_curve_) == 8
    fresh = VAE(checkpoint_dir=tmp_path / "empty", **KWARGS).fit(X, resume=True)
    assert fresh.n_iter_ == 6


def test_resume_refuses_a_checkpoint_of_other_data_or_parameters(tmp_path: Path, patterns) -> None:  # type: ignore[no-untyped-def]
    X, _ = patterns
    VAE(checkpoint_dir=tmp_path, **KWARGS).fit(X)
    with pytest.raises(ValueError, match="other data or other parameters"):
        VAE(checkpoint_dir=tmp_path, **KWARGS).fit(1 - X, resume=True)
    with pytest.raises(ValueError, match="other data or other parameters"):
        VAE(checkpoint_dir=tmp_path, **{**KWARGS, "learning_rate": 0.01}).fit(X, resume=True)
    with pytest.raises(ValueError, match="checkpoint_dir"):
        VAE(**KWARGS).fit(X, resume=True)


def test_damaged_checkpoint_is_reported(tmp_path: Path, patterns) -> None:  # type: ignore[no-untyped-def]
    X, _ = patterns
    VAE(checkpoint_dir=tmp_path, **KWARGS).fit(X)
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match="Cannot read the checkpoint"):
        VAE(checkpoint_dir=tmp_path, **KWARGS).fit(X, resume=True)


def test_failed_write_keeps_the_previous_checkpoint(
    tmp_path: Path, patterns, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    X, _ = patterns
    VAE(checkpoint_dir=tmp_path, **{**KWARGS, "epochs": 2}).fit(X)
    before = (tmp_path / "checkpoint.pt").read_bytes()

    def broken_save(obj, f):  # type: ignore[no-untyped-def]
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(_train.torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        VAE(checkpoint_dir=tmp_path, **{**KWARGS, "epochs": 3}).fit(X, resume=True)
    assert (tmp_path / "checkpoint.pt").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]


def test_conditional_resume(tmp_path: Path, patterns, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    X, labels = patterns
    reference = ConditionalVAE(**KWARGS).fit(X, labels)
    with monkeypatch.context() as m:
        crash_after(m, 2)
        with pytest.raises(SimulatedCrash):
            ConditionalVAE(checkpoint_dir=tmp_path, **KWARGS).fit(X, labels)
    resumed = ConditionalVAE(checkpoint_dir=tmp_path, **KWARGS).fit(X, labels, resume=True)
    np.testing.assert_allclose(resumed.loss_curve_, reference.loss_curve_, rtol=1e-6)
