"""nccl-tests output: reader (text tables and the CSV look-up tables derived from them) and writer.

nccl-tests (github.com/NVIDIA/nccl-tests) prints one row per size: ``size count type [redop root] time algbw busbw
#wrong time algbw busbw #wrong`` (out-of-place, then in-place; times in µs, bandwidths in GB/s = 1e9 B/s).
"""

from __future__ import annotations

import math
import os
from typing import NamedTuple

import numpy as np

_SUFFIX = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
DTYPE_BYTES = {"int8": 1, "uint8": 1, "char": 1, "half": 2, "float16": 2, "bfloat16": 2, "bf16": 2, "fp16": 2,
               "int32": 4, "uint32": 4, "int": 4, "float": 4, "float32": 4, "fp32": 4, "int64": 8, "uint64": 8,
               "double": 8, "float64": 8, "fp64": 8, "fp8_e4m3": 1, "fp8_e5m2": 1}


class NcclTestsTable(NamedTuple):
    """Rows of an nccl-tests run (out-of-place columns; in-place kept separately when present)."""

    size_B: np.ndarray
    count: np.ndarray
    dtype: tuple
    time_s: np.ndarray
    algbw_Bps: np.ndarray
    busbw_Bps: np.ndarray
    inplace_time_s: np.ndarray
    inplace_busbw_Bps: np.ndarray


#: largest message size the size flags accept (bytes): 1 PiB
MAX_SIZE_B = 2**50


def parse_size(text: str, name: str = "size", *, allow_zero: bool = True) -> int:
    """nccl-tests size flag (``-b 1M``): integer with optional K/M/G/T suffix, powers of 1024; finite, in
    ``[0 (or 1 without allow_zero), 1 PiB]`` bytes."""
    t = str(text).strip().upper().rstrip("B")
    suffix = t[-1] if t and t[-1] in "KMGT" else ""
    num = t[: len(t) - len(suffix)]
    lo = 0 if allow_zero else 1
    rng = f"[{lo}, {MAX_SIZE_B}] bytes (K/M/G/T suffixes, powers of 1024)"
    try:
        value = float(num)
    except ValueError:
        raise ValueError(f"{name} must be a number with an optional K/M/G/T suffix in {rng}, got {text!r}") from None
    if not math.isfinite(value) or not lo <= value * _SUFFIX[suffix] <= MAX_SIZE_B:
        raise ValueError(f"{name} must be in {rng}, got {text!r}")
    return int(value * _SUFFIX[suffix])


def nccl_sizes(min_bytes, max_bytes, step_factor=2, step_bytes=None, *, max_sizes=None) -> list[int]:
    """The sizes nccl-tests visits for ``-b MIN -e MAX -f FACTOR`` (or ``-i STEP``): ``MIN, MIN·f, ... <= MAX``.
    Sizes are > 0 bytes; with ``max_sizes``, a flag combination visiting more sizes raises ``ValueError``."""
    lo = parse_size(min_bytes, "minbytes (-b)", allow_zero=False)
    hi = parse_size(max_bytes, "maxbytes (-e)", allow_zero=False)
    if hi < lo:
        raise ValueError(f"maxbytes ({hi}) must be >= minbytes ({lo})")
    sizes, s = [], lo
    if step_bytes:
        step = parse_size(step_bytes, "stepbytes (-i)", allow_zero=False)
        if max_sizes is not None and (hi - lo) // step + 1 > max_sizes:
            raise ValueError(f"-b {lo} -e {hi} -i {step} visits {(hi - lo) // step + 1:,} sizes; at most "
                             f"{max_sizes:,} (raise -i)")
        while s <= hi:
            sizes.append(s)
            s += step
        return sizes
    try:
        f = float(step_factor)
    except (TypeError, ValueError):
        raise ValueError(f"stepfactor (-f) must be a finite number in (1, {MAX_SIZE_B}], got {step_factor!r}") from None
    if not math.isfinite(f) or f > MAX_SIZE_B or (f <= 1 and lo != hi):
        raise ValueError(f"stepfactor (-f) must be a finite number in (1, {MAX_SIZE_B}], got {step_factor!r}")
    while s <= hi:
        sizes.append(s)
        if lo == hi:
            break
        if max_sizes is not None and len(sizes) > max_sizes:
            raise ValueError(f"-b {lo} -e {hi} -f {step_factor} visits more than {max_sizes:,} sizes (raise -f)")
        s = max(int(s * f), s + 1)
    return sizes


def _num(tok):
    try:
        return float(tok)
    except ValueError:
        return None


def read_nccl_tests(path_or_text) -> NcclTestsTable:
    """Read nccl-tests output: its text table (``#`` comment lines skipped) or a CSV with the header
    ``size(B),count,type,time(ns|us),busbw(GB/s)[,time,busbw]`` (time unit taken from the header)."""
    text = str(path_or_text)
    if "\n" not in text and os.path.exists(text):
        from .._files import read_text

        text = read_text(text, "nccl-tests output")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    rows = []
    if lines and "," in lines[0] and lines[0].lower().startswith("size"):
        header = [h.strip().lower() for h in lines[0].split(",")]
        tcol = [i for i, h in enumerate(header) if h.startswith("time")]
        bcol = [i for i, h in enumerate(header) if h.startswith("busbw")]
        if not tcol or not bcol:
            raise ValueError(f"nccl-tests CSV header needs time and busbw columns, got {lines[0]!r}")
        scale = 1e-9 if "(ns)" in header[tcol[0]] else 1e-6
        for k, ln in enumerate(lines[1:], start=2):
            f = [c.strip() for c in ln.split(",")]
            if len(f) < len(header):
                raise ValueError(f"line {k}: expected {len(header)} fields, got {len(f)}")
            try:
                t = float(f[tcol[0]]) * scale
                ti = float(f[tcol[1]]) * scale if len(tcol) > 1 else np.nan
                b = float(f[bcol[0]]) * 1e9
                bi = float(f[bcol[1]]) * 1e9 if len(bcol) > 1 else np.nan
                size, count = float(f[0]), float(f[1])
            except ValueError:
                raise ValueError(f"line {k}: non-numeric field in {ln!r}") from None
            if not all(map(math.isfinite, (t, b, size, count))) or t <= 0 or size < 0:
                raise ValueError(f"line {k}: size must be >= 0 B and time > 0 s, all finite, in {ln!r}")
            rows.append((size, count, f[2], t, size / t, b, ti, bi))
    else:
        for k, ln in enumerate(lines, start=1):
            if ln.startswith("#"):
                continue
            tok = ln.split()
            if len(tok) < 6 or _num(tok[0]) is None or _num(tok[1]) is None:
                continue  # banner / summary lines
            rest = tok[3:]
            if rest and _num(rest[0]) is None:  # redop column
                rest = rest[1:]
            vals = [_num(x) for x in rest]
            if len(vals) in (7, 9):  # leading root column
                vals = vals[1:]
            if len(vals) < 3 or any(v is None for v in vals[:3]):
                raise ValueError(f"line {k}: cannot parse nccl-tests row {ln!r}")
            if not all(math.isfinite(v) for v in vals[:3] + [float(tok[0]), float(tok[1])]):
                raise ValueError(f"line {k}: non-finite value in nccl-tests row {ln!r}")
            t, a, b = vals[0] * 1e-6, vals[1] * 1e9, vals[2] * 1e9
            ti = vals[4] * 1e-6 if len(vals) >= 7 and vals[4] is not None else np.nan
            bi = vals[6] * 1e9 if len(vals) >= 7 and vals[6] is not None else np.nan
            rows.append((float(tok[0]), float(tok[1]), tok[2], t, a, b, ti, bi))
    if not rows:
        raise ValueError("no nccl-tests rows found")
    cols = list(zip(*rows))
    return NcclTestsTable(np.array(cols[0]), np.array(cols[1]), tuple(cols[2]), np.array(cols[3]),
                          np.array(cols[4]), np.array(cols[5]), np.array(cols[6]), np.array(cols[7]))


def format_nccl_tests(sizes_B, counts, dtype, redop, time_s, algbw_Bps, busbw_Bps, *, root=-1) -> str:
    """Rows in nccl-tests' column layout (out-of-place and in-place columns both filled with the model value,
    ``#wrong`` = ``N/A``)."""
    out = ["#",
           "#                                                              out-of-place                       in-place",
           ("#       size         count      type   redop    root     time   algbw   busbw #wrong     time   algbw   "
            "busbw #wrong"),
           ("#        (B)    (elements)                               (us)  (GB/s)  (GB/s)            (us)  (GB/s)  "
            "(GB/s)")]
    for s, c, t, a, b in zip(sizes_B, counts, time_s, algbw_Bps, busbw_Bps):
        us, ag, bg = float(t) * 1e6, float(a) / 1e9, float(b) / 1e9
        cell = f"{us:8.2f} {ag:7.2f} {bg:7.2f} {'N/A':>6}"
        out.append(f"{int(s):12d} {int(c):13d} {dtype:>9} {redop:>7} {root:7d} {cell} {cell}")
    return "\n".join(out)
