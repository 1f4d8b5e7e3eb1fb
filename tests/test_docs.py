"""The API reference site covers the public API and takes its guide from README (one source).

CI builds the site with `mkdocs build --strict` (.ci/run); these checks need no docs tooling.
"""

from __future__ import annotations

import re
from pathlib import Path

import verify_access_tokens

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "docs" / "reference"


def documented() -> set[str]:
    """Every object a `::: path` directive of the reference pages renders."""
    text = "\n".join(page.read_text() for page in REFERENCE.glob("*.md"))
    return set(re.findall(r"^::: (\S+)$", text, flags=re.M))


def test_every_public_name_has_a_reference_entry() -> None:
    names = {f"verify_access_tokens.{n}" for n in verify_access_tokens.__all__}
    missing = names - documented() - {"verify_access_tokens.__version__"}
    assert not missing, f"add to docs/reference/: {sorted(missing)}"


def test_emulator_and_plugin_modules_are_documented() -> None:
    # Each page renders the module; the emulator's members are those of its __all__.
    assert {"verify_access_tokens.emulator", "verify_access_tokens.testing"} <= documented()


def test_reference_pages_are_in_the_nav() -> None:
    config = (ROOT / "mkdocs.yml").read_text()
    for page in REFERENCE.glob("*.md"):
        assert f"reference/{page.name}" in config


def test_the_guide_is_readme_itself() -> None:
    assert (ROOT / "docs" / "index.md").read_text() == '--8<-- "README.md"\n'
    # README's links to example files resolve inside the site too.
    assert (ROOT / "docs" / "examples").resolve() == ROOT / "examples"


def test_ci_builds_the_site_as_readme_says() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'python3 -m pip install -e ".[docs]" && mkdocs build --strict' in readme
    assert 'pip install --quiet -e ".[docs]"' in ci
    assert "mkdocs build --strict --site-dir" in ci
