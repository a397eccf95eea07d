"""Multi-chip-module (chiplet) packages: packaging technologies, die-to-die network with diagonal links and
congestion-aware link latency, non-uniform layer partitioning of CNN / ViT / transformer workloads, EdP."""

from ._graph import (
    ROUTINGS as ROUTINGS,
)
from ._graph import (
    D2DGraph as D2DGraph,
)
from ._graph import (
    candidate_links as candidate_links,
)
from ._graph import (
    diagonal_patterns as diagonal_patterns,
)
from ._graph import (
    memory_placements as memory_placements,
)
from ._graph import (
    routing_tensor as routing_tensor,
)
from ._model import (
    STRATEGIES as STRATEGIES,
)
from ._model import (
    MCMDesign as MCMDesign,
)
from ._model import (
    MCMMetrics as MCMMetrics,
)
from ._model import (
    MCMModel as MCMModel,
)
from ._optimize import (
    baseline as baseline,
)
from ._optimize import (
    baseline_placement as baseline_placement,
)
from ._optimize import (
    design_from_point as design_from_point,
)
from ._optimize import (
    mcm_space as mcm_space,
)
from ._optimize import (
    memory_proximity as memory_proximity,
)
from ._package import ChipletPackage as ChipletPackage
from ._packaging import PACKAGING_NAMES as PACKAGING_NAMES
from ._packaging import Packaging as Packaging
from ._packaging import packaging as packaging
from ._plots import plot_designs as plot_designs
from ._plots import plot_lever_gains as plot_lever_gains
from ._plots import plot_link_loads as plot_link_loads
from ._plots import plot_package as plot_package
from ._plots import save_figures as save_figures
from ._workloads import (
    LayerChain as LayerChain,
)
from ._workloads import (
    resnet50 as resnet50,
)
from ._workloads import (
    transformer as transformer,
)
from ._workloads import (
    transformer_block as transformer_block,
)
from ._workloads import (
    vit_b16 as vit_b16,
)
from ._workloads import (
    workload as workload,
)
from ._protocol import (
    PackageMetrics as PackageMetrics,
    PackageSpec as PackageSpec,
    package_metrics as package_metrics,
    package_model as package_model,
)
