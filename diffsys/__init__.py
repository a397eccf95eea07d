"""diffsys: differentiable analytical performance models for computer systems and ML hardware.

Each family is a sub-package (``diffsys.roofline``, ``diffsys.topologies``, ``diffsys.llm``, ...); the most used
entry points are re-exported here.
"""

__version__ = "0.1.0"

from . import hardware as hardware
from . import primitives as primitives
from . import roofline as roofline
from . import space as space
from .hardware import Accelerator as Accelerator, MemoryLevel as MemoryLevel, PowerSpec as PowerSpec
from .space import DesignSpace as DesignSpace
