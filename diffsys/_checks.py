"""Input validation shared by every family: clear errors that name the field and the valid range."""

from __future__ import annotations

import math

import numpy as np


def check_range(name: str, value, lo=None, hi=None, *, lo_open=False, hi_open=False, allow_nan=False):
    """Raise ``ValueError`` unless every element of a *concrete* ``value`` lies in the range.

    Traced values (inside ``jit``/``vmap``) are not checked here; models flag those as metrics instead.
    """
    try:
        arr = np.asarray(value, dtype=float)
    except Exception:  # traced or non-numeric: nothing to check eagerly
        if not hasattr(value, "aval"):
            raise TypeError(f"{name} must be numeric, got {type(value).__name__}") from None
        return value
    lo_s = "-inf" if lo is None else f"{lo:g}"
    hi_s = "inf" if hi is None else f"{hi:g}"
    rng = f"{'(' if lo_open else '['}{lo_s}, {hi_s}{')' if hi_open else ']'}"
    if not allow_nan and np.any(np.isnan(arr)):
        raise ValueError(f"{name} must be a number in {rng}, got NaN")
    bad = np.zeros(arr.shape, bool)
    if lo is not None:
        bad |= (arr <= lo) if lo_open else (arr < lo)
    if hi is not None:
        bad |= (arr >= hi) if hi_open else (arr > hi)
    if np.any(bad):
        shown = arr[bad].ravel()[0]
        raise ValueError(f"{name} must be in {rng}, got {shown:g}")
    return value


def check_positive(name: str, value, *, allow_zero=False, allow_inf=True):
    hi = None if allow_inf else math.inf
    return check_range(name, value, 0.0, hi, lo_open=not allow_zero, hi_open=not allow_inf)


def check_choice(name: str, value, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {sorted(map(str, choices))}, got {value!r}")
    return value


def check_integer(name: str, value, lo=None, hi=None):
    check_range(name, value, lo, hi)
    arr = np.asarray(value, dtype=float)
    if np.any(arr != np.round(arr)):
        raise ValueError(f"{name} must be an integer, got {arr.ravel()[0]:g}")
    return value


def check_keys(where: str, given, allowed):
    """Reject unknown keys in a user-provided mapping (e.g. a JSON file), listing the allowed ones."""
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")
