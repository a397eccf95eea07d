"""Shared reporting for sweep-style commands: a top-k table, a Pareto plot (PNG), CSV/JSON of the front, and a
machine-readable summary."""

from __future__ import annotations

import csv
import json
import os


def format_table(rows: list, columns=None, max_rows=None) -> str:
    """A plain-text table of dict rows (numbers in compact engineering format)."""
    if not rows:
        return "(no feasible configurations)"
    rows = rows[:max_rows] if max_rows else rows
    columns = columns or list(rows[0])

    def fmt(v):
        if isinstance(v, float):
            return f"{v:.4g}" if v == v and abs(v) != float("inf") else "n/a"  # never a bare nan/inf
        return str(v)

    cells = [[fmt(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


#: units of the column names' suffixes (one naming for the table, the summary JSON and the front's CSV/JSON)
UNITS = {"_s": "s", "_J": "J", "_W": "W", "_kW": "kW", "_B": "B", "_GiB": "GiB", "_Bps": "B/s", "_GBps": "GB/s",
         "_TBps": "TB/s", "_usd": "USD", "_MUSD": "million USD", "_flops": "FLOP/s", "_Hz": "Hz", "_K": "K",
         "_MiB": "MiB", "_mm2": "mm^2"}


def column_units(rows: list) -> dict:
    """``{column: unit}`` of the columns of ``rows`` (from the name's suffix; ``""`` for counts and ratios)."""
    columns = list(dict.fromkeys(c for r in rows for c in r))
    return {c: next((u for suffix, u in sorted(UNITS.items(), key=lambda x: -len(x[0])) if c.endswith(suffix)), "")
            for c in columns}


def write_rows(rows: list, path_stem: str, provenance: dict | None = None) -> list:
    """Write rows as ``<stem>.csv`` and ``<stem>.json`` (same columns, same units); with ``provenance``, also
    ``<stem>.provenance.json`` (the record, and the unit of every column). Returns the paths."""
    from .._files import atomic_write

    with atomic_write(f"{path_stem}.json") as f:
        json.dump(json_safe(rows), f, indent=2, allow_nan=False)
    paths = [f"{path_stem}.csv", f"{path_stem}.json"]
    if provenance is not None:
        with atomic_write(f"{path_stem}.provenance.json", "provenance") as f:
            json.dump(json_safe({"provenance": provenance, "columns": column_units(rows),
                                 "describes": [os.path.basename(p) for p in paths]}), f, indent=2)
        paths.append(f"{path_stem}.provenance.json")
    with atomic_write(f"{path_stem}.csv") as f:
        if rows:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return paths


def plot_front(front_rows: list, x: str, y: str, path: str, title: str, best: dict | None = None,
               xlabel=None, ylabel=None, metadata: dict | None = None) -> str:
    """Scatter the Pareto front ``y`` vs ``x`` (log axes) and save a PNG (``metadata``: PNG text chunks, e.g. the
    provenance record)."""
    from .._plotting import figure_and_axes

    fig, ax = figure_and_axes(figsize=(6.4, 4.4))  # no pyplot: the backend is left alone
    xs = [r[x] for r in front_rows]
    ys = [r[y] for r in front_rows]
    ax.plot(xs, ys, "o-", ms=3, lw=1, label="Pareto front")
    if best is not None:
        ax.plot([best[x]], [best[y]], "r*", ms=12, label="best objective")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel or x)
    ax.set_ylabel(ylabel or y)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    from .._files import atomic_write

    with atomic_write(path, "plot", binary=True) as f:
        fig.savefig(f, format="png", dpi=120, metadata=metadata)
    return path


def json_safe(obj):
    """Replace non-finite floats by ``None`` and NumPy scalars by Python numbers, recursively."""
    import math

    import numpy as np

    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
