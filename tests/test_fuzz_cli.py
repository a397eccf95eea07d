"""Fuzz suite, command-line flags: hostile values for nccl-tests' size/step/count/name flags, optimize's seed and
method list, sweep's counts and paths. Property: a finite table, or exit status 2 with one line on stderr."""

import argparse

import pytest
from _fuzz import COUNTS, FUZZ, HOSTILE_TOKENS, check_cli
from hypothesis import given, settings
from hypothesis import strategies as st

from diffsys.cli import build_parser
from diffsys.io import nccl_sizes

SIZE_TOKENS = ("1M", "4M", "2M", "0", "-1M", "1X", "inf", "nan", "1e999", "1.5M", "8G", "2P", "1T", "1024T",
               "", "M", "0.1", "1e15", "99999999999999999999") + HOSTILE_TOKENS
VALID_SIZES = ("1", "1K", "1M", "4M", "1G", "8G")  # half of the draws: hostile flags meet a valid range
FACTOR_TOKENS = ("2", "1", "0.5", "inf", "nan", "-2", "1e20", "abc", "1.0000001", "4")
#: flag values for whole runs: the valid ones keep the baseline's table shape (a new shape recompiles the model)
RUN_SIZES = ("1M", "4M", "0", "-1M", "1X", "inf", "nan", "1e999", "", "M", "2P", "99999999999999999999", "abc")
FLAGS = {
    "-b": RUN_SIZES, "-e": RUN_SIZES, "-f": ("2", "1", "0.5", "inf", "nan", "-2", "1e20", "abc", "1.0000001"),
    "-g": ("8", "0", "-1", "1e3", "4097", "abc", "2.5", "nan"),
    "--nodes": ("1", "0", "1000000000", "131073", "-3", "inf", "1.0"),
    "--algorithm": ("auto", "ring", "bogus_algo", "bruck", "rign", ""),
    "--protocol": ("auto", "simple", "LL", "ll129", ""),
    "-d": ("float", "half", "bf16", "flaot", "int3", ""),
    "-r": ("0", "7", "8", "-1", "1e9", "x"),
    "--op": ("all_reduce", "allreduce", "allreduc", "x"),
    "--system": ("dgx_a100", "dgx_a10", "", "/", "nonexistent.json"),
}


@settings(FUZZ, max_examples=30)
@given(flags=st.dictionaries(st.sampled_from(sorted(FLAGS)), st.none(), min_size=1, max_size=3), data=st.data())
def test_nccl_tests_flags(flags, data, capsys):
    """One to three flags take hostile values on a fixed valid baseline (whose table shape stays compiled)."""
    argv = {"-b": "1M", "-e": "4M", "--system": "dgx_a100"}
    for flag in flags:
        argv[flag] = data.draw(st.sampled_from(FLAGS[flag]), label=flag)
    rc, out = check_cli(["nccl-tests", *[x for kv in argv.items() for x in kv]], capsys)
    if rc == 0:
        rows = [ln for ln in out.splitlines() if ln and not ln.startswith("#")]
        assert rows and all(float(ln.split()[5]) > 0 for ln in rows)  # time (us) > 0 on every row


@settings(FUZZ, max_examples=200)
@given(lo=st.one_of(st.sampled_from(VALID_SIZES), st.sampled_from(SIZE_TOKENS)),
       hi=st.one_of(st.sampled_from(VALID_SIZES), st.sampled_from(SIZE_TOKENS)),
       factor=st.sampled_from(FACTOR_TOKENS), step=st.one_of(st.none(), st.sampled_from(SIZE_TOKENS)))
def test_nccl_size_flags(lo, hi, factor, step):
    try:
        sizes = nccl_sizes(lo, hi, factor, step, max_sizes=10_000)
    except ValueError as e:
        assert "\n" not in str(e)
        COUNTS["reader rejected"] += 1
        return
    COUNTS["reader accepted (finite)"] += 1
    assert sizes and all(isinstance(s, int) and 1 <= s <= 2**50 for s in sizes) and len(sizes) <= 10_001
    assert sizes == sorted(set(sizes))


def _parse(argv):
    """Parse a command line; argument errors exit 2 (with the one-line message already printed)."""
    try:
        return build_parser().parse_args(argv)
    except SystemExit as e:
        assert e.code == 2
        return None


SEEDS = ("0", "1", "-1", "99999999999999999999", "9223372036854775807", "9223372036854775808", "1e3", "nan",
         "0x10", "", "3.0")
METHODS = ("gradient", "evolutionary,miqp", ",", "", "gradient,gradient", "gradiant", "miqp,,", " , ", "all")


@settings(FUZZ, max_examples=60)
@given(seed=st.sampled_from(SEEDS), methods=st.sampled_from(METHODS))
def test_optimize_seed_and_methods(seed, methods, capsys):
    import jax

    from diffsys.cli._cmd_optimize import parse_methods

    args = _parse(["optimize", "--seed", seed, "--methods", methods])
    err = capsys.readouterr().err
    if args is None:
        assert len(err.strip().splitlines()) == 1 and "--seed" in err
        COUNTS["command rejected (exit 2, one line)"] += 1
        return
    jax.random.key(args.seed)  # every accepted seed is one the PRNG takes
    try:
        chosen = parse_methods(args.methods)
    except ValueError as e:
        assert "--methods" in str(e)
        COUNTS["command rejected (exit 2, one line)"] += 1
        return
    assert chosen and len(chosen) == len(set(chosen))
    COUNTS["command ran (finite output)"] += 1


@settings(FUZZ, max_examples=40)
@given(flag=st.sampled_from(("--samples", "--chunk-size", "--top", "--gpus", "--global-batch")),
       value=st.sampled_from(("1", "0", "-5", "1e9", "16777217", "99999999999999999999", "nan", "x", "64")))
def test_sweep_count_flags(flag, value, tmp_path_factory, capsys):
    """Count flags are parsed and range-checked before any sweep work (only rejected values run the command)."""
    args = _parse(["sweep", flag, value])
    err = capsys.readouterr().err
    if args is None:
        assert len(err.strip().splitlines()) == 1 and flag in err
        COUNTS["command rejected (exit 2, one line)"] += 1
        return
    attr = flag.lstrip("-").replace("-", "_")
    v = getattr(args, attr)
    bad = (flag == "--top" and not 1 <= v <= 10_000) or (flag == "--gpus" and not 1 <= v <= 2**20) or (
        flag == "--global-batch" and not 1 <= v <= 2**24)
    if bad:
        out = tmp_path_factory.mktemp("sweep")
        rc, _ = check_cli(["sweep", flag, value, "--out", out], capsys)
        assert rc == 2
    else:
        COUNTS["command ran (finite output)"] += 1


@pytest.mark.parametrize("argv", [["nccl-tests", "--bogus"], ["booksim"], ["hotspot", "-f", "x.flp"],
                                  ["sweep", "--problem", "rooflin"], ["optimize", "--miqp-solver", "cplex"]])
def test_argument_errors_are_one_line(argv, capsys):
    rc, _ = check_cli(argv, capsys)
    assert rc == 2


def test_parser_class_is_inherited():
    sub = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)][0]
    assert all(type(p).__name__ == "_Parser" for p in sub.choices.values())
