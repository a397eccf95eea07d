"""``diffsys optimize``: JSON keys, comparison table, bad input."""

import json


from diffsys.cli import main


def test_json_output_has_required_keys(capsys):
    assert main(["optimize", "--problem", "toy", "--json", "--seed", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["exhaustive_best"] > 0 and out["space_size"] == 3528
    for m in ("gradient", "evolutionary", "miqp"):
        row = out[m]
        assert {"best", "evaluations", "seconds", "feasible"} <= set(row)
        assert row["feasible"] and row["evaluations"] > 0 and row["seconds"] > 0
    assert out["gradient"]["best"] <= out["exhaustive_best"] * 1.01


def test_table_and_errors(capsys):
    assert main(["optimize", "--problem", "toy", "--methods", "gradient", "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "exhaustive" in text and "gradient" in text and "evaluations" in text
    assert main(["optimize", "--problem", "nope"]) == 2
    assert "unknown problem 'nope'" in capsys.readouterr().err
    assert main(["optimize", "--problem", "toy", "--methods", "annealing"]) == 2
    assert "--methods" in capsys.readouterr().err
