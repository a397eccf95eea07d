"""Power and thermal models: dynamic/static power, DVFS, device and cluster power, HotSpot-compatible compact
thermal models (block and grid), transient integration, leakage–temperature loop and throttling."""

from ._cluster import (
    ClusterPower as ClusterPower,
)
from ._cluster import (
    PipelineExcursion as PipelineExcursion,
)
from ._cluster import (
    cluster_power as cluster_power,
)
from ._cluster import (
    pipeline_power_excursion as pipeline_power_excursion,
)
from ._device import (
    ConstrainedClock as ConstrainedClock,
)
from ._device import (
    DevicePower as DevicePower,
)
from ._device import (
    Throttle as Throttle,
)
from ._device import (
    constrained_clock as constrained_clock,
)
from ._device import (
    default_dvfs as default_dvfs,
)
from ._device import (
    device_power as device_power,
)
from ._device import (
    energy_delay as energy_delay,
)
from ._device import (
    power_capped_clock as power_capped_clock,
)
from ._device import (
    throttle as throttle,
)
from ._dvfs import DVFSCurve as DVFSCurve
from ._dynamic import (
    HOROWITZ_45NM_PJ as HOROWITZ_45NM_PJ,
)
from ._dynamic import (
    PJ_PER_BIT_LINK as PJ_PER_BIT_LINK,
)
from ._dynamic import (
    PJ_PER_BYTE_45NM as PJ_PER_BYTE_45NM,
)
from ._dynamic import (
    PJ_PER_FLOP_45NM as PJ_PER_FLOP_45NM,
)
from ._dynamic import (
    dynamic_power as dynamic_power,
)
from ._dynamic import (
    energy_per_bit_J as energy_per_bit_J,
)
from ._dynamic import (
    energy_per_byte_J as energy_per_byte_J,
)
from ._dynamic import (
    energy_per_flop_J as energy_per_flop_J,
)
from ._dynamic import (
    hotspot_leakage as hotspot_leakage,
)
from ._dynamic import (
    leakage_power as leakage_power,
)
from ._dynamic import (
    scale_energy as scale_energy,
)
from ._floorplan import (
    EDGE_TOL_M as EDGE_TOL_M,
)
from ._floorplan import (
    Floorplan as Floorplan,
)
from ._floorplan import (
    floorplan as floorplan,
)
from ._floorplan import (
    grid_floorplan as grid_floorplan,
)
from ._leakage_loop import (
    RUNAWAY_K as RUNAWAY_K,
)
from ._leakage_loop import (
    LeakageSteady as LeakageSteady,
)
from ._leakage_loop import (
    steady_state_with_leakage as steady_state_with_leakage,
)
from ._thermal_block import (
    BlockFactor as BlockFactor,
)
from ._thermal_block import (
    RCNetwork as RCNetwork,
)
from ._thermal_block import (
    SteadySolver as SteadySolver,
)
from ._thermal_block import (
    Temperatures as Temperatures,
)
from ._thermal_block import (
    Transient as Transient,
)
from ._thermal_block import (
    adjacency as adjacency,
)
from ._thermal_block import (
    block_network as block_network,
)
from ._thermal_block import (
    factor as factor,
)
from ._thermal_block import (
    network_solve as network_solve,
)
from ._thermal_block import (
    node_names as node_names,
)
from ._thermal_block import (
    package_rc as package_rc,
)
from ._thermal_block import (
    solve_steady as solve_steady,
)
from ._thermal_block import (
    spd_solve as spd_solve,
)
from ._thermal_block import (
    steady_state as steady_state,
)
from ._thermal_block import (
    transient as transient,
)
from ._throttle import (
    BlockJunction as BlockJunction,
)
from ._throttle import (
    Throttled as Throttled,
)
from ._throttle import (
    scale_clock as scale_clock,
)
from ._throttle import (
    throttled_accelerator as throttled_accelerator,
)
from ._throttle import (
    throttled_step as throttled_step,
)
from ._thermal_config import DEFAULT_CONFIG as DEFAULT_CONFIG
from ._thermal_config import ThermalConfig as ThermalConfig
from ._thermal_grid import (
    GridNetwork as GridNetwork,
)
from ._thermal_grid import (
    GridTemperatures as GridTemperatures,
)
from ._thermal_grid import (
    cell_overlap as cell_overlap,
)
from ._thermal_grid import (
    grid_network as grid_network,
)
from ._thermal_grid import (
    grid_node_names as grid_node_names,
)
from ._thermal_grid import (
    grid_steady_state as grid_steady_state,
)
from ._thermal_grid import (
    map_to_blocks as map_to_blocks,
)
from ._thermal_grid import (
    plot_heatmap as plot_heatmap,
)
from ._model import (
    DevicePowerMetrics as DevicePowerMetrics,
    DevicePowerSpec as DevicePowerSpec,
    device_power_model as device_power_model,
)
