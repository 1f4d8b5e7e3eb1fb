"""The architecture diagram (docs/architecture.md) is the package's real shape.

Each row of the diagram is a layer; a module may import (anywhere in it, ``TYPE_CHECKING``
blocks left out) from its own layer and the ones below, never above; within a row, ``a/ → b/``
says ``b`` never imports ``a``. Every module named exists, and every module of the package is
in one row.
"""

from __future__ import annotations

import re
from pathlib import Path

from helpers.imports import import_graph
from helpers.paths import PACKAGE, ROOT

PAGE = ROOT / "docs" / "architecture.md"
_BLOCK = re.compile(r"<!-- layers -->\n```text\n(.*?)```", re.S)


def _diagram(page: Path) -> str:
    found = _BLOCK.search(page.read_text(encoding="utf-8"))
    assert found is not None, f"{page.name}: no <!-- layers --> diagram"
    return found.group(1)


def _layers(diagram: str) -> list[tuple[str, list[list[str]]]]:
    """Top to bottom: (layer, its groups), a group being modules joined by arrows."""
    rows = []
    for line in diagram.splitlines():
        name, _, rest = line.strip().partition(" ")
        if not rest.strip():
            continue
        groups = [[m for m in part.split() if m.endswith(("/", ".py"))] for part in rest.split("→")]
        rows.append((name, [g for g in groups if g]))
    return rows


def _owner(module: str, entries: dict[str, tuple[int, int]]) -> tuple[int, int]:
    """The (layer, place in its row) of the diagram entry holding ``module``."""
    relative = module.removeprefix("verify_access_tokens").lstrip(".")
    path = relative.replace(".", "/")
    for entry, place in sorted(entries.items(), key=lambda e: -len(e[0])):
        if entry.endswith("/") and (path + "/").startswith(entry):
            return place
        if entry == (path or "__init__") + ".py":
            return place
    raise AssertionError(f"{module} is in no row of the diagram")


def _entries(diagram: str) -> dict[str, tuple[int, int]]:
    entries = {}
    for layer, (_, groups) in enumerate(_layers(diagram)):
        for place, group in enumerate(groups):
            for entry in group:
                entries[entry] = (layer, place if len(groups) > 1 else 0)
    return entries


def test_every_module_the_diagram_names_exists() -> None:
    for entry in _entries(_diagram(PAGE)):
        assert (PACKAGE / entry).exists(), entry


def test_imports_point_down_the_diagram() -> None:
    entries = _entries(_diagram(PAGE))
    wrong = []
    for module, targets in import_graph().items():
        here = _owner(module, entries)
        for target in targets:
            there = _owner(target, entries)
            if (there < here and there[0] == here[0]) or there[0] < here[0]:
                wrong.append(f"{module} imports {target}")
    assert not wrong, wrong


def test_the_check_places_modules_by_row_and_arrow() -> None:
    entries = _entries("top   cli/\nmid   a/ → b/\nlow   models.py\n")
    assert _owner("verify_access_tokens.cli.serve._app", entries) == (0, 0)
    assert _owner("verify_access_tokens.b.x", entries) == (1, 1)
    assert _owner("verify_access_tokens.models", entries) == (2, 0)
    below, above = (
        _owner("verify_access_tokens.b", entries),
        _owner("verify_access_tokens.a", entries),
    )
    assert above < below  # b importing a points up its row
