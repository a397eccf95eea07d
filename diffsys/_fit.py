"""Least-squares fitting of model constants to measurements (optimistix Levenberg–Marquardt).

One routine for every calibration in the library (kernel constants, collective floors, training-step constants), so
they share one solver, one parametrization and one report format:

* positive constants are fitted in log space (``log_params``), so a constant never changes sign;
* residuals are *relative* by default, ``(pred - meas) / meas``, the quantity MAPE reports;
* the solver is :class:`optimistix.LevenbergMarquardt` (Moré 1978), run under ``jit`` with ``throw=False`` and its
  result code returned, so a failed fit is reported instead of raised.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx


class FitResult(NamedTuple):
    """Fitted constants (same pytree as the initial guess), solver status and the fit's own error.

    Attributes:
        params: fitted constants (positive leaves, exponentiated back from log space).
        success: True when the solver converged (``optimistix.RESULTS.successful``).
        steps: solver iterations taken.
        mape: mean absolute relative error on the fitted rows (fraction, 0.05 = 5 %).
        max_error: largest absolute relative error on the fitted rows.
    """

    params: dict
    success: bool
    steps: int
    mape: float
    max_error: float


def error_stats(predicted, measured) -> dict:
    """``{"mape", "max", "median_bias", "n"}`` of ``predicted`` against ``measured`` (fractions, not percent)."""
    p = np.asarray(predicted, dtype=float)
    m = np.asarray(measured, dtype=float)
    rel = (p - m) / m
    return {"mape": float(np.mean(np.abs(rel))), "max": float(np.max(np.abs(rel))),
            "median_bias": float(np.median(rel)), "n": int(rel.size)}


def fit_least_squares(predict: Callable, params0: dict, inputs, measured, *, relative: bool = True,
                      max_steps: int = 512, rtol: float = 1e-8, atol: float = 1e-10) -> FitResult:
    """Fit positive constants ``params`` so that ``predict(params, inputs) ≈ measured``.

    Args:
        predict: ``predict(params, inputs) -> array`` of the same shape as ``measured``; pure JAX.
        params0: initial guess, a pytree of positive numbers (fitted in log space).
        inputs: any pytree of arrays the model needs per row (passed through unchanged).
        measured: measured values (positive when ``relative``).
        relative: minimise relative residuals (default) instead of absolute ones.
    """
    measured = jnp.asarray(measured)
    log0 = jax.tree_util.tree_map(lambda v: jnp.log(jnp.asarray(v, dtype=measured.dtype)), params0)

    def residuals(log_params, args):
        x, meas = args
        pred = predict(jax.tree_util.tree_map(jnp.exp, log_params), x)
        return (pred - meas) / meas if relative else pred - meas

    solver = optx.LevenbergMarquardt(rtol=rtol, atol=atol)
    sol = optx.least_squares(residuals, solver, log0, args=(inputs, measured), max_steps=max_steps, throw=False)
    params = jax.tree_util.tree_map(lambda v: float(jnp.exp(v)), sol.value)
    stats = error_stats(predict(jax.tree_util.tree_map(jnp.exp, sol.value), inputs), measured)
    return FitResult(params, bool(sol.result == optx.RESULTS.successful), int(sol.stats["num_steps"]),
                     stats["mape"], stats["max"])
