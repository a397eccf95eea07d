"""Interval evaluation of a traced JAX function: a *valid* enclosure ``[lo, hi]`` of every output over a box of inputs.

The function is traced once to a jaxpr and re-interpreted on interval pairs (the "custom interpreter" pattern of the
JAX documentation, *Writing custom Jaxpr interpreters*). Interval arithmetic follows Moore, Kearfott & Cloud,
*Introduction to Interval Analysis*, SIAM 2009: sums add endpoints, products and quotients take the extremes of the
endpoint products (a quotient only when the divisor's interval excludes zero), monotone functions (``log``, ``exp``,
``sqrt``, ``ceil``, ``max``, ...) map endpoints, matrix products use the midpoint-radius form (Rump, BIT 1999),
comparisons give three-valued booleans (``lo = certainly true``, ``hi = possibly true``) and ``select_n`` takes the
hull of the cases its predicate allows.

Soundness does not depend on covering every primitive: a primitive without a rule is evaluated exactly when all its
inputs are points (``lo == hi``) and otherwise returns the trivial enclosure (``±inf``; ``False..True``; the integer
range), so the bound stays valid and only gets weaker. The endpoints are computed in the working precision with
round-to-nearest (no outward rounding), so an enclosure can miss the exact value by a few ulps; callers that prune
with it apply a relative tolerance (:func:`diffsys.optimize.exact_search`, ``rtol``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

_MONOTONE_UP = {"exp", "exp2", "log", "log1p", "expm1", "tanh", "logistic", "ceil", "floor", "round", "sign", "erf",
                "atan", "cbrt", "reduce_max", "reduce_min", "sqrt", "reduce_precision", "asinh"}
_STRUCTURAL = {"broadcast_in_dim", "reshape", "squeeze", "expand_dims", "slice", "transpose", "rev", "copy", "copy_p",
               "stop_gradient", "concatenate", "stack", "optimization_barrier"}
_INDEXED = {"dynamic_slice": 1, "gather": 1}  # data operands first, index operands after (must be points)
_CALLS = ("jaxpr", "call_jaxpr", "fun_jaxpr")


def _is_float(dtype):
    return jnp.issubdtype(dtype, jnp.floating)


def _unknown(aval):
    dt = aval.dtype
    if dt == jnp.bool_:
        return jnp.zeros(aval.shape, bool), jnp.ones(aval.shape, bool)
    if jnp.issubdtype(dt, jnp.integer):
        info = jnp.iinfo(dt)
        return jnp.full(aval.shape, info.min, dt), jnp.full(aval.shape, info.max, dt)
    return jnp.full(aval.shape, -jnp.inf, dt), jnp.full(aval.shape, jnp.inf, dt)


def _guard(lo, hi):
    """NaN endpoints become the trivial bound on that side (conservative)."""
    if _is_float(lo.dtype):
        lo = jnp.where(jnp.isnan(lo), -jnp.inf, lo)
        hi = jnp.where(jnp.isnan(hi), jnp.inf, hi)
    return lo, hi


def _nan0(x):
    return jnp.where(jnp.isnan(x), 0.0, x)


def _mul(a, b):
    (al, ah), (bl, bh) = a, b
    p = [_nan0(al * bl), _nan0(al * bh), _nan0(ah * bl), _nan0(ah * bh)]  # 0·inf = 0 for a point zero factor
    return (jnp.minimum(jnp.minimum(p[0], p[1]), jnp.minimum(p[2], p[3])),
            jnp.maximum(jnp.maximum(p[0], p[1]), jnp.maximum(p[2], p[3])))


def _div(a, b):
    (al, ah), (bl, bh) = a, b
    q = [al / bl, al / bh, ah / bl, ah / bh]  # monotone in each argument when the divisor excludes 0
    lo = jnp.minimum(jnp.minimum(q[0], q[1]), jnp.minimum(q[2], q[3]))
    hi = jnp.maximum(jnp.maximum(q[0], q[1]), jnp.maximum(q[2], q[3]))
    ok = (bl > 0) | (bh < 0)
    return jnp.where(ok, lo, -jnp.inf), jnp.where(ok, hi, jnp.inf)


def _integer_pow(a, y):
    lo, hi = a
    if y < 0:
        return _div((jnp.ones_like(lo),) * 2, _integer_pow(a, -y))
    if y == 0:
        return jnp.ones_like(lo), jnp.ones_like(hi)
    pl, ph = lo**y, hi**y
    if y % 2 == 1:
        return pl, ph
    # even power: smallest at the point of the interval closest to 0
    return jnp.where(lo >= 0, pl, jnp.where(hi <= 0, ph, 0.0)).astype(lo.dtype), jnp.maximum(pl, ph)


def _pow(a, b):
    """``x**y = exp(y log x)`` for ``x > 0``: bilinear in ``(y, log x)`` so the extremes are at the corners."""
    (al, ah), (bl, bh) = a, b
    c = [al**bl, al**bh, ah**bl, ah**bh]
    lo = jnp.minimum(jnp.minimum(c[0], c[1]), jnp.minimum(c[2], c[3]))
    hi = jnp.maximum(jnp.maximum(c[0], c[1]), jnp.maximum(c[2], c[3]))
    ok = al > 0
    return jnp.where(ok, lo, -jnp.inf), jnp.where(ok, hi, jnp.inf)


def _compare(name, a, b):
    (al, ah), (bl, bh) = a, b
    if name == "lt":
        return ah < bl, al < bh
    if name == "le":
        return ah <= bl, al <= bh
    if name == "gt":
        return al > bh, ah > bl
    if name == "ge":
        return al >= bh, ah >= bl
    point_eq = (al == ah) & (bl == bh) & (al == bl)
    disjoint = (ah < bl) | (al > bh)
    if name == "eq":
        return point_eq, ~disjoint
    return disjoint, ~point_eq  # ne


def _select(pred, cases):
    pl, ph = (p.astype(jnp.int32) for p in pred)
    lo = hi = None
    for i, (cl, ch) in enumerate(cases):
        allowed = (pl <= i) & (ph >= i)
        cl = jnp.where(allowed, cl, _top(cl, +1))
        ch = jnp.where(allowed, ch, _top(ch, -1))
        lo = cl if lo is None else jnp.minimum(lo, cl)
        hi = ch if hi is None else jnp.maximum(hi, ch)
    return lo, hi


def _top(x, sign):
    if x.dtype == jnp.bool_:
        return jnp.full(x.shape, sign > 0)
    if jnp.issubdtype(x.dtype, jnp.integer):
        info = jnp.iinfo(x.dtype)
        return jnp.full(x.shape, info.max if sign > 0 else info.min, x.dtype)
    return jnp.full(x.shape, sign * jnp.inf, x.dtype)


def _point(intervals):
    ok = jnp.asarray(True)
    for lo, hi in intervals:
        ok = ok & jnp.all(lo == hi)
    return ok


def _rule(eqn, ins):
    """The interval rule of one equation, or ``None`` when the primitive has none (the caller falls back)."""
    name = eqn.primitive.name
    p = eqn.params
    out_dt = eqn.outvars[0].aval.dtype
    fl = _is_float(out_dt)
    if name in _STRUCTURAL:
        return [(eqn.primitive.bind(*[i[0] for i in ins], **p), eqn.primitive.bind(*[i[1] for i in ins], **p))]
    if name in _INDEXED:
        k = _INDEXED[name]
        idx = [i[0] for i in ins[k:]]
        lo = eqn.primitive.bind(*[i[0] for i in ins[:k]], *idx, **p)
        hi = eqn.primitive.bind(*[i[1] for i in ins[:k]], *idx, **p)
        unk = _unknown(eqn.outvars[0].aval)
        ok = _point(ins[k:])
        return [(jnp.where(ok, lo, unk[0]), jnp.where(ok, hi, unk[1]))]
    if name in ("lt", "le", "gt", "ge", "eq", "ne"):
        return [_compare(name, *ins)]
    if name == "select_n":
        return [_select(ins[0], ins[1:])]
    if name in ("max", "min", "clamp") or (name in ("and", "or") and out_dt == jnp.bool_):
        f = {"max": lax.max, "min": lax.min, "clamp": lax.clamp, "and": jnp.logical_and, "or": jnp.logical_or}[name]
        return [(f(*[i[0] for i in ins]), f(*[i[1] for i in ins]))]
    if name == "not" and out_dt == jnp.bool_:
        return [(~ins[0][1], ~ins[0][0])]
    if name in ("reduce_and", "reduce_or"):
        return [(eqn.primitive.bind(ins[0][0], **p), eqn.primitive.bind(ins[0][1], **p))]
    if name == "convert_element_type":
        lo, hi = ins[0]
        if out_dt == jnp.bool_:
            zero_free = (lo > 0) | (hi < 0)
            return [(zero_free, ~((lo == 0) & (hi == 0)))]
        return [(eqn.primitive.bind(lo, **p), eqn.primitive.bind(hi, **p))]  # monotone (truncation included)
    if name == "is_finite":
        lo, hi = ins[0]
        fin = jnp.isfinite(lo) & jnp.isfinite(hi)
        return [(fin, ~((lo == hi) & ~jnp.isfinite(lo)))]
    if not fl:
        return None  # integer arithmetic could overflow at the trivial bounds: fall back
    if name in _MONOTONE_UP:
        lo, hi = ins[0]
        if name in ("sqrt", "log"):
            lo = jnp.maximum(lo, 0.0)
        return [(eqn.primitive.bind(lo, **p), eqn.primitive.bind(hi, **p))]
    if name == "rsqrt":
        return [(lax.rsqrt(ins[0][1]), lax.rsqrt(jnp.maximum(ins[0][0], 0.0)))]
    if name == "add":
        return [(ins[0][0] + ins[1][0], ins[0][1] + ins[1][1])]
    if name == "sub":
        return [(ins[0][0] - ins[1][1], ins[0][1] - ins[1][0])]
    if name == "neg":
        return [(-ins[0][1], -ins[0][0])]
    if name == "abs":
        lo, hi = ins[0]
        return [(jnp.where(lo >= 0, lo, jnp.where(hi <= 0, -hi, 0.0)).astype(lo.dtype),
                 jnp.maximum(jnp.abs(lo), jnp.abs(hi)))]
    if name == "mul":
        return [_mul(*ins)]
    if name == "div":
        return [_div(*ins)]
    if name == "integer_pow":
        return [_integer_pow(ins[0], int(p["y"]))]
    if name == "square":
        return [_integer_pow(ins[0], 2)]
    if name == "pow":
        return [_pow(*ins)]
    if name == "reduce_sum":
        return [(eqn.primitive.bind(ins[0][0], **p), eqn.primitive.bind(ins[0][1], **p))]
    if name == "dot_general":
        (al, ah), (bl, bh) = ins
        ac, ar, bc, br = (al + ah) / 2, (ah - al) / 2, (bl + bh) / 2, (bh - bl) / 2
        dot = lambda x, y: eqn.primitive.bind(x, y, **p)  # noqa: E731
        mid, rad = dot(ac, bc), dot(jnp.abs(ac), br) + dot(ar, jnp.abs(bc)) + dot(ar, br)
        return [(mid - rad, mid + rad)]
    return None


def _sub_jaxpr(eqn):
    for k in _CALLS:
        j = eqn.params.get(k)
        if j is not None and hasattr(j, "jaxpr") and hasattr(j, "consts"):
            return j
    return None


def eval_interval_jaxpr(jaxpr, consts, args):
    """Interval-evaluate ``jaxpr`` (a ``Jaxpr``) on ``args``, a list of ``(lo, hi)`` pairs."""
    env = {}

    def read(v):
        if hasattr(v, "val") and not hasattr(v, "count"):  # a Literal
            x = jnp.asarray(v.val)
            return x, x
        return env[v]

    for v, c in zip(jaxpr.constvars, consts):
        c = jnp.asarray(c)
        env[v] = (c, c)
    for v, a in zip(jaxpr.invars, args):
        env[v] = a
    for eqn in jaxpr.eqns:
        ins = [read(v) for v in eqn.invars]
        sub = _sub_jaxpr(eqn)
        if eqn.primitive.name in ("jit", "pjit", "closed_call", "core_call", "custom_jvp_call", "custom_vjp_call",
                                  "remat", "checkpoint", "custom_vjp_call_jaxpr") and sub is not None:
            n_extra = len(ins) - len(sub.jaxpr.invars)
            outs = eval_interval_jaxpr(sub.jaxpr, sub.consts, ins[max(n_extra, 0):])
        else:
            outs = _rule(eqn, ins)
            if outs is None:
                outs = _fallback(eqn, ins)
        for v, (lo, hi) in zip(eqn.outvars, outs):
            dt = v.aval.dtype
            lo, hi = _guard(jnp.asarray(lo).astype(dt), jnp.asarray(hi).astype(dt))
            env[v] = (lo, hi)
    return [read(v) for v in jaxpr.outvars]


def _fallback(eqn, ins):
    """Exact value when every input is a point, the trivial enclosure otherwise."""
    vals = eqn.primitive.bind(*[i[0] for i in ins], **eqn.params)
    vals = vals if eqn.primitive.multiple_results else [vals]
    ok = _point(ins)
    out = []
    for v, x in zip(eqn.outvars, vals):
        ul, uh = _unknown(v.aval)
        out.append((jnp.where(ok, x, ul), jnp.where(ok, x, uh)))
    return out


def interval_function(fn, example_args):
    """``fn(*scalars) -> pytree`` as ``g(lo_args, hi_args) -> (lo_tree, hi_tree)``, an enclosure of ``fn``'s
    outputs over the box ``lo_args <= args <= hi_args`` (traced once at ``example_args``; jit/vmap clean)."""
    closed, shape = jax.make_jaxpr(fn, return_shape=True)(*example_args)
    treedef = jax.tree_util.tree_structure(shape)

    def g(lo_args, hi_args):
        outs = eval_interval_jaxpr(closed.jaxpr, closed.consts, list(zip(lo_args, hi_args)))
        return (jax.tree_util.tree_unflatten(treedef, [o[0] for o in outs]),
                jax.tree_util.tree_unflatten(treedef, [o[1] for o in outs]))

    return g

