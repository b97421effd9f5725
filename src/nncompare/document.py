"""A report as blocks (headings, paragraphs, tables, lists, figures), written as Markdown or as terminal text.

The report and the explanation build their content once, as a list of blocks; this module
writes it for a file (Markdown) or a terminal (aligned columns, wrapped lines, no markup), and
:mod:`nncompare.page` writes it as HTML. Inline text may use Markdown's ``**bold**`` and
```code```: kept in Markdown, dropped in the terminal, converted in HTML.
"""

from __future__ import annotations

import re
import shutil
import textwrap
from dataclasses import dataclass, field

_NUMBER = re.compile(r"^[-+]?[\d,.]+(?:e[-+]?\d+)?(?:\s*(?:%|s|×|pp))?(?:\s*\(.*\))?$")


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Para:
    text: str


@dataclass
class Code:
    lines: list[str]


@dataclass
class Quote:
    lines: list[str]


@dataclass
class Item:
    """A list entry, with entries of its own below it (a finding and its evidence)."""

    text: str
    below: list[str] = field(default_factory=list)


@dataclass
class Items:
    items: list[Item]


@dataclass
class Figure:
    """A figure drawn beside the report: ``stem``.png and ``stem``.svg."""

    stem: str
    caption: str
    note: str = ""


@dataclass
class Table:
    head: list[str]
    rows: list[list[str]]

    def right_aligned(self) -> list[bool]:
        """Columns whose cells are all numbers (with a unit, maybe a range in brackets) line up on the right."""
        return [
            bool(self.rows) and all(_NUMBER.match(row[i].strip()) or row[i].strip() in ("", "—") for row in self.rows)
            for i in range(len(self.head))
        ]


Block = Heading | Para | Code | Quote | Items | Figure | Table


def plain(text: str) -> str:
    """Inline text without Markdown's markup."""
    return re.sub(r"\*\*(.+?)\*\*|`([^`]*)`", lambda m: m.group(1) or m.group(2) or "", text)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(blocks: list[Block]) -> str:
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            out += ["#" * b.level + " " + b.text, ""]
        elif isinstance(b, Para):
            out += [b.text, ""]
        elif isinstance(b, Code):
            out += ["```", *b.lines, "```", ""]
        elif isinstance(b, Quote):
            out += [*(f"> {line}" for line in b.lines), ""]
        elif isinstance(b, Items):
            for item in b.items:
                out += [f"- {item.text}", *(f"  - {e}" for e in item.below)]
            out.append("")
        elif isinstance(b, Figure):
            out += [f"### {b.caption}", "", f"![{b.caption}]({b.stem}.png)", ""]
            out += [f"{b.note} ([SVG]({b.stem}.svg))" if b.note else f"([SVG]({b.stem}.svg))", ""]
        elif isinstance(b, Table):
            right = b.right_aligned()
            out.append("| " + " | ".join(map(_md_cell, b.head)) + " |")
            out.append("|" + "|".join("---:" if r else "---" for r in right) + "|")
            out += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in b.rows]
            out.append("")
    return "\n".join(out).rstrip() + "\n"


def text_table(table: Table) -> list[str]:
    """Aligned columns: numbers on the right, words on the left, a rule under the head."""
    head = [plain(h) for h in table.head]
    rows = [[plain(c) for c in row] for row in table.rows]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    right = table.right_aligned()

    def line(cells):
        return "  ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right)).rstrip()

    return [line(head), "  ".join("─" * w for w in widths), *(line(r) for r in rows)]


def text(blocks: list[Block], width: int | None = None) -> str:
    """The blocks for a terminal: headings underlined, paragraphs wrapped, tables aligned."""
    width = width or max(60, min(shutil.get_terminal_size((100, 24)).columns, 120))
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            words = plain(b.text)
            out += [words, ("=" if b.level <= 1 else "─") * len(words), ""]
        elif isinstance(b, Para):
            out += [*textwrap.wrap(plain(b.text), width), ""]
        elif isinstance(b, Code | Quote):
            out += [*(("    " if isinstance(b, Code) else "  ") + plain(line) for line in b.lines), ""]
        elif isinstance(b, Items):
            for item in b.items:
                out += textwrap.wrap(plain(item.text), width, initial_indent="• ", subsequent_indent="  ")
                for e in item.below:
                    out += textwrap.wrap(plain(e), width, initial_indent="    - ", subsequent_indent="      ")
            out.append("")
        elif isinstance(b, Figure):
            out += [f"[figure {b.stem}.png: {plain(b.caption)}]", ""]
        elif isinstance(b, Table):
            out += [*text_table(b), ""]
    return "\n".join(out).rstrip() + "\n"
