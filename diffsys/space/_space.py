"""Declarative design spaces over a base spec pytree.

A :class:`DesignSpace` maps *paths* into a base spec (``"accel.memory.hbm.bandwidth_Bps"``) — or plain names when
there is no base — to :mod:`domains <diffsys.space._domains>`. A *point* is a ``dict`` from path to a JAX float
(scalar, or a batch). ``space.apply(point)`` returns the base spec with those leaves replaced, ready for a model.

Path syntax: dot-separated parts; a part is an attribute name, a dict key, an integer index into a tuple/list, or
the ``name`` of an element of a tuple of named specs (``memory.hbm`` picks the level whose ``name == "hbm"``).

Grids enumerate the Cartesian product of every domain's grid in mixed radix (the *last* parameter varies fastest).
Decoding runs inside ``jit`` from a chunk's starting digits plus a local offset, so spaces far larger than 2³¹ points
are enumerated with 32-bit integers and fixed shapes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from typing import Callable, Mapping

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..primitives import relu
from ._domains import Domain


@dataclasses.dataclass(frozen=True)
class Constraint:
    """A constraint on a point: ``fn(point) <= 0`` (``kind="ineq"``) or ``fn(point) == 0`` (``kind="eq"``).

    ``violation`` is ``max(g, 0)`` or ``|g|`` — zero when satisfied, growing smoothly with the violation; ``tol``
    is the slack accepted as satisfied (equalities on relaxed points are never exact).
    """

    fn: Callable
    name: str = "constraint"
    kind: str = "ineq"
    tol: float = 1e-6

    def __post_init__(self):
        if self.kind not in ("ineq", "eq"):
            raise ValueError(f"Constraint.kind must be 'ineq' or 'eq', got {self.kind!r}")

    def violation(self, point, temperature=0.0):
        g = jnp.asarray(self.fn(point))
        return relu(g, temperature) if self.kind == "ineq" else jnp.abs(g)


def product_equals(names, total, name=None) -> Constraint:
    """``∏ point[n] == total`` as ``log(∏) - log(total) == 0`` (scale-free; e.g. ``tp·pp·dp == n_gpus``)."""
    names = tuple(names)
    return Constraint(lambda p: sum(jnp.log(p[n]) for n in names) - math.log(total),
                      name or f"{'*'.join(names)}=={total}", "eq", 1e-5)


def less_equal(fn, bound, name="less_equal") -> Constraint:
    """``fn(point) <= bound``, normalised by ``|bound|`` so violations are relative."""
    scale = abs(bound) if bound else 1.0
    return Constraint(lambda p: (fn(p) - bound) / scale, name, "ineq")


def _split(path: str):
    return tuple(int(p) if p.lstrip("-").isdigit() else p for p in path.split("."))


def _step(obj, part):
    if isinstance(obj, Mapping):
        if part not in obj:
            raise KeyError(part)
        return obj[part]
    if isinstance(obj, (tuple, list)):
        if isinstance(part, int):
            return obj[part]
        for item in obj:
            if getattr(item, "name", None) == part:
                return item
        raise KeyError(part)
    if isinstance(part, int) or not hasattr(obj, part):
        raise KeyError(part)
    return getattr(obj, part)


def get_path(tree, path: str):
    """The leaf of ``tree`` at ``path`` (raises ``KeyError`` naming the path and the failing part)."""
    obj = tree
    for part in _split(path):
        try:
            obj = _step(obj, part)
        except (KeyError, IndexError):
            raise KeyError(f"path {path!r}: no {part!r} in {type(obj).__name__}") from None
    return obj


class DesignSpace:
    """A design space: named domains, an optional base spec and constraints.

    Args:
        params: mapping from path (or name) to :class:`Domain`. Order matters for grids (last varies fastest).
        base: optional base spec pytree; :meth:`apply` substitutes point values into it.
        constraints: :class:`Constraint` objects evaluated on points.
    """

    def __init__(self, params: Mapping[str, Domain], base=None, constraints=()):
        if not params:
            raise ValueError("DesignSpace needs at least one parameter")
        for name, dom in params.items():
            if not isinstance(dom, Domain):
                raise TypeError(f"DesignSpace parameter {name!r}: expected a Domain, got {type(dom).__name__}")
            if base is not None:
                leaf = get_path(base, name)
                # ``None``: an optional numeric field left unset (e.g. ``Dimension.algorithm``); points set it
                if not (leaf is None or isinstance(leaf, (jax.Array, np.ndarray, float, int))):
                    raise TypeError(f"path {name!r} points to a {type(leaf).__name__}, not a numeric leaf")
        self.params = dict(params)
        self.names = tuple(self.params)
        self.base = base
        self.constraints = tuple(constraints)
        self.radices = tuple(d.size for d in self.params.values())

    # -- sizes and fingerprints ---------------------------------------------------------------------------------
    @property
    def size(self) -> int:
        """Number of grid points (Python int; may exceed 2⁶³ for huge spaces)."""
        return math.prod(self.radices)

    @property
    def ndim(self) -> int:
        return len(self.names)

    def fingerprint(self) -> str:
        """A stable hash of the space's structure (used to refuse resuming a checkpoint of another space)."""
        text = repr([(n, repr(d)) for n, d in self.params.items()]) + repr([c.name for c in self.constraints])
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def __repr__(self):
        inner = ", ".join(f"{n}: {d!r}" for n, d in self.params.items())
        return f"DesignSpace({{{inner}}}, size={self.size})"

    # -- grid decoding ------------------------------------------------------------------------------------------
    def digits(self, index: int) -> np.ndarray:
        """Mixed-radix digits of a (Python, arbitrary-size) grid index, as int32."""
        if not 0 <= index < self.size:
            raise IndexError(f"grid index must be in [0, {self.size}), got {index}")
        out = np.zeros(self.ndim, np.int32)
        for i in range(self.ndim - 1, -1, -1):
            index, out[i] = divmod(index, self.radices[i])
        return out

    def _add_offset(self, base_digits, offset):
        """Digits of ``base + offset`` (``offset`` an int32 array, broadcast) with carry, inside jit.

        Returns the digits (``(..., ndim)``) and an overflow flag (``True`` past the end of the grid).
        """
        offset = jnp.asarray(offset, jnp.int32)
        carry = offset
        digits = [None] * self.ndim
        for i in range(self.ndim - 1, -1, -1):
            r = self.radices[i]
            s = base_digits[i] + carry
            digits[i] = s % r
            carry = s // r
        return jnp.stack(digits, axis=-1), carry > 0

    def decode(self, digits):
        """A point from grid digits (``(..., ndim)`` ints), computed inside jit."""
        return {n: d.grid_value(digits[..., i]) for i, (n, d) in enumerate(self.params.items())}

    def grid_chunk(self, base_digits, count: int):
        """``count`` consecutive grid points starting at ``base_digits`` (from :meth:`digits`), and a validity
        mask (``False`` past the end of the grid). Runs inside jit with fixed shapes."""
        digits, overflow = self._add_offset(jnp.asarray(base_digits, jnp.int32), jnp.arange(count, dtype=jnp.int32))
        return self.decode(digits), ~overflow

    def grid_point(self, index: int):
        """The grid point at a (Python int) index."""
        return self.decode(jnp.asarray(self.digits(index)))

    # -- sampling and reparametrization -------------------------------------------------------------------------
    def sample(self, key, n: int | tuple = ()):
        """``n`` independent uniform samples (log-uniform on log domains, uniform over lattices)."""
        shape = (n,) if isinstance(n, int) else tuple(n)
        keys = jax.random.split(key, self.ndim)
        return {name: d.sample(k, shape) for k, (name, d) in zip(keys, self.params.items())}

    def to_unconstrained(self, point):
        return {n: d.to_unconstrained(point[n]) for n, d in self.params.items()}

    def from_unconstrained(self, u):
        return {n: d.from_unconstrained(u[n]) for n, d in self.params.items()}

    def discretize(self, point):
        """Exact lattice projection of every coordinate (continuous ones are clipped to their interval)."""
        return {n: d.discretize(point[n]) for n, d in self.params.items()}

    def relax(self, point, temperature):
        """Soft projection at ``temperature`` (``0`` gives :meth:`discretize`)."""
        return {n: d.relax(point[n], temperature) for n, d in self.params.items()}

    def contains(self, point):
        ok = jnp.asarray(True)
        for n, d in self.params.items():
            ok = ok & d.contains(point[n])
        return ok

    # -- vector views (for optimizers) --------------------------------------------------------------------------
    def to_vector(self, point):
        return jnp.stack([jnp.asarray(point[n], dtype=float) for n in self.names], axis=-1)

    def from_vector(self, x):
        return {n: x[..., i] for i, n in enumerate(self.names)}

    @property
    def lower(self):
        return np.array([d.lower for d in self.params.values()])

    @property
    def upper(self):
        return np.array([d.upper for d in self.params.values()])

    # -- constraints --------------------------------------------------------------------------------------------
    def violations(self, point, temperature=0.0):
        """Per-constraint violation amounts, stacked on the last axis (zeros when there are no constraints)."""
        if not self.constraints:
            first = jnp.asarray(point[self.names[0]])
            return jnp.zeros(first.shape + (0,), dtype=jnp.result_type(float, first))
        return jnp.stack([c.violation(point, temperature) for c in self.constraints], axis=-1)

    def feasible(self, point):
        """``True`` where every constraint holds (within its tolerance)."""
        if not self.constraints:
            return jnp.ones(jnp.shape(point[self.names[0]]), bool)
        ok = [c.violation(point) <= c.tol for c in self.constraints]
        return jnp.all(jnp.stack(ok, axis=-1), axis=-1)

    # -- substitution into the base spec ------------------------------------------------------------------------
    def apply(self, point, base=None):
        """The base spec with the point's values substituted at their paths (the point itself when no base).

        Values are cast to the dtype of the leaf they replace, so a float32 spec stays float32; an optional field
        left at ``None`` in the base takes the point's value as the default float.
        """
        base = self.base if base is None else base
        if base is None:
            return dict(point)
        names = self.names
        leaves = [get_path(base, n) for n in names]
        values = [jnp.asarray(point[n], dtype=jnp.result_type(float if leaf is None else leaf))
                  for n, leaf in zip(names, leaves)]
        return eqx.tree_at(lambda t: [get_path(t, n) for n in names], base, values, is_leaf=lambda x: x is None)

    def label(self, point) -> dict:
        """A human-readable dict for one concrete point (categorical options by label, integers as ``int``)."""
        from ._domains import Categorical, Continuous

        out = {}
        for n, d in self.params.items():
            v = float(np.asarray(point[n]))
            if isinstance(d, Categorical):
                out[n] = d.label(v)
            elif isinstance(d, Continuous):
                out[n] = v
            else:
                out[n] = int(round(v))
        return out
