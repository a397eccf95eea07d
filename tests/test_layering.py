"""The package layering (docs/design.md), enforced by walking every module's imports with ``ast``.

Families depend downward only::

    primitives <- space, hardware <- roofline, memory, topologies, power <- chiplet, llm <- optimize, learned
    <- problems <- io, cli

- a module may import its own family, any lower layer, the shared base modules (``diffsys._checks``, ``_files``,
  ``_plotting``, ``_status``,
  ``_fit``, ``_pytree``) and, inside one layer, only the sibling edges listed in :data:`SIBLING_EDGES`;
- no module imports another family's private ``_module`` (nor a private ``_name`` from another family);
- ``io`` reads and writes peers' formats through the families' public APIs; ``cli`` sits on top of everything.

Lazy imports inside functions count: they are dependencies all the same.
"""

from __future__ import annotations

import ast
import pathlib
from collections import defaultdict

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1] / "diffsys"

#: shared, family-independent base modules at the package root
BASE = {"_checks", "_files", "_fit", "_plotting", "_pytree", "_status"}

LAYERS = [
    {"primitives"},
    {"space", "hardware"},
    {"roofline", "memory", "topologies", "power"},
    {"chiplet", "llm"},
    {"optimize", "learned"},
    {"problems"},
    {"io"},
    {"cli"},
]
RANK = {fam: i for i, layer in enumerate(LAYERS) for fam in layer}
#: the root package (``diffsys/__init__``: re-exports), ``testing`` (checks for users) and ``__main__`` sit on top
TOP = {"__init__", "testing", "__main__"}
#: allowed imports between families of the same layer (the family graph must stay acyclic)
SIBLING_EDGES = {("roofline", "memory"), ("power", "roofline")}


def _module_name(path: pathlib.Path) -> tuple[str, bool]:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    is_pkg = parts[-1] == "__init__"
    if is_pkg:
        parts = parts[:-1]
    return ".".join(parts), is_pkg


def _exists(module: str) -> bool:
    p = ROOT.parent.joinpath(*module.split("."))
    return p.with_suffix(".py").exists() or (p / "__init__.py").exists()


def _imports():
    """``[(importing module, imported module, imported name or None, line)]`` for every diffsys import."""
    out = []
    for path in sorted(ROOT.rglob("*.py")):
        name, is_pkg = _module_name(path)
        pkg = name if is_pkg else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                if mod.split(".")[0] != "diffsys":
                    continue
                for alias in node.names:
                    sub = f"{mod}.{alias.name}"
                    if _exists(sub):  # ``from . import x`` / ``from .. import optimize``: a module
                        out.append((name, sub, None, node.lineno))
                    else:
                        out.append((name, mod, alias.name, node.lineno))
            elif isinstance(node, ast.Import):
                out.extend((name, a.name, None, node.lineno) for a in node.names if a.name.split(".")[0] == "diffsys")
    return out


def _family(module: str) -> str:
    parts = module.split(".")
    return "__init__" if len(parts) == 1 else parts[1]


def _dunder(name) -> bool:
    """``__version__`` and friends are public (``from .. import __version__`` in the command)."""
    return name is not None and name.startswith("__") and name.endswith("__")


IMPORTS = _imports()


def test_the_walk_sees_the_package():
    fams = {_family(a) for a, *_ in IMPORTS}
    assert {"optimize", "llm", "roofline", "cli", "io", "problems"} <= fams
    assert set(RANK) | BASE | TOP >= {_family(a) for a, *_ in IMPORTS}, "a new family must be given a layer"


def test_families_depend_downward_only():
    bad = []
    for src, dst, name, line in IMPORTS:
        a, b = _family(src), _family(dst)
        if a == b or b in BASE or a in TOP or _dunder(name):
            continue
        if a in BASE:
            bad.append(f"{src}:{line} (a base module) imports {dst}")
        elif b in TOP or b not in RANK:
            bad.append(f"{src}:{line} imports {dst} (the top of the package)")
        elif RANK[b] > RANK[a] or (RANK[b] == RANK[a] and (a, b) not in SIBLING_EDGES):
            bad.append(f"{src}:{line} ({a}, layer {RANK[a]}) imports {dst} ({b}, layer {RANK[b]})")
    assert not bad, "upward or sideways imports:\n" + "\n".join(sorted(set(bad)))


def test_no_module_imports_another_familys_private_module():
    bad = []
    for src, dst, name, line in IMPORTS:
        a, b = _family(src), _family(dst)
        if a == b or b in BASE or a in TOP:
            continue
        private_module = any(p.startswith("_") for p in dst.split(".")[2:])
        private_name = name is not None and name.startswith("_") and not _dunder(name)
        if private_module or private_name:
            bad.append(f"{src}:{line} imports {dst}{'.' + name if name else ''}")
    assert not bad, "imports of another family's private modules or names:\n" + "\n".join(sorted(set(bad)))


def test_family_graph_is_acyclic():
    graph = defaultdict(set)
    for src, dst, _, _ in IMPORTS:
        a, b = _family(src), _family(dst)
        if a != b and a not in TOP and b not in BASE:
            graph[a].add(b)
    state: dict = {}

    def visit(n, stack):
        state[n] = 1
        for m in graph[n]:
            if state.get(m) == 1:
                pytest.fail("family import cycle: " + " -> ".join(stack + [n, m]))
            if m not in state:
                visit(m, stack + [n])
        state[n] = 2

    for n in list(graph):
        if n not in state:
            visit(n, [])


def test_the_checker_catches_a_violation():
    """Mutation check: a sideways private import and an upward import are both reported."""
    global IMPORTS
    fake = [("diffsys.roofline._x", "diffsys.llm._training", None, 1), ("diffsys.space._y", "diffsys.optimize", None, 2)]
    IMPORTS, saved = fake, IMPORTS
    try:
        with pytest.raises(AssertionError, match="roofline.*llm"):
            test_families_depend_downward_only()
        with pytest.raises(AssertionError, match="llm._training"):
            test_no_module_imports_another_familys_private_module()
    finally:
        IMPORTS = saved
