"""The shape of the guide's pages: words, paragraphs, headings and code, as a reader meets them.

``tests/guide/test_guide.py`` holds every page to it (code first, a heading at least every
`MAX_SECTION_WORDS` words, no paragraph over `MAX_PARAGRAPH_WORDS`); run it to see the figures::

    python docs/_tooling/page_shape.py            # README.md and every page of docs/
    python docs/_tooling/page_shape.py docs/errors.md

A paragraph is a run of prose lines, or one list item; words in code blocks and tables are not
prose (tables are counted apart: contract details belong there).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent.parent
MAX_PARAGRAPH_WORDS = 120
MAX_SECTION_WORDS = 400

_FENCE = re.compile(r"^(```|~~~)")
_HEADING = re.compile(r"^#{1,6} ")
_ITEM = re.compile(r"^\s*(?:[-*+]|\d+\.) ")


class Section(NamedTuple):
    heading: str  # "" before the first heading
    prose_words: int
    table_words: int
    code_blocks: int


class Shape(NamedTuple):
    words: int  # prose and tables, not code
    paragraphs: list[str]
    sections: list[Section]
    first_code_line: int | None  # 1-based line of the first fence
    first_heading_lines: list[int]  # 1-based lines of the first two headings


def words(text: str) -> int:
    """Words as a reader counts them: Markdown links count by their text, not their target."""
    text = re.sub(r"\]\([^)]*\)", "]", text)
    return len(re.findall(r"[\w`'\u2019.,:;()/@=+*<>\"-]+", text))


def shape(markdown: str) -> Shape:
    paragraphs: list[str] = []
    sections: list[Section] = []
    heading, prose, table, code = "", 0, 0, 0
    current: list[str] = []
    fenced = False
    first_code: int | None = None
    headings: list[int] = []

    def close_paragraph() -> None:
        if current:
            paragraphs.append(" ".join(line.strip() for line in current))
            current.clear()

    for number, line in enumerate(markdown.splitlines(), 1):
        if _FENCE.match(line):
            if not fenced:
                close_paragraph()
                code += 1
                first_code = first_code or number
            fenced = not fenced
            continue
        if fenced:
            continue
        if _HEADING.match(line):
            close_paragraph()
            sections.append(Section(heading, prose, table, code))
            heading, prose, table, code = line.lstrip("#").strip(), 0, 0, 0
            headings.append(number)
        elif line.startswith("|"):
            close_paragraph()
            if not re.fullmatch(r"[|:\- ]+", line):
                table += words(line.replace("|", " "))
        elif not line.strip() or line.lstrip().startswith("<!--"):
            close_paragraph()
        else:
            if _ITEM.match(line):
                close_paragraph()
            current.append(line)
            prose += words(line)
    close_paragraph()
    sections.append(Section(heading, prose, table, code))
    return Shape(
        words=sum(s.prose_words + s.table_words for s in sections),
        paragraphs=paragraphs,
        sections=[s for s in sections if s.heading or s.prose_words or s.code_blocks],
        first_code_line=first_code,
        first_heading_lines=headings[:2],
    )


def guide_pages() -> list[Path]:
    """README.md and the guide's task pages (docs/*.md; the reference has its own folder)."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def main(paths: list[str]) -> int:
    pages = [Path(p).resolve() for p in paths] or guide_pages()
    print(f"{'page':28} {'words':>6} {'longest ¶':>9} {'longest section':>15}")
    for page in pages:
        found = shape(page.read_text(encoding="utf-8"))
        longest = max((words(p) for p in found.paragraphs), default=0)
        section = max(found.sections, key=lambda s: s.prose_words)
        name = str(page.relative_to(ROOT))
        print(f"{name:28} {found.words:6} {longest:9} {section.prose_words:6} ({section.heading})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
