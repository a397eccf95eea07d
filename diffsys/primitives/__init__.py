"""Smooth math and relaxations shared by every model family (temperature 0 = exact), and :class:`Metrics`, the
base of every model's result (the model protocol, see docs/design.md)."""

from ._metrics import (
    Metrics as Metrics,
    check_metric_names as check_metric_names,
    is_metrics as is_metrics,
    metrics_class as metrics_class,
)

from ._root import increasing_root as increasing_root
from ._queueing import (
    DEFAULT_RHO_MAX as DEFAULT_RHO_MAX,
    QueueDelay as QueueDelay,
    md1_wait as md1_wait,
    mg1_wait as mg1_wait,
    mm1_wait as mm1_wait,
)
from ._smooth import (
    ceil_ste as ceil_ste,
    choice_weights as choice_weights,
    clamp as clamp,
    floor_ste as floor_ste,
    hinge_penalty as hinge_penalty,
    logsumexp_max as logsumexp_max,
    logsumexp_min as logsumexp_min,
    one_hot_select as one_hot_select,
    relative_temperature as relative_temperature,
    relu as relu,
    round_ste as round_ste,
    safe_divide as safe_divide,
    smooth_max as smooth_max,
    smooth_min as smooth_min,
    soft_argmin_weights as soft_argmin_weights,
    soft_ceil as soft_ceil,
    soft_floor as soft_floor,
    soft_round as soft_round,
    soft_select as soft_select,
    squared_hinge_penalty as squared_hinge_penalty,
    tie_safe_max as tie_safe_max,
)
