"""README and the guide as the tests read them: their pages, code blocks and docs tooling."""

from __future__ import annotations

import functools
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import NamedTuple

from helpers.paths import ROOT

TOOLING = ROOT / "docs" / "_tooling"


@functools.cache
def docs_tool(name: str) -> ModuleType:
    """``docs/_tooling/NAME.py``, the site's build tooling (not a package), loaded once."""
    spec = importlib.util.spec_from_file_location(f"docs_{name}", TOOLING / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def guide_pages() -> list[Path]:
    """README.md first, then every task page of docs/."""
    pages: list[Path] = docs_tool("page_shape").guide_pages()
    return pages


class Block(NamedTuple):
    page: Path
    line: int  # of the opening fence, 1-based
    lang: str
    text: str
    before: str  # the paragraph just before the fence


def blocks_of(page: Path) -> list[Block]:
    lines = page.read_text(encoding="utf-8").splitlines(keepends=True)
    found, paragraph, closed = [], [], False
    index = 0
    while index < len(lines):
        fence = re.fullmatch(r"```(\S*)\s*", lines[index])
        if fence is None:
            line = lines[index].strip()
            if line:  # a line after a blank one starts the next paragraph
                paragraph = [line] if closed else [*paragraph, line]
            closed = not line
            index += 1
            continue
        end = next(i for i in range(index + 1, len(lines)) if lines[i].rstrip() == "```")
        text = "".join(lines[index + 1 : end])
        found.append(Block(page, index + 1, fence[1], text, " ".join(paragraph)))
        paragraph, closed = [], False
        index = end + 1
    return found
