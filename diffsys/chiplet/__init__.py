"""Multi-chip-module (chiplet) packages: packaging technologies, die-to-die network with diagonal links and
congestion-aware link latency, non-uniform layer partitioning of CNN / ViT / transformer workloads, EdP."""

from ._graph import (
    ROUTINGS as ROUTINGS,
    D2DGraph as D2DGraph,
    candidate_links as candidate_links,
    diagonal_patterns as diagonal_patterns,
    memory_placements as memory_placements,
    routing_tensor as routing_tensor,
)
from ._model import (
    STRATEGIES as STRATEGIES,
    MCMDesign as MCMDesign,
    MCMMetrics as MCMMetrics,
    MCMModel as MCMModel,
)
from ._package import ChipletPackage as ChipletPackage
from ._packaging import PACKAGING_NAMES as PACKAGING_NAMES, Packaging as Packaging, packaging as packaging
from ._workloads import (
    LayerChain as LayerChain,
    resnet50 as resnet50,
    transformer as transformer,
    transformer_block as transformer_block,
    vit_b16 as vit_b16,
    workload as workload,
)
from ._optimize import (
    METHODS as METHODS,
    MCMResult as MCMResult,
    baseline as baseline,
    design_from_point as design_from_point,
    mcm_problem as mcm_problem,
    mcm_space as mcm_space,
    memory_proximity as memory_proximity,
    optimize as optimize,
)
from ._plots import plot_link_loads as plot_link_loads, plot_package as plot_package, save_figures as save_figures
