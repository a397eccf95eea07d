"""Selecting metrics from a model's output by name (attribute or dict key) or by a callable."""

from __future__ import annotations

import dataclasses
from typing import Callable


def metric_getter(spec, what="objective") -> Callable:
    """A callable ``metrics -> array`` from a metric name (attribute or dict key) or a callable."""
    if callable(spec):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"{what} must be a metric name or a callable, got {type(spec).__name__}")

    def get(metrics):
        if isinstance(metrics, dict):
            if spec not in metrics:
                raise KeyError(f"{what} {spec!r} is not a metric; metrics: {sorted(metrics)}")
            return metrics[spec]
        if not hasattr(metrics, spec):
            fields = getattr(metrics, "_fields", None) or [f.name for f in dataclasses.fields(metrics)]
            raise KeyError(f"{what} {spec!r} is not a metric; metrics: {list(fields)}")
        return getattr(metrics, spec)

    return get
