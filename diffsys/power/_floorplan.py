"""Floorplans as pytrees: block names (static) with widths, heights and lower-left corners as arrays.

Because the geometry is made of arrays, a thermal model evaluated on a :class:`Floorplan` is differentiable in the
block sizes and positions (the adjacency pattern is a piecewise-constant function of the geometry, the shared edge
lengths and areas are smooth). Units are metres, as in HotSpot's ``.flp`` format (Huang et al., IEEE TVLSI 2006).
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from .._checks import check_positive
from .._pytree import as_float

#: Geometric tolerance of HotSpot's ``eq()`` (util.h ``DELTA``), metres.
EDGE_TOL_M = 1.0e-6


class Floorplan(eqx.Module):
    """Rectangular blocks on one die.

    Attributes:
        names: block names (static structure).
        width_m, height_m: block sizes (n,), metres.
        x_m, y_m: lower-left corners (n,), metres.
    """

    names: tuple = eqx.field(static=True)
    width_m: jnp.ndarray = eqx.field(converter=as_float)
    height_m: jnp.ndarray = eqx.field(converter=as_float)
    x_m: jnp.ndarray = eqx.field(converter=as_float)
    y_m: jnp.ndarray = eqx.field(converter=as_float)

    def __check_init__(self):
        n = len(self.names)
        if n == 0:
            raise ValueError("Floorplan.names must list at least one block")
        if len(set(self.names)) != n:
            dup = sorted({b for b in self.names if self.names.count(b) > 1})
            raise ValueError(f"Floorplan.names must be unique; duplicated: {dup}")
        for field in ("width_m", "height_m", "x_m", "y_m"):
            shape = jnp.shape(getattr(self, field))
            if shape[-1:] != (n,):
                raise ValueError(f"Floorplan.{field} must have shape (..., {n}) (one entry per block), got {shape}")
        check_positive("Floorplan.width_m", self.width_m)
        check_positive("Floorplan.height_m", self.height_m)

    @property
    def n_blocks(self) -> int:
        return len(self.names)

    @property
    def area_m2(self):
        return self.width_m * self.height_m

    @property
    def chip_width_m(self):
        return jnp.max(self.x_m + self.width_m, axis=-1) - jnp.min(self.x_m, axis=-1)

    @property
    def chip_height_m(self):
        return jnp.max(self.y_m + self.height_m, axis=-1) - jnp.min(self.y_m, axis=-1)

    def index(self, name: str) -> int:
        if name not in self.names:
            raise ValueError(f"floorplan has no block {name!r}; blocks: {list(self.names)}")
        return self.names.index(name)

    def at_origin(self) -> Floorplan:
        """The same floorplan translated so that its bounding box starts at (0, 0) (HotSpot does this on read)."""
        return Floorplan(self.names, self.width_m, self.height_m,
                         self.x_m - jnp.min(self.x_m, axis=-1, keepdims=True),
                         self.y_m - jnp.min(self.y_m, axis=-1, keepdims=True))

    def validate(self, *, allow_gaps: bool = False, rel_tol: float = 1e-4) -> Floorplan:
        """Raise ``ValueError`` naming the blocks when two blocks overlap or the blocks leave gaps in the die.

        ``rel_tol`` is relative to the smaller block area (overlap) and to the die area (gaps).
        """
        w, h = np.asarray(self.width_m, float), np.asarray(self.height_m, float)
        x, y = np.asarray(self.x_m, float), np.asarray(self.y_m, float)
        ox = np.minimum((x + w)[:, None], (x + w)[None, :]) - np.maximum(x[:, None], x[None, :])
        oy = np.minimum((y + h)[:, None], (y + h)[None, :]) - np.maximum(y[:, None], y[None, :])
        inter = np.clip(ox, 0, None) * np.clip(oy, 0, None)
        np.fill_diagonal(inter, 0.0)
        area = w * h
        bad = inter > rel_tol * np.minimum(area[:, None], area[None, :])
        if np.any(bad):
            i, j = np.argwhere(np.triu(bad))[0]
            raise ValueError(f"floorplan blocks {self.names[i]!r} and {self.names[j]!r} overlap by "
                             f"{inter[i, j]:.3g} m^2; blocks must not overlap")
        die = (np.max(x + w) - np.min(x)) * (np.max(y + h) - np.min(y))
        gap = die - area.sum()
        if not allow_gaps and gap > rel_tol * die:
            raise ValueError(f"floorplan leaves {gap:.3g} m^2 ({100 * gap / die:.3g}% of the {die:.3g} m^2 die) "
                             "uncovered; fill the gaps with (zero-power) blocks or pass allow_gaps=True")
        return self

    def mirrored_x(self) -> Floorplan:
        """Mirror image about the vertical centre line of the die (used by symmetry checks)."""
        x0 = jnp.min(self.x_m, axis=-1, keepdims=True)
        x1 = jnp.max(self.x_m + self.width_m, axis=-1, keepdims=True)
        return Floorplan(self.names, self.width_m, self.height_m, x0 + x1 - self.x_m - self.width_m, self.y_m)


def floorplan(blocks) -> Floorplan:
    """Build a :class:`Floorplan` from ``[(name, width_m, height_m, x_m, y_m), ...]``."""
    blocks = list(blocks)
    if not blocks:
        raise ValueError("floorplan needs at least one block")
    names = tuple(str(b[0]) for b in blocks)
    arr = np.asarray([[float(v) for v in b[1:5]] for b in blocks])
    return Floorplan(names, arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3])


def grid_floorplan(rows: int, cols: int, width_m: float, height_m: float, prefix: str = "b") -> Floorplan:
    """A die of ``width_m × height_m`` split into ``rows × cols`` equal blocks named ``{prefix}{r}_{c}``."""
    dw, dh = width_m / cols, height_m / rows
    return floorplan([(f"{prefix}{r}_{c}", dw, dh, c * dw, r * dh) for r in range(rows) for c in range(cols)])
