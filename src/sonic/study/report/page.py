"""The report's page: sections made of blocks, rendered by Jinja2 templates with autoescaping.

A section is a list of blocks (:class:`Text`, :class:`Heading`, :class:`Table`, :class:`Picture`,
:class:`Gallery`) holding plain strings and relative file paths; the templates under ``templates/``
escape every string and URL-quote every path segment (the ``href`` filter), so a label or a file
name holding ``<``, ``"``, ``#``, ``?`` or ``%`` shows as itself and links where it should. The page
inlines its style and a small load check; figures are files beside it, so it needs no network.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import quote

import numpy as np
import pandas as pd

from sonic.study.report.figures import Figure

TEMPLATE = "report.html.j2"


@dataclass(frozen=True)
class Text:
    """A paragraph; ``kind``: ``text``, ``answer`` (a question's answer) or ``absent`` (what is missing)."""

    text: str
    kind: str = "text"
    block: str = "text"


@dataclass(frozen=True)
class Heading:
    text: str
    block: str = "heading"


@dataclass(frozen=True)
class Table:
    """A table of strings (``rows``: one tuple of cells per row), a caption, and the CSV it comes from."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    caption: str = ""
    csv: str | None = None
    block: str = "table"


@dataclass(frozen=True)
class Picture:
    """A figure (PNG and its data as CSV, paths relative to the report folder) with its caption."""

    png: str
    csv: str
    caption: str
    block: str = "picture"


@dataclass(frozen=True)
class Gallery:
    """A titled row of pictures, each (relative path, alternative text)."""

    title: str
    pictures: tuple[tuple[str, str], ...]
    block: str = "gallery"


@dataclass
class Section:
    """A titled part of the report: its blocks, in order."""

    anchor: str
    title: str
    blocks: list = field(default_factory=list)

    def text(self, sentence: str) -> None:
        self.blocks.append(Text(sentence))

    def answer(self, sentence: str) -> None:
        self.blocks.append(Text(sentence, "answer"))

    def absent(self, sentence: str) -> None:
        self.blocks.append(Text(sentence, "absent"))

    def heading(self, text: str) -> None:
        self.blocks.append(Heading(text))

    def figure(self, figure: Figure) -> None:
        self.blocks.append(Picture(figure.png, figure.csv, figure.caption))

    def table(self, frame: pd.DataFrame, *, caption: str = "", csv: str | None = None) -> None:
        rows = tuple(tuple(format_cell(value) for value in row) for row in frame.itertuples(index=False))
        self.blocks.append(Table(tuple(map(str, frame.columns)), rows, caption, csv))

    def gallery(self, title: str, pictures: Sequence[tuple[str, str]]) -> None:
        self.blocks.append(Gallery(title, tuple(pictures)))


def format_cell(value: object) -> str:
    """A table cell: floats with four decimals (empty when not finite), everything else as ``str``."""
    if isinstance(value, (float, np.floating)):
        return "" if not np.isfinite(value) else f"{value:.4f}"
    return str(value)


def href(path: str) -> str:
    """A relative file path as a URL: each ``/``-separated segment percent-quoted (``#``, ``?``, ``%``, spaces...)."""
    return "/".join(quote(segment, safe="") for segment in str(path).split("/"))


def environment():
    """The Jinja2 environment of the report's templates: autoescaping, undefined names an error."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("sonic.study.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["href"] = href
    return env


def render(title: str, subtitle: str, sections: Sequence[Section]) -> str:
    """The whole page (HTML text) of the report."""
    return environment().get_template(TEMPLATE).render(title=title, subtitle=subtitle, sections=sections)
