"""diffsys.io"""
from ._hotspot import (
    _USED as HOTSPOT_USED_OPTIONS,
    _lines as read_hotspot_lines,
    HotSpotConfig as HotSpotConfig,
    parse_config_pairs as parse_hotspot_config_pairs,
    PowerTrace as PowerTrace,
    format_steady as format_steady,
    read_config as read_hotspot_config,
    read_flp as read_flp,
    read_ptrace as read_ptrace,
    read_steady as read_steady,
    write_flp as write_flp,
    write_ptrace as write_ptrace,
    write_steady as write_steady,
    write_ttrace as write_ttrace,
)
from ._booksim import (
    BooksimConfig as BooksimConfig,
    BooksimModel as BooksimModel,
    booksim_model as booksim_model,
    parse_booksim as parse_booksim,
    read_booksim_config as read_booksim_config,
)
from ._nccl import (
    DTYPE_BYTES as NCCL_DTYPE_BYTES,
    NcclTestsTable as NcclTestsTable,
    format_nccl_tests as format_nccl_tests,
    nccl_sizes as nccl_sizes,
    parse_size as parse_size,
    read_nccl_tests as read_nccl_tests,
)
from ._calculon import (
    calculon_accounting as calculon_accounting,
    calculon_stats as calculon_stats,
    read_calculon_execution as read_calculon_execution,
    read_calculon_model as read_calculon_model,
    read_calculon_system as read_calculon_system,
    run_calculon as run_calculon,
    write_calculon_stats as write_calculon_stats,
)
from ._calculon_search import (
    enumerate_executions as enumerate_calculon_executions,
    optimal_executions as optimal_calculon_executions,
    search_executions as search_calculon_executions,
    write_all as write_calculon_all_executions,
    write_optimal as write_calculon_optimal_execution,
)
