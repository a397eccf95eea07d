"""Search over design spaces: the sweep engine, Pareto utilities, gradient/evolutionary/MIQP search, calibration."""

from ._pareto import (
    pareto_candidates as pareto_candidates,
    pareto_front as pareto_front,
    pareto_front_2d as pareto_front_2d,
    pareto_mask as pareto_mask,
)
from ._sweep import SweepResult as SweepResult, metric_getter as metric_getter, sweep as sweep

# search methods
from ._gradient import gradient_search as gradient_search
from ._objective import (
    RESULTS as RESULTS,
    Evaluation as Evaluation,
    NoFeasiblePointError as NoFeasiblePointError,
    Problem as Problem,
    SearchResult as SearchResult,
)
from ._problems import (
    default_problem as default_problem,
    edge_soc_model as edge_soc_model,
    edge_soc_problem as edge_soc_problem,
    problem as problem,
    systolic_model as systolic_model,
    systolic_problem as systolic_problem,
)
from ._repair import local_search as local_search
