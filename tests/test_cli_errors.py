"""Every known bad input of the ``diffsys`` commands ends in one line ``diffsys <cmd>: error: ...`` naming the field or
file (and the valid range), exit status 2, no traceback and no partial output file."""

import json

import pytest

from diffsys.cli import main

CALCULON = "interop/calculon"
EXECUTION = "executions/3072_t4_p64_d12_mbs4_full.json"


def run_cli(argv, capsys):
    """``diffsys ARGV`` in-process: (exit status, stdout, stderr)."""
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as e:  # --help / --version only
        rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err


def assert_clean_error(argv, capsys, *needles):
    rc, out, err = run_cli(argv, capsys)
    assert rc == 2, (rc, out[-500:], err[-2000:])
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"diffsys {argv[0]}: error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def calc(shared_dir):
    path = shared_dir / CALCULON
    if not path.is_dir():
        pytest.skip("Calculon samples not available")
    return path


@pytest.fixture(scope="module")
def hotspot(shared_dir):
    return shared_dir / "validation" / "hotspot"


def calculon_args(calc, system):
    return ["calculon", calc / "models/megatron-1T.json", calc / EXECUTION, system]


def system_variant(calc, tmp_path, edit, name="system.json", raw=None):
    data = json.loads((calc / "systems/a100_80g.json").read_text())
    edit(data)
    path = tmp_path / name
    text = json.dumps(data)
    path.write_text(raw(text) if raw else text)
    return path


# --- tracebacks before: a directory or a bad output path --------------------------------------------------------

def test_directory_as_calculon_model(calc, tmp_path, capsys):
    assert_clean_error(["calculon", tmp_path, calc / EXECUTION, calc / "systems/a100_80g.json"], capsys,
                       str(tmp_path), "is a directory")


def test_directory_as_nccl_tests_system(tmp_path, capsys):
    assert_clean_error(["nccl-tests", "--system", tmp_path], capsys, "system file", "is a directory")


def test_directory_as_booksim_config(tmp_path, capsys):
    assert_clean_error(["booksim", tmp_path], capsys, "BookSim config", "is a directory")


def test_directory_as_hotspot_steady_file(hotspot, tmp_path, capsys):
    assert_clean_error(["hotspot", "-c", hotspot / "caseD.config", "-f", hotspot / "caseD.flp", "-p",
                        hotspot / "caseD.ptrace", "-steady_file", tmp_path], capsys, "-steady_file", "is a directory")


def test_output_under_a_regular_file(calc, hotspot, tmp_path, capsys):
    regular = tmp_path / "regular"
    regular.write_text("x")
    assert_clean_error([*calculon_args(calc, calc / "systems/a100_80g.json"), regular / "out.json"], capsys,
                       "Calculon output", "not a directory")
    steady = tmp_path / "ok.steady"  # one good and one bad output: neither is written
    assert_clean_error(["hotspot", "-c", hotspot / "caseD.config", "-f", hotspot / "caseD.flp", "-p",
                        hotspot / "caseD.ptrace", "-steady_file", steady, "-o", regular / "t.ttrace"], capsys,
                       "-o output", "not a directory")
    assert not steady.exists()


# --- tracebacks before: degenerate numbers -----------------------------------------------------------------------

@pytest.mark.parametrize("edit, needles", [
    (lambda d: d["matrix"]["float16"].update(tflops=0), ("matrix.float16.tflops", "(0, 1e+06] TFLOP/s")),
    (lambda d: d["matrix"]["float16"].update(gflops_efficiency=[[0, 0.0]]), ("gflops_efficiency[0][1]", "(0, 1]")),
    (lambda d: d["networks"][0].update(efficiency=0), ("networks[0].efficiency", "(0, 1]")),
    (lambda d: d["mem1"].update(GBps=0), ("mem1.GBps", "GB/s")),
    (lambda d: d["networks"][0].update(bandwidth="fast"), ("networks[0].bandwidth", "'fast'")),
    (lambda d: d["networks"][0].update(size=True), ("networks[0].size",)),
], ids=["tflops0", "gemm_eff0", "net_eff0", "mem_bw0", "string_bw", "bool_size"])
def test_calculon_degenerate_system(calc, tmp_path, capsys, edit, needles):
    out = tmp_path / "out.json"
    assert_clean_error([*calculon_args(calc, system_variant(calc, tmp_path, edit)), out], capsys, *needles)
    assert not out.exists()


def test_nccl_tests_infinite_step_factor(capsys):
    assert_clean_error(["nccl-tests", "-b", "1M", "-e", "8M", "-f", "inf"], capsys, "stepfactor (-f)", "finite")


def test_nccl_tests_string_bandwidth(tmp_path, capsys):
    path = tmp_path / "sys.json"
    path.write_text(json.dumps({"name": "x", "dims": [{"kind": "switch", "size": 8, "bandwidth_Bps": "fast"}]}))
    assert_clean_error(["nccl-tests", "--system", path], capsys, "dims[0].bandwidth_Bps", "B/s", "'fast'")


def test_optimize_seed_out_of_range(capsys):
    assert_clean_error(["optimize", "--problem", "toy", "--seed", "99999999999999999999", "--no-progress"], capsys,
                       "--seed", "[0, 9223372036854775807]")


# --- silently accepted before ------------------------------------------------------------------------------------

def test_nccl_tests_unknown_algorithm(capsys):
    assert_clean_error(["nccl-tests", "--algorithm", "bogus_algo"], capsys, "--algorithm", "ring", "tree")
    assert_clean_error(["nccl-tests", "--algorithm", "rign"], capsys, "did you mean 'ring'")
    assert_clean_error(["nccl-tests", "--algorithm", "bruck"], capsys, "all_reduce")  # not an all-reduce algorithm


@pytest.mark.parametrize("argv, needles", [
    (["-b", "0", "-e", "1M"], ("minbytes (-b)", "[1, ")),
    (["--nodes", "1000000000", "--system", "hgx_h100"], ("--nodes", "[1, 131072]")),
    (["--nodes", "100000", "-g", "1000", "--system", "hgx_h100"], ("ranks",)),
    (["-b", "1", "-e", "1G", "-f", "1.0000001"], ("sizes",)),
    (["--protocol", "ll129"], ("--protocol", "did you mean 'll128'")),
    (["-d", "flaot"], ("--datatype", "did you mean 'float'")),
    (["--op", "allreduc"], ("--op", "did you mean 'allreduce'")),
    (["--system", "dgx_a10"], ("--system", "did you mean 'dgx_a100'")),
], ids=["b0", "nodes", "ranks", "too_many_sizes", "protocol", "dtype", "op", "preset"])
def test_nccl_tests_out_of_range(capsys, argv, needles):
    assert_clean_error(["nccl-tests", *argv], capsys, *needles)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1.5"])
def test_booksim_non_finite_injection_rate(shared_dir, tmp_path, capsys, value):
    cfg = tmp_path / "noc.cfg"
    cfg.write_text(f"topology = mesh;\nk = 4;\nn = 2;\nrouting_function = dor;\ninjection_rate = {value};\n")
    rc, out, err = run_cli(["booksim", cfg], capsys)
    assert rc == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "injection_rate" in err and "[0, 1] packets/node/cycle" in err


@pytest.mark.parametrize("field, edit", [
    ("networks[0].bandwidth", lambda t: t.replace('"bandwidth": 300', '"bandwidth": 1e999')),
    ("mem1.GiB", lambda t: t.replace('"GiB": 80', '"GiB": Infinity')),
    ("networks[1].latency", lambda t: t.replace('"latency": 2e-05', '"latency": NaN')),
])
def test_calculon_infinite_bandwidth_or_memory(calc, tmp_path, capsys, field, edit):
    path = system_variant(calc, tmp_path, lambda d: None, raw=edit)
    assert_clean_error(calculon_args(calc, path), capsys, field, "finite")


def test_unknown_metric_name_is_rejected_with_a_suggestion():
    from diffsys.cli._cmd_sweep import _check_metrics, roofline_model, roofline_space

    space = roofline_space()
    _check_metrics(roofline_model, space, ("time_s", "feasible", "cost_usd"))
    with pytest.raises(ValueError, match=r"metric 'feasibel' is not returned.*did you mean 'feasible'"):
        _check_metrics(roofline_model, space, ("time_s", "feasibel"))


def test_optimize_empty_methods(capsys):
    assert_clean_error(["optimize", "--problem", "toy", "--methods", ",", "--no-progress"], capsys,
                       "--methods", "gradient, evolutionary, miqp")
    assert_clean_error(["optimize", "--problem", "toy", "--methods", "gradiant", "--no-progress"], capsys,
                       "did you mean 'gradient'")
    assert_clean_error(["optimize", "--problem", "tyo", "--no-progress"], capsys, "did you mean 'toy'")


# --- more of the same boundary -----------------------------------------------------------------------------------

def test_sweep_outputs_checked_before_the_sweep(tmp_path, capsys):
    regular = tmp_path / "regular"
    regular.write_text("x")
    assert_clean_error(["sweep", "--problem", "roofline", "--out", regular], capsys, "--out folder", "not a directory")
    assert_clean_error(["sweep", "--problem", "roofline", "--out", tmp_path, "--resume"], capsys, "--checkpoint")
    assert_clean_error(["sweep", "--problem", "roofline", "--out", tmp_path, "--chunk-size", "0"], capsys,
                       "--chunk-size", "[1, 16777216]")
    assert_clean_error(["sweep", "--model", "gpt3_175", "--out", tmp_path], capsys, "did you mean 'gpt3_175b'")


def test_hotspot_config_and_files(hotspot, tmp_path, capsys):
    base = ["hotspot", "-c", hotspot / "caseD.config", "-f", hotspot / "caseD.flp", "-p", hotspot / "caseD.ptrace"]
    assert_clean_error([*base, "-ambient", "nan"], capsys, "-ambient", "finite")
    assert_clean_error([*base, "-o", tmp_path / "t", "-model_type", "grid"], capsys, "-o", "block")
    assert_clean_error(["hotspot", "-f", tmp_path / "missing.flp", "-p", hotspot / "caseD.ptrace"], capsys,
                       "floorplan not found", "missing.flp")
    binary = tmp_path / "bin.flp"
    binary.write_bytes(b"\xff\xfe\x00bad")
    assert_clean_error(["hotspot", "-f", binary, "-p", hotspot / "caseD.ptrace"], capsys, "not UTF-8")


def test_good_runs_still_write_their_outputs(calc, hotspot, tmp_path, capsys):
    steady, ttrace = tmp_path / "a.steady", tmp_path / "a.ttrace"
    rc, _, err = run_cli(["hotspot", "-c", hotspot / "caseD.config", "-f", hotspot / "caseD.flp", "-p",
                          hotspot / "caseD.ptrace", "-steady_file", steady, "-o", ttrace], capsys)
    assert rc == 0, err
    assert steady.read_text().splitlines()[0].startswith("core0\t")
    assert len(ttrace.read_text().splitlines()) == 2
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary files left behind
