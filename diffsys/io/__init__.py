"""diffsys.io"""
from ._hotspot import (
    HotSpotConfig as HotSpotConfig,
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
