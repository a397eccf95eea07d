"""Fuzz suite, file formats: malformed and extreme Calculon JSON (model / execution / system), HotSpot config / flp /
ptrace, BookSim configs, design-space and hardware JSON/YAML, nccl-tests system files. Property: a valid result with
finite values, or a clean rejection -- never another exception, never a non-finite number printed."""

import json
import pathlib

import pytest
import yaml
from _fuzz import FUZZ, check_cli, check_reader, mutated_json, mutated_lines
from hypothesis import given, settings
from hypothesis import strategies as st

from diffsys.io import (
    booksim_model,
    parse_booksim,
    read_calculon_execution,
    read_calculon_model,
    read_calculon_system,
    read_flp,
    read_hotspot_config,
    read_ptrace,
)

SHARED = pathlib.Path(__file__).resolve().parents[2] / "shared"
CALC = SHARED / "interop" / "calculon"
HOTSPOT = SHARED / "validation" / "hotspot"
BOOKSIM = SHARED / "validation" / "booksim"
pytestmark = pytest.mark.skipif(not (CALC.is_dir() and HOTSPOT.is_dir() and BOOKSIM.is_dir()),
                                reason="shared samples (../shared) not available")


def _json(path):
    return json.loads(path.read_text()) if path.is_file() else {}


MODEL = _json(CALC / "models" / "megatron-1T.json")
EXECUTION = _json(CALC / "executions" / "3072_t4_p64_d12_mbs4_full.json")
SYSTEM = _json(CALC / "systems" / "a100_80g.json")


def _write(tmp_path_factory, name, text):
    folder = tmp_path_factory.mktemp("fuzz")
    path = folder / name
    path.write_text(text)
    return path


# --- Calculon ------------------------------------------------------------------------------------------------------

@settings(FUZZ, max_examples=150)
@given(data=st.data())
def test_calculon_readers_on_mutated_objects(data):
    """The three readers on mutated dicts (NaN/inf reach the field checks directly)."""
    check_reader(read_calculon_model, data.draw(mutated_json(MODEL)))
    check_reader(read_calculon_execution, data.draw(mutated_json(EXECUTION)))
    check_reader(read_calculon_system, data.draw(mutated_json(SYSTEM)), n_gpus=data.draw(st.sampled_from(
        (None, 8, 3072))))


@settings(FUZZ, max_examples=60)
@given(data=st.data())
def test_calculon_readers_on_mutated_files(data, tmp_path_factory):
    """Mutated JSON text (NaN/Infinity tokens, truncation, bad bytes) through the file readers."""
    obj = data.draw(mutated_json(SYSTEM))
    text = json.dumps(obj)
    cut = data.draw(st.sampled_from((None, None, 0, 1, len(text) // 2)))
    if cut is not None:
        text = text[:cut]
    path = _write(tmp_path_factory, "system.json", text)
    check_reader(read_calculon_system, path)
    check_reader(read_calculon_model, _write(tmp_path_factory, "model.json", json.dumps(
        data.draw(mutated_json(MODEL)))))


@settings(FUZZ, max_examples=25)
@given(data=st.data())
def test_calculon_command_rejects_mutated_systems_cleanly(data, tmp_path_factory, capsys):
    """The command end to end; only mutations the reader rejects are run here (a valid run costs a model
    evaluation, which tests/test_llm_calculon.py covers)."""
    obj = data.draw(mutated_json(SYSTEM))
    try:
        read_calculon_system(obj)
    except ValueError:
        pass
    else:
        return
    folder = tmp_path_factory.mktemp("calc")
    system = folder / "system.json"
    system.write_text(json.dumps(obj))
    out = folder / "out.json"
    rc, _ = check_cli(["calculon", CALC / "models/megatron-1T.json", CALC / "executions" /
                       "3072_t4_p64_d12_mbs4_full.json", system, out], capsys, outputs=(out,), folder=folder)
    assert rc == 2


# --- HotSpot -------------------------------------------------------------------------------------------------------

@settings(FUZZ, max_examples=80)
@given(data=st.data())
def test_hotspot_readers_on_mutated_files(data, tmp_path_factory):
    flp = _write(tmp_path_factory, "x.flp", data.draw(mutated_lines((HOTSPOT / "caseD.flp").read_text())))
    check_reader(read_flp, flp)
    check_reader(read_ptrace, _write(tmp_path_factory, "x.ptrace",
                                     data.draw(mutated_lines((HOTSPOT / "caseD.ptrace").read_text()))))
    check_reader(read_hotspot_config, _write(tmp_path_factory, "x.config",
                                             data.draw(mutated_lines((HOTSPOT / "caseD.config").read_text()))))


@settings(FUZZ, max_examples=15)
@given(data=st.data())
def test_hotspot_command_on_mutated_inputs(data, tmp_path_factory, capsys):
    folder = tmp_path_factory.mktemp("hs")
    which = data.draw(st.sampled_from(("config", "flp", "ptrace")))
    files = {k: (HOTSPOT / f"caseD.{k}").read_text() for k in ("config", "flp", "ptrace")}
    files[which] = data.draw(mutated_lines(files[which], n_max=2))
    paths = {}
    for k, text in files.items():
        paths[k] = folder / f"in.{k}"
        paths[k].write_text(text)
    steady, ttrace = folder / "out.steady", folder / "out.ttrace"
    extra = data.draw(st.sampled_from(((), ("-o", ttrace), ("-r_convec", "nan"), ("-t_chip", "1e-30"),
                                       ("-model_type", "grid", "-o", ttrace), ("-init_file", folder))))
    check_cli(["hotspot", "-c", paths["config"], "-f", paths["flp"], "-p", paths["ptrace"], "-steady_file", steady,
               *extra], capsys, outputs=(steady, ttrace), folder=folder)


# --- BookSim -------------------------------------------------------------------------------------------------------

BOOKSIM_TEXT = (BOOKSIM / "mesh44_transpose").read_text() if BOOKSIM.is_dir() else ""


@settings(FUZZ, max_examples=120)
@given(data=st.data())
def test_booksim_parser_on_mutated_configs(data):
    text = data.draw(mutated_lines(BOOKSIM_TEXT))
    overrides = data.draw(st.lists(st.sampled_from(("k=8", "n=3", "injection_rate=nan", "packet_size=0",
                                                    "hotspot_nodes={99}", "traffic=hotspot", "x", "=1", "k=",
                                                    "injection_rate=1e999", "num_vcs=-1")), max_size=2))

    def model():
        return booksim_model(parse_booksim(text, overrides))

    model.__name__ = "booksim_model"
    m = check_reader(model)
    if m is not None:
        assert 0.0 <= m.injection_rate <= 1.0


@settings(FUZZ, max_examples=12)
@given(data=st.data())
def test_booksim_command_on_mutated_configs(data, tmp_path_factory, capsys):
    # k and n are kept (a new network size recompiles the model); everything else is mutated
    lines = [ln for ln in BOOKSIM_TEXT.splitlines() if not ln.startswith(("k ", "n "))]
    text = data.draw(mutated_lines("\n".join(lines), n_max=2))
    path = _write(tmp_path_factory, "noc.cfg", "k = 4;\nn = 2;\n" + text)
    rate = data.draw(st.sampled_from(("0.01", "0.05", "nan", "inf", "-0.1", "2", "1e-30")))
    check_cli(["booksim", path, f"injection_rate={rate}"], capsys)


# --- design spaces, hardware, nccl-tests systems ---------------------------------------------------------------------

SPACE = {"params": {"peak_flops": {"kind": "continuous", "lo": 1e14, "hi": 4e15, "log": True, "grid": 4},
                    "sram_MiB": {"kind": "power_of_two", "lo": 4, "hi": 64},
                    "hbm_bandwidth_Bps": {"kind": "continuous", "lo": 1e12, "hi": 8e12, "grid": 3}},
         "constraints": []}


@settings(FUZZ, max_examples=60)
@given(data=st.data(), fmt=st.sampled_from(("json", "yaml")))
def test_space_files(data, fmt, tmp_path_factory):
    from diffsys.space import load_space

    obj = data.draw(mutated_json(SPACE))
    text = json.dumps(obj) if fmt == "json" else yaml.safe_dump(obj)
    space = check_reader(load_space, _write(tmp_path_factory, f"space.{fmt}", text))
    if space is not None:
        assert space.size >= 1


@settings(FUZZ, max_examples=30)
@given(data=st.data(), fmt=st.sampled_from(("json", "yaml")))
def test_hardware_files(data, fmt, tmp_path_factory):
    from diffsys.hardware import load_accelerator, preset, save_accelerator

    folder = tmp_path_factory.mktemp("hw")
    save_accelerator(preset("h100"), folder / "h100.json")
    obj = data.draw(mutated_json(json.loads((folder / "h100.json").read_text()), n_max=2))
    text = json.dumps(obj) if fmt == "json" else yaml.safe_dump(obj)
    path = folder / f"chip.{fmt}"
    path.write_text(text)
    check_reader(load_accelerator, path)


NCCL_SYSTEM = {"name": "box", "accelerator": "h100_sxm",
               "dims": [{"kind": "switch", "size": 8, "bandwidth_Bps": 3e11, "latency_s": 4e-6},
                        {"kind": "switch", "size": 2, "bandwidth_Bps": 5e10, "latency_s": 1e-5,
                         "efficiency": 0.9}]}


@settings(FUZZ, max_examples=20)
@given(data=st.data())
def test_nccl_tests_system_files(data, tmp_path_factory, capsys):
    folder = tmp_path_factory.mktemp("nccl")
    path = folder / "system.json"
    path.write_text(json.dumps(data.draw(mutated_json(NCCL_SYSTEM))))
    check_cli(["nccl-tests", "-b", "1M", "-e", "4M", "--system", path], capsys, folder=folder)
