"""Power and thermal models: dynamic/static power, DVFS, device and cluster power, HotSpot-compatible compact
thermal models (block and grid), transient integration, leakage–temperature loop and throttling."""

from ._floorplan import (
    EDGE_TOL_M as EDGE_TOL_M,
    Floorplan as Floorplan,
    floorplan as floorplan,
    grid_floorplan as grid_floorplan,
)
from ._thermal_block import (
    RCNetwork as RCNetwork,
    SteadySolver as SteadySolver,
    Temperatures as Temperatures,
    Transient as Transient,
    adjacency as adjacency,
    block_network as block_network,
    node_names as node_names,
    package_rc as package_rc,
    solve_steady as solve_steady,
    steady_state as steady_state,
    transient as transient,
)
from ._thermal_config import ThermalConfig as ThermalConfig
