"""Parameter domains: continuous (linear/log), integer, power-of-two, divisor-of-N, categorical.

Every domain is *structure* (a frozen Python object, never traced); the values it produces are JAX floats so models
are defined on the reals. Each domain offers

- ``grid_value(i)``: the i-th grid value, computed inside ``jit`` from an integer index;
- ``sample(key, shape)``: uniform samples (log-uniform for log domains; uniform over lattice points when discrete);
- ``to_unconstrained`` / ``from_unconstrained``: a bijection between the domain's hull ``[lower, upper]`` and ℝ
  (a logistic map, in log coordinates where the domain is logarithmic) for gradient search;
- ``discretize(x)``: the exact projection onto the lattice (nearest value, in the domain's coordinate);
- ``relax(x, temperature)``: a soft projection that tends to ``discretize`` as the temperature goes to zero.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from ..primitives import soft_argmin_weights, soft_round


def _logit(p):
    return jnp.log(p) - jnp.log1p(-p)


@dataclasses.dataclass(frozen=True)
class Domain:
    """Base class. ``log`` selects log coordinates for sampling, reparametrization and nearest-value projection."""

    @property
    def log(self) -> bool:
        return False

    # coordinate transform (identity or log) -------------------------------------------------------------------
    def _fwd(self, x):
        return jnp.log(x) if self.log else x

    def _inv(self, y):
        return jnp.exp(y) if self.log else y

    # to be provided ---------------------------------------------------------------------------------------------
    lower: float = dataclasses.field(init=False, default=0.0)
    upper: float = dataclasses.field(init=False, default=1.0)

    @property
    def size(self) -> int:
        raise NotImplementedError

    def grid_value(self, index):
        raise NotImplementedError

    def sample(self, key, shape=()):
        raise NotImplementedError

    def discretize(self, x):
        raise NotImplementedError

    def relax(self, x, temperature):
        raise NotImplementedError

    # shared -----------------------------------------------------------------------------------------------------
    def _hull(self):
        """The hull's bounds in the domain's coordinate, as Python floats (static, safe inside jit)."""
        f = math.log if self.log else float
        return f(self.lower), f(self.upper)

    def to_unconstrained(self, x, eps=1e-6):
        lo, hi = self._hull()
        if hi == lo:
            return jnp.zeros_like(jnp.asarray(x, dtype=float))
        p = (self._fwd(jnp.asarray(x, dtype=jnp.result_type(float, x))) - lo) / (hi - lo)
        return _logit(jnp.clip(p, eps, 1 - eps))

    def from_unconstrained(self, u):
        lo, hi = self._hull()
        return self._inv(lo + (hi - lo) * jax.nn.sigmoid(u))

    def contains(self, x):
        x = jnp.asarray(x)
        return (x >= self.lower * (1 - 1e-6)) & (x <= self.upper * (1 + 1e-6))


@dataclasses.dataclass(frozen=True)
class Continuous(Domain):
    """A real interval ``[lo, hi]``; ``log=True`` for log-uniform sampling/gridding (``lo > 0``).

    ``grid`` is the number of grid points used when the domain is enumerated (ends included).
    """

    lo: float = 0.0
    hi: float = 1.0
    is_log: bool = False
    grid: int = 16

    def __init__(self, lo, hi, log=False, grid=16):
        lo, hi = float(lo), float(hi)
        if not (math.isfinite(lo) and math.isfinite(hi)) or hi < lo:
            raise ValueError(f"Continuous domain needs finite lo <= hi, got [{lo}, {hi}]")
        if log and lo <= 0:
            raise ValueError(f"Continuous(log=True) needs lo > 0, got lo={lo}")
        if int(grid) < 1:
            raise ValueError(f"Continuous.grid must be >= 1, got {grid}")
        object.__setattr__(self, "lo", lo)
        object.__setattr__(self, "hi", hi)
        object.__setattr__(self, "is_log", bool(log))
        object.__setattr__(self, "grid", int(grid))
        object.__setattr__(self, "lower", lo)
        object.__setattr__(self, "upper", hi)

    @property
    def log(self):
        return self.is_log

    @property
    def size(self):
        return self.grid

    def grid_values(self) -> np.ndarray:
        """The enumerated values (float64, ends exact)."""
        if self.grid == 1:
            return np.array([self.lo])
        return np.geomspace(self.lo, self.hi, self.grid) if self.log else np.linspace(self.lo, self.hi, self.grid)

    def grid_value(self, index):
        return jnp.asarray(self.grid_values(), dtype=float)[jnp.asarray(index)]

    def sample(self, key, shape=()):
        lo, hi = self._hull()
        return self._inv(jax.random.uniform(key, shape, minval=lo, maxval=hi))

    def discretize(self, x):
        return jnp.clip(jnp.asarray(x, dtype=jnp.result_type(float, x)), self.lo, self.hi)

    def relax(self, x, temperature=0.0):
        return self.discretize(x)


@dataclasses.dataclass(frozen=True)
class _Lattice(Domain):
    """A finite, sorted set of real values."""

    values: tuple = ()

    def _set_values(self, values):
        vals = tuple(sorted(float(v) for v in set(values)))
        if not vals:
            raise ValueError(f"{type(self).__name__} has no values")
        object.__setattr__(self, "values", vals)
        object.__setattr__(self, "lower", vals[0])
        object.__setattr__(self, "upper", vals[-1])

    @property
    def size(self):
        return len(self.values)

    def _table(self):
        return jnp.asarray(self.values, dtype=float)

    def grid_value(self, index):
        return self._table()[jnp.asarray(index)]

    def sample(self, key, shape=()):
        return self.grid_value(jax.random.randint(key, shape, 0, self.size))

    def _distances(self, x):
        x = jnp.asarray(x, dtype=jnp.result_type(float, x))
        return jnp.abs(self._fwd(x)[..., None] - self._fwd(self._table()))

    def discretize(self, x):
        return self.grid_value(jnp.argmin(self._distances(x), axis=-1))

    def relax(self, x, temperature=0.0):
        """Soft nearest value: softmax over ``-|coord(x) - coord(v)|/t`` (exact argmin at ``t = 0``)."""
        w = soft_argmin_weights(self._distances(x), temperature=temperature)
        return jnp.sum(w * self._table(), axis=-1)

    def index_of(self, x):
        """Lattice index of the nearest value."""
        return jnp.argmin(self._distances(x), axis=-1)


@dataclasses.dataclass(frozen=True)
class Integer(_Lattice):
    """Integers ``lo, lo+step, ..., <= hi``. Relaxation uses soft rounding (Agustsson & Theis 2020)."""

    lo: int = 0
    hi: int = 1
    step: int = 1

    def __init__(self, lo, hi, step=1):
        lo, hi, step = int(lo), int(hi), int(step)
        if hi < lo or step < 1:
            raise ValueError(f"Integer domain needs lo <= hi and step >= 1, got lo={lo}, hi={hi}, step={step}")
        object.__setattr__(self, "lo", lo)
        object.__setattr__(self, "hi", hi)
        object.__setattr__(self, "step", step)
        self._set_values(range(lo, hi + 1, step))

    def relax(self, x, temperature=0.0):
        x = jnp.asarray(x, dtype=jnp.result_type(float, x))
        k = soft_round((x - self.lo) / self.step, temperature)
        return jnp.clip(self.lo + self.step * k, self.lower, self.upper)


@dataclasses.dataclass(frozen=True)
class PowerOfTwo(_Lattice):
    """Powers of two in ``[lo, hi]`` (both powers of two). Log coordinates; relaxation soft-rounds ``log2 x``."""

    lo: int = 1
    hi: int = 1

    def __init__(self, lo, hi):
        lo, hi = int(lo), int(hi)
        for name, v in (("lo", lo), ("hi", hi)):
            if v < 1 or (v & (v - 1)) != 0:
                raise ValueError(f"PowerOfTwo.{name} must be a power of two >= 1, got {v}")
        if hi < lo:
            raise ValueError(f"PowerOfTwo needs lo <= hi, got lo={lo}, hi={hi}")
        object.__setattr__(self, "lo", lo)
        object.__setattr__(self, "hi", hi)
        self._set_values([2**k for k in range(lo.bit_length() - 1, hi.bit_length())])

    @property
    def log(self):
        return True

    def relax(self, x, temperature=0.0):
        x = jnp.asarray(x, dtype=jnp.result_type(float, x))
        e = soft_round(jnp.log2(jnp.maximum(x, 1e-30)), temperature)
        return jnp.clip(2.0**e, self.lower, self.upper)


@dataclasses.dataclass(frozen=True)
class DivisorOf(_Lattice):
    """Divisors of ``n`` within ``[lo, hi]`` (parallel degrees, tile counts). Log coordinates."""

    n: int = 1

    def __init__(self, n, lo=1, hi=None):
        n = int(n)
        if n < 1:
            raise ValueError(f"DivisorOf.n must be a positive integer, got {n}")
        hi = n if hi is None else int(hi)
        divs = [d for d in range(1, n + 1) if n % d == 0 and lo <= d <= hi]
        if not divs:
            raise ValueError(f"DivisorOf({n}) has no divisor in [{lo}, {hi}]")
        object.__setattr__(self, "n", n)
        self._set_values(divs)

    @property
    def log(self):
        return True


@dataclasses.dataclass(frozen=True)
class Categorical(_Lattice):
    """A choice among ``options``. Numeric options are their own values; other options (strings) are encoded as
    their index in ``vocabulary`` -- the model's full list of names, e.g.
    :data:`diffsys.topologies.DIMENSION_ALGORITHM_CHOICES` -- (default: the options themselves, ``0..K-1``) and
    decoded with :meth:`label`, so a subset such as ``Categorical(("auto", "tree"), vocabulary=...)`` still encodes
    each name as the model reads it. Models evaluate every alternative and combine them with
    :func:`diffsys.primitives.soft_argmin_weights` or with the one-hot of the index."""

    options: tuple = ()

    def __init__(self, options, vocabulary=None):
        options = tuple(options)
        if not options:
            raise ValueError("Categorical needs at least one option")
        if len(set(options)) != len(options):
            raise ValueError(f"Categorical options must be distinct, got {options}")
        numeric = all(isinstance(o, (int, float)) and not isinstance(o, bool) for o in options)
        if numeric:
            if vocabulary is not None:
                raise ValueError("Categorical.vocabulary applies to named (string) options only")
            self._set_values(options)
            object.__setattr__(self, "options", tuple(sorted(options)))
            return
        vocabulary = options if vocabulary is None else tuple(vocabulary)
        unknown = [o for o in options if o not in vocabulary]
        if unknown:
            raise ValueError(f"Categorical options {unknown} are not in the vocabulary {vocabulary}")
        codes = sorted((vocabulary.index(o), o) for o in options)
        object.__setattr__(self, "options", tuple(o for _, o in codes))
        self._set_values(c for c, _ in codes)

    def label(self, value):
        """The option nearest to ``value`` (a concrete number)."""
        idx = int(np.argmin(np.abs(np.asarray(self.values) - float(value))))
        return self.options[idx]

    def one_hot(self, value, temperature=0.0):
        """Weights over the options for ``value`` (exact one-hot at temperature 0)."""
        return soft_argmin_weights(self._distances(value), temperature=temperature)
