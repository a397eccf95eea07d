"""Op-level and hierarchical roofline models, efficiency curves and op graphs."""

from ._core import Roofline as Roofline, roofline as roofline
