"""Example problems: protocol models with their design spaces, for the searches, the benchmarks and the command.

- :func:`edge_soc_problem` (the default): energy per token of LLM decode on an edge SoC.
- :func:`systolic_problem`: energy-delay product of a transformer layer on systolic-array accelerators.
- :func:`accelerator_problem`: roofline co-design of an accelerator for GPT-3 layer GEMMs (``diffsys sweep
  --problem roofline``).
- :func:`llm_training_problem`: GPT-3 175B training parallelism × hardware (:func:`diffsys.llm.training_model`).
- :func:`edge_orchestration_problem`: placement of an LLM's prefill/decode stages on an edge SoC's GPU, NPU and
  CPU with the weight precision (latency, energy, accuracy proxy; QEIL v2's setting).
- :func:`toy_problem`: a small separable bowl with a known optimum (tests, docs).
- :func:`mcm_problem` / :func:`optimize_mcm`: chiplet-package partitioning, strategies, diagonal links and memory
  placement by GA, MIQP or gradient search (:mod:`diffsys.chiplet`).

:func:`problem` returns one by name. Every model follows the protocol ``model(spec, *, temperature=0.0) ->
Metrics`` (docs/design.md).
"""

from ._accelerator import (
    LAYER_GEMMS as LAYER_GEMMS,
    AcceleratorDesign as AcceleratorDesign,
    AcceleratorMetrics as AcceleratorMetrics,
    accelerator_model as accelerator_model,
    accelerator_problem as accelerator_problem,
    accelerator_space as accelerator_space,
)
from ._edge import (
    PLATFORMS as EDGE_PLATFORMS,
    EdgeMetrics as EdgeMetrics,
    EdgeOrchestration as EdgeOrchestration,
    SmallLLM as SmallLLM,
    edge_orchestration_model as edge_orchestration_model,
    edge_orchestration_problem as edge_orchestration_problem,
    edge_orchestration_space as edge_orchestration_space,
    engine_names as engine_names,
)
from ._serving_search import (
    plot_pareto as plot_pareto,
    search_deployments as search_deployments,
    serving_search_space as serving_search_space,
)
from ._chiplet import (
    LEVERS as MCM_LEVERS,
    METHODS as MCM_METHODS,
    LeverStudy as LeverStudy,
    MCMResult as MCMResult,
    mcm_lever_study as mcm_lever_study,
    mcm_problem as mcm_problem,
    optimize_mcm as optimize_mcm,
)
from ._problems import (
    DATAFLOWS as DATAFLOWS,
    PROBLEMS as PROBLEMS,
    TRANSFORMER_LAYER_GEMMS as TRANSFORMER_LAYER_GEMMS,
    DecoderLLM as DecoderLLM,
    EdgeSoCDesign as EdgeSoCDesign,
    EdgeSoCMetrics as EdgeSoCMetrics,
    SystolicDesign as SystolicDesign,
    SystolicMetrics as SystolicMetrics,
    ToyDesign as ToyDesign,
    ToyMetrics as ToyMetrics,
    default_problem as default_problem,
    edge_soc_model as edge_soc_model,
    edge_soc_problem as edge_soc_problem,
    edge_soc_space as edge_soc_space,
    llm_training_problem as llm_training_problem,
    problem as problem,
    systolic_model as systolic_model,
    systolic_problem as systolic_problem,
    systolic_space as systolic_space,
    toy_model as toy_model,
    toy_problem as toy_problem,
    toy_space as toy_space,
)
