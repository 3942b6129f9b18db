"""VAE benchmarks: epoch time against a hand-written PyTorch loop, digits quality, anomaly AUROC.

    python benchmarks/bench_vae.py speed            # digits MLP + Fashion-MNIST 784-400-20
    python benchmarks/bench_vae.py speed --quick    # digits only, a few seconds
    python benchmarks/bench_vae.py digits           # test log-likelihood vs BernoulliMixture
    python benchmarks/bench_vae.py anomaly          # one-class digits: AUROC of each score

``speed`` fits ``latentmix.vae.VAE`` and a plain PyTorch loop with the same architecture,
batch size, optimiser and data (the layout of the PyTorch VAE example), alternately so that a
shared machine slows both alike, and reports the median seconds per epoch and the ratio.
Fashion-MNIST comes from Debian (``apt-get install dataset-fashion-mnist``, IDX files under
``/usr/share/datasets/fashion-mnist/``); without it that case is skipped with a message.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from latentmix.mixture._bernoulli import BernoulliMixture
from latentmix.vae import VAE

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


# -- data ----------------------------------------------------------------------------------


def digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X = (X > 7).astype(np.float64)
    return tuple(train_test_split(X, y, test_size=0.25, stratify=y, random_state=0))  # type: ignore[return-value]


def read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    n_dims = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(n_dims))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * n_dims).reshape(shape)


def fashion_mnist() -> tuple[np.ndarray, np.ndarray] | None:
    train = FASHION_DIR / "train-images-idx3-ubyte.gz"
    test = FASHION_DIR / "t10k-images-idx3-ubyte.gz"
    if not (train.exists() and test.exists()):
        return None
    X_train = read_idx(train).reshape(-1, 784).astype(np.float32) / 255.0
    X_test = read_idx(test).reshape(-1, 784).astype(np.float32) / 255.0
    return X_train, X_test


# -- the reference: a plain PyTorch loop (the PyTorch VAE example's layout) ----------------


class PlainVAE(nn.Module):
    def __init__(self, n_features: int, hidden: list[int], latent: int) -> None:
        super().__init__()
        sizes = [n_features, *hidden]
        self.enc = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(sizes))
        self.fc_mu = nn.Linear(sizes[-1], latent)
        self.fc_logvar = nn.Linear(sizes[-1], latent)
        back = [latent, *reversed(hidden)]
        self.dec = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(back))
        self.out = nn.Linear(back[-1], n_features)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = x
        for layer in self.enc:
            h = F.relu(layer(h))
        mu, logvar = self.fc_mu(h), self.fc_logvar(h)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        for layer in self.dec:
            z = F.relu(layer(z))
        return self.out(z), mu, logvar


def plain_fit(X: np.ndarray, hidden: list[int], latent: int, epochs: int, batch_size: int) -> float:
    """Seconds per epoch of the hand-written loop (conversion of X included, once)."""
    torch.manual_seed(0)
    start = time.perf_counter()
    data = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
    model = PlainVAE(X.shape[1], hidden, latent)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(data))
        for i in range(0, len(data), batch_size):
            x = data[perm[i : i + batch_size]]
            logits, mu, logvar = model(x)
            rec = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
            kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
            loss = (rec + kld) / len(x)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return (time.perf_counter() - start) / epochs


def ours_fit(
    X: np.ndarray, hidden: list[int], latent: int, epochs: int, batch_size: int
) -> tuple[float, VAE]:
    start = time.perf_counter()
    vae = VAE(
        latent_dim=latent,
        hidden_dims=tuple(hidden),
        epochs=epochs,
        batch_size=batch_size,
        random_state=0,
    ).fit(X)
    return (time.perf_counter() - start) / epochs, vae


def speed_case(
    name: str,
    X: np.ndarray,
    X_test: np.ndarray,
    hidden: list[int],
    latent: int,
    epochs: int,
    batch_size: int,
    repeats: int,
) -> dict[str, Any]:
    # Warm-up: torch's first calls (allocator, kernels) must not be charged to either side.
    ours_fit(X[:512], hidden, latent, 1, batch_size)
    plain_fit(X[:512], hidden, latent, 1, batch_size)
    ours, plain = [], []
    vae = None
    for _ in range(repeats):
        t, vae = ours_fit(X, hidden, latent, epochs, batch_size)
        ours.append(t)
        plain.append(plain_fit(X, hidden, latent, epochs, batch_size))
    assert vae is not None
    ours_s, plain_s = statistics.median(ours), statistics.median(plain)
    test_loss = float(-vae.elbo(X_test, random_state=0).mean())
    print(
        f"{name:<34} ours {ours_s:8.3f} s/epoch   plain torch {plain_s:8.3f} s/epoch   "
        f"ratio {ours_s / plain_s:5.2f}   test loss (−ELBO, nats/image) {test_loss:8.2f}",
        flush=True,
    )
    return {"name": name, "ours": ours_s, "plain": plain_s, "test_loss": test_loss}


def run_speed(quick: bool, repeats: int) -> None:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    X_train, X_test, _, _ = digits_split()
    speed_case(
        "digits 64-128-128-8, batch 64",
        X_train,
        X_test,
        [128, 128],
        8,
        epochs=20 if quick else 50,
        batch_size=64,
        repeats=3 if quick else 5,
    )
    if quick:
        return
    data = fashion_mnist()
    if data is None:
        print(
            f"Fashion-MNIST not found under {FASHION_DIR}: skipping the large case "
            "(install it with `apt-get install dataset-fashion-mnist`)."
        )
        return
    F_train, F_test = data
    speed_case(
        "Fashion-MNIST 784-400-20, batch 128",
        F_train,
        F_test,
        [400],
        20,
        epochs=10,
        batch_size=128,
        repeats=repeats,
    )


# -- quality and anomaly detection ---------------------------------------------------------


def run_digits() -> None:
    X_train, X_test, _, _ = digits_split()
    start = time.perf_counter()
    vae = VAE(latent_dim=8, hidden_dims=(128, 128), epochs=300, batch_size=64, random_state=0)
    vae.fit(X_train)
    fit_s = time.perf_counter() - start
    iwae = vae.score(X_test, n_importance=1000)
    elbo = float(vae.elbo(X_test, random_state=0).mean())
    print(
        f"VAE 64-128-128-8 (300 epochs, {fit_s:.0f} s): test log p(x) IWAE-1000 {iwae:.3f}, ELBO {elbo:.3f}"
    )
    for k in (10, 20, 50):
        bm = BernoulliMixture(k, alpha=0.1, max_iter=500, tol=1e-5, random_state=0).fit(X_train)
        print(
            f"BernoulliMixture {k:>2} components (alpha=0.1): test log p(x) {bm.score(X_test):.3f}"
        )


def run_anomaly() -> None:
    """One class of digits is normal (train on its training rows); all others are anomalies."""
    from sklearn.metrics import roc_auc_score

    X_train, X_test, y_train, y_test = digits_split()
    kinds = ["elbo", "iwae", "reconstruction", "kl"]
    table: dict[str, list[float]] = {k: [] for k in [*kinds, "BernoulliMixture(5)"]}
    for digit in range(10):
        normal = X_train[y_train == digit]
        is_anomaly = (y_test != digit).astype(int)
        vae = VAE(latent_dim=4, hidden_dims=(64,), epochs=300, batch_size=32, random_state=0)
        vae.fit(normal)
        for kind in kinds:
            score = vae.anomaly_score(X_test, kind=kind, n_importance=200, random_state=0)
            table[kind].append(roc_auc_score(is_anomaly, score))
        bm = BernoulliMixture(5, alpha=0.1, max_iter=500, random_state=0).fit(normal)
        table["BernoulliMixture(5)"].append(roc_auc_score(is_anomaly, -bm.score_samples(X_test)))
    print("AUROC, one-class digits (normal = one digit, anomalies = the other nine), test split")
    print(f"{'score':<22}" + "".join(f"{d:>6}" for d in range(10)) + "   mean")
    for name, values in table.items():
        print(f"{name:<22}" + "".join(f"{v:6.3f}" for v in values) + f"  {np.mean(values):.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("what", choices=["speed", "digits", "anomaly"])
    parser.add_argument("--quick", action="store_true", help="speed: digits only, fewer epochs")
    parser.add_argument(
        "--repeats", type=int, default=3, help="speed: Fashion-MNIST fits of each (median)"
    )
    args = parser.parse_args(argv)
    {
        "speed": lambda: run_speed(args.quick, args.repeats),
        "digits": run_digits,
        "anomaly": run_anomaly,
    }[args.what]()
    return 0


if __name__ == "__main__":
    sys.exit(main())
