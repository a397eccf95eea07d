"""``diffsys optimize``: JSON keys, comparison table, bad input."""

import json


from diffsys.cli import main
from diffsys.cli._cmd_optimize import parse_methods


def test_json_output_has_required_keys(capsys):
    assert main(["optimize", "--problem", "toy", "--json", "--seed", "1", "--methods",
                 "gradient,evolutionary,miqp"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["exhaustive_best"] > 0 and out["space_size"] == 3528
    for m in ("gradient", "evolutionary", "miqp"):
        row = out[m]
        assert {"best", "evaluations", "seconds", "feasible"} <= set(row)
        assert row["feasible"] and row["evaluations"] > 0 and row["seconds"] > 0
    assert out["gradient"]["best"] <= out["exhaustive_best"] * 1.01
    # the exact MIQP: the grid optimum at 0 % gap, with its proven bound
    exact = out["miqp"]
    assert exact["gap_percent"] == 0.0 and exact["gap_percent_proven"] == 0.0
    assert exact["bound"] <= exact["best"] == out["exhaustive_best"]
    assert exact["solver"] == "enumerate" and "exhaustion" in exact["proof"]


def test_exact_solver_choice_and_trust_region(capsys):
    assert main(["optimize", "--problem", "toy", "--json", "--no-exhaustive", "--methods", "miqp",
                 "--exact-solver", "bnb"]) == 0
    row = json.loads(capsys.readouterr().out)["miqp"]
    assert row["solver"] == "bnb" and row["gap_percent_proven"] == 0.0 and row["bound"] <= row["best"]
    # the local sequential MIQP stays available under its heuristic's name (run in tests/test_optimize_miqp.py)
    assert parse_methods("miqp, trust_region") == ["miqp", "trust_region"]


def test_table_and_errors(capsys):
    assert main(["optimize", "--problem", "toy", "--methods", "gradient,miqp", "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "exhaustive" in text and "gradient" in text and "evaluations" in text
    assert "proven lower bound" in text and "gap 0 %" in text
    assert main(["optimize", "--problem", "nope"]) == 2
    assert "unknown problem 'nope'" in capsys.readouterr().err
    assert main(["optimize", "--problem", "toy", "--methods", "annealing"]) == 2
    assert "--methods" in capsys.readouterr().err
