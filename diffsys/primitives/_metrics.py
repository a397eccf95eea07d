"""The model protocol's result type: :class:`Metrics`, the common base of every model's named outputs.

Every diffsys model is a function ``model(spec, *, temperature=0.0) -> Metrics``: ``spec`` is an
``equinox.Module`` (the design), ``temperature`` the *relaxation* temperature of the smooth twins in
:mod:`diffsys.primitives` (0 = exact; never a physical temperature, which is always named with its unit, e.g.
``die_temperature_K``), and the result a subclass of :class:`Metrics`: an ``equinox.Module`` whose fields are the
named metrics (``time_s``, ``energy_J``, ...) plus the two fields every model has:

- ``feasible`` — a bool array: the design satisfies the model's own constraints (fits in memory, under the power
  cap, ...). Infeasibility is a value, never an exception, so one bad point never stops a vmapped batch.
- ``violation`` — a float array ``>= 0``: how far the design is from feasible, smooth where the model is smooth
  (0 when feasible). Searches penalize it; sweeps use ``feasible``.

Both are keyword-only with defaults (``True``, ``0.0``) so an always-feasible model declares only its own fields::

    class OpMetrics(Metrics):
        time_s: jax.Array
        energy_J: jax.Array

    OpMetrics(t, e)                                  # feasible=True, violation=0.0
    OpMetrics(t, e, feasible=m <= cap, violation=relu(m / cap - 1))

A ``Metrics`` is a pytree (``jit``/``vmap``/``grad`` see its array leaves); :meth:`Metrics.metric` selects a field
by name and raises ``ValueError`` naming the unknown metric and the available ones, which is how the sweep engine
and the optimizers check every ``objective=``, ``feasible=`` and reduction name before they run.
"""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp


def _as_bool(x):
    return jnp.asarray(x, dtype=bool)


def _as_array(x):
    return jnp.asarray(x)


class Metrics(eqx.Module):
    """Base class of every model's result (see the module docstring for the protocol).

    Attributes:
        feasible: bool array, the model's own constraints hold (default ``True``).
        violation: float array ``>= 0``, a smooth amount of constraint violation (default ``0.0``).
    """

    feasible: jax.Array = eqx.field(default=True, converter=_as_bool, kw_only=True)
    violation: jax.Array = eqx.field(default=0.0, converter=_as_array, kw_only=True)

    @classmethod
    def metric_names(cls) -> tuple:
        """Every metric this class returns (its field names), ``feasible`` and ``violation`` included."""
        return tuple(f.name for f in dataclasses.fields(cls))

    def metric(self, name: str, what: str = "metric"):
        """The metric called ``name``; ``ValueError`` naming the unknown metric and the available ones."""
        check_metric_names(type(self), (name,), what)
        return getattr(self, name)

    def as_dict(self) -> dict:
        """``{name: value}`` of every metric, in field order."""
        return {n: getattr(self, n) for n in self.metric_names()}

    @classmethod
    def from_values(cls, values, **overrides):
        """An instance from a mapping or NamedTuple of values (extra keys ignored) plus keyword ``overrides``."""
        d = dict(values._asdict() if hasattr(values, "_asdict") else values)
        d.update(overrides)
        return cls(**{n: d[n] for n in cls.metric_names() if n in d})


def metrics_class(name: str, fields, *, module: str, doc: str = "", base: type = Metrics) -> type:
    """A :class:`Metrics` subclass with one array field per name in ``fields`` (in order; ``feasible`` and
    ``violation`` come from the base). Used by the families' protocol entry points to lift an existing result
    NamedTuple into the protocol without restating its fields: ``metrics_class("OpMetrics", Roofline._fields + ...)``.
    """
    ann = {f: jax.Array for f in fields if f not in ("feasible", "violation")}
    ns = {"__annotations__": ann, "__module__": module, "__qualname__": name, "__doc__": doc or f"{name} metrics."}
    return type(base)(name, (base,), ns)


def check_metric_names(metrics, names, what: str = "metric") -> None:
    """Raise ``ValueError`` unless every name in ``names`` is a metric of ``metrics`` (a :class:`Metrics` instance
    or subclass). ``what`` names the argument in the message (``"objective"``, ``"feasible"``, ...)."""
    cls = metrics if isinstance(metrics, type) else type(metrics)
    if not (isinstance(cls, type) and issubclass(cls, Metrics)):
        raise TypeError(f"expected a diffsys Metrics (the model protocol's result), got {cls.__name__}")
    available = cls.metric_names()
    for name in names:
        if name not in available:
            raise ValueError(f"{what} {name!r} is not a metric of {cls.__name__}; available metrics: "
                             f"{', '.join(available)}")


def is_metrics(x) -> bool:
    """Whether ``x`` is a :class:`Metrics` instance."""
    return isinstance(x, Metrics)
