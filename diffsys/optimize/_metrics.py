"""The one metric code path of the sweep engine and the searches: checking a model against the protocol and turning
``objective=`` / ``feasible=`` / reduction arguments into selectors.

A model is ``model(spec, *, temperature=0.0) -> Metrics`` (:class:`diffsys.Metrics`, see docs/design.md). Before
anything is compiled, :func:`output_type` traces the model once abstractly (``jax.eval_shape``, no FLOPs) to learn
its :class:`~diffsys.Metrics` subclass, and :func:`metric_getter` checks every metric *name* against it, so a
misspelled ``feasible="feasable"`` raises ``ValueError`` naming the unknown metric and the available ones instead of
silently treating every point as feasible.
"""

from __future__ import annotations

import operator
from typing import Callable

import jax
import jax.numpy as jnp

from ..primitives import Metrics, check_metric_names


def output_type(model, space) -> type:
    """The :class:`~diffsys.Metrics` subclass ``model`` returns on ``space`` (an abstract trace, nothing runs).

    Raises ``TypeError`` when the model does not follow the protocol (no keyword-only ``temperature``, or a result
    that is not a :class:`~diffsys.Metrics`).
    """
    if not callable(model):
        raise TypeError(f"model must be callable, got {type(model).__name__}")
    point = {n: jax.ShapeDtypeStruct((), jnp.float32) for n in space.names}
    return result_type(lambda p: model(space.apply(p), temperature=0.0), point, name=_name(model))


def result_type(fn, *args, name=None) -> type:
    """The :class:`~diffsys.Metrics` subclass ``fn(*args)`` returns (``jax.eval_shape``: nothing runs)."""
    name = name or _name(fn)
    try:
        out = jax.eval_shape(fn, *args)
    except TypeError as e:
        if "temperature" in str(e):
            raise TypeError(f"model {name} does not follow the model protocol "
                            f"model(spec, *, temperature=0.0) -> Metrics: {e}") from e
        raise
    if not isinstance(out, Metrics):
        raise TypeError(f"model {name} returned {type(out).__name__}; models must return a diffsys.Metrics "
                        f"subclass (model(spec, *, temperature=0.0) -> Metrics, see docs/design.md)")
    return type(out)


def metric_getter(spec, metrics_type: type, what: str = "objective", allow_none: bool = False) -> Callable | None:
    """A callable ``metrics -> array`` from a metric name (checked against ``metrics_type``) or a callable.

    ``None`` is passed through when ``allow_none`` (e.g. ``feasible=None``: no model feasibility).
    """
    if spec is None and allow_none:
        return None
    if isinstance(spec, str):
        check_metric_names(metrics_type, (spec,), what)
        return operator.attrgetter(spec)
    if callable(spec):
        return spec
    raise TypeError(f"{what} must be a metric name or a callable(metrics), got {type(spec).__name__}")


def selector_name(spec, default: str) -> str:
    """A display name for a selector: the metric name, or the callable's ``__name__``."""
    if isinstance(spec, str):
        return spec
    name = getattr(spec, "__name__", None)
    return default if name in (None, "<lambda>") else name


def _name(model) -> str:
    return getattr(model, "__qualname__", None) or type(model).__name__
