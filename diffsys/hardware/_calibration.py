"""Calibrated kernel constants shipped with the presets, with their provenance.

Each kernel model (``gemm``, ``attention``, ``collectives``, ...) keeps its fitted constants in one data file,
``diffsys/hardware/calibration/<kind>.json``::

    {"provenance": {"data": "...", "fit": "...", "split": "...", "script": "...", "date": "..."},
     "devices": {"h100_sxm": {"bf16": {"launch_s": 2.4e-6, ...}, "fp8": {...}},
                 "*": {"bf16": {...}}}}

``devices`` is keyed by the preset's canonical name (the builder's name: ``a100_80gb``, ``h100_sxm``, ``h200``);
the entry ``"*"`` holds the constants every other preset uses (the physics-derived defaults, or a fit that is meant
to carry to unfitted GPUs). The constants end up as array leaves in :attr:`Accelerator.calibration`, so they are
swept, fitted and differentiated like any datasheet figure.
"""

from __future__ import annotations

import functools
import json
import os

_DIR = os.path.join(os.path.dirname(__file__), "calibration")


@functools.lru_cache(maxsize=None)
def _read(kind: str) -> dict:
    path = os.path.join(_DIR, f"{kind}.json")
    with open(path) as f:
        data = json.load(f)
    if not isinstance(data, dict) or not isinstance(data.get("devices"), dict):
        raise ValueError(f"{path}: expected an object with a 'devices' mapping")
    return data


def calibration_kinds() -> tuple[str, ...]:
    """Kernel kinds that ship calibrated constants (one data file each)."""
    if not os.path.isdir(_DIR):
        return ()
    return tuple(sorted(f[:-5] for f in os.listdir(_DIR) if f.endswith(".json")))


def calibration_provenance(kind: str) -> dict:
    """Where the constants of ``kind`` come from: data set, fit method, fit/report split, script, date."""
    if kind not in calibration_kinds():
        raise ValueError(f"unknown calibration kind {kind!r}; known: {list(calibration_kinds())}")
    return dict(_read(kind).get("provenance", {}))


def preset_calibration(preset_key: str) -> dict:
    """``{kind: {dtype: {name: float}}}`` for the preset ``preset_key`` (its own fit, else the ``"*"`` entry)."""
    out = {}
    for kind in calibration_kinds():
        devices = _read(kind)["devices"]
        table = devices.get(preset_key, devices.get("*"))
        if table:
            out[kind] = {d: dict(c) for d, c in table.items()}
    return out
