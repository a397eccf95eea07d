"""Adapter for flax networks (optional extra ``diffsys[flax]``; flax is imported only when a network is built).

:class:`FlaxModule` holds a flax ``nn.Module`` (static) and its variables (trainable pytree leaves) in an
``equinox.Module``, so a flax network plugs into :class:`~diffsys.learned.Residual`, :func:`~diffsys.learned.fit`
and every jit/vmap/grad path exactly like an equinox one. Anything with flax's ``apply(variables, x)`` protocol
works (linen modules, or a plain object with that method).
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax.numpy as jnp


class FlaxModule(eqx.Module):
    """``module.apply(variables, x)`` as an equinox module; the output is squeezed to a scalar when it has one
    element (so it can serve as a residual/surrogate head)."""

    variables: Any
    module: Any = eqx.field(static=True)
    squeeze: bool = eqx.field(static=True, default=True)

    def __call__(self, x):
        out = self.module.apply(self.variables, x)
        if self.squeeze and jnp.size(out) == 1:
            return jnp.reshape(out, ())
        return out


def from_flax(module, key, example_input, squeeze: bool = True) -> FlaxModule:
    """Initialize a flax module (``module.init(key, example_input)``) and wrap it as a :class:`FlaxModule`."""
    try:
        import flax  # noqa: F401
    except ImportError as e:  # pragma: no cover - depends on the environment
        if not hasattr(module, "init"):
            raise ImportError("from_flax needs flax: pip install 'diffsys[flax]'") from e
    variables = module.init(key, example_input)
    return FlaxModule(variables, module, squeeze)
