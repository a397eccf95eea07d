"""Distributed LLM training steps and inference serving, built from the roofline, memory and network models.

Specs: :class:`Transformer` (+ :func:`transformer_preset`), :class:`Parallelism`, :class:`Cluster`
(+ :func:`cluster_preset`, :func:`two_level_network`), :class:`Serving`, :class:`TrainingDesign`.
Kernels are timed by :mod:`diffsys.roofline`, collectives by :mod:`diffsys.topologies` (one model per effect).
Models: :func:`training_step` -> :class:`TrainingMetrics`; :func:`inference_step` -> :class:`InferenceMetrics`;
:func:`training_design_metrics` for sweeps (``diffsys sweep``). See docs/llm.md for formulas, sources and validation.
"""

from ._catalog import (
    CATALOG_IDS as CATALOG_IDS,
    ModelArch as ModelArch,
    arch_from_config as arch_from_config,
    load_hf_config as load_hf_config,
    model_arch as model_arch,
    model_config as model_config,
)
from ._serving import (
    BACKENDS as SERVING_BACKENDS,
    MODES as SERVING_MODES,
    PRECISIONS as SERVING_PRECISIONS,
    SYSTEMS as SERVING_SYSTEMS,
    ServingKernels as ServingKernels,
    ServingMetrics as ServingMetrics,
    ServingSpec as ServingSpec,
    backend_constants as backend_constants,
    serving_kernels as serving_kernels,
    serving_loop as serving_loop,
    serving_model as serving_model,
    serving_spec as serving_spec,
)
from ._design import (
    FULL_STACK_LAYERS as FULL_STACK_LAYERS,
    TrainingDesign as TrainingDesign,
    default_training_design as default_training_design,
    default_training_space as default_training_space,
    exact_parallelism_metrics as exact_parallelism_metrics,
    full_stack_layer as full_stack_layer,
    full_stack_space as full_stack_space,
    gpu_capex_usd as gpu_capex_usd,
    parallelism_space as parallelism_space,
    training_design_metrics as training_design_metrics,
)
from ._inference import InferenceMetrics as InferenceMetrics, Serving as Serving, inference_step as inference_step
from ._model import (
    InferenceDesign as InferenceDesign,
    InferenceStepMetrics as InferenceStepMetrics,
    TrainingStepMetrics as TrainingStepMetrics,
    exact_parallelism_model as exact_parallelism_model,
    inference_model as inference_model,
    training_model as training_model,
)
from ._parallel import (
    CLUSTER_ACCELERATORS as CLUSTER_ACCELERATORS,
    CLUSTER_SOURCES as CLUSTER_SOURCES,
    RECOMPUTE_MODES as RECOMPUTE_MODES,
    SCALEOUT_BANDWIDTH_PATH as SCALEOUT_BANDWIDTH_PATH,
    SCALEUP_BANDWIDTH_PATH as SCALEUP_BANDWIDTH_PATH,
    SUSTAINED_CLOCK_SOURCES as SUSTAINED_CLOCK_SOURCES,
    TRAINING_DTYPES as TRAINING_DTYPES,
    Cluster as Cluster,
    Parallelism as Parallelism,
    check_parallelism as check_parallelism,
    choice_weights as choice_weights,
    cluster_preset as cluster_preset,
    precision_recipe as precision_recipe,
    two_level_network as two_level_network,
)
from ._training import (
    TrainingMetrics as TrainingMetrics,
    layer_activation_bytes as layer_activation_bytes,
    training_step as training_step,
)
from ._workloads import (
    MLP_KINDS as MLP_KINDS,
    PRESET_SOURCES as PRESET_SOURCES,
    Transformer as Transformer,
    check_sequence as check_sequence,
    transformer_preset as transformer_preset,
)
