"""Power and thermal models: dynamic/static power, DVFS, device and cluster power, HotSpot-compatible compact
thermal models (block and grid), transient integration, leakage–temperature loop and throttling."""

from ._floorplan import (
    EDGE_TOL_M as EDGE_TOL_M,
    Floorplan as Floorplan,
    floorplan as floorplan,
    grid_floorplan as grid_floorplan,
)
from ._thermal_block import (
    BlockFactor as BlockFactor,
    factor as factor,
    network_solve as network_solve,
    spd_solve as spd_solve,
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
from ._cluster import (
    ClusterPower as ClusterPower,
    PipelineExcursion as PipelineExcursion,
    cluster_power as cluster_power,
    pipeline_power_excursion as pipeline_power_excursion,
)
from ._device import (
    ConstrainedClock as ConstrainedClock,
    DevicePower as DevicePower,
    Throttle as Throttle,
    constrained_clock as constrained_clock,
    default_dvfs as default_dvfs,
    device_power as device_power,
    energy_delay as energy_delay,
    power_capped_clock as power_capped_clock,
    throttle as throttle,
)
from ._dvfs import DVFSCurve as DVFSCurve
from ._dynamic import (
    HOROWITZ_45NM_PJ as HOROWITZ_45NM_PJ,
    PJ_PER_BIT_LINK as PJ_PER_BIT_LINK,
    PJ_PER_BYTE_45NM as PJ_PER_BYTE_45NM,
    PJ_PER_FLOP_45NM as PJ_PER_FLOP_45NM,
    dynamic_power as dynamic_power,
    energy_per_bit_J as energy_per_bit_J,
    energy_per_byte_J as energy_per_byte_J,
    energy_per_flop_J as energy_per_flop_J,
    hotspot_leakage as hotspot_leakage,
    leakage_power as leakage_power,
    scale_energy as scale_energy,
)
from ._leakage_loop import (
    RUNAWAY_K as RUNAWAY_K,
    LeakageSteady as LeakageSteady,
    steady_state_with_leakage as steady_state_with_leakage,
)
from ._thermal_grid import (
    GridNetwork as GridNetwork,
    GridTemperatures as GridTemperatures,
    cell_overlap as cell_overlap,
    grid_network as grid_network,
    grid_node_names as grid_node_names,
    grid_steady_state as grid_steady_state,
    map_to_blocks as map_to_blocks,
    plot_heatmap as plot_heatmap,
)
