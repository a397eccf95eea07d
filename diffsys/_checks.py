"""Input validation shared by every family: clear errors that name the field and the valid range."""

from __future__ import annotations

import math

import jax
import numpy as np


def check_range(name: str, value, lo=None, hi=None, *, lo_open=False, hi_open=False, allow_nan=False,
                allow_inf=False):
    """Raise ``ValueError`` unless every element of a *concrete* ``value`` lies in the range. NaN is rejected
    unless ``allow_nan``, and ±inf unless ``allow_inf`` (an unbounded range still means finite values: an infinite
    count or latency makes every metric non-finite).

    Traced values (inside ``jit``/``vmap``) are not checked here; models flag those as metrics instead.
    """
    if isinstance(value, jax.core.Tracer):  # traced: skipped before ``np.asarray``, whose conversion error walks
        return value  # the whole trace to name the value's origin (most of a large model's tracing time)
    try:
        arr = np.asarray(value, dtype=float)
    except Exception:  # traced or non-numeric: nothing to check eagerly
        if not hasattr(value, "aval"):
            raise ValueError(f"{name} must be numeric, got {type(value).__name__}") from None
        return value
    lo_s = "-inf" if lo is None else f"{lo:g}"
    hi_s = "inf" if hi is None else f"{hi:g}"
    rng = f"{'(' if lo_open else '['}{lo_s}, {hi_s}{')' if hi_open else ']'}"
    if not allow_nan and np.any(np.isnan(arr)):
        raise ValueError(f"{name} must be a number in {rng}, got NaN")
    if not allow_inf and np.any(np.isinf(arr)):
        raise ValueError(f"{name} must be a finite number in {rng}, got {arr[np.isinf(arr)].ravel()[0]:g}")
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
    """``value > 0`` (``>= 0`` with ``allow_zero``); ``inf`` is accepted unless ``allow_inf=False`` (for fields where
    it means "unlimited", e.g. a NIC bandwidth cap)."""
    hi = None if allow_inf else math.inf
    return check_range(name, value, 0.0, hi, lo_open=not allow_zero, hi_open=not allow_inf, allow_inf=allow_inf)


def check_choice(name: str, value, choices):
    try:
        known = value in choices
    except TypeError:  # an unhashable value (a list from a JSON file) is never a valid choice
        known = False
    if not known:
        raise ValueError(f"{name} must be one of {sorted(map(str, choices))}, got {value!r}"
                         f"{did_you_mean(value, choices)}")
    return value


def check_integer(name: str, value, lo=None, hi=None):
    check_range(name, value, lo, hi)
    arr = np.asarray(value, dtype=float)
    if np.any(arr != np.round(arr)):
        raise ValueError(f"{name} must be an integer, got {arr.ravel()[0]:g}")
    return value


def check_keys(where: str, given, allowed):
    """Reject a value that is not a mapping, and unknown keys in a user-provided mapping (e.g. a JSON file), listing
    the allowed ones with a suggestion for a misspelt key."""
    if not isinstance(given, dict):
        raise ValueError(f"{where}: expected an object with keys from {sorted(allowed)}, got {given!r:.60}")
    unknown = sorted(map(str, set(given) - set(allowed)))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}"
                         f"{did_you_mean(unknown[0], allowed)}")


# --- the input boundary of commands and file readers -------------------------------------------------------------

#: largest integer a PRNG seed may be (``jax.random.key`` takes a signed 64-bit seed)
SEED_MAX = 2**63 - 1


def did_you_mean(value, choices) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``choices`` to ``value`` (``difflib``), or ``""``."""
    import difflib

    close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def check_name(name: str, value, choices):
    """Raise ``ValueError`` unless ``value`` is one of ``choices``, listing them and suggesting the closest."""
    choices = tuple(choices)
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(str, choices))}; got {value!r}"
                         f"{did_you_mean(value, choices)}")
    return value


def _range_text(lo, hi, lo_open, hi_open, unit=""):
    def fmt(v):
        return str(v) if isinstance(v, int) else f"{v:g}"

    lo_s = "-inf" if lo is None else fmt(lo)
    hi_s = "inf" if hi is None else fmt(hi)
    return f"{'(' if lo_open else '['}{lo_s}, {hi_s}{')' if hi_open else ']'}{' ' + unit if unit else ''}"


def check_number(name: str, value, lo=None, hi=None, *, lo_open=False, hi_open=False, unit="", integer=False):
    """A finite scalar number from user input (a JSON value, a parsed flag) in the range, else ``ValueError`` naming
    ``name``, the valid range and its unit. Strings, booleans, ``None`` and containers are rejected; with
    ``integer`` the value must be integral (returned as ``int``), otherwise it is returned as ``float``."""
    kind = "an integer" if integer else "a finite number"
    rng = _range_text(lo, hi, lo_open, hi_open, unit)
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be {kind} in {rng}, got {value!r}")
    if isinstance(value, (float, np.floating)) and not math.isfinite(value):
        raise ValueError(f"{name} must be {kind} in {rng}, got {float(value)!r}")
    if integer:
        if isinstance(value, (float, np.floating)) and not float(value).is_integer():
            raise ValueError(f"{name} must be {kind} in {rng}, got {float(value)!r}")
        value = int(value)
    else:
        value = float(value)
    bad = ((lo is not None and (value <= lo if lo_open else value < lo))
           or (hi is not None and (value >= hi if hi_open else value > hi)))
    if bad:
        raise ValueError(f"{name} must be {kind} in {rng}, got {value!r}")
    return value


def parse_number(name: str, text, lo=None, hi=None, *, lo_open=False, hi_open=False, unit="", integer=False):
    """:func:`check_number` of a number written as text (a command-line flag, a config value)."""
    if isinstance(text, str):
        t = text.strip()
        try:
            value = int(t) if integer and t.lstrip("+-").isdigit() else float(t)
        except ValueError:
            kind = "an integer" if integer else "a finite number"
            raise ValueError(f"{name} must be {kind} in {_range_text(lo, hi, lo_open, hi_open, unit)}, "
                             f"got {text!r}") from None
    else:
        value = text
    return check_number(name, value, lo, hi, lo_open=lo_open, hi_open=hi_open, unit=unit, integer=integer)


def check_seed(name: str, value):
    """A PRNG seed: an integer in ``[0, SEED_MAX]``."""
    return check_number(name, value, 0, SEED_MAX, integer=True)


def check_finite_tree(where: str, tree):
    """Raise ``ValueError`` naming the first leaf of a concrete pytree that is NaN or infinite."""
    import jax

    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    for path, leaf in leaves:
        try:
            arr = np.asarray(leaf, dtype=float)
        except (TypeError, ValueError):
            continue
        if arr.size and not np.all(np.isfinite(arr)):
            field = jax.tree_util.keystr(path)
            raise ValueError(f"{where}{field}: must be finite, got {arr[~np.isfinite(arr)].ravel()[0]:g}")
    return tree


def arg_number(name: str, lo=None, hi=None, *, lo_open=False, hi_open=False, unit="", integer=False):
    """An ``argparse`` ``type=`` that parses and range-checks a number (errors name the flag and the range)."""
    import argparse

    def parse(text):
        try:
            return parse_number(name, text, lo, hi, lo_open=lo_open, hi_open=hi_open, unit=unit, integer=integer)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e).removeprefix(f"{name} ")) from None

    parse.__name__ = "integer" if integer else "number"
    return parse


def with_suggestion(flag: str, error: ValueError, value) -> ValueError:
    """``error`` (an "unknown X 'v'; known: [...]" message) prefixed by ``flag``, with a "did you mean" for the
    closest known name."""
    import re

    known = re.findall(r"'([^']+)'", str(error).split("known:")[-1]) if "known:" in str(error) else []
    return ValueError(f"{flag}: {error}{did_you_mean(value, known)}")
