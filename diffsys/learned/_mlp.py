"""Learned components that compose with analytical models: residual corrections and surrogates (equinox MLPs).

- :class:`Residual` corrects an analytical model with a network: ``y = base(x) · exp(net(features(x)))``
  (multiplicative, so predictions stay positive and the network learns a *relative* error, as DOSA's learned
  residual on a roofline model does; Hong et al., "DOSA: differentiable model-based one-loop search for DNN
  accelerators", MICRO 2023) or ``y = base(x) + scale · net(features(x))`` (additive).
- :class:`Surrogate` replaces a model by a network on normalized inputs with a log-space output.
- :func:`fit` trains either with optax on measurements, holding out a split and reporting its error.

Everything is an ``equinox.Module``: the composed model stays ``jit``/``vmap``/``grad``-able, so it can be swept,
differentiated by the gradient search and embedded in other training loops.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax


def mlp(in_size: int, out_size: int = 1, *, width: int = 64, depth: int = 2, key, activation=jax.nn.gelu):
    """An ``equinox.nn.MLP`` whose last layer starts at zero (so a fresh :class:`Residual` is the base model)."""
    net = eqx.nn.MLP(in_size, out_size if out_size != 1 else "scalar", width, depth, activation=activation, key=key)
    last = net.layers[-1]
    net = eqx.tree_at(lambda n: (n.layers[-1].weight, n.layers[-1].bias), net,
                      (jnp.zeros_like(last.weight), jnp.zeros_like(last.bias)))
    return net


class Residual(eqx.Module):
    """``base(x)`` corrected by ``net(features(x))`` (``mode="multiplicative"`` or ``"additive"``).

    ``base`` and ``features`` are plain functions (static); ``net`` is any equinox module mapping the feature
    vector to a scalar. With the zero-initialized last layer of :func:`mlp` the residual starts as the identity.
    """

    net: eqx.Module
    base: Callable = eqx.field(static=True)
    features: Callable = eqx.field(static=True)
    mode: str = eqx.field(static=True, default="multiplicative")
    scale: float = eqx.field(static=True, default=1.0)

    def __check_init__(self):
        if self.mode not in ("multiplicative", "additive"):
            raise ValueError(f"Residual.mode must be 'multiplicative' or 'additive', got {self.mode!r}")

    def correction(self, x):
        return self.net(jnp.asarray(self.features(x)))

    def __call__(self, x):
        b = self.base(x)
        c = self.correction(x)
        if self.mode == "multiplicative":
            return b * jnp.exp(c)
        return b + self.scale * c


class Surrogate(eqx.Module):
    """A network standing in for a model: ``y = exp(net((x - mean)/std) · y_std + y_mean)`` (log-space output)
    when ``log_output``, else the same without the ``exp``. ``x`` is a feature vector."""

    net: eqx.Module
    x_mean: jnp.ndarray
    x_std: jnp.ndarray
    y_mean: jnp.ndarray
    y_std: jnp.ndarray
    log_output: bool = eqx.field(static=True, default=True)

    def __call__(self, x):
        z = (jnp.asarray(x) - self.x_mean) / self.x_std
        out = self.net(z) * self.y_std + self.y_mean
        return jnp.exp(out) if self.log_output else out


def surrogate(inputs, targets, *, key, width: int = 64, depth: int = 2, log_output: bool = True) -> Surrogate:
    """A fresh :class:`Surrogate` normalized to the data (``inputs``: ``(N, d)``, ``targets``: ``(N,)``)."""
    x = jnp.asarray(inputs, float)
    y = jnp.asarray(targets, float)
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise ValueError(f"inputs must be (N, d) and targets (N,), got {x.shape} and {y.shape}")
    yt = jnp.log(y) if log_output else y
    if log_output and bool(jnp.any(y <= 0)):
        raise ValueError("targets must be > 0 when log_output=True")
    net = eqx.nn.MLP(x.shape[1], "scalar", width, depth, activation=jax.nn.gelu, key=key)
    return Surrogate(net, x.mean(0), x.std(0) + 1e-12, yt.mean(), yt.std() + 1e-12, log_output)


class FitResult(NamedTuple):
    """A trained module, its error on the training rows and on the held-out rows (MAPE, max APE), and the loss."""

    module: Any
    train_mape: float
    holdout_mape: float
    holdout_max_ape: float
    history: np.ndarray
    seconds: float


def _ape(pred, y):
    return np.abs(np.asarray(pred, float) - np.asarray(y, float)) / np.abs(np.asarray(y, float))


def fit(module, inputs, targets, *, key, steps: int = 2000, learning_rate: float = 3e-3, batch_size: int | None = 256,
        holdout: float = 0.2, loss: str = "log", weight_decay: float = 1e-4) -> FitResult:
    """Train ``module`` (a :class:`Residual`, :class:`Surrogate` or any equinox module ``x -> scalar``) on rows of
    ``inputs`` (a pytree with leading axis ``N``) against ``targets`` with AdamW.

    ``loss="log"`` is the squared log error (relative, scale-free), ``"squared"`` the plain MSE. A random
    ``holdout`` fraction is never trained on and is reported (MAPE and max APE). Deterministic given ``key``.
    """
    if loss not in ("log", "squared"):
        raise ValueError(f"loss must be 'log' or 'squared', got {loss!r}")
    if not 0 <= holdout < 1:
        raise ValueError(f"holdout must be in [0, 1), got {holdout}")
    y = jnp.asarray(targets, float)
    n = y.shape[0]
    if loss == "log" and bool(jnp.any(y <= 0)):
        raise ValueError("targets must be > 0 for loss='log'")
    start = time.perf_counter()
    k_split, k_batch = jax.random.split(key)
    perm = np.asarray(jax.random.permutation(k_split, n))
    n_hold = int(round(holdout * n))
    hold, train = perm[:n_hold], perm[n_hold:]
    take = lambda idx: jax.tree_util.tree_map(lambda a: jnp.asarray(a)[idx], inputs)  # noqa: E731
    x_tr, y_tr = take(train), y[train]
    bs = len(train) if batch_size is None else min(int(batch_size), len(train))
    opt = optax.adamw(learning_rate, weight_decay=weight_decay)
    params, static = eqx.partition(module, eqx.is_inexact_array)
    state = opt.init(params)

    def batch_loss(p, xb, yb):
        m = eqx.combine(p, static)
        pred = jax.vmap(m)(xb)
        if loss == "log":
            return jnp.mean((jnp.log(jnp.abs(pred) + 1e-30) - jnp.log(yb)) ** 2)
        return jnp.mean((pred - yb) ** 2)

    @jax.jit
    def run(params, state, key):
        def step(carry, k):
            p, s = carry
            idx = jax.random.choice(k, len(train), (bs,), replace=False) if bs < len(train) else jnp.arange(bs)
            xb = jax.tree_util.tree_map(lambda a: a[idx], x_tr)
            val, g = jax.value_and_grad(batch_loss)(p, xb, y_tr[idx])
            upd, s = opt.update(g, s, p)
            return (optax.apply_updates(p, upd), s), val

        (p, s), hist = jax.lax.scan(step, (params, state), jax.random.split(key, steps))
        return p, hist

    params, hist = run(params, state, k_batch)
    trained = eqx.combine(params, static)
    pred = eqx.filter_jit(lambda m, xs: jax.vmap(m)(xs))(trained, inputs)
    ape = _ape(pred, y)
    h_mape = float(np.mean(ape[hold])) if n_hold else math.nan
    h_max = float(np.max(ape[hold])) if n_hold else math.nan
    return FitResult(trained, float(np.mean(ape[train])), h_mape, h_max, np.asarray(hist),
                     time.perf_counter() - start)
