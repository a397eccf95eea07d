"""Convergence status of the library's iterative solves (optimistix / lineax result codes) as metrics and logs.

Solves run with ``throw=False`` so that a batch under ``jit``/``vmap`` never aborts on one bad point; the result code
becomes a boolean ``converged`` leaf, and a non-converged solve is logged at WARNING through the calling module's
logger from inside compiled code (``jax.debug.callback``).
"""

from __future__ import annotations

import functools
import logging

import jax
import jax.numpy as jnp
import numpy as np


def succeeded(result) -> jnp.ndarray:
    """Boolean array: the optimistix or lineax ``RESULTS`` value is ``successful``."""
    return result == result._enumeration.successful


def _log_unconverged(converged, *, logger: logging.Logger, what: str):
    ok = np.asarray(converged)
    if not np.all(ok):
        logger.warning("%s did not converge at %d of %d points", what, int(ok.size - np.count_nonzero(ok)), ok.size)


def log_unconverged(logger: logging.Logger, converged, what: str) -> None:
    """Log ``what`` at WARNING (with the count of failed points) when any ``converged`` entry is False; works
    eagerly and inside ``jit``/``vmap``/``grad``. Skipped without a host callback when WARNING is disabled."""
    if not logger.isEnabledFor(logging.WARNING):
        return
    jax.debug.callback(functools.partial(_log_unconverged, logger=logger, what=what), converged)
