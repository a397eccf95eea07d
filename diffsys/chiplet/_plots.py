"""Figures: a package diagram (dies, D2D links, memory interfaces, work fractions) and a link-load heat map."""

from __future__ import annotations

import numpy as np

from ._graph import DIAG
from ._model import MCMDesign, MCMModel
from ._package import ChipletPackage


def _centres(graph):
    return np.array([(c + 0.5, graph.rows - r - 0.5) for r, c in (divmod(i, graph.cols) for i in range(graph.n))])


def _work_share(model, design):
    """FLOP-weighted work fraction of each chiplet over the whole workload."""
    p = np.asarray(design.fractions)
    flops = model.workload.flops
    w = np.array([flops[model.workload.group == g].sum() for g in range(model.num_groups)])
    return (w[:, None] * p).sum(0) / w.sum()


def plot_package(model: MCMModel, design: MCMDesign, ax=None, title=None, path=None):
    """Package diagram: dies coloured by work share, mesh and built diagonal links, memory interfaces (HBM). Drawn on
    ``ax`` (a new figure when None), written to ``path`` when given; returns the figure."""
    import matplotlib
    from matplotlib.patches import Rectangle

    from .._plotting import figure_and_axes, save_figure

    g = model.graph
    fig, ax = figure_and_axes(ax, figsize=(1.6 * g.cols + 1.5, 1.6 * g.rows + 1))
    k = int(np.clip(np.round(float(design.diagonals)), 0, len(g.pattern_names) - 1))
    pl = int(np.clip(np.round(float(design.memory)), 0, len(g.placement_names) - 1))
    share = _work_share(model, design)
    xy = _centres(g)
    cmap = matplotlib.colormaps["Blues"]
    die = 0.7
    for i, (x, y) in enumerate(xy):
        ax.add_patch(Rectangle((x - die / 2, y - die / 2), die, die, fc=cmap(0.15 + 0.8 * share[i] / share.max()),
                               ec="k", lw=1.2, zorder=2))
        ax.text(x, y, f"{100 * share[i]:.1f}%", ha="center", va="center", fontsize=8, zorder=3)
    enabled = g.enabled[k]
    for e, (s, d, kind, _) in enumerate(g.links):
        if s > d or not enabled[e]:
            continue
        (x0, y0), (x1, y1) = xy[s], xy[d]
        ax.plot([x0, x1], [y0, y1], color="tab:red" if kind == DIAG else "0.4", lw=2.5 if kind != DIAG else 1.8,
                zorder=1)
    share_mem = g.mem_share[pl]
    local = np.allclose(g.mem_M[pl], np.eye(g.n))
    for i, (x, y) in enumerate(xy):
        if share_mem[i] <= 0:
            continue
        r, c = divmod(i, g.cols)
        if local:
            ax.add_patch(Rectangle((x + die / 2 - 0.12, y + die / 2 - 0.12), 0.1, 0.1, fc="tab:orange", zorder=4))
            continue
        for side, (dx, dy, w, h) in {"W": (-die / 2 - 0.14, -0.15, 0.1, 0.3), "E": (die / 2 + 0.04, -0.15, 0.1, 0.3),
                                     "N": (-0.15, die / 2 + 0.04, 0.3, 0.1),
                                     "S": (-0.15, -die / 2 - 0.14, 0.3, 0.1)}.items():
            edge = {"W": c == 0, "E": c == g.cols - 1, "N": r == 0, "S": r == g.rows - 1}[side]
            if edge:
                ax.add_patch(Rectangle((x + dx, y + dy), w, h, fc="tab:orange", ec="k", lw=0.5, zorder=4))
    ax.set_xlim(-0.1, g.cols + 0.1)
    ax.set_ylim(-0.1, g.rows + 0.1)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title or f"{g.rows}x{g.cols}, diagonals={g.pattern_names[k]}, memory={g.placement_names[pl]}",
                 fontsize=9)
    return save_figure(fig, path, dpi=110)


def plot_link_loads(model: MCMModel, design: MCMDesign, package: ChipletPackage, ax=None, title=None,
                    metric="bytes", path=None):
    """Heat map of the directed links: each direction drawn offset from the die-to-die line, coloured by the bytes
    it carries over the whole run (``metric="bytes"``) or by its busy time (``"time"``, bytes / link bandwidth).
    Drawn on ``ax`` (a new figure when None), written to ``path`` when given; returns the figure."""
    from matplotlib.collections import LineCollection
    from matplotlib.patches import Rectangle

    from .._plotting import figure_and_axes, save_figure

    g = model.graph
    m = model(design, package)
    load = np.asarray(m.link_bytes, float)
    if metric == "time":
        k = int(np.clip(np.round(float(design.diagonals)), 0, len(g.pattern_names) - 1))
        shore = np.where(g.kind == DIAG, float(package.corner_mm) * g.enabled[k],
                         np.where(g.kind == 0, float(package.height_mm), float(package.width_mm))
                         * float(package.d2d_edge_fraction) - g.corners[k] * float(package.corner_mm) / 2)
        bw = 0.5 * float(package.packaging.bandwidth_density_Bps_per_mm) * np.maximum(shore, 0)
        load = np.where(bw > 0, load / np.where(bw > 0, bw, 1.0), 0.0)
    fig, ax = figure_and_axes(ax, figsize=(1.6 * g.cols + 2.2, 1.6 * g.rows + 1))
    xy = _centres(g)
    for x, y in xy:
        ax.add_patch(Rectangle((x - 0.3, y - 0.3), 0.6, 0.6, fc="0.93", ec="0.5", zorder=1))
    segs, vals = [], []
    for e, (s, d, kind, _) in enumerate(g.links):
        if load[e] <= 0:
            continue
        p0, p1 = xy[s], xy[d]
        v = p1 - p0
        n = np.array([-v[1], v[0]]) / np.linalg.norm(v)
        off = 0.07 * n
        segs.append([p0 + 0.2 * v + off, p1 - 0.2 * v + off])
        vals.append(load[e])
    if segs:
        vals = np.asarray(vals)
        lc = LineCollection(segs, cmap="inferno_r", linewidths=4, zorder=2)
        lc.set_array(vals)
        lc.set_clim(0, vals.max())
        ax.add_collection(lc)
        cb = fig.colorbar(lc, ax=ax, fraction=0.05)
        cb.set_label("link bytes" if metric == "bytes" else "link busy time (s)")
    ax.set_xlim(-0.1, g.cols + 0.1)
    ax.set_ylim(-0.1, g.rows + 0.1)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title or f"link loads ({model.workload.name}, {package.packaging.name})", fontsize=9)
    return save_figure(fig, path, dpi=110)


def plot_designs(model: MCMModel, designs: dict, package: ChipletPackage, path=None):
    """Package diagrams (top row) and link-load heat maps (bottom row) of several designs side by side
    (``{label: design}``); written to ``path`` when given. Returns the figure."""
    from .._plotting import figure_and_axes, save_figure

    k = len(designs)
    fig, axes = figure_and_axes(figsize=(4.2 * k, 7.5), nrows=2, ncols=k)
    for j, (label, d) in enumerate(designs.items()):
        plot_package(model, d, axes[0, j], title=f"{label}: package")
        plot_link_loads(model, d, package, axes[1, j], title=f"{label}: link bytes")
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)


def save_figures(model: MCMModel, designs: dict, package: ChipletPackage, path_prefix: str):
    """:func:`plot_designs` written to ``path_prefix`` (a PNG path); returns the path."""
    plot_designs(model, designs, package, path_prefix)
    return path_prefix


def plot_lever_gains(rows, paper=None, ax=None, path=None):
    """Grouped bars of the EdP improvement per lever (rows of :func:`diffsys.problems.mcm_lever_study`): one panel
    per workload, GA and exact bars per lever; ``paper`` (``{"ga": x, "exact": y}``) draws the reported gains as
    dashed lines. Returns the figure."""
    from .._plotting import figure_and_axes, save_figure

    works = list(dict.fromkeys(r["workload"] for r in rows))
    fig, axes = figure_and_axes(ax, figsize=(6.5 * len(works), 4.2), ncols=len(works))
    axes = np.asarray(axes).ravel()
    for a, w in zip(axes, works):
        rs = [r for r in rows if r["workload"] == w]
        x = np.arange(len(rs))
        for k, (m, col) in enumerate((("ga", "tab:blue"), ("exact", "tab:orange"))):
            v = [r[m] for r in rs]
            a.bar(x + (k - 0.5) * 0.38, v, 0.38, color=col, label="GA" if m == "ga" else "exact")
            for xi, vi in zip(x, v):
                a.text(xi + (k - 0.5) * 0.38, vi, f"{vi:.2f}", ha="center", va="bottom", fontsize=7)
        for m, ls in (("ga", "--"), ("exact", ":")):
            if paper and m in paper:
                a.axhline(paper[m], color="0.3", ls=ls, lw=1, label=f"paper {'GA' if m == 'ga' else 'MIQP'} "
                                                                     f"{paper[m]}x")
        a.axhline(1.0, color="k", lw=0.8)
        a.set_xticks(x, [r["title"] for r in rs], rotation=35, ha="right", fontsize=8)
        a.set_ylabel("EdP improvement over baseline (x)")
        a.set_title(f"{w}, {rs[0]['chiplets']} chiplets", fontsize=10)
        a.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)
