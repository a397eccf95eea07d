"""Search over design spaces: the sweep engine, Pareto utilities, gradient/evolutionary/MIQP search, calibration."""

from ._pareto import (
    pareto_front as pareto_front,
    pareto_front_2d as pareto_front_2d,
    pareto_front_nd as pareto_front_nd,
    pareto_mask as pareto_mask,
)
from ._sweep import SweepResult as SweepResult, metric_getter as metric_getter, sweep as sweep

# search methods
