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
from ._noc import (
    NOC_TOPOLOGIES as NOC_TOPOLOGIES,
    ChannelQueueing as ChannelQueueing,
    NocMetrics as NocMetrics,
    NocParams as NocParams,
    RouteTable as RouteTable,
    channel_loads as channel_loads,
    channel_queueing_latency as channel_queueing_latency,
    contention_wait as contention_wait,
    dor_routes as dor_routes,
    noc_latency as noc_latency,
)
from ._traffic import (
    PATTERNS as TRAFFIC_PATTERNS,
    as_traffic_matrix as as_traffic_matrix,
    permutation as permutation,
    traffic_matrix as traffic_matrix,
)
from ._topology import (
    TOPOLOGY_KINDS as TOPOLOGY_KINDS,
    Dragonfly as Dragonfly,
    FatTree as FatTree,
    FullyConnected as FullyConnected,
    Mesh as Mesh,
    Ring as Ring,
    Switch as Switch,
    TopologyMetrics as TopologyMetrics,
    Torus as Torus,
    topology as topology,
)
