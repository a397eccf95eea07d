"""Validation of the block thermal model against HotSpot 6, the HotSpot file readers, and `diffsys hotspot`."""

import numpy as np
import pytest

import diffsys.power as P
from diffsys.cli import main as cli_main
from diffsys.io import read_flp, read_hotspot_config, read_ptrace, read_steady
from diffsys.testing import float64

CASES = [("ev6.flp", "gcc.ptrace", "example.config", "ev6_gcc.steady"),
         ("caseD.flp", "caseD.ptrace", "caseD.config", "caseD.steady")]


@pytest.fixture(scope="module")
def hs(validation_dir):
    d = validation_dir / "hotspot"
    if not d.is_dir():
        pytest.skip("no HotSpot validation data")
    return d


def _errors(hs, case):
    flp_f, pt_f, cfg_f, st_f = case
    with float64():
        flp = read_flp(hs / flp_f)
        power = read_ptrace(hs / pt_f).for_floorplan(flp).mean(axis=0)
        cfg = read_hotspot_config(hs / cfg_f)
        net = P.block_network(flp, cfg.thermal)
        temps = np.asarray(P.solve_steady(net, power).nodes_K)
    ref = read_steady(hs / st_f)
    assert set(ref) == set(net.names), "node names/order must match HotSpot's steady file"
    assert list(ref) == list(net.names)
    err = np.array([temps[i] - ref[name] for i, name in enumerate(net.names)])
    return err, flp.n_blocks, cfg


@pytest.mark.parametrize("case", CASES, ids=["ev6-gcc", "caseD"])
def test_block_model_matches_hotspot(hs, case):
    err, n, cfg = _errors(hs, case)
    assert cfg.unknown == ()
    si = np.abs(err[:n])
    # HotSpot prints 2 decimals: a faithful model is within the 0.005 K rounding on every node
    assert si.max() < 0.1, f"silicon block error {si.max():.3f} K"
    assert si.max() <= 0.0051, f"silicon max error {si.max():.4f} K (mean {si.mean():.4f})"
    assert np.abs(err).max() <= 0.0051, f"package/periphery node max error {np.abs(err).max():.4f} K"


def test_float32_within_validation_band(hs):
    flp = read_flp(hs / "ev6.flp")
    power = read_ptrace(hs / "gcc.ptrace").for_floorplan(flp).mean(axis=0)
    cfg = read_hotspot_config(hs / "example.config").thermal
    temps = P.steady_state(flp, power, cfg).block_K
    ref = read_steady(hs / "ev6_gcc.steady")
    err = np.abs(np.asarray(temps) - np.array([ref[b] for b in flp.names]))
    assert err.max() < 0.1


def test_cli_reproduces_hotspot_steady_file(hs, tmp_path):
    out = tmp_path / "ev6.steady"
    tt = tmp_path / "ev6.ttrace"
    rc = cli_main(["hotspot", "-c", str(hs / "example.config"), "-f", str(hs / "ev6.flp"), "-p",
                   str(hs / "gcc.ptrace"), "-steady_file", str(out), "-o", str(tt)])
    assert rc == 0
    got = out.read_text().splitlines()
    ref = (hs / "ev6_gcc.steady").read_text().splitlines()
    assert [line.split("\t")[0] for line in got] == [line.split("\t")[0] for line in ref]
    diffs = [abs(float(a.split("\t")[1]) - float(b.split("\t")[1])) for a, b in zip(got, ref)]
    assert max(diffs) <= 0.011
    lines = tt.read_text().splitlines()
    assert lines[0].split("\t") == list(read_flp(hs / "ev6.flp").names)
    assert len(lines) == 1 + len(read_ptrace(hs / "gcc.ptrace").power_W)
    vals = np.array([[float(v) for v in line.split("\t")] for line in lines[1:]])
    assert np.all(np.isfinite(vals)) and vals.min() > 300 and vals.max() < 400


def test_cli_overrides_and_grid(hs, tmp_path, capsys):
    base = ["hotspot", "-c", str(hs / "caseD.config"), "-f", str(hs / "caseD.flp"), "-p", str(hs / "caseD.ptrace")]
    assert cli_main(base) == 0
    t1 = float(capsys.readouterr().out.splitlines()[0].split("\t")[1])
    assert cli_main(base + ["-r_convec", "0.5"]) == 0
    t2 = float(capsys.readouterr().out.splitlines()[0].split("\t")[1])
    assert t2 > t1 + 10  # 4x convection resistance at 48 W
    png = tmp_path / "caseD.png"
    out = tmp_path / "g.steady"
    assert cli_main(base + ["-model_type", "grid", "-grid_rows", "12", "-grid_cols", "12", "-steady_file",
                            str(out), "--heatmap", str(png)]) == 0
    assert png.stat().st_size > 1000
    names = [line.split("\t")[0] for line in out.read_text().splitlines()]
    assert names[:4] == ["core0", "core1", "cache", "io"] and names[-1] == "inode_11"


def test_cli_bad_inputs(hs, tmp_path, capsys):
    rc = cli_main(["hotspot", "-c", str(hs / "example.config"), "-f", str(hs / "ev6.flp"), "-p",
                   str(hs / "caseD.ptrace")])
    assert rc == 2
    assert "not in the floorplan" in capsys.readouterr().err
    cfg = tmp_path / "bad.config"
    cfg.write_text("-k_chip 100\n-bogus_param 3\n")
    rc = cli_main(["hotspot", "-c", str(cfg), "-f", str(hs / "caseD.flp"), "-p", str(hs / "caseD.ptrace")])
    assert rc == 0
    assert "unknown configuration parameter -bogus_param" in capsys.readouterr().err


# -- readers ---------------------------------------------------------------------------------------------------
def test_flp_reader_exact(hs):
    flp = read_flp(hs / "ev6.flp")
    assert flp.n_blocks == 30 and flp.names[0] == "L2_left" and flp.names[-1] == "ITB_1"
    assert float(flp.width_m[flp.index("IntExec")]) == pytest.approx(0.0018)
    assert float(flp.y_m[flp.index("FPMap_1")]) == pytest.approx(0.01533)
    assert float(flp.chip_width_m) == pytest.approx(0.016) and float(flp.chip_height_m) == pytest.approx(0.016)


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_flp_reader_errors(tmp_path):
    with pytest.raises(ValueError, match="'a' and 'b' overlap"):
        read_flp(_write(tmp_path, "o.flp", "a 0.002 0.002 0 0\nb 0.002 0.002 0.001 0\n"))
    with pytest.raises(ValueError, match="uncovered"):
        read_flp(_write(tmp_path, "g.flp", "a 0.001 0.002 0 0\nb 0.001 0.002 0.0015 0\n"))
    assert read_flp(_write(tmp_path, "g2.flp", "a 0.001 0.002 0 0\nb 0.001 0.002 0.0015 0\n"),
                    allow_gaps=True).n_blocks == 2
    with pytest.raises(ValueError, match="width and height must be > 0"):
        read_flp(_write(tmp_path, "n.flp", "a -0.001 0.002 0 0\n"))
    with pytest.raises(ValueError, match=r"o2\.flp:2: expected"):
        read_flp(_write(tmp_path, "o2.flp", "# c\na 0.001 0.002 0\n"))
    with pytest.raises(ValueError, match="duplicated"):
        read_flp(_write(tmp_path, "d.flp", "a 0.001 0.001 0 0\na 0.001 0.001 0.001 0\n"))


def test_ptrace_reader_errors(tmp_path):
    flp = P.floorplan([("a", 0.001, 0.001, 0, 0), ("b", 0.001, 0.001, 0.001, 0)])
    with pytest.raises(ValueError, match="block 'b' must be a finite number >= 0 W"):
        read_ptrace(_write(tmp_path, "n.ptrace", "a b\n1 -2\n"))
    with pytest.raises(ValueError, match=r"\['c'\] are not in the floorplan"):
        read_ptrace(_write(tmp_path, "x.ptrace", "a b c\n1 2 3\n"), flp)
    with pytest.raises(ValueError, match="have no column"):
        read_ptrace(_write(tmp_path, "m.ptrace", "a\n1\n"), flp)
    tr = read_ptrace(_write(tmp_path, "r.ptrace", "b a\n1 2\n3 4\n"), flp)
    np.testing.assert_allclose(tr.for_floorplan(flp), [[2, 1], [4, 3]])


def test_config_reader(tmp_path):
    c = read_hotspot_config(_write(tmp_path, "a.config", "# x\n-r_convec 0.3\n-wrap_l2 1\n-mystery 2\n"))
    assert float(c.thermal.r_convec) == pytest.approx(0.3)
    assert float(c.thermal.k_chip) == 100.0 and float(c.thermal.ambient) == pytest.approx(318.15)  # HotSpot defaults
    assert c.unknown == ("mystery",) and "wrap_l2" in c.ignored
    with pytest.raises(ValueError, match="-k_sink must be a number"):
        read_hotspot_config(_write(tmp_path, "b.config", "-k_sink copper\n"))
    with pytest.raises(ValueError, match="ThermalConfig.t_chip"):
        read_hotspot_config(_write(tmp_path, "c.config", "-t_chip -1\n"))
    with pytest.raises(ValueError, match="set -model_secondary 0"):
        read_hotspot_config(_write(tmp_path, "d.config", "-model_secondary 1\n"))
    with pytest.raises(ValueError, match="model_type"):
        read_hotspot_config(_write(tmp_path, "e.config", "-model_type fancy\n"))
    with pytest.raises(ValueError, match="expected '-name value'"):
        read_hotspot_config(_write(tmp_path, "f.config", "k_chip 3\n"))
