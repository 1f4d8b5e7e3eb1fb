"""mkdocs hooks of the reference site (``hooks:`` in mkdocs.yml); the work is in ``support.py``.

- The CLI page's ``<!-- cli-reference -->`` line becomes every command's ``--help``, generated
  from ``build_parser()`` at build time.
- The guide's pages are plain Markdown in ``docs/``; at start the build checks that
  ``support.slugify`` (what ``tests/guide/test_docs.py`` uses to check README's links into
  them) gives each of their headings the anchor Markdown gives it.
- After the build, a page holding a word of the package's insides fails it.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from markdown.extensions.toc import slugify as toc_slugify
from mkdocs.exceptions import PluginError

sys.path.insert(0, str(Path(__file__).resolve().parent))
import support

CLI_PLACEHOLDER = "<!-- cli-reference -->"
CLI_PAGE = "reference/cli.md"


def on_config(config: Any) -> Any:
    for page in sorted(Path(config["docs_dir"]).glob("*.md")):
        for _, text in support.headings(page.read_text(encoding="utf-8")):
            plain = re.sub(r"[*_]", "", re.sub(r"`([^`]*)`", r"\1", text))
            if support.slugify(text) != toc_slugify(plain, "-"):
                raise PluginError(f"support.slugify disagrees with Markdown's on {text!r}")
    return config


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    if page.file.src_uri != CLI_PAGE:
        return markdown
    if CLI_PLACEHOLDER not in markdown:
        raise PluginError(f"{CLI_PAGE} lost its {CLI_PLACEHOLDER} line")
    return markdown.replace(CLI_PLACEHOLDER, support.cli_reference())


def on_post_build(config: Any, **_: Any) -> None:
    site = Path(config["site_dir"])
    found = {
        str(path.relative_to(site)): words
        for path in sorted(site.rglob("*"))
        if path.suffix in {".html", ".json"}
        and (words := support.leaks(path.read_text(encoding="utf-8")))
    }
    if found:
        raise PluginError(f"internal words on the site: {found}")
