"""The README's Python example runs as written, and its quick-start commands exist."""

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_readme_example_runs():
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks, "README has no Python example"
    scope = {}
    exec(compile(blocks[0], "README.md", "exec"), scope)
    assert scope["res"].n_evaluated == 64 * 64
    assert float(scope["grads"].matrix_flops["bf16"]) <= 0.0


def test_quick_start_commands_are_the_ci_commands():
    text = (ROOT / "README.md").read_text()
    assert "pip install -e . && diffsys sweep" in text
    assert 'pip install -e ".[test]" && pytest' in text
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'pip install -e ".[test]"' in ci and "pytest" in ci


@pytest.mark.parametrize("doc", ["design", "primitives", "space", "hardware", "sweep", "roofline", "memory", "network",
                                 "power", "llm", "chiplet", "optimize", "learned"])
def test_linked_docs_exist(doc):
    assert (ROOT / "docs" / f"{doc}.md").is_file()
