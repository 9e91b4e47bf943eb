"""The documentation site builds with ``mkdocs build --strict`` (a broken link, a missing page or an anchor
that is not there fails it), offline, and its reference pages are made from the code."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _build(config: Path, site: Path) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
                          capture_output=True, text=True, timeout=600, env=environment, cwd=config.parent)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("site")
    built = _build(ROOT / "mkdocs.yml", folder)
    assert built.returncode == 0, built.stderr[-3000:]
    return folder


def test_the_site_builds_strictly_with_every_page(site):
    for page in ("index.html", "getting-started/index.html", "commands/index.html", "study-file/index.html",
                 "data-formats/index.html", "embedders/index.html", "recommenders/index.html", "metrics/index.html",
                 "python-api/index.html", "serving/index.html", "scale/index.html", "outputs-and-faults/index.html",
                 "search/index.html", "report/index.html", "benchmarks/index.html", "development/index.html",
                 "reference/cli/index.html", "reference/embedders/index.html", "reference/recommenders/index.html",
                 "search/search_index.json"):
        assert (site / page).is_file(), page
    assert not list(site.rglob("*.py")), "the generator script is not part of the site"
    loaded = re.findall(r'(?:src|<link[^>]*href)="(https?://[^"]+)"', (site / "index.html").read_text())
    assert loaded == [], "a page loads something from the network"


def test_the_reference_pages_are_made_from_the_code(site):
    import click
    import typer

    from sonic.cli import app
    from sonic.rouge.base import RECOMMENDERS
    from sonic.tails.base import ALIASES, CATALOGUE

    cli = (site / "reference/cli/index.html").read_text()
    group = typer.main.get_command(app)
    for name in group.list_commands(click.Context(group)):
        assert f"sonic {name}" in cli, name
    assert "--interactions-file" in cli and "default: split/" in cli

    embedders = (site / "reference/embedders/index.html").read_text()
    for entry in CATALOGUE:
        assert f"<code>{entry.name.replace('<', '&lt;').replace('>', '&gt;')}</code>" in embedders, entry.name
    for alias in ALIASES:
        assert f"<code>{alias.alias}</code>" in embedders, alias.alias

    recommenders = (site / "reference/recommenders/index.html").read_text()
    for name in RECOMMENDERS.names():
        model = RECOMMENDERS.create(name)
        assert f"<code>{name}</code>" in recommenders, name
        for field in getattr(model.config, "__dataclass_fields__", {}):
            assert f"<code>{field}</code>" in recommenders, (name, field)


def test_a_broken_link_fails_the_build(tmp_path):
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    (tmp_path / "docs" / "metrics.md").write_text("# Metrics\n\nSee [the formulas](formulas.md).\n")

    built = _build(tmp_path / "mkdocs.yml", tmp_path / "site")

    assert built.returncode != 0
    assert "formulas.md" in built.stderr
