"""Search over design spaces: the sweep engine, Pareto utilities, gradient/evolutionary/MIQP search, calibration.

Every method takes a protocol model ``model(spec, *, temperature=0.0) -> Metrics`` (:class:`diffsys.Metrics`);
metric names are checked against the model's result type before anything compiles. Example problems live in
:mod:`diffsys.problems`.
"""

from ._pareto import (
    pareto_candidates as pareto_candidates,
    pareto_front as pareto_front,
    pareto_front_2d as pareto_front_2d,
    pareto_mask as pareto_mask,
)
from ._sweep import (
    SweepResult as SweepResult,
    metrics_type as metrics_type,
    shard_checkpoint_path as shard_checkpoint_path,
    shard_chunks as shard_chunks,
    sweep as sweep,
)
from ._merge import load_result as load_result, merge as merge, save_result as save_result

# search methods
from ._calibrate import CalibrationResult as CalibrationResult, ErrorStats as ErrorStats, calibrate as calibrate
from ._evolution import cma_es as cma_es, evolutionary_search as evolutionary_search, genetic_search as genetic_search
from ._exact import ExactResult as ExactResult, box_bound_function as box_bound_function, exact_search as exact_search
from ._exact_mip import solve_exact_mip as solve_exact_mip
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
    trust_region_search as trust_region_search,
)
from ._objective import (
    RESULTS as RESULTS,
    Evaluation as Evaluation,
    NoFeasiblePointError as NoFeasiblePointError,
    Problem as Problem,
    SearchResult as SearchResult,
)
from ._repair import local_search as local_search
