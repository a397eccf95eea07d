"""Figure handling shared by the plot functions: no backend switching, an optional ``ax``, a file only on request.

Figures are built as :class:`matplotlib.figure.Figure` objects (not through ``pyplot``), so library code never
chooses or changes the backend (a Jupyter kernel keeps its own), nothing is registered with ``pyplot``'s figure
manager (no figures pile up in long sweeps), and saving a PNG needs no display.
"""

from __future__ import annotations


def figure_and_axes(ax=None, *, figsize=None, nrows: int = 1, ncols: int = 1, **subplot_kw):
    """``(figure, ax)``: ``ax``'s figure when given, else a new figure with ``nrows × ncols`` axes (an array of them
    when more than one)."""
    if ax is not None:
        return ax.figure, ax
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    axes = fig.subplots(nrows, ncols, squeeze=(nrows == 1 and ncols == 1), **subplot_kw)
    return fig, axes


def save_figure(fig, path, **savefig_kw):
    """Write ``fig`` to ``path`` (atomically) when ``path`` is not None; returns ``fig``."""
    if path is not None:
        import os

        from ._files import atomic_write

        fmt = savefig_kw.pop("format", None) or (os.path.splitext(os.fspath(path))[1][1:].lower() or "png")
        with atomic_write(path, "figure", binary=True) as f:
            fig.savefig(f, format=fmt, **savefig_kw)
    return fig
