"""The package's layout: no import circle, plumbing below every part, test fixtures imported by no production module.

The import graph is read from the source with :mod:`ast`: every ``import`` wherever it stands (inside
functions too), relative imports resolved, plus the registries' lazy ``"sonic.module:attribute"``
strings and the embedder catalogue's modules (a registry entry is an arrow to the module it loads).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "sonic"
#: ``sonic/<name>.py`` modules that are the package's face, not plumbing.
NOT_PLUMBING = frozenset({"sonic", "sonic.__main__"})
LAZY_TARGET = re.compile(r"^(sonic(?:\.\w+)+):[\w.]+$")
#: Circles whose owner is breaking them on another branch (none left).
KNOWN_CIRCLES: list[list[str]] = []


def _modules(root: Path) -> dict[str, tuple[Path, bool]]:
    """Every module under ``root`` by dotted name, with its file and whether it is a package."""
    found = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        found[".".join(parts)] = (path, is_package)
    return found


def _resolve(name: str, modules: dict) -> str | None:
    """The module ``name`` lives in (``sonic.a.b.attr`` -> ``sonic.a.b``), or None outside sonic."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _targets(module: str, source: str, is_package: bool) -> list[str]:
    """Dotted names the ``source`` of ``module`` imports (at any level) or names in a lazy registry string."""
    package = module if is_package else module.rpartition(".")[0]
    names = []
    for node in ast.walk(ast.parse(source, module)):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            names.append(base)
            names.extend(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            match = LAZY_TARGET.match(node.value)
            if match:
                names.append(match.group(1))
    return names


def _graph() -> dict[str, set[str]]:
    modules = _modules(PACKAGE)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, (path, is_package) in modules.items():
        for target in _targets(name, path.read_text(), is_package):
            found = _resolve(target, modules)
            if found and found != name:
                graph[name].add(found)
    # The embedder registry builds its lazy targets from the catalogue: each line is an arrow too.
    from sonic.tails.base import CATALOGUE

    for entry in CATALOGUE:
        found = _resolve(entry.module, modules)
        assert found, f"the catalogue names {entry.module}, which is not a module of src/sonic"
        graph["sonic.tails.base"].add(found)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return components


def test_the_graph_sees_imports_inside_functions_relative_imports_and_registry_strings():
    source = (
        "import sonic.errors\n"
        "from . import sibling\n"
        "from ..other import thing\n"
        "def late():\n"
        "    from sonic.cream.data import engine\n"
        "    return {'x': 'sonic.rouge.models.ease:EASERecommender', 'y': 'not sonic.a:b'}\n"
    )

    targets = _targets("sonic.part.sub.module", source, is_package=False)

    assert set(targets) == {
        "sonic.errors", "sonic.part.sub", "sonic.part.sub.sibling", "sonic.part.other", "sonic.part.other.thing",
        "sonic.cream.data", "sonic.cream.data.engine", "sonic.rouge.models.ease",
    }  # fmt: skip
    graph = _graph()
    assert "sonic.errors" in graph["sonic.registry"]
    assert "sonic.rouge.models.ease" in graph["sonic.rouge.base"]  # the recommender registry's strings
    assert "sonic.tails.models.mfcc" in graph["sonic.tails.base"]  # the embedder catalogue


def test_the_cycle_finder_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle():
    cycles = [cycle for cycle in _cycles(_graph()) if cycle not in KNOWN_CIRCLES]

    assert not cycles, "import circles (each line: modules that import each other):\n" + "\n".join(
        ", ".join(cycle) for cycle in cycles
    )


def test_each_known_circle_is_still_there():
    """A circle on the known list is removed from it once its owner breaks it."""
    cycles = _cycles(_graph())

    assert all(known in cycles for known in KNOWN_CIRCLES), "a known circle is gone: take it off KNOWN_CIRCLES"


def test_plumbing_imports_no_part():
    graph = _graph()
    parts = {name for name, (_, is_package) in _modules(PACKAGE).items() if is_package and name != "sonic"}
    plumbing = sorted(name for name in graph if name.count(".") == 1 and name not in NOT_PLUMBING | parts)

    assert "sonic.errors" in plumbing and "sonic.registry" in plumbing
    reaching = [
        f"{name} imports {target}"
        for name in plumbing
        for target in sorted(graph[name])
        if any(target == part or target.startswith(f"{part}.") for part in parts)
    ]
    assert not reaching, "plumbing must not import a part of sonic:\n" + "\n".join(reaching)


def test_no_production_module_imports_the_test_fixtures():
    graph = _graph()

    assert "sonic.testing" in graph, "src/sonic/testing is missing"
    importers = [
        f"{name} imports {target}"
        for name, targets in sorted(graph.items())
        if not (name == "sonic.testing" or name.startswith("sonic.testing."))
        for target in sorted(targets)
        if target == "sonic.testing" or target.startswith("sonic.testing.")
    ]
    assert not importers, "only tests may import sonic.testing:\n" + "\n".join(importers)
