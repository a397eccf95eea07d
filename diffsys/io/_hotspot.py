"""Readers and writers for HotSpot's file formats (HotSpot 6, University of Virginia; Huang et al., TVLSI 2006).

* ``.flp`` floorplan: ``name  width  height  left-x  bottom-y  [specific-heat  resistivity]`` in metres, ``#``
  comments, blank lines ignored;
* ``.ptrace`` power trace: a line of block names, then one line of powers (W) per sampling interval;
* ``.config``: ``-name value`` lines, ``#`` comments; names HotSpot knows but diffsys does not model are accepted
  and listed; names nobody knows are reported;
* ``.steady`` output: ``name<TAB>kelvin`` per node (``%.2f``), HotSpot's node order;
* transient trace: a header of block names, then one line of block temperatures per interval.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .._checks import parse_number
from .._files import atomic_write, write_text

from ..power import Floorplan, ThermalConfig

#: Configuration names whose values diffsys uses (numeric unless listed in ``_STRUCT``).
_USED = ("t_chip", "k_chip", "p_chip", "c_convec", "r_convec", "s_sink", "t_sink", "k_sink", "p_sink",
         "s_spreader", "t_spreader", "k_spreader", "p_spreader", "t_interface", "k_interface", "p_interface",
         "ambient", "init_temp", "sampling_intvl", "thermal_threshold")
_STRUCT = ("model_type", "block_omit_lateral", "grid_rows", "grid_cols", "grid_map_mode")
#: Names HotSpot 6 accepts that either are file names handled by the command line, or select features that must be
#: off (checked), or only concern HotSpot's floorplanner / microfluidic / secondary-path models.
_FILES = ("init_file", "steady_file", "grid_steady_file", "grid_layer_file", "grid_transient_file",
          "package_config_file", "materials_file")
_MUST_BE_OFF = ("model_secondary", "use_microfluidic_cooling", "package_model_used", "detailed_3D_used",
                "dtm_used", "leakage_mode")
_IGNORED = ("r_convec_sec", "c_convec_sec", "n_metal", "t_metal", "t_c4", "s_c4", "n_c4", "s_sub", "t_sub",
            "s_solder", "t_solder", "s_pcb", "t_pcb", "base_proc_freq", "leakage_used",
            "material_chip", "material_sink", "material_spreader", "material_interface",
            "pumping_pressure", "pump_internal_res", "inlet_temperature", "coolant_material", "coolant_capac",
            "coolant_res", "coolant_visc", "wall_material", "wall_capac", "wall_res", "htc", "channel_width",
            "wrap_l2", "l2_label", "model_rim", "rim_thickness", "compact_ratio", "n_orients", "P0", "Davg",
            "Kmoves", "Rcool", "Rreject", "Nmax", "lambdaA", "lambdaT", "lambdaW")
KNOWN_CONFIG_NAMES = frozenset(_USED + _STRUCT + _FILES + _MUST_BE_OFF + _IGNORED)


def _lines(path, what="HotSpot file"):
    from .._files import read_text

    for lineno, raw in enumerate(read_text(path, what).splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if line:
            yield lineno, line


def read_flp(path, *, validate: bool = True, allow_gaps: bool = False) -> Floorplan:
    """Read a HotSpot ``.flp`` floorplan. Raises ``ValueError`` (file and line) on malformed lines, non-positive
    sizes, duplicate names, overlapping blocks, or gaps (unless ``allow_gaps``)."""
    rows = []
    for lineno, line in _lines(path, "floorplan"):
        parts = line.split()
        if len(parts) not in (5, 7):
            raise ValueError(f"{path}:{lineno}: expected 'name width height left-x bottom-y "
                             f"[specific-heat resistivity]', got {len(parts)} fields")
        try:
            vals = [float(v) for v in parts[1:]]
        except ValueError:
            raise ValueError(f"{path}:{lineno}: non-numeric field in {line!r}") from None
        if not all(math.isfinite(v) for v in vals):
            raise ValueError(f"{path}:{lineno}: non-finite value in {line!r}")
        if vals[0] <= 0 or vals[1] <= 0:
            raise ValueError(f"{path}:{lineno}: block {parts[0]!r} width and height must be > 0 m, "
                             f"got {vals[0]:g} x {vals[1]:g}")
        rows.append((parts[0], *vals[:4]))
    if not rows:
        raise ValueError(f"{path}: no blocks in floorplan")
    names = [r[0] for r in rows]
    dup = sorted({b for b in names if names.count(b) > 1})
    if dup:
        raise ValueError(f"{path}: duplicated block name(s) {dup}")
    arr = np.asarray([r[1:] for r in rows], float)
    flp = Floorplan(tuple(names), arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3])
    if validate:
        try:
            flp.validate(allow_gaps=allow_gaps)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None
    return flp


def write_flp(flp: Floorplan, path) -> None:
    """Write a floorplan in HotSpot's ``.flp`` format."""
    with atomic_write(path, "floorplan") as f:
        f.write("# <unit-name>\t<width>\t<height>\t<left-x>\t<bottom-y>\n")
        f.writelines(f"{name}\t{float(flp.width_m[i]):.6f}\t{float(flp.height_m[i]):.6f}\t"
                    f"{float(flp.x_m[i]):.6f}\t{float(flp.y_m[i]):.6f}\n" for i, name in enumerate(flp.names))


class PowerTrace(NamedTuple):
    names: tuple
    power_W: np.ndarray  # (steps, n) in the file's column order

    def for_floorplan(self, flp: Floorplan) -> np.ndarray:
        """Columns reordered to ``flp.names``; every floorplan block must appear in the trace and vice versa."""
        extra = [b for b in self.names if b not in flp.names]
        if extra:
            raise ValueError(f"power trace block(s) {extra} are not in the floorplan; floorplan blocks: "
                             f"{list(flp.names)}")
        missing = [b for b in flp.names if b not in self.names]
        if missing:
            raise ValueError(f"floorplan block(s) {missing} have no column in the power trace")
        order = [self.names.index(b) for b in flp.names]
        return self.power_W[:, order]

    @property
    def average_W(self) -> np.ndarray:
        return self.power_W.mean(axis=0)


def read_ptrace(path, floorplan: Floorplan | None = None) -> PowerTrace:
    """Read a HotSpot ``.ptrace``. With ``floorplan``, names are checked against it (see
    :meth:`PowerTrace.for_floorplan`). Negative or non-finite powers raise ``ValueError``."""
    lines = list(_lines(path, "power trace"))
    if not lines:
        raise ValueError(f"{path}: empty power trace")
    names = tuple(lines[0][1].split())
    dup = sorted({b for b in names if names.count(b) > 1})
    if dup:
        raise ValueError(f"{path}: duplicated block name(s) in the header: {dup}")
    rows = []
    for lineno, line in lines[1:]:
        parts = line.split()
        if len(parts) != len(names):
            raise ValueError(f"{path}:{lineno}: {len(parts)} values for {len(names)} blocks")
        try:
            vals = [float(v) for v in parts]
        except ValueError:
            raise ValueError(f"{path}:{lineno}: non-numeric power in {line!r}") from None
        bad = [names[i] for i, v in enumerate(vals) if not (math.isfinite(v) and v >= 0)]
        if bad:
            raise ValueError(f"{path}:{lineno}: power of block {bad[0]!r} must be a finite number >= 0 W, "
                             f"got {vals[names.index(bad[0])]:g}")
        rows.append(vals)
    if not rows:
        raise ValueError(f"{path}: power trace has a header but no power lines")
    trace = PowerTrace(names, np.asarray(rows, float))
    if floorplan is not None:
        trace.for_floorplan(floorplan)
    return trace


def _write_table(path, names, rows, fmt) -> None:
    """HotSpot's trace layout: a tab-separated header of block names, then one line per interval."""
    rows = np.atleast_2d(np.asarray(rows, float))
    if not np.all(np.isfinite(rows)):
        raise ValueError(f"{path}: refusing to write non-finite values (the model returned NaN or inf)")
    with atomic_write(path, "trace file") as f:
        f.write("\t".join(names) + "\n")
        f.writelines("\t".join(format(v, fmt) for v in row) + "\n" for row in rows)


def write_ptrace(path, names, power_W) -> None:
    """Power trace: header of block names, then one line of block powers (W) per interval."""
    _write_table(path, names, power_W, ".6g")


class HotSpotConfig(NamedTuple):
    """A parsed HotSpot configuration: the thermal model config, the raw ``name -> value`` table, and the names
    that were not recognised (reported, not fatal) or recognised but not modelled (ignored)."""

    thermal: ThermalConfig
    table: dict
    unknown: tuple
    ignored: tuple


def parse_config_pairs(pairs, *, where: str = "config") -> HotSpotConfig:
    """Build a :class:`HotSpotConfig` from ``[(name, value_str), ...]`` (later entries override earlier ones)."""
    table = {}
    for name, value in pairs:
        table[name] = value
    unknown = tuple(k for k in table if k not in KNOWN_CONFIG_NAMES)
    for name in _MUST_BE_OFF:
        if name in table and table[name] not in ("0", "0.0"):
            raise ValueError(f"{where}: -{name} {table[name]} selects a HotSpot feature diffsys does not model; "
                             f"set -{name} 0")
    kw = {}
    for name in _USED:
        if name in table:
            try:
                kw[name] = float(table[name])
            except ValueError:
                raise ValueError(f"{where}: -{name} must be a number, got {table[name]!r}") from None
            if not math.isfinite(kw[name]):
                raise ValueError(f"{where}: -{name} must be a finite number, got {table[name]!r}")
    if "model_type" in table:
        kw["model_type"] = table["model_type"].lower()
    if "grid_map_mode" in table:
        kw["grid_map_mode"] = table["grid_map_mode"].lower()
    for name in ("grid_rows", "grid_cols", "block_omit_lateral"):
        if name in table:
            try:
                v = int(table[name])
            except ValueError:
                raise ValueError(f"{where}: -{name} must be an integer, got {table[name]!r}") from None
            kw[name] = bool(v) if name == "block_omit_lateral" else v
    try:
        thermal = ThermalConfig(**kw)
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None
    ignored = tuple(k for k in table if k in _IGNORED and k != "leakage_used")
    return HotSpotConfig(thermal, table, unknown, ignored)


def read_config(path) -> HotSpotConfig:
    """Read a HotSpot ``.config`` file (``-name value`` lines). Absent entries take HotSpot 6's defaults."""
    pairs = []
    for lineno, line in _lines(path, "HotSpot config"):
        parts = line.split()
        if not parts[0].startswith("-") or len(parts) != 2:
            raise ValueError(f"{path}:{lineno}: expected '-name value', got {line!r}")
        pairs.append((parts[0][1:], parts[1]))
    return parse_config_pairs(pairs, where=str(path))


def format_steady(names, temps_K) -> str:
    """HotSpot's steady-state file body: ``name<TAB>%.2f`` per node."""
    temps_K = np.asarray(temps_K, float)
    if not np.all(np.isfinite(temps_K)):
        bad = [n for n, t in zip(names, temps_K) if not math.isfinite(t)]
        raise ValueError(f"non-finite temperature for node(s) {bad[:5]} (check the power and package inputs)")
    return "".join(f"{n}\t{t:.2f}\n" for n, t in zip(names, temps_K))


def write_steady(path, names, temps_K) -> None:
    """Write a steady-state file atomically (no partial file on failure)."""
    write_text(path, format_steady(names, temps_K), "steady-state file")


def read_steady(path) -> dict:
    """Read a HotSpot steady-state file into ``{node name: kelvin}``."""
    out = {}
    for lineno, line in _lines(path, "steady-state file"):
        parts = line.split()
        if len(parts) != 2:
            raise ValueError(f"{path}:{lineno}: expected 'name value', got {line!r}")
        out[parts[0]] = parse_number(f"{path}:{lineno}: temperature of {parts[0]!r}", parts[1], 0.0, None,
                                     lo_open=True, unit="K")
    return out


def write_ttrace(path, names, block_temps_K) -> None:
    """Transient trace: header of block names, then one line of block temperatures (K) per interval."""
    _write_table(path, names, block_temps_K, ".2f")
