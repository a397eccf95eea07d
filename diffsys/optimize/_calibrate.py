"""Calibration: fit model constants (efficiencies, latencies, fitted-law coefficients) to measurements.

``calibrate(model, spec, params0, inputs, targets, metric="time_s")`` fits the constants of a protocol model
``model(spec, *, temperature=0.0) -> Metrics``: ``params0`` and ``inputs`` are ``{path: value}`` leaves of ``spec``
(paths as in :class:`~diffsys.space.DesignSpace`, e.g. ``"op.flops"``), the constants shared by every row, the
inputs one value per row; the prediction of a row is ``model(spec with those leaves)``'s ``metric`` at temperature 0
(the exact model). The fit is optax (L-BFGS by default, Adam on request) on a loss in log space (scale-free: every
row weighs the same however large its target). Positive constants are fitted through ``log`` (so they stay
positive); bounded ones through a logistic map.

Honest error reporting is built in: a held-out split (``holdout``) is never seen by any fit; the rest is split into
``k_folds`` folds and the fit is repeated ``k`` times, each time leaving one fold out, to estimate the error on
unseen data (all folds fitted at once in one ``vmap``); the final constants come from a fit on the whole non-held-out
part and are scored on the held-out rows. (Hastie, Tibshirani & Friedman, *The Elements of Statistical Learning*,
§7.10.)
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

from ..space import get_path
from ._metrics import metric_getter, result_type

LOSSES = ("log", "relative", "squared")
OPTIMIZERS = ("lbfgs", "adam")


class ErrorStats(NamedTuple):
    """Prediction error on a set of rows: mean/max absolute percentage error, RMS log error, row count."""

    mape: float
    max_ape: float
    rmse_log: float
    n: int

    def __str__(self):
        return (f"MAPE {100 * self.mape:.2f}%, max {100 * self.max_ape:.2f}%, RMS log err {self.rmse_log:.4f} "
                f"(n={self.n})")


class CalibrationResult(NamedTuple):
    """Fitted constants and their error statistics.

    Attributes:
        params: constants fitted on every non-held-out row.
        train: error on the rows ``params`` was fitted on.
        cv: per-fold validation errors (a list of :class:`ErrorStats`, one per fold).
        cv_mape: mean validation MAPE over the folds.
        holdout: error of ``params`` on the held-out rows (``None`` when ``holdout=0``).
        fold_params: the constants of each fold's fit (leading axis = fold), to judge their stability.
        loss_history: final fit's loss per iteration.
        seconds: wall time.
    """

    params: Any
    train: ErrorStats
    cv: list
    cv_mape: float
    holdout: ErrorStats | None
    fold_params: Any
    loss_history: np.ndarray
    seconds: float

    def report(self) -> str:
        lines = [f"train   : {self.train}"]
        lines += [f"cv fold {i}: {e}" for i, e in enumerate(self.cv)]
        if self.holdout is not None:
            lines.append(f"held-out: {self.holdout}")
        return "\n".join(lines)


def _errors(pred, y, mask) -> ErrorStats:
    pred, y, mask = np.asarray(pred, float), np.asarray(y, float), np.asarray(mask, bool)
    if not mask.any():
        return ErrorStats(math.nan, math.nan, math.nan, 0)
    ape = np.abs(pred[mask] - y[mask]) / np.abs(y[mask])
    with np.errstate(invalid="ignore", divide="ignore"):
        le = np.log(np.abs(pred[mask])) - np.log(np.abs(y[mask]))
    return ErrorStats(float(np.mean(ape)), float(np.max(ape)), float(np.sqrt(np.mean(le**2))), int(mask.sum()))


def _transforms(params0, positive, bounds):
    """Per-leaf (to_raw, from_raw) maps: log for positive leaves, logit for bounded ones, identity otherwise."""
    leaves, treedef = jax.tree_util.tree_flatten(params0)
    pos = jax.tree_util.tree_leaves(positive) if not isinstance(positive, bool) else [positive] * len(leaves)
    bnd = [None] * len(leaves) if bounds is None else jax.tree_util.tree_leaves(
        bounds, is_leaf=lambda x: x is None or (isinstance(x, tuple) and len(x) == 2))
    if len(pos) != len(leaves) or len(bnd) != len(leaves):
        raise ValueError("positive/bounds must be a bool or match the structure of params0")
    fwd, inv = [], []
    for leaf, p, b in zip(leaves, pos, bnd):
        if b is not None:
            lo, hi = map(float, b)
            if not hi > lo:
                raise ValueError(f"bounds must satisfy lo < hi, got {b}")
            fwd.append(lambda x, lo=lo, hi=hi: jnp.log((x - lo) / (hi - x)))
            inv.append(lambda r, lo=lo, hi=hi: lo + (hi - lo) * jax.nn.sigmoid(r))
        elif p:
            if np.any(np.asarray(leaf) <= 0):
                raise ValueError(f"params0 leaf {leaf} must be > 0 when positive=True (fitted in log space)")
            fwd.append(jnp.log)
            inv.append(jnp.exp)
        else:
            fwd.append(lambda x: x)
            inv.append(lambda r: r)

    def to_raw(p):
        return jax.tree_util.tree_unflatten(treedef, [f(jnp.asarray(x, float)) for f, x in
                                                      zip(fwd, jax.tree_util.tree_leaves(p))])

    def from_raw(r):
        return jax.tree_util.tree_unflatten(treedef, [f(x) for f, x in zip(inv, jax.tree_util.tree_leaves(r))])

    return to_raw, from_raw


def _substitute(spec, values: dict):
    """``spec`` with the leaves at the paths of ``values`` replaced."""
    names = list(values)
    return eqx.tree_at(lambda t: [get_path(t, n) for n in names], spec, [jnp.asarray(values[n]) for n in names])


def _row_model(model, spec, params0, inputs, metric):
    """``predict(params, x)`` for one row, after checking the paths and the metric name against the model."""
    for what, tree in (("params0", params0), ("inputs", inputs)):
        if not isinstance(tree, dict):
            raise TypeError(f"{what} must be a dict {{path: value}} of leaves of spec, got {type(tree).__name__}")
        for path in tree:
            try:
                get_path(spec, path)
            except KeyError as e:
                raise ValueError(f"{what}: {e.args[0]}") from None
    overlap = set(params0) & set(inputs)
    if overlap:
        raise ValueError(f"paths {sorted(overlap)} are both fitted constants (params0) and inputs")

    def metrics(params, x):
        return model(_substitute(spec, {**params, **x}), temperature=0.0)

    row0 = {k: jnp.asarray(v)[0] for k, v in inputs.items()}
    get = metric_getter(metric, result_type(metrics, params0, row0), "metric")
    return lambda params, x: get(metrics(params, x))


def calibrate(model: Callable, spec, params0: dict, inputs: dict, targets, *, metric="time_s", key,
              k_folds: int = 5, holdout: float = 0.2, loss: str = "log", optimizer: str = "lbfgs", steps: int = 200,
              learning_rate: float = 0.05, positive=True, bounds=None, l2: float = 0.0) -> CalibrationResult:
    """Fit the constants ``params0`` of ``model`` to ``targets`` with k-fold cross-validation and a held-out report.

    Args:
        model: a protocol model ``model(spec, *, temperature=0.0) -> Metrics``, evaluated exactly.
        spec: the base spec (an ``equinox.Module``); ``params0`` and ``inputs`` replace its leaves by path.
        params0: initial constants ``{path: float}``, shared by every row.
        inputs: ``{path: (N,) values}``, one value per row.
        targets: ``(N,)`` measurements of ``metric`` (positive for ``loss="log"``/``"relative"``).
        metric: the metric predicted (a name, checked against the model's ``Metrics``, or a callable).
        key: PRNG key for the splits (deterministic given the key).
        k_folds: cross-validation folds (``>= 2``; ``0`` or ``1`` skips cross-validation).
        holdout: fraction of rows held out from every fit and reported at the end (``0`` to disable).
        loss: ``"log"`` (squared log error), ``"relative"`` (squared relative error) or ``"squared"``.
        optimizer: ``"lbfgs"`` (optax L-BFGS with zoom line search) or ``"adam"``.
        steps: optimizer iterations.
        positive: fit every leaf in log space (a bool, or a pytree of bools like ``params0``).
        bounds: optional pytree like ``params0`` of ``(lo, hi)`` or ``None`` per leaf (logistic map).
        l2: ridge weight on the raw (transformed) parameters' distance from ``params0``.
    """
    model = _row_model(model, spec, params0, inputs, metric)
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    if not 0.0 <= float(holdout) < 1.0:
        raise ValueError(f"holdout must be in [0, 1), got {holdout}")
    y = jnp.asarray(targets, dtype=float)
    n = y.shape[0]
    for leaf in jax.tree_util.tree_leaves(inputs):
        if np.shape(leaf)[0] != n:
            raise ValueError(f"inputs leaves must have {n} rows (like targets), got shape {np.shape(leaf)}")
    if loss in ("log", "relative") and bool(jnp.any(y <= 0)):
        raise ValueError(f"targets must be > 0 for loss={loss!r}")
    k_folds = int(k_folds)
    if k_folds == 1 or k_folds < 0:
        k_folds = 0
    n_hold = int(round(holdout * n))
    if n - n_hold < max(k_folds, 2):
        raise ValueError(f"too few rows ({n}) for holdout={holdout} and k_folds={k_folds}")
    start = time.perf_counter()
    to_raw, from_raw = _transforms(params0, positive, bounds)
    raw0 = to_raw(params0)
    perm = np.asarray(jax.random.permutation(key, n))
    hold_mask = np.zeros(n, bool)
    hold_mask[perm[:n_hold]] = True
    rest = perm[n_hold:]
    predict = jax.vmap(model, in_axes=(None, 0))

    def objective(raw, w):
        pred = predict(from_raw(raw), inputs)
        if loss == "log":
            r = jnp.log(jnp.abs(pred) + 1e-300) - jnp.log(y)
        elif loss == "relative":
            r = (pred - y) / y
        else:
            r = pred - y
        r = jnp.where(w > 0, r, 0.0)
        data = jnp.sum(w * r**2) / jnp.maximum(jnp.sum(w), 1.0)
        reg = sum(jnp.sum((a - b) ** 2) for a, b in zip(jax.tree_util.tree_leaves(raw),
                                                        jax.tree_util.tree_leaves(raw0)))
        return data + l2 * reg

    if optimizer == "lbfgs":
        opt = optax.lbfgs()
    else:
        opt = optax.adam(learning_rate)

    def fit(w):
        fun = lambda raw: objective(raw, w)  # noqa: E731
        vg = optax.value_and_grad_from_state(fun) if optimizer == "lbfgs" else jax.value_and_grad(fun)

        def step(carry, _):
            raw, st = carry
            if optimizer == "lbfgs":
                val, g = vg(raw, state=st)
                upd, st = opt.update(g, st, raw, value=val, grad=g, value_fn=fun)
            else:
                val, g = vg(raw)
                upd, st = opt.update(g, st, raw)
            return (optax.apply_updates(raw, upd), st), val

        (raw, _), hist = jax.lax.scan(step, (raw0, opt.init(raw0)), None, length=int(steps))
        return raw, hist

    fit_j = jax.jit(fit)
    cv, fold_params = [], None
    if k_folds >= 2:
        folds = np.array_split(rest, k_folds)
        train_w = np.zeros((k_folds, n))
        for i in range(k_folds):
            train_w[i, rest] = 1.0
            train_w[i, folds[i]] = 0.0
        raws, _ = jax.jit(jax.vmap(fit))(jnp.asarray(train_w))
        fold_params = jax.vmap(from_raw)(raws)
        preds = jax.vmap(lambda r: predict(from_raw(r), inputs))(raws)
        for i in range(k_folds):
            m = np.zeros(n, bool)
            m[folds[i]] = True
            cv.append(_errors(preds[i], y, m))
    w_all = np.zeros(n)
    w_all[rest] = 1.0
    raw, hist = fit_j(jnp.asarray(w_all))
    params = from_raw(raw)
    pred = predict(params, inputs)
    train = _errors(pred, y, w_all > 0)
    hold = _errors(pred, y, hold_mask) if n_hold else None
    cv_mape = float(np.mean([e.mape for e in cv])) if cv else math.nan
    params = jax.tree_util.tree_map(lambda a: np.asarray(a), params)
    return CalibrationResult(params, train, cv, cv_mape, hold, fold_params, np.asarray(hist),
                             time.perf_counter() - start)
