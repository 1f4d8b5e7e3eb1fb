"""The apps (CLI, emulator, FastAPI router, pytest plugin) use only the public API, as README says.

Each may import the public names of ``verify_access_tokens`` (its ``__all__``), another app, its
own private modules, and ``_core._validation`` (the request rules the emulator and the router
apply exactly as the client does); the pytest plugin also ``_http._compat``, the one place for
third-party internals, for its aioresponses shim. Nothing else of the package's internals.
"""

from __future__ import annotations

import ast
from pathlib import Path

from helpers.paths import PACKAGE

import verify_access_tokens

APPS = {
    "verify_access_tokens.cli": PACKAGE / "cli",
    "verify_access_tokens.emulator": PACKAGE / "emulator",
    "verify_access_tokens.fastapi": PACKAGE / "fastapi",
    "verify_access_tokens.testing": PACKAGE / "testing.py",
}
SHARED_RULES = "verify_access_tokens._core._validation"
COMPAT_FENCE = "verify_access_tokens._http._compat"


def _modules() -> list[tuple[str, Path]]:
    found = []
    for name, path in APPS.items():
        if path.is_dir():
            for file in sorted(path.rglob("*.py")):
                parts = file.relative_to(path).with_suffix("").parts
                parts = parts[:-1] if parts[-1] == "__init__" else parts
                found.append((".".join((name, *parts)), file))
        else:
            found.append((name, path))
    return found


def _imports(module: str, path: Path) -> list[tuple[str, list[str]]]:
    """(absolute module, names) of every ``from ... import`` of the package, nested ones too."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    result = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] == "verify_access_tokens":
                result.append((target, [alias.name for alias in node.names]))
        elif isinstance(node, ast.Import):
            assert not any(a.name.startswith("verify_access_tokens") for a in node.names)
    return result


def _allowed(importer: str, target: str, names: list[str]) -> bool:
    if target == "verify_access_tokens":
        return set(names) <= set(verify_access_tokens.__all__) | {"__version__"}
    if target == SHARED_RULES or (
        target == "verify_access_tokens._core" and names == ["_validation"]
    ):
        return True
    own_app = next(app for app in APPS if importer == app or importer.startswith(app + "."))
    if (importer, target) == ("verify_access_tokens.testing", COMPAT_FENCE):
        return True  # the aioresponses shim: third-party internals live only behind the fence
    return any(target == app or target.startswith(app + ".") for app in APPS) and (
        target.startswith(own_app) or not target.rpartition(".")[2].startswith("_")
    )


def test_apps_import_only_public_names_and_the_shared_rules() -> None:
    wrong = [
        f"{module}: from {target} import {', '.join(names)}"
        for module, path in _modules()
        for target, names in _imports(module, path)
        if not _allowed(module, target, names)
    ]
    assert not wrong, wrong


def test_the_check_sees_a_private_import() -> None:
    assert not _allowed("verify_access_tokens.cli._main", "verify_access_tokens._serde", ["x"])
    assert not _allowed("verify_access_tokens.cli._main", "verify_access_tokens", ["_core"])
    assert not _allowed(
        "verify_access_tokens.cli._main", "verify_access_tokens.emulator._app", ["x"]
    )
    assert _allowed(
        "verify_access_tokens.cli.serve._command", "verify_access_tokens.fastapi", ["x"]
    )
    assert not _allowed(
        "verify_access_tokens.cli.serve._app", "verify_access_tokens.fastapi._errors", ["x"]
    )
