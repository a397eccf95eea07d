"""Design spaces: domains, grids decoded inside jit, sampling, relaxation, discretization, constraints."""

from ._domains import (
    Categorical as Categorical,
    Continuous as Continuous,
    DivisorOf as DivisorOf,
    Domain as Domain,
    Integer as Integer,
    PowerOfTwo as PowerOfTwo,
)
from ._space import (
    Constraint as Constraint,
    DesignSpace as DesignSpace,
    get_path as get_path,
    less_equal as less_equal,
    product_equals as product_equals,
)
from ._io import domain_from_dict as domain_from_dict, load_space as load_space, space_from_dict as space_from_dict
