"""The report as one self-contained HTML page: its figures embedded as data URIs, its styles inline.

The page loads nothing from anywhere (no script, no font, no stylesheet, no image file), so it
opens the same from a laptop offline, a CI artifact or a mail attachment. It is written from the
same blocks as the Markdown (:mod:`nncompare.document`), atomically: a reader never sees half.
"""

from __future__ import annotations

import base64
import html
import os
import re
from pathlib import Path

from nncompare.document import Block, Code, Figure, Heading, Items, Para, Quote, Table

_STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; max-width: 75rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.3rem; border-bottom: 1px solid #ddd; margin-top: 2rem; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 0.9rem; display: block; overflow-x: auto; }
th, td { padding: 0.25rem 0.6rem; border-bottom: 1px solid #e4e4e4; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
code, pre { font-family: ui-monospace, monospace; font-size: 0.85rem; background: #f6f6f6; }
pre { padding: 0.6rem; overflow-x: auto; } blockquote { color: #555; border-left: 3px solid #ddd; margin-left: 0;
  padding-left: 1rem; }
figure { margin: 1.5rem 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.9rem; color: #444; } li > ul { font-size: 0.9rem; color: #333; }
"""


def inline(text: str) -> str:
    """Escaped text, with Markdown's ``**bold**`` and ```code``` as HTML."""
    out = html.escape(text, quote=False)
    out = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)
    return re.sub(r"`([^`]*)`", r"<code>\1</code>", out)


def _table(t: Table) -> list[str]:
    right = t.right_aligned()
    out = ["<table>", "<thead><tr>" + "".join(f"<th>{inline(h)}</th>" for h in t.head) + "</tr></thead>", "<tbody>"]
    for row in t.rows:
        cells = "".join(
            f'<td class="num">{inline(c)}</td>' if r else f"<td>{inline(c)}</td>" for c, r in zip(row, right)
        )
        out.append(f"<tr>{cells}</tr>")
    return [*out, "</tbody>", "</table>"]


def _figure(f: Figure, figure_dir: Path) -> list[str]:
    png = base64.b64encode((figure_dir / f"{f.stem}.png").read_bytes()).decode("ascii")
    caption = inline(f.caption) + (f" — {inline(f.note)}" if f.note else "")
    return [
        f'<figure id="{html.escape(f.stem)}">',
        f'<img src="data:image/png;base64,{png}" alt="{html.escape(f.caption)}">',
        f"<figcaption>{caption}</figcaption>",
        "</figure>",
    ]


def page(blocks: list[Block], figure_dir: str | os.PathLike) -> str:
    """The blocks as a whole HTML document; figures read from ``figure_dir`` (``stem``.png) and embedded."""
    figure_dir = Path(figure_dir)
    title = next((b.text for b in blocks if isinstance(b, Heading)), "nncompare report")
    body: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            body.append(f"<h{b.level}>{inline(b.text)}</h{b.level}>")
        elif isinstance(b, Para):
            body.append(f"<p>{inline(b.text)}</p>")
        elif isinstance(b, Code):
            body.append("<pre>" + html.escape("\n".join(b.lines), quote=False) + "</pre>")
        elif isinstance(b, Quote):
            body.append("<blockquote>" + "<br>".join(inline(line) for line in b.lines) + "</blockquote>")
        elif isinstance(b, Items):
            body.append("<ul>")
            for item in b.items:
                below = "".join(f"<li>{inline(e)}</li>" for e in item.below)
                body.append(f"<li>{inline(item.text)}" + (f"<ul>{below}</ul>" if below else "") + "</li>")
            body.append("</ul>")
        elif isinstance(b, Figure):
            body += _figure(b, figure_dir)
        elif isinstance(b, Table):
            body += _table(b)
    return "\n".join(
        [
            "<!doctype html>",
            '<html lang="en">',
            '<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{html.escape(title)}</title>",
            f"<style>{_STYLE}</style>",
            "</head>",
            "<body>",
            *body,
            "</body>",
            "</html>",
            "",
        ]
    )


def write_atomically(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file beside it and a rename: whole or not at all."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path
