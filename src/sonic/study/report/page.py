"""The report's HTML: one page, its style and a small check script inline, figures as files beside it."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sonic.study.report.figures import Figure


@dataclass
class Section:
    """A titled part of the report: paragraphs, tables (HTML) and figures, in order."""

    anchor: str
    title: str
    parts: list[str] = field(default_factory=list)

    def text(self, sentence: str) -> None:
        self.parts.append(f"<p>{html.escape(sentence)}</p>")

    def absent(self, sentence: str) -> None:
        self.parts.append(f'<p class="absent">{html.escape(sentence)}</p>')

    def figure(self, figure: Figure) -> None:
        self.parts.append(
            f'<figure><img src="{html.escape(figure.png)}" alt="{html.escape(figure.caption)}">'
            f"<figcaption>{html.escape(figure.caption)} "
            f'<a href="{html.escape(figure.csv)}">data (CSV)</a></figcaption></figure>'
        )

    def table(self, frame: pd.DataFrame, *, csv: str | None = None) -> None:
        self.parts.append(table_html(frame) + (f'<p class="small"><a href="{html.escape(csv)}">table as CSV</a></p>'
                                               if csv else ""))

    def html(self) -> str:
        return f'<section id="{self.anchor}"><h2>{html.escape(self.title)}</h2>{"".join(self.parts)}</section>'


def table_html(frame: pd.DataFrame) -> str:
    """A frame as an HTML table: floats with four decimals, everything escaped."""
    head = "".join(f"<th>{html.escape(str(column))}</th>" for column in frame.columns)
    rows = []
    for values in frame.itertuples(index=False):
        cells = "".join(f"<td>{html.escape(_format(value))}</td>" for value in values)
        rows.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _format(value: object) -> str:
    if isinstance(value, (float, np.floating)):
        return "" if not np.isfinite(value) else f"{value:.4f}"
    return str(value)


_STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #1d232a;
       background: #f6f7f9; }
header { background: #16324f; color: white; padding: 18px 32px; }
header h1 { margin: 0 0 4px; font-size: 24px; } header p { margin: 0; opacity: 0.85; }
nav { padding: 8px 32px; background: #e8edf3; font-size: 14px; } nav a { margin-right: 14px; color: #16324f; }
main { padding: 8px 32px 40px; max-width: 1180px; }
section { background: white; border-radius: 6px; padding: 4px 20px 14px; margin: 18px 0; box-shadow: 0 1px 2px #0002; }
h2 { font-size: 19px; color: #16324f; border-bottom: 1px solid #e1e5ea; padding-bottom: 6px; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
th, td { border: 1px solid #d9dee4; padding: 3px 8px; text-align: right; }
th { background: #eef2f6; } td:first-child, th:first-child, td:nth-child(2) { text-align: left; }
figure { margin: 12px 0; } figure img { max-width: 100%; border: 1px solid #e1e5ea; }
figcaption { font-size: 13px; color: #4a5561; }
.absent { color: #7a4b00; background: #fff6e0; padding: 6px 10px; border-radius: 4px; }
.answer { background: #eef7ee; padding: 6px 10px; border-radius: 4px; }
.small { font-size: 12px; } .gallery { display: grid; grid-template-columns: repeat(4, 1fr); gap: 6px; }
.gallery img { width: 100%; }
"""

# Records what the page itself saw after loading: images that failed and script errors, as
# attributes of <body>, so a headless browser's DOM dump shows them (the report's browser test reads them).
_CHECK = """
window.sonicErrors = [];
window.addEventListener('error', function (e) { window.sonicErrors.push(String(e.message || 'resource')); }, true);
window.addEventListener('load', function () {
  var broken = [];
  for (var i = 0; i < document.images.length; i++) {
    var image = document.images[i];
    if (!image.complete || image.naturalWidth === 0) { broken.push(image.getAttribute('src')); }
  }
  document.body.setAttribute('data-images', String(document.images.length));
  document.body.setAttribute('data-broken-images', broken.join(' '));
  document.body.setAttribute('data-errors', String(window.sonicErrors.length));
  document.body.setAttribute('data-checked', 'yes');
});
"""


def page(title: str, subtitle: str, sections: Sequence[Section]) -> str:
    """The whole report page."""
    links = "".join(f'<a href="#{s.anchor}">{html.escape(s.title.split(":")[0])}</a>' for s in sections)
    body = "".join(section.html() for section in sections)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style><script>{_CHECK}</script></head>"
        f"<body><header><h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p></header>"
        f"<nav>{links}</nav><main>{body}</main></body></html>\n"
    )
