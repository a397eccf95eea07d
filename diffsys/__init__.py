"""diffsys: differentiable analytical performance models for computer systems and ML hardware.

Each family is a sub-package; all are pure JAX (``jit``/``vmap``/``grad``-able):

- :mod:`diffsys.primitives` — smooth twins of max/min/round/ceil/selection, queueing delays
- :mod:`diffsys.space` — design spaces, grids decoded in jit, relax/discretize, constraints
- :mod:`diffsys.hardware` — accelerator, memory-level and power specs with cited presets
- :mod:`diffsys.roofline` — op and hierarchical rooflines, op library and graphs
- :mod:`diffsys.memory` — tiling-aware traffic, caches, SRAM/DRAM/HBM scaling, footprints
- :mod:`diffsys.topologies` — topologies, collective communication, on-chip NoC
- :mod:`diffsys.power` — dynamic/static power, DVFS, HotSpot-compatible thermal models, throttling
- :mod:`diffsys.chiplet` — multi-chip modules: packaging, die-to-die networks, partitioning, EdP
- :mod:`diffsys.llm` — distributed LLM training steps and inference serving
- :mod:`diffsys.optimize` — sweep engine, gradient/evolutionary/MIQP search, calibration
- :mod:`diffsys.problems` — example problems (protocol models with design spaces) for the searches and the command
- :mod:`diffsys.learned` — residual/surrogate networks (equinox; flax adapter), NAS helpers
- :mod:`diffsys.io` — peers' formats: Calculon, HotSpot, BookSim, nccl-tests

Every model follows one protocol, ``model(spec, *, temperature=0.0) -> Metrics`` (:class:`Metrics`; docs/design.md).
"""

__version__ = "0.1.0"

from . import (
    chiplet as chiplet,
    hardware as hardware,
    io as io,
    learned as learned,
    llm as llm,
    memory as memory,
    optimize as optimize,
    power as power,
    primitives as primitives,
    problems as problems,
    roofline as roofline,
    space as space,
    topologies as topologies,
)
from .hardware import Accelerator as Accelerator, MemoryLevel as MemoryLevel, PowerSpec as PowerSpec
from .optimize import sweep as sweep
from .primitives import Metrics as Metrics
from .space import DesignSpace as DesignSpace
