"""The package's shape: CREAM's three sub-packages, lazy imports, and install hints that name real extras."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "sonic"
PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
CREAM_PACKAGES = ("audio", "spectra", "data")


def _imported_modules(path: Path) -> list[str]:
    """Every module ``path`` imports from (absolute names), wherever the import statement stands."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
    return names


def test_cream_is_three_documented_sub_packages():
    found = sorted(p.name for p in (SRC / "cream").iterdir() if (p / "__init__.py").exists())

    assert found == sorted(CREAM_PACKAGES)
    for name in CREAM_PACKAGES:
        docstring = ast.get_docstring(ast.parse((SRC / "cream" / name / "__init__.py").read_text()))
        assert docstring and "\n" not in docstring.strip(), f"cream/{name} needs a one-line docstring"


def test_modules_reach_into_a_cream_sub_package_only_from_inside_it():
    crossings = []
    for path in SRC.rglob("*.py"):
        inside = path.relative_to(SRC).parts
        home = inside[1] if inside[0] == "cream" and len(inside) > 2 else None
        for module in _imported_modules(path):
            parts = module.split(".")
            if parts[:2] == ["sonic", "cream"] and len(parts) > 3 and parts[2] in CREAM_PACKAGES:
                if parts[2] != home:
                    crossings.append(f"{path.relative_to(SRC)} imports {module}")
    assert not crossings, "import through the sub-package's public names instead:\n" + "\n".join(crossings)


def test_every_install_hint_names_an_extra_that_exists():
    extras = set(tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"])
    hinted = {
        (path.relative_to(SRC), extra)
        for path in SRC.rglob("*.py")
        for group in re.findall(r"sonic\[([\w,\- ]+)\]", path.read_text())
        for extra in group.replace(" ", "").split(",")
    }
    assert hinted, "no install hint found: the test would check nothing"
    unknown = sorted(f"{path}: sonic[{extra}]" for path, extra in hinted if extra not in extras)
    assert not unknown, f"hints name extras that pyproject.toml does not define ({sorted(extras)}): {unknown}"


@pytest.mark.parametrize(
    "package", ["sonic.cream.audio", "sonic.cream.spectra", "sonic.cream.data", "sonic.tails.vision"]
)
def test_every_public_name_of_a_sub_package_resolves(package):
    import importlib

    module = importlib.import_module(package)
    for name in module.__all__:
        assert getattr(module, name) is not None, f"{package}.{name}"
