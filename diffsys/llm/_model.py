"""Protocol entry points of the LLM family: ``model(spec, *, temperature=0.0) -> Metrics`` (docs/design.md).

- :func:`training_model` — one training step of a :class:`TrainingDesign` (data parallelism derived from the GPU
  count, :func:`training_design_metrics`) -> :class:`TrainingStepMetrics`; :func:`exact_parallelism_model` keeps the
  design's own ``dp`` (for :func:`parallelism_space`).
- :func:`inference_model` — one serving replica of an :class:`InferenceDesign` (:func:`inference_step`) ->
  :class:`InferenceStepMetrics`.

``violation`` is the smooth amount the protocol's searches penalize: relative memory excess plus the fractional
remainders of the parallel degrees (training), relative memory excess (inference).
"""

from __future__ import annotations

import equinox as eqx

from ..primitives import metrics_class, relu
from ._design import TrainingDesign, exact_parallelism_metrics, training_design_metrics
from ._inference import InferenceMetrics, Serving, inference_step
from ._parallel import Cluster, Parallelism
from ._training import TrainingMetrics
from ._workloads import Transformer

TrainingStepMetrics = metrics_class(
    "TrainingStepMetrics", TrainingMetrics._fields + ("dp", "capex_usd"), module=__name__,
    doc="Every :class:`TrainingMetrics` field, the data-parallel degree ``dp`` and the cluster's ``capex_usd``.")

InferenceStepMetrics = metrics_class(
    "InferenceStepMetrics", InferenceMetrics._fields, module=__name__,
    doc="Every :class:`InferenceMetrics` field of one serving replica.")


def _training(values) -> TrainingStepMetrics:
    return TrainingStepMetrics.from_values(values, violation=values["memory_violation"]
                                           + values["divisibility_violation"])


def training_model(design: TrainingDesign, *, temperature=0.0) -> TrainingStepMetrics:
    """One training step of ``design`` with ``dp = n_gpus / (tp·pp·cp)`` (non-integers infeasible)."""
    return _training(training_design_metrics(design, temperature))


def exact_parallelism_model(design: TrainingDesign, *, temperature=0.0) -> TrainingStepMetrics:
    """One training step with the design's own ``par.dp`` (the product constraint lives in the space)."""
    return _training(exact_parallelism_metrics(design, temperature))


class InferenceDesign(eqx.Module):
    """``model`` (workload), ``cluster`` (machine), ``par`` (replica parallelism) and ``serving`` (batch, lengths,
    KV/weight precision) of one serving replica."""

    model: Transformer
    cluster: Cluster
    par: Parallelism
    serving: Serving


def inference_model(design: InferenceDesign, *, temperature=0.0) -> InferenceStepMetrics:
    """Prefill, decode, memory, throughput and energy of one replica (:func:`inference_step`)."""
    m = inference_step(design.model, design.cluster, design.par, design.serving, temperature=temperature)
    return InferenceStepMetrics.from_values(m, violation=relu(m.memory_B / m.memory_capacity_B - 1.0, temperature))
