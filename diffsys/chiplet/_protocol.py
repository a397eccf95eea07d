"""Protocol entry point of the chiplet family: package EdP, ``package_model(mcm)(spec, *, temperature=0.0)``.

:class:`MCMModel` holds the static structure (workload, chiplet grid, routing tables); :func:`package_model` binds
one and returns the protocol function of a :class:`PackageSpec` (the design variables and the package's numeric
parameters). ``feasible``/``violation`` are the model's reach and die-shore checks (:class:`MCMMetrics`).
"""

from __future__ import annotations

import functools

import equinox as eqx

from ..primitives import metrics_class
from ._model import MCMDesign, MCMMetrics, MCMModel
from ._package import ChipletPackage


class PackageSpec(eqx.Module):
    """A chiplet package design: partition / strategy / diagonal / memory choices and the package parameters."""

    design: MCMDesign
    package: ChipletPackage


PackageMetrics = metrics_class("PackageMetrics", MCMMetrics._fields, module=__name__,
                               doc="Every :class:`MCMMetrics` field of one package evaluation.")


def package_metrics(metrics: MCMMetrics) -> PackageMetrics:
    """An :class:`MCMMetrics` as the protocol's :class:`PackageMetrics`."""
    return PackageMetrics.from_values(metrics)


@functools.lru_cache(maxsize=16)
def package_model(mcm: MCMModel):
    """The protocol model of ``mcm``: ``model(spec: PackageSpec, *, temperature=0.0) -> PackageMetrics``.

    The same function is returned for the same ``mcm``, so sweeps and searches reuse their compiled programs."""

    def model(spec: PackageSpec, *, temperature=0.0) -> PackageMetrics:
        return package_metrics(mcm(spec.design, spec.package, temperature=temperature))

    model.__qualname__ = f"package_model({mcm.workload.name})"
    return model
