"""Every file sonic writes goes through sonic.files: no module but sonic/files.py renames files itself.

The rule, checked on the syntax tree of every module under src/ (so that strings and comments do not count):

- a call of ``os.replace``, ``os.rename``, ``os.renames`` or ``shutil.move`` (also imported by name:
  ``from os import replace``) is a hand-rolled rename;
- so is a method call ``X.replace(arg)`` or ``X.rename(arg)`` with exactly one positional argument, no
  keywords, and an argument that is not a string literal: ``Path.replace(target)``/``Path.rename(target)``.
  Not flagged, because they are not file renames: ``str.replace(old, new)`` (two arguments),
  ``frame.rename(columns=...)`` (a keyword), ``series.rename("name")`` (a string literal) and
  ``dataclasses.replace(obj, **changes)`` (keywords; the module ``dataclasses`` is never a path).

sonic/files.py is the one place allowed to rename (``atomic_path``, ``atomic_folder``, ``move``).
:data:`OWNED_ELSEWHERE` names files that other branches are converting to sonic.files at the same time;
each entry goes when its owner's branch is merged (the test says so when an entry is no longer needed).
"""

from __future__ import annotations

import ast
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1] / "src"
ALLOWED = {"sonic/files.py"}
#: Files converted by other branches (owner in the comment); the lead removes each entry at that merge.
OWNED_ELSEWHERE: dict[str, str] = {}  # e.g. {"sonic/study/store.py": "trust-study"}; empty since those merged
_FUNCTIONS = {("os", "replace"), ("os", "rename"), ("os", "renames"), ("shutil", "move")}
_METHODS = {"replace", "rename"}


def hand_rolled_renames(tree: ast.AST) -> list[int]:
    """Line numbers of the renames in ``tree`` (see the module docstring for the rule)."""
    imported = {alias.asname or alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                for alias in node.names if (node.module, alias.name) in _FUNCTIONS}  # fmt: skip
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        function = node.func
        if isinstance(function, ast.Name) and function.id in imported:
            lines.append(node.lineno)
        elif isinstance(function, ast.Attribute):
            receiver = function.value
            if isinstance(receiver, ast.Name) and (receiver.id, function.attr) in _FUNCTIONS:
                lines.append(node.lineno)
            elif function.attr in _METHODS and _looks_like_a_path_rename(node, receiver):
                lines.append(node.lineno)
    return sorted(lines)


def _looks_like_a_path_rename(call: ast.Call, receiver: ast.expr) -> bool:
    if call.keywords or len(call.args) != 1 or isinstance(call.args[0], ast.Starred):
        return False
    if isinstance(receiver, ast.Name) and receiver.id == "dataclasses":
        return False
    argument = call.args[0]
    return not (isinstance(argument, ast.Constant) and isinstance(argument.value, str))


def _found() -> dict[str, list[int]]:
    found = {}
    for path in sorted(SOURCE.rglob("*.py")):
        name = path.relative_to(SOURCE).as_posix()
        lines = hand_rolled_renames(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        if lines:
            found[name] = lines
    return found


def test_no_module_renames_files_but_sonic_files():
    found = _found()
    offending = {name: lines for name, lines in found.items() if name not in ALLOWED | set(OWNED_ELSEWHERE)}
    assert not offending, (
        f"write through sonic.files (atomic_path, atomic_open, write_*, atomic_folder, move) instead: {offending}"
    )


def test_the_list_of_files_owned_elsewhere_holds_no_file_already_converted():
    found = _found()
    stale = sorted(name for name in OWNED_ELSEWHERE if name not in found)
    assert not stale, f"these files no longer rename by hand; remove them from OWNED_ELSEWHERE: {stale}"


def test_the_rule_tells_renames_from_other_replace_and_rename_calls():
    flagged = hand_rolled_renames(ast.parse(
        "import os, shutil\n"
        "from os import replace as swap\n"
        "os.replace(a, b)\n"  # 3
        "shutil.move(a, b)\n"  # 4
        "swap(a, b)\n"  # 5
        "tmp.replace(path)\n"  # 6
        "path.rename(f'{path}.old')\n"  # 7
        "Path(x).with_suffix('.tmp').replace(target)\n"  # 8
        "text.replace('a', 'b')\n"
        "frame.rename(columns={'id': 'track_id'})\n"
        "series.rename('genres')\n"
        "dataclasses.replace(study, embeddings=e)\n"
        "dataclasses.replace(study)\n"
    ))  # fmt: skip
    assert flagged == [3, 4, 5, 6, 7, 8]
