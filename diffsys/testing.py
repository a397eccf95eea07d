"""Checks every diffsys model must pass; used by the test-suite and available to users writing their own models.

- :func:`assert_jit_matches_eager` — ``jit(f)(x) == f(x)``;
- :func:`assert_vmap_matches_loop` — ``vmap(f)(xs) == [f(x) for x in xs]``;
- :func:`assert_finite_grads` — every gradient leaf is finite;
- :func:`assert_grad_matches_fd` — reverse-mode gradient vs central finite differences (run under float64), by
  ``jax.test_util.check_grads``;
- :class:`TraceCounter` — counts traces, to assert that a second call does not recompile;
- :func:`assert_no_retrace` — ``chex.assert_max_traces`` around a jitted function called on several inputs;
- :func:`check_model` — all of the above on a protocol model ``model(spec, *, temperature=0.0) -> Metrics``.
"""

from __future__ import annotations

import contextlib

import jax
import jax.numpy as jnp
import numpy as np

# dtype-keyed tolerances (as in jax-md): (rtol, atol)
TOLERANCES = {np.dtype("float32"): (2e-5, 1e-6), np.dtype("float64"): (1e-10, 1e-12)}


def _tol(x, rtol=None, atol=None):
    dt = np.asarray(x).dtype
    r, a = TOLERANCES.get(dt, (1e-5, 1e-6))
    return (r if rtol is None else rtol), (a if atol is None else atol)


def assert_trees_close(a, b, rtol=None, atol=None, what="trees"):
    la, ta = jax.tree_util.tree_flatten(a)
    lb, tb = jax.tree_util.tree_flatten(b)
    assert ta == tb, f"{what}: structures differ: {ta} vs {tb}"
    for i, (x, y) in enumerate(zip(la, lb)):
        r, t = _tol(x, rtol, atol)
        np.testing.assert_allclose(np.asarray(x, dtype=float), np.asarray(y, dtype=float), rtol=r, atol=t,
                                   err_msg=f"{what}: leaf {i}")


def assert_jit_matches_eager(fn, *args, rtol=None, atol=None):
    eager = fn(*args)
    jitted = jax.jit(fn)(*args)
    assert_trees_close(eager, jitted, rtol, atol, "jit vs eager")
    return eager


def assert_vmap_matches_loop(fn, *batched_args, rtol=None, atol=None):
    """``batched_args`` are pytrees whose leaves share a leading batch axis."""
    batched = jax.vmap(fn)(*batched_args)
    n = jax.tree_util.tree_leaves(batched_args)[0].shape[0]
    looped = [fn(*jax.tree_util.tree_map(lambda x: x[i], batched_args)) for i in range(n)]
    stacked = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *looped)
    assert_trees_close(batched, stacked, rtol, atol, "vmap vs loop")
    return batched


def assert_finite_grads(scalar_fn, *args, argnums=0):
    grads = jax.grad(scalar_fn, argnums=argnums)(*args)
    for leaf in jax.tree_util.tree_leaves(grads):
        assert np.all(np.isfinite(np.asarray(leaf))), f"non-finite gradient: {leaf}"
    return grads


def assert_grad_matches_fd(scalar_fn, x, *, eps=1e-6, rtol=1e-4, atol=1e-8, relative_step=True):
    """Check ``grad(scalar_fn)(x)`` against central finite differences for a float64 array ``x``; returns the
    gradient.

    ``jax.test_util.check_grads`` (reverse mode, first order) compares the VJP with a central difference along
    random directions. With ``relative_step`` (design parameters span many orders of magnitude) it runs on
    ``u ↦ scalar_fn(x + u·s)`` at ``u = 0`` with ``s_i = max(|x_i|, 1)``, i.e. a step ``eps·s_i`` per coordinate.
    Call inside :func:`float64`.
    """
    from jax.test_util import check_grads

    x = jnp.asarray(x, dtype=jnp.float64)
    assert x.dtype == jnp.float64, "finite-difference checks must run in float64 (use diffsys.testing.float64())"
    scale = jnp.maximum(jnp.abs(x), 1.0) if relative_step else jnp.ones_like(x)
    check_grads(lambda u: scalar_fn(x + u * scale), (jnp.zeros_like(x),), order=1, modes=("rev",), eps=eps,
                atol=atol, rtol=rtol)
    return np.asarray(jax.grad(scalar_fn)(x))


@contextlib.contextmanager
def float64():
    """Enable float64 for the duration of the block."""
    prev = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", prev)


class TraceCounter:
    """Wrap a function to count how many times JAX traces it: ``f = TraceCounter(fn); jit(f)(x); f.count``."""

    def __init__(self, fn):
        self.fn = fn
        self.count = 0

    def __call__(self, *args, **kwargs):
        self.count += 1
        return self.fn(*args, **kwargs)


@contextlib.contextmanager
def _fresh_chex_trace_counts():
    """Run with chex's ``assert_max_traces`` counters starting from zero, and restore the others afterwards (the
    counters are keyed by definition site, so repeated checks from one place would otherwise add up)."""
    try:
        from chex._src import asserts_internal as _ai

        counts = _ai.TRACE_COUNTER
    except (ImportError, AttributeError):  # a chex without that table: counts are only cleared
        import chex

        chex.clear_trace_counter()
        yield
        return
    saved = dict(counts)
    counts.clear()
    try:
        yield
    finally:
        counts.clear()
        counts.update(saved)


def assert_no_retrace(fn, *arg_sets, n: int = 1):
    """``jax.jit(chex.assert_max_traces(fn, n))`` called on every tuple of ``arg_sets``: raises ``AssertionError``
    if the calls (same shapes and dtypes, other values) trace ``fn`` more than ``n`` times. Returns the outputs."""
    import chex

    def traced(*args):
        return fn(*args)

    with _fresh_chex_trace_counts():
        jitted = jax.jit(chex.assert_max_traces(traced, n))
        return [jitted(*args) for args in arg_sets]


def check_model(model, specs, *, metric="time_s", wrt=None, grad_temperatures=(0.0, 0.1), rtol=None, atol=None):
    """Every check of the model protocol on ``model(spec, *, temperature=0.0) -> Metrics`` (docs/design.md).

    ``specs`` is a batch of at least two specs (an ``equinox.Module`` whose array leaves share a leading axis).
    Checks that the model returns a :class:`diffsys.Metrics` holding ``metric``, ``jit == eager`` on the first spec,
    ``vmap == loop`` over the batch, that the loop (other specs, same shapes) never retraces the jitted model, and
    that ``sum(metric)`` has finite gradients at every temperature in ``grad_temperatures`` (exact and relaxed)
    w.r.t. the spec's float leaves (or only the leaves at the paths ``wrt``, e.g. ``("size_B",)``). Returns the
    batched metrics.
    """
    import equinox as eqx

    from .primitives import Metrics
    from .space import get_path

    n = jax.tree_util.tree_leaves(specs)[0].shape[0]
    assert n >= 2, "check_model needs a batch of at least two specs"
    items = [jax.tree_util.tree_map(lambda x, i=i: x[i], specs) for i in range(n)]
    eager = model(items[0], temperature=0.0)
    assert isinstance(eager, Metrics), f"the model returned {type(eager).__name__}, not a diffsys.Metrics"
    assert metric in eager.metric_names(), f"metric {metric!r} not in {eager.metric_names()}"
    import chex

    def exact(s):
        return model(s, temperature=0.0)

    with _fresh_chex_trace_counts():  # the loop (other specs, same shapes) must not retrace the jitted model
        jitted = jax.jit(chex.assert_max_traces(exact, n=1))
        assert_trees_close(eager, jitted(items[0]), rtol, atol, "jit vs eager")
        batched = jax.jit(jax.vmap(exact))(specs)
        looped = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *[jitted(s) for s in items])
    assert_trees_close(batched, looped, rtol, atol, "vmap vs loop")

    def total(s, t):
        return jnp.sum(getattr(model(s, temperature=t), metric))

    if wrt is None:
        grads = jax.jit(lambda s: [eqx.filter_grad(total)(s, t) for t in grad_temperatures])(items[0])
    else:
        paths = tuple(wrt)
        values = {p: jnp.asarray(get_path(items[0], p), dtype=jnp.result_type(float)) for p in paths}

        def at(v):
            return eqx.tree_at(lambda tree: [get_path(tree, p) for p in paths], items[0], [v[p] for p in paths])

        grads = jax.jit(lambda v: [jax.grad(lambda w, t=t: total(at(w), t))(v) for t in grad_temperatures])(values)
    for t, g in zip(grad_temperatures, grads):
        for leaf in jax.tree_util.tree_leaves(g):
            assert np.all(np.isfinite(np.asarray(leaf))), f"non-finite gradient of {metric} at temperature {t}"
    return batched
