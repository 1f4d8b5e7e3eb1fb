"""The site covers the public API, and its guide is the task pages of docs/ (the source of truth,
which README links into).

CI builds the site with `mkdocs build --strict` (.ci/run), whose hooks (docs/_tooling/) fail the
build on a word of the package's insides. These checks need no docs tooling: they test what the
hooks compute (docs/_tooling/support.py) and what the site is made of. That every snippet of the
guide runs, and that its pages are shaped for reading, is tests/guide/test_guide.py's.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import os
import pydoc
import re
import sys
import textwrap
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from helpers.constants import ACCOUNT_SID, AUTH_TOKEN, SERVICE_SID
from helpers.guide import docs_tool
from helpers.paths import ROOT

import verify_access_tokens
import verify_access_tokens.emulator
import verify_access_tokens.fastapi
import verify_access_tokens.testing
from verify_access_tokens import VerifyClient
from verify_access_tokens._core import _constants
from verify_access_tokens.cli import build_parser
from verify_access_tokens.emulator import VerifyEmulator

DOCS = ROOT / "docs"
REFERENCE = DOCS / "reference"
README = (ROOT / "README.md").read_text(encoding="utf-8")
# The guide's task pages: every Markdown page of docs/ outside the reference.
GUIDE = sorted(DOCS.glob("*.md"))


support = docs_tool("support")


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


def test_the_plugin_page_shows_every_public_helper_of_the_module() -> None:
    # Only pytest's hooks are left out, so a helper added to verify_access_tokens.testing shows.
    page = (REFERENCE / "testing.md").read_text()
    assert "members:" not in page
    assert 'filters: ["!^_", "!^pytest_"]' in page


def test_reference_pages_are_in_the_nav() -> None:
    config = (ROOT / "mkdocs.yml").read_text()
    for page in REFERENCE.glob("*.md"):
        assert f"reference/{page.name}" in config


def test_ci_builds_the_site_as_the_development_page_says() -> None:
    page = (DOCS / "development.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'python3 -m pip install -e ".[docs]" && mkdocs build --strict' in page
    assert 'pip install --quiet -e ".[docs]"' in ci
    assert "mkdocs build --strict --site-dir" in ci


def test_the_site_is_built_with_its_hooks() -> None:
    config = (ROOT / "mkdocs.yml").read_text()
    assert "- docs/_tooling/mkdocs_hooks.py" in config
    assert "- docs/_tooling/griffe_defaults.py:RuntimeDefaults" in config
    assert "/_tooling/" in config.split("exclude_docs:")[1].split("\n\n")[0]


# -- defaults render as values -----------------------------------------------------------------

CLIENT_INIT = "verify_access_tokens.client.VerifyClient.__init__"


@pytest.mark.parametrize(
    ("path", "parameter", "source", "shown"),
    [
        (CLIENT_INIT, "max_retries", "DEFAULT_MAX_RETRIES", "2"),
        (CLIENT_INIT, "deadline", "DEFAULT_DEADLINE", "60.0"),
        (CLIENT_INIT, "retry_after_max", "DEFAULT_RETRY_AFTER_MAX", "60.0"),
        (CLIENT_INIT, "max_response_bytes", "DEFAULT_MAX_RESPONSE_BYTES", "1048576"),
        (CLIENT_INIT, "timeout", "None", "35.0"),
        (CLIENT_INIT, "pool_limit", "None", "100"),
        (CLIENT_INIT, "keepalive_timeout", "None", "30.0"),
        ("verify_access_tokens.client.VerifyClient.with_options", "timeout", "NOT_GIVEN", "..."),
        (
            "verify_access_tokens.resources.access_tokens.AccessTokens.create",
            "factor_type",
            "FactorType.PUSH",
            "FactorType.PUSH",
        ),
    ],
)
def test_a_default_renders_as_its_value(path: str, parameter: str, source: str, shown: str) -> None:
    assert support.rendered_default(path, parameter, source) == shown


def test_a_literal_default_is_kept_as_written() -> None:
    assert support.rendered_default(CLIENT_INIT, "account_sid", "None") is None
    assert support.rendered_default(CLIENT_INIT, "trust_env", "False") is None
    # Not reachable at runtime, or not a parameter: the source stays as written.
    assert support.rendered_default("verify_access_tokens.nowhere.f", "x", "LIMIT") is None
    assert support.rendered_default(CLIENT_INIT, "no_such_parameter", "LIMIT") is None


def _source_defaults(function: Any) -> dict[str, str]:
    """Each parameter's default as written in the source, as the site's generator reads it."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    node = tree.body[0]
    assert isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    arguments = node.args
    positional = arguments.posonlyargs + arguments.args
    with_default = positional[len(positional) - len(arguments.defaults) :]
    pairs = list(zip(with_default, arguments.defaults, strict=True))
    keyword = zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True)
    pairs += [(argument, default) for argument, default in keyword if default is not None]
    return {argument.arg: ast.unparse(default) for argument, default in pairs}


def test_every_default_of_the_public_api_renders_as_its_runtime_value() -> None:
    """No signature default on the site is a constant's name or a sentinel, and each shown
    value is the one the code uses."""
    shown_values = 0
    for module in (
        verify_access_tokens,
        verify_access_tokens.emulator,
        verify_access_tokens.fastapi,
    ):
        for name in module.__all__:
            obj = getattr(module, name)
            functions = [obj] if inspect.isfunction(obj) else []
            if inspect.isclass(obj):
                functions = [f for f in vars(obj).values() if inspect.isfunction(f)]
            for function in functions:
                if not function.__code__.co_filename.endswith(".py"):
                    continue  # attrs' generated __init__: the site reads the class's fields
                path = f"{function.__module__}.{function.__qualname__}"
                parameters = inspect.signature(function).parameters
                for parameter, source in _source_defaults(function).items():
                    shown = support.rendered_default(path, parameter, source) or source
                    assert not support.leaks(shown), (path, parameter, shown)
                    if shown in ("...", "None") or shown.startswith("FactorType."):
                        continue
                    stands_for = support.NONE_MEANS.get(path, {}).get(parameter)
                    runtime = parameters[parameter].default
                    expected = runtime if stands_for is None else getattr(_constants, stands_for)
                    assert ast.literal_eval(shown) == expected, (path, parameter)
                    shown_values += 1
    assert shown_values >= 20


@pytest.mark.parametrize("parameter", ["timeout", "pool_limit", "keepalive_timeout"])
async def test_a_none_shown_as_a_value_behaves_as_that_value(parameter: str) -> None:
    """The site shows ``timeout=35.0``: omitting it configures exactly what 35.0 does."""
    constant = support.NONE_MEANS[CLIENT_INIT][parameter]
    value = getattr(_constants, constant)
    omitted = VerifyClient(ACCOUNT_SID, AUTH_TOKEN)
    given = VerifyClient(ACCOUNT_SID, AUTH_TOKEN, **{parameter: value})

    def settings(client: Any) -> tuple[Any, ...]:
        transport = client._transport
        return client._options, transport._pool_limit, transport._keepalive_timeout

    try:
        assert settings(omitted) == settings(given)
        assert omitted._options.timeout.total == _constants.DEFAULT_ATTEMPT_TIMEOUT == 35.0
    finally:
        await omitted.aclose()
        await given.aclose()


# -- the FastAPI router, the CLI and the emulator's attributes -----------------------------------


def test_the_fastapi_router_has_a_page() -> None:
    assert "verify_access_tokens.fastapi" in documented()
    import verify_access_tokens.fastapi as fastapi_module

    assert set(fastapi_module.__all__) >= {
        "access_token_router",
        "identity_hash",
        "requested_identity",
        "EndpointError",
    }
    for name in fastapi_module.__all__:  # rendered: public members with a docstring
        assert inspect.getdoc(getattr(fastapi_module, name)), name


def _options(parser: argparse.ArgumentParser) -> list[str]:
    return [option for action in parser._actions for option in action.option_strings]


def test_the_cli_page_is_generated_from_the_parser() -> None:
    page = (REFERENCE / "cli.md").read_text()
    assert "<!-- cli-reference -->" in page
    assert "reference/cli.md" in (ROOT / "mkdocs.yml").read_text()
    markdown = support.cli_reference()
    commands = support.cli_commands()
    assert {name for name, _, _ in commands} >= {"demo", "emulator", "create", "fetch", "enroll"}
    for name, summary, sub in commands:
        assert f"## `{name}`" in markdown
        assert summary[1:] in markdown
        assert f"usage: verify-access-tokens {name}" in markdown
        for option in _options(sub):
            assert option in markdown, (name, option)


def test_the_cli_page_follows_a_new_option() -> None:
    """A flag another change adds shows up on the page with no edit to the docs."""
    original = build_parser

    def with_new_flag() -> argparse.ArgumentParser:
        parser = original()
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                action.choices["enroll"].add_argument("--brand-new-flag", help="a new flag")
        return parser

    cli = sys.modules["verify_access_tokens.cli"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cli, "build_parser", with_new_flag)
        assert "--brand-new-flag" in support.cli_reference()


def _attributes_section(doc: str) -> set[str]:
    section = inspect.cleandoc(doc).split("Attributes:\n", 1)[1]
    names = set()
    for line in section.splitlines():
        if line and not line.startswith(" "):
            break
        if (match := re.match(r"^    (\w+)( \([^)]*\))?:", line)) is not None:
            names.add(match.group(1))
    return names


def test_every_public_attribute_of_the_emulator_is_documented() -> None:
    emulator = VerifyEmulator()
    public = {name for name in vars(emulator) if not name.startswith("_")}
    assert {"counters", "account_sid", "auth_token"} <= public
    assert public <= _attributes_section(VerifyEmulator.__doc__ or "")
    for name, member in vars(VerifyEmulator).items():
        if isinstance(member, property) and not name.startswith("_"):
            assert inspect.getdoc(member), name


async def test_every_public_attribute_of_a_batch_is_documented() -> None:
    from verify_access_tokens import EnrollmentBatch

    async with VerifyClient(ACCOUNT_SID, AUTH_TOKEN) as client:
        batch = client.access_tokens.create_many(SERVICE_SID, [], rate_limit=10)
        public = {name for name in vars(batch) if not name.startswith("_")}
        await batch.aclose()
    assert {"summary", "undelivered", "unfinished", "not_sent"} <= public
    assert public <= _attributes_section(EnrollmentBatch.__doc__ or "")


def test_the_clients_resource_is_documented_for_help_and_the_reference() -> None:
    source = (ROOT / "verify_access_tokens" / "client.py").read_text()
    assert re.search(r"access_tokens = ResourceAttribute\(AccessTokens\)\n\s+\"\"\"\S", source)
    text = pydoc.render_doc(VerifyClient, renderer=pydoc.plaintext)
    assert "access_tokens" in text
    assert "Enrollment access tokens of a Verify Service" in text


async def test_create_autospec_of_a_client_has_its_resource_with_checked_signatures() -> None:
    client = mock.create_autospec(VerifyClient, instance=True)
    client.access_tokens.create.return_value = "token"
    assert await client.access_tokens.create("VA" + "0" * 32, identity="user-0001") == "token"
    with pytest.raises(TypeError):
        await client.access_tokens.create("VA" + "0" * 32, identety="user-0001")
    real = VerifyClient("AC" + "0" * 32, "t")
    assert real.access_tokens._client is real  # each client its own resource


# -- no internal words -------------------------------------------------------------------------


def test_internal_words_are_caught() -> None:
    text = "Bases: APIResource; the seed's *WithHttpInfo; x = NOT_GIVEN; y = DEFAULT_DEADLINE"
    assert support.leaks(text) == [
        "APIResource",
        "the seed",
        "WithHttpInfo",
        "NOT_GIVEN",
        "DEFAULT_DEADLINE",
    ]
    assert support.leaks("seed for reproducible faults; a new one, from ``seed``") == []


def test_no_docstring_of_the_public_api_holds_an_internal_word() -> None:
    import verify_access_tokens.fastapi as fastapi_module

    for module in (
        verify_access_tokens,
        verify_access_tokens.emulator,
        verify_access_tokens.testing,
        fastapi_module,
    ):
        assert not support.leaks(inspect.getdoc(module) or ""), module.__name__
        for name in module.__all__:
            obj = getattr(module, name)
            docs = [inspect.getdoc(obj) or ""]
            if inspect.isclass(obj):
                docs += [inspect.getdoc(m) or "" for k, m in vars(obj).items() if k[0] != "_"]
            assert not support.leaks("\n".join(docs)), name
    assert not support.leaks(README)
    for page in GUIDE:
        assert not support.leaks(page.read_text()), page.name


# -- the guide: task pages in docs/, README the front door --------------------------------------

TASK_PAGES = {
    "index.md": "Getting started",
    "configuration.md": "Configuration",
    "errors.md": "Errors and retries",
    "batches.md": "Flow control and batches",
    "enroll.md": "The enroll command",
    "backend.md": "The backend endpoint",
    "deployment.md": "Deployment",
    "testing.md": "Testing your app",
    "performance.md": "Performance",
    "compatibility.md": "Compatibility",
    "architecture.md": "Architecture",
    "development.md": "Development",
}


def test_every_task_page_is_in_the_nav_in_order() -> None:
    config = (ROOT / "mkdocs.yml").read_text()
    guide = config.split("  - Guide:\n", 1)[1].split("  - API reference:", 1)[0]
    listed = re.findall(r"^      - (.+): (\S+\.md)$", guide, flags=re.M)
    assert listed == [(title, page) for page, title in TASK_PAGES.items()]
    assert {page.name for page in GUIDE} == set(TASK_PAGES), "a page of docs/ not in the nav"


def test_each_task_page_has_its_own_title() -> None:
    for page in GUIDE:
        headings = list(support.headings(page.read_text()))
        assert headings[0] == (1, TASK_PAGES[page.name]), page.name
        assert [level for level, _ in headings].count(1) == 1, page.name


def test_the_guide_is_written_in_docs_not_cut_from_readme() -> None:
    """docs/ is the source of truth: no page includes README, and README has no markers."""
    for page in [*GUIDE, ROOT / "README.md"]:
        assert "--8<--" not in page.read_text(), page.name
    assert "pymdownx.snippets" not in (ROOT / "mkdocs.yml").read_text()
    # Links to example files resolve inside the site too (pages sit beside examples/).
    assert (DOCS / "examples").resolve() == ROOT / "examples"


def _anchors_of(page: Path) -> set[str]:
    """A page's headings, with those the build adds: the CLI page's commands, and the objects
    a reference page renders (anchored by their dotted path)."""
    text = page.read_text()
    found = support.anchors(text)
    if "<!-- cli-reference -->" in text:
        found |= {support.slugify(f"`{name}`") for name, _, _ in support.cli_commands()}
    for path in re.findall(r"^::: (\S+)$", text, flags=re.M):
        found |= {path, *(n for n in _names_under(path))}
    return found


def _names_under(path: str) -> set[str]:
    obj = support.resolve(path)
    return {f"{path}.{name}" for name in dir(obj) if not name.startswith("_")}


def _link_problems(page: Path, site_root: Path) -> list[str]:
    """Links of `page` that do not resolve to a file of the repository under `site_root`, or
    name an anchor that file's headings do not have."""
    problems = []
    text = page.read_text()
    for target in support.local_links(text):
        path, _, anchor = target.partition("#")
        # Not resolved: docs/examples is a link into the repository, and the site holds it.
        resolved = Path(os.path.normpath(page.parent / path)) if path else page
        shown = path or page.name
        if not resolved.is_relative_to(site_root) or not resolved.exists():
            problems.append(f"{target}: no {shown} in {site_root.name}/")
            continue
        if resolved.is_dir() and not anchor:
            continue
        if anchor and resolved.suffix == ".md" and anchor not in _anchors_of(resolved):
            problems.append(f"{target}: no heading #{anchor} in {shown}")
    return problems


def test_readme_links_stay_in_the_repository_and_find_their_headings() -> None:
    readme = ROOT / "README.md"
    assert _link_problems(readme, ROOT) == []
    assert any(target.startswith("docs/") for target in support.local_links(README))


def test_guide_links_stay_in_the_site_and_find_their_headings() -> None:
    """A page links only to what the site holds (docs/, and examples/ through its link), so
    nothing points outside the repository. mkdocs checks the same when it builds."""
    for page in GUIDE:
        assert _link_problems(page, DOCS) == [], page.name
        assert "WIRE.md" not in page.read_text()
    assert "WIRE.md" not in README


def test_broken_links_are_caught(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n\n## A heading\n\nSee [a](#a-heading), [b](#gone), [c](other.md),\n"
        "[d](https://example.com) and `[e](inline-code.md)`.\n\n```md\n[f](code.md)\n```\n"
    )
    assert support.local_links(page.read_text()) == ["#a-heading", "#gone", "other.md"]
    problems = _link_problems(page, tmp_path)
    assert [p.split(":")[0] for p in problems] == ["#gone", "other.md"]
    assert support.anchors("# T\n## Same\n## Same\n") == {"t", "same", "same_1"}


def test_reference_pages_come_after_the_guide_in_search() -> None:
    """Each reference page is boosted down, so a task's words find its task page first; the
    query table of docs/_tooling/check_search.py names a query for every task page."""
    for page in REFERENCE.glob("*.md"):
        front = page.read_text().split("---\n")
        assert front[0] == "", page.name
        assert re.search(r"^search:\n  boost: 0\.\d+$", front[1], flags=re.M), page.name
    script = docs_tool("check_search")
    assert set(script.QUERIES.values()) >= set(TASK_PAGES)
    assert script.QUERIES["10000"] == "batches.md"
    assert script.page_of("batches/") == "batches.md"
    assert script.page_of("") == "index.md"


def test_wide_tables_wrap_by_a_css_rule() -> None:
    config = (ROOT / "mkdocs.yml").read_text()
    assert "- stylesheets/tables.css" in config
    css = (DOCS / "stylesheets" / "tables.css").read_text()
    assert re.search(r"\.doc-contents table td[^{]*code\s*\{\s*overflow-wrap:\s*anywhere", css)
    # The documented check (Chromium is not a test dependency): 1280 px by default, headless,
    # offline, a table failing when its frame would scroll sideways.
    script = docs_tool("check_tables")
    assert {"--headless", "--disable-background-networking", "--no-first-run"} <= set(
        script.CHROMIUM_FLAGS
    )
    assert "frame.scrollWidth" in script._PROBE
    assert "frame.clientWidth" in script._PROBE
    assert "default=1280" in (DOCS / "_tooling" / "check_tables.py").read_text()


def test_the_version_has_its_dated_changelog_section_and_readme_says_it() -> None:
    version = verify_access_tokens.__version__
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert re.search(rf"^## \[{re.escape(version)}\] - \d{{4}}-\d\d-\d\d$", changelog, re.M)
    assert changelog.index("## [Unreleased]") < changelog.index(f"## [{version}]")
    assert f"Version {version}" in (ROOT / "README.md").read_text()
