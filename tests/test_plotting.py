"""Plot functions: no backend switching in library code, ``ax=`` honoured, a figure returned, files only on
request."""

import pathlib
import re

import jax.numpy as jnp
import matplotlib
import pytest
from matplotlib.figure import Figure

import diffsys
import diffsys.power as P
from diffsys import chiplet as C
from diffsys import hardware as H
from diffsys import roofline as R

FLP = P.floorplan([("hot", 0.004, 0.004, 0.0, 0.0), ("cool", 0.004, 0.004, 0.004, 0.0)])


def _chiplet():
    model = C.MCMModel(C.transformer(layers=2, batch=2), C.D2DGraph.build(2, 2))
    pk = C.ChipletPackage.split(4, "organic")
    return model, pk, C.baseline(model, pk)[0]


def _plots():
    model, pk, design = _chiplet()
    ops = [("gemm", R.gemm(1024, 1024, 1024)), ("add", R.elementwise(1 << 20))]
    return {
        "roofline": lambda path=None, ax=None: R.plot_roofline(ops, H.h100_sxm(), path, ax=ax),
        "heatmap": lambda path=None, ax=None: P.plot_heatmap(FLP, jnp.arange(12.0).reshape(3, 4), path, ax=ax),
        "package": lambda path=None, ax=None: C.plot_package(model, design, ax=ax, path=path),
        "link_loads": lambda path=None, ax=None: C.plot_link_loads(model, design, pk, ax=ax, path=path),
    }


def test_no_backend_switch_in_library_code():
    root = pathlib.Path(diffsys.__file__).parent
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.py")
                 if re.search(r"matplotlib\.use\(|pyplot\.switch_backend\(|plt\.switch_backend\(", p.read_text())]
    assert offenders == [], f"library modules switch the matplotlib backend: {offenders}"


def test_plots_keep_backend_honour_ax_and_write_only_on_request(tmp_path):
    backend = matplotlib.get_backend()
    for name, plot in _plots().items():
        fig = plot()
        assert isinstance(fig, Figure) and fig.axes, name
        host = Figure()
        ax = host.add_subplot()
        assert plot(ax=ax) is host, name  # drawn on the given axes, their figure returned
        assert ax.has_data() or ax.patches or ax.images, name
        path = tmp_path / f"{name}.png"
        assert plot(path=path) is not None and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{n}.png" for n in _plots())
    assert matplotlib.get_backend() == backend


def test_designs_grid_and_legacy_save(tmp_path):
    model, pk, design = _chiplet()
    fig = C.plot_designs(model, {"a": design, "b": design}, pk)
    assert len(fig.axes) >= 4
    out = C.save_figures(model, {"a": design}, pk, str(tmp_path / "mcm.png"))
    assert out == str(tmp_path / "mcm.png") and (tmp_path / "mcm.png").stat().st_size > 5000


@pytest.mark.parametrize("bad", ["roofline"])
def test_plot_to_unwritable_path_raises(tmp_path, bad):
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises((ValueError, OSError)):
        _plots()[bad](path=target / "sub.png")
