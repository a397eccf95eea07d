"""Package and material parameters of the compact thermal model, with HotSpot 6's defaults.

Field names follow HotSpot's configuration names (``-t_chip``, ``-k_sink``, ``-r_convec``, ...) so a HotSpot
``.config`` file maps one-to-one. Defaults are those of HotSpot 6 ``default_thermal_config()`` (temperature.c):
silicon 0.15 mm, k = 100 W/(m·K), c_v = 1.75 MJ/(m³·K); TIM 20 µm, 4 W/(m·K), 4 MJ/(m³·K); copper spreader
30 mm × 1 mm and sink 60 mm × 6.9 mm, 400 W/(m·K), 3.55 MJ/(m³·K); convection 0.1 K/W and 140.4 J/K; ambient 45 °C.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp

from .._checks import check_choice, check_integer, check_positive, check_range
from .._pytree import as_float

_f = {"converter": as_float}


class ThermalConfig(eqx.Module):
    """Thermal package: chip, thermal interface material (TIM), heat spreader, heat sink and convection.

    Thicknesses ``t_*`` and sides ``s_*`` in metres, conductivities ``k_*`` in W/(m·K), volumetric heat capacities
    ``p_*`` in J/(m³·K), ``r_convec`` in K/W, ``c_convec`` in J/K, temperatures in kelvin, ``sampling_intvl`` in s.
    ``model_type``, ``grid_rows``, ``grid_cols``, ``grid_map_mode`` and ``block_omit_lateral`` are structure.
    """

    t_chip: jnp.ndarray = eqx.field(default=0.15e-3, **_f)
    k_chip: jnp.ndarray = eqx.field(default=100.0, **_f)
    p_chip: jnp.ndarray = eqx.field(default=1.75e6, **_f)
    c_convec: jnp.ndarray = eqx.field(default=140.4, **_f)
    r_convec: jnp.ndarray = eqx.field(default=0.1, **_f)
    s_sink: jnp.ndarray = eqx.field(default=60e-3, **_f)
    t_sink: jnp.ndarray = eqx.field(default=6.9e-3, **_f)
    k_sink: jnp.ndarray = eqx.field(default=400.0, **_f)
    p_sink: jnp.ndarray = eqx.field(default=3.55e6, **_f)
    s_spreader: jnp.ndarray = eqx.field(default=30e-3, **_f)
    t_spreader: jnp.ndarray = eqx.field(default=1e-3, **_f)
    k_spreader: jnp.ndarray = eqx.field(default=400.0, **_f)
    p_spreader: jnp.ndarray = eqx.field(default=3.55e6, **_f)
    t_interface: jnp.ndarray = eqx.field(default=20e-6, **_f)
    k_interface: jnp.ndarray = eqx.field(default=4.0, **_f)
    p_interface: jnp.ndarray = eqx.field(default=4.0e6, **_f)
    ambient: jnp.ndarray = eqx.field(default=45 + 273.15, **_f)
    init_temp: jnp.ndarray = eqx.field(default=60 + 273.15, **_f)
    sampling_intvl: jnp.ndarray = eqx.field(default=3.333e-6, **_f)
    thermal_threshold: jnp.ndarray = eqx.field(default=81.8 + 273.15, **_f)
    model_type: str = eqx.field(default="block", static=True)
    block_omit_lateral: bool = eqx.field(default=False, static=True)
    grid_rows: int = eqx.field(default=64, static=True)
    grid_cols: int = eqx.field(default=64, static=True)
    grid_map_mode: str = eqx.field(default="center", static=True)

    def __check_init__(self):
        for name in ("t_chip", "s_sink", "t_sink", "s_spreader", "t_spreader", "t_interface",
                     "k_chip", "k_sink", "k_spreader", "k_interface"):
            check_positive(f"ThermalConfig.{name}", getattr(self, name), allow_inf=False)
        for name in ("p_chip", "p_sink", "p_spreader", "p_interface", "c_convec"):
            check_positive(f"ThermalConfig.{name}", getattr(self, name), allow_inf=False)
        check_positive("ThermalConfig.r_convec", self.r_convec, allow_inf=False)
        check_range("ThermalConfig.ambient", self.ambient, 0.0, None, lo_open=True)
        check_range("ThermalConfig.init_temp", self.init_temp, 0.0, None, lo_open=True)
        check_positive("ThermalConfig.sampling_intvl", self.sampling_intvl, allow_inf=False)
        check_choice("ThermalConfig.model_type", self.model_type, ("block", "grid"))
        check_choice("ThermalConfig.grid_map_mode", self.grid_map_mode, ("avg", "min", "max", "center"))
        check_integer("ThermalConfig.grid_rows", self.grid_rows, 1, 4096)
        check_integer("ThermalConfig.grid_cols", self.grid_cols, 1, 4096)
        try:
            if float(self.s_spreader) > float(self.s_sink):
                raise ValueError(f"ThermalConfig.s_spreader ({float(self.s_spreader):g} m) must not exceed "
                                 f"s_sink ({float(self.s_sink):g} m)")
        except TypeError:  # traced
            pass


#: HotSpot 6's default package (``default_thermal_config()``).
DEFAULT_CONFIG = ThermalConfig()
