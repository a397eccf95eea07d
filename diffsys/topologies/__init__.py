"""diffsys.topologies: network topologies, collective communication and on-chip NoC models."""

from ._collectives import (
    ALGORITHMS as ALGORITHMS,
    OPS as OPS,
    PROTOCOLS as PROTOCOLS,
    CollectiveTime as CollectiveTime,
    bus_factor as bus_factor,
    chosen_algorithm as chosen_algorithm,
    collective_time as collective_time,
    normalize_op as normalize_op,
)
from ._graphs import directed_ring_count as directed_ring_count, dgx1_ring_count as dgx1_ring_count
from ._hierarchical import (
    DIMENSION_KINDS as DIMENSION_KINDS,
    Dimension as Dimension,
    HierarchicalCollectiveTime as HierarchicalCollectiveTime,
    hierarchical_collective_time as hierarchical_collective_time,
)
from ._systems import PRESETS as SYSTEM_PRESETS, System as System, system_preset as system_preset
