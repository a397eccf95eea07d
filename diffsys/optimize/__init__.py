"""Search over design spaces: the sweep engine, Pareto utilities, gradient/evolutionary/MIQP search, calibration."""

from ._pareto import (
    pareto_candidates as pareto_candidates,
    pareto_front as pareto_front,
    pareto_front_2d as pareto_front_2d,
    pareto_mask as pareto_mask,
)
from ._metrics import metric_getter as metric_getter
from ._sweep import SweepResult as SweepResult, sweep as sweep

# search methods
from ._calibrate import CalibrationResult as CalibrationResult, ErrorStats as ErrorStats, calibrate as calibrate
from ._evolution import cma_es as cma_es, evolutionary_search as evolutionary_search, genetic_search as genetic_search
from ._gradient import gradient_search as gradient_search
from ._hypervolume import (
    hypervolume as hypervolume,
    hypervolume_contributions as hypervolume_contributions,
    reference_point as reference_point,
)
from ._miqp import (
    MIQP as MIQP,
    MIQPSolution as MIQPSolution,
    miqp_search as miqp_search,
    quadratic_model as quadratic_model,
    solve_miqp_enumerate as solve_miqp_enumerate,
    solve_miqp_scip as solve_miqp_scip,
)
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
    toy_problem as toy_problem,
)
from ._repair import local_search as local_search
