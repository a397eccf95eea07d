"""diffsys.topologies: network topologies, collective communication and on-chip NoC models."""

from ._collectives import (
    ALGORITHMS as ALGORITHMS,
)
from ._collectives import (
    OPS as OPS,
)
from ._collectives import (
    PROTOCOLS as PROTOCOLS,
)
from ._collectives import (
    VALID_ALGORITHMS as VALID_ALGORITHMS,
)
from ._collectives import (
    CollectiveTime as CollectiveTime,
)
from ._collectives import (
    bus_factor as bus_factor,
)
from ._collectives import (
    chosen_algorithm as chosen_algorithm,
)
from ._collectives import (
    collective_time as collective_time,
)
from ._collectives import (
    normalize_op as normalize_op,
)
from ._graphs import dgx1_ring_count as dgx1_ring_count
from ._nccl import NCCL_PRIOR as NCCL_PRIOR
from ._nccl import NcclParams as NcclParams
from ._nccl import nccl_fabric_constants as nccl_fabric_constants
from ._nccl import nccl_fabrics as nccl_fabrics
from ._nccl import nccl_params as nccl_params
from ._nccl import nccl_provenance as nccl_provenance
from ._nccl import pipelined_transfer as pipelined_transfer
from ._graphs import directed_ring_count as directed_ring_count
from ._hierarchical import (
    DIMENSION_ALGORITHM_CHOICES as DIMENSION_ALGORITHM_CHOICES,
    DIMENSION_KINDS as DIMENSION_KINDS,
)
from ._hierarchical import (
    Dimension as Dimension,
)
from ._hierarchical import (
    HierarchicalCollectiveTime as HierarchicalCollectiveTime,
)
from ._hierarchical import (
    hierarchical_collective_time as hierarchical_collective_time,
)
from ._noc import (
    NOC_TOPOLOGIES as NOC_TOPOLOGIES,
)
from ._noc import (
    ChannelQueueing as ChannelQueueing,
)
from ._noc import (
    NocMetrics as NocMetrics,
)
from ._noc import (
    NocParams as NocParams,
)
from ._noc import (
    RouteTable as RouteTable,
)
from ._noc import (
    channel_loads as channel_loads,
)
from ._noc import (
    channel_loads_from_incidence as channel_loads_from_incidence,
)
from ._noc import (
    channel_queueing_latency as channel_queueing_latency,
)
from ._noc import (
    contention_wait as contention_wait,
)
from ._noc import (
    dor_routes as dor_routes,
)
from ._noc import (
    noc_latency as noc_latency,
)
from ._noc import (
    routing_incidence as routing_incidence,
)
from ._systems import PRESETS as _SYSTEM_PRESETS
from ._systems import System as System
from ._systems import system_preset as system_preset
from ._topology import (
    TOPOLOGY_KINDS as TOPOLOGY_KINDS,
)
from ._topology import (
    Dragonfly as Dragonfly,
)
from ._topology import (
    FatTree as FatTree,
)
from ._topology import (
    FullyConnected as FullyConnected,
)
from ._topology import (
    Mesh as Mesh,
)
from ._topology import (
    Ring as Ring,
)
from ._topology import (
    Switch as Switch,
)
from ._topology import (
    TopologyMetrics as TopologyMetrics,
)
from ._topology import (
    Torus as Torus,
)
from ._topology import (
    topology as topology,
)
from ._traffic import (
    PATTERNS as _TRAFFIC_PATTERNS,
)
from ._traffic import (
    as_traffic_matrix as as_traffic_matrix,
)
from ._traffic import (
    permutation as permutation,
)
from ._traffic import (
    traffic_matrix as traffic_matrix,
)
from ._model import (
    CollectiveMetrics as CollectiveMetrics,
    CollectiveSpec as CollectiveSpec,
    collective_model as collective_model,
)

SYSTEM_PRESETS = _SYSTEM_PRESETS  #: system preset factories by name
TRAFFIC_PATTERNS = _TRAFFIC_PATTERNS  #: synthetic NoC traffic pattern names
