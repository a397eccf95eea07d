"""Roofline chart (matplotlib; no backend is chosen here): ops placed by arithmetic intensity and attained FLOP/s under the
device's ceilings (Williams, Waterman & Patterson, CACM 2009)."""

from __future__ import annotations

import numpy as np

from ._ops import OpCost
from ._optime import op_time


def _named_ops(ops, names):
    from ._graphs import OpGraph

    if isinstance(ops, OpGraph):
        return list(ops.names) if names is None else list(names), ops.ops
    if isinstance(ops, OpCost):
        n = int(np.size(ops.flops))
        stacked = OpCost(*(np.broadcast_to(np.asarray(f, float), np.shape(ops.flops)).ravel() for f in ops[:4]))
        return (list(names) if names is not None else [f"op{i}" for i in range(n)]), stacked
    pairs = list(ops)
    if pairs and isinstance(pairs[0], tuple):
        nm = [p[0] for p in pairs]
        stacked = OpCost(*(np.array([float(np.asarray(p[1][j])) for p in pairs]) for j in range(4)))
        return (nm if names is None else list(names)), stacked
    stacked = OpCost(*(np.array([float(np.asarray(o[j])) for o in pairs]) for j in range(4)))
    return (list(names) if names is not None else [f"op{i}" for i in range(len(pairs))]), stacked


def plot_roofline(ops, accel, path=None, *, ax=None, names=None, dtype="bf16", efficiency=None, title=None,
                  levels=True, annotate=True, dpi=120):
    """Roofline chart of ``ops`` on ``accel``: drawn on ``ax`` (a new figure when None), written to ``path`` (PNG,
    or the format of its suffix) when given. Returns the matplotlib figure.

    Args:
        ops: an :class:`OpGraph`, an :class:`OpCost` (scalar or stacked), or a list of ``OpCost`` /
            ``(name, OpCost)`` pairs.
        accel: the device; its matrix and vector peaks for ``dtype`` and the bandwidth of every memory level
            (``levels=True``) or only main memory are drawn as ceilings.
        efficiency: passed to :func:`op_time` for the attained performance of each op (default curves).
    """
    from .._plotting import figure_and_axes, save_figure

    labels, stacked = _named_ops(ops, names)
    r = op_time(stacked, accel, dtype, efficiency)
    ai = np.asarray(stacked.flops) / np.asarray(stacked.bytes_read + stacked.bytes_written)
    perf = np.asarray(r.achieved_flops)
    p_mat = float(accel.peak_flops(dtype))
    p_vec = float(accel.peak_flops(dtype, matrix=False))
    finite = ai[np.isfinite(ai) & (ai > 0)]
    lo = min(0.05, float(finite.min()) / 2) if finite.size else 0.05
    hi = max(1e4, float(finite.max()) * 2) if finite.size else 1e4
    x = np.logspace(np.log10(lo), np.log10(hi), 256)
    own = ax is None
    fig, ax = figure_and_axes(ax, figsize=(7.5, 5.0))
    mem_levels = accel.memory if levels else (accel.main_memory,)
    for lvl in mem_levels:
        bw = float(lvl.bandwidth_Bps)
        ax.plot(x, np.minimum(p_mat, bw * x), lw=1.2, label=f"{lvl.name} {bw / 1e12:.3g} TB/s")
    ax.axhline(p_mat, color="k", lw=1.5, ls="-", label=f"matrix peak {p_mat / 1e12:.4g} TFLOP/s ({dtype})")
    ax.axhline(p_vec, color="grey", lw=1.0, ls="--", label=f"vector peak {p_vec / 1e12:.4g} TFLOP/s")
    bound = np.asarray(r.compute_bound)
    plot_ai = np.where(np.isfinite(ai) & (ai > 0), ai, lo)
    ax.scatter(plot_ai[bound], perf[bound], marker="o", c="tab:red", zorder=3, label="compute-bound ops")
    ax.scatter(plot_ai[~bound], perf[~bound], marker="s", c="tab:blue", zorder=3, label="memory-bound ops")
    if annotate and len(labels) <= 40:
        for xi, yi, s in zip(plot_ai, perf, labels):
            ax.annotate(s, (xi, max(yi, 1.0)), fontsize=6, xytext=(3, 2), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ymin = max(min(float(np.min(perf[perf > 0])) if np.any(perf > 0) else p_vec, p_vec) / 10, 1.0)
    ax.set_ylim(ymin, p_mat * 2)
    ax.set_xlabel("arithmetic intensity (FLOP / byte of main memory)")
    ax.set_ylabel("attained FLOP/s")
    ax.set_title(title or f"Roofline: {accel.name}")
    ax.grid(True, which="both", lw=0.3, alpha=0.5)
    ax.legend(fontsize=7, loc="lower right")
    if own:
        fig.tight_layout()
    return save_figure(fig, path, dpi=dpi)
