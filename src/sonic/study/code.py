"""The code a study step runs: the source files of the sonic modules it can reach, and their hashes.

A step's identity (:mod:`sonic.study.steps`) holds sonic's version and the sha256 of every source file
the step's code reaches, so an upgraded or edited sonic redoes the steps whose code changed, and only
those: a docstring edited in the report does not redo days of embedding. The files are found statically,
by reading the source with :mod:`ast` (nothing is imported):

- a step kind's **entry** is the imports inside its function in :mod:`sonic.study.step_runner`
  (``_split``, ``_embed``, ``_trial``, ``_run``), plus the modules of the registry entry it builds: the
  classes (and base classes) of its embedder or recommender (:attr:`sonic.study.check.Resolved.code_modules`);
- from there every ``import`` (at any level, inside functions too, relative ones resolved) within
  ``sonic`` is followed; ``from package import name`` follows ``name`` to its module (a submodule, or the
  module a lazy package's ``_EXPORTS`` names); a lazy ``"sonic.module:attribute"`` string (a splitter
  table, say) is followed too, except the entries of a part registry (``Registry(...)``): a step reaches
  the one embedder or recommender it builds, not every registered one.

The result is ``{"sonic/rouge/metrics.py": "<sha256>", ...}`` (paths relative to the folder holding the
``sonic`` package), kept in the step's record so that a rerun can name the files that changed.
"""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Iterable
from pathlib import Path

#: The folder of the ``sonic`` package whose source is fingerprinted (this installation's).
SOURCE_ROOT = Path(__file__).resolve().parents[1]
#: The module holding each step kind's function, whose own imports are the kind's entry.
STEP_RUNNER = "sonic.study.step_runner"
STEP_FUNCTIONS = {"split": "_split", "embed": "_embed", "trial": "_trial", "run": "_run"}


class SourceGraph:
    """The import graph of the ``sonic`` package under ``root`` (read lazily, each file once)."""

    def __init__(self, root: str | Path = SOURCE_ROOT) -> None:
        self.root = Path(root)
        self.package = self.root.name
        self._trees: dict[str, ast.Module] = {}
        self._imports: dict[str, frozenset[str]] = {}
        self._hashes: dict[str, str] = {}

    def path(self, module: str) -> Path | None:
        """The source file of ``module`` (``sonic.a.b``), or None when it is not a module of the package."""
        parts = module.split(".")
        if parts[0] != self.package or not all(part.isidentifier() for part in parts):
            return None
        base = self.root.joinpath(*parts[1:])
        if (base / "__init__.py").is_file():
            return base / "__init__.py"
        if base.with_suffix(".py").is_file():
            return base.with_suffix(".py")
        return None

    def module_of(self, name: str) -> str | None:
        """The module ``name`` lives in (``sonic.a.b.attribute`` -> ``sonic.a.b``), or None outside the package."""
        while name:
            if self.path(name) is not None:
                return name
            name = name.rpartition(".")[0]
        return None

    def step_entry(self, kind: str) -> frozenset[str]:
        """The modules a step kind's function in :data:`STEP_RUNNER` imports."""
        tree = self._tree(STEP_RUNNER)
        function = next(node for node in tree.body
                        if isinstance(node, ast.FunctionDef) and node.name == STEP_FUNCTIONS[kind])  # fmt: skip
        return self._targets(STEP_RUNNER, function)

    def closure(self, entries: Iterable[str]) -> list[str]:
        """``entries`` and every module of the package they import, directly or not (sorted)."""
        seen: set[str] = set()
        todo = [module for module in (self.module_of(name) for name in entries) if module is not None]
        while todo:
            module = todo.pop()
            if module not in seen:
                seen.add(module)
                todo.extend(self.imports(module) - seen)
        return sorted(seen)

    def fingerprint(self, entries: Iterable[str]) -> dict[str, str]:
        """``{relative source path: sha256 of its bytes}`` of the closure of ``entries``."""
        files = {}
        for module in self.closure(entries):
            path = self.path(module)
            relative = path.relative_to(self.root.parent).as_posix()
            if relative not in self._hashes:
                self._hashes[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
            files[relative] = self._hashes[relative]
        return dict(sorted(files.items()))

    def imports(self, module: str) -> frozenset[str]:
        """The modules of the package that ``module``'s source names (see the module docstring)."""
        if module not in self._imports:
            self._imports[module] = self._targets(module, self._tree(module)) - {module}
        return self._imports[module]

    def _tree(self, module: str) -> ast.Module:
        if module not in self._trees:
            path = self.path(module)
            self._trees[module] = ast.parse(path.read_bytes(), str(path))
        return self._trees[module]

    def _targets(self, module: str, node: ast.AST) -> frozenset[str]:
        package = module if self.path(module).name == "__init__.py" else module.rpartition(".")[0]
        registered = {id(inner) for call in ast.walk(node) if _is_registry_call(call) for inner in ast.walk(call)}
        names: set[str] = set()
        for inner in ast.walk(node):
            if isinstance(inner, ast.Import):
                names.update(alias.name for alias in inner.names)
            elif isinstance(inner, ast.ImportFrom):
                base = _absolute(inner, package)
                names.add(base)
                names.update(self._from_import(base, alias.name) for alias in inner.names)
            elif isinstance(inner, ast.Constant) and isinstance(inner.value, str) and id(inner) not in registered:
                target, colon, attribute = inner.value.partition(":")
                if colon and attribute and target.startswith(f"{self.package}."):
                    names.add(target)
        return frozenset(found for found in (self.module_of(name) for name in names) if found is not None)

    def _from_import(self, base: str, name: str) -> str:
        """What ``from base import name`` loads: the submodule, the module a lazy ``_EXPORTS`` names, or base."""
        if self.path(f"{base}.{name}") is not None:
            return f"{base}.{name}"
        path = self.path(base)
        if path is not None and path.name == "__init__.py":
            exported = _exports(self._tree(base)).get(name)
            if exported is not None:
                return exported
        return base


def step_code(graph: SourceGraph, kind: str, modules: Iterable[str] = ()) -> dict[str, str]:
    """The fingerprint of a step of ``kind`` that also builds the parts defined in ``modules``."""
    return graph.fingerprint([*graph.step_entry(kind), *modules])


def _absolute(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module or ""
    parts = package.split(".")
    parts = parts[: len(parts) - node.level + 1]
    return ".".join(parts + ([node.module] if node.module else []))


def _is_registry_call(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call):
        return False
    function = node.func
    name = function.id if isinstance(function, ast.Name) else function.attr if isinstance(function, ast.Attribute) else ""
    return name == "Registry"


def _exports(tree: ast.Module) -> dict[str, str]:
    """A lazy package's ``_EXPORTS = {"name": "module", ...}`` (empty when it has none)."""
    for node in tree.body:
        if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict)
                and any(isinstance(target, ast.Name) and target.id == "_EXPORTS" for target in node.targets)):
            return {key.value: value.value for key, value in zip(node.value.keys, node.value.values)
                    if isinstance(key, ast.Constant) and isinstance(value, ast.Constant)}  # fmt: skip
    return {}
