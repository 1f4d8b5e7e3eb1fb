"""mkdocs hooks of the reference site (``hooks:`` in mkdocs.yml); the work is in ``support.py``.

- The CLI page's ``<!-- cli-reference -->`` line becomes every command's ``--help``, generated
  from ``build_parser()`` at build time.
- Guide pages include README sections (pymdownx.snippets); a Markdown preprocessor running after
  snippets points README's ``#anchor`` links at the page holding the heading, and gives each
  page a title.
- After the build, a page holding a word of the package's insides fails it.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from markdown import Markdown
from markdown.extensions import Extension
from markdown.extensions.toc import slugify as toc_slugify
from markdown.preprocessors import Preprocessor
from mkdocs.exceptions import PluginError

sys.path.insert(0, str(Path(__file__).resolve().parent))
import support

CLI_PLACEHOLDER = "<!-- cli-reference -->"
CLI_PAGE = "reference/cli.md"

_anchors: dict[str, str] = {}


class _GuidePreprocessor(Preprocessor):
    def run(self, lines: list[str]) -> list[str]:
        return support.rewrite_guide("\n".join(lines), _anchors).split("\n")


class _GuideExtension(Extension):
    def extendMarkdown(self, md: Markdown) -> None:
        # snippets includes the README sections at priority 32; run after it.
        md.preprocessors.register(_GuidePreprocessor(md), "readme_guide", 31)


def on_config(config: Any) -> Any:
    docs = Path(config["docs_dir"])
    readme = (Path(config["config_file_path"]).parent / "README.md").read_text(encoding="utf-8")
    for _, text in support.headings(readme):
        plain = re.sub(r"[*_]", "", re.sub(r"`([^`]*)`", r"\1", text))
        if support.slugify(text) != toc_slugify(plain, "-"):
            raise PluginError(f"support.slugify disagrees with Markdown's on {text!r}")
    _anchors.clear()
    _anchors.update(support.anchor_pages(readme, docs))
    config["markdown_extensions"].append(_GuideExtension())
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
