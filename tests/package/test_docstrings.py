"""The public surface documents itself: every callable has a docstring naming each parameter.

ruff's pydocstyle rules (``D``, Google convention) check the docstrings' shape; this test checks
what they do not: that every parameter of a public callable, constructors included, appears in
its docstring's ``Args:`` section (or, for attrs models, ``Attributes:``). ruff's D417 looks only
at docstrings that already have an Args section, and ruff treats everything in a private module
(``_core/_errors.py``, ``emulator/_app.py``) as private, even when the package re-exports it.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import attrs
import pytest

import verify_access_tokens
import verify_access_tokens.emulator
import verify_access_tokens.testing
from verify_access_tokens.cli import build_parser
from verify_access_tokens.cli import main as cli_main

fastapi_module: ModuleType | None
try:
    import verify_access_tokens.fastapi as fastapi_module
except ImportError:  # pragma: no cover - the test extra installs fastapi
    fastapi_module = None

_SECTION = re.compile(r"^(\s*)(Args|Arguments|Attributes|Parameters):\s*$")
_ENTRY = re.compile(r"^\s+(\*{0,2}\w+)\s*(\([^)]*\))?\s*:")


def _documented_names(doc: str | None) -> set[str]:
    """Parameter names listed in the Google-style ``Args:``/``Attributes:`` sections of ``doc``."""
    names: set[str] = set()
    if not doc:
        return names
    lines = inspect.cleandoc(doc).splitlines()
    section_indent: int | None = None
    entry_indent: int | None = None
    for line in lines:
        if (match := _SECTION.match(line)) is not None:
            section_indent, entry_indent = len(match.group(1)), None
            continue
        if section_indent is None or not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if indent <= section_indent:
            section_indent = None
            continue
        if entry_indent is None:
            entry_indent = indent
        if indent == entry_indent and (entry := _ENTRY.match(line)) is not None:
            names.add(entry.group(1).lstrip("*"))
    return names


def _parameters(func: Callable[..., Any]) -> list[str]:
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return []
    return [name for name in signature.parameters if name not in ("self", "cls")]


def _public_objects() -> Iterator[tuple[str, Any]]:
    modules: list[tuple[ModuleType, list[str]]] = [
        (verify_access_tokens, [n for n in verify_access_tokens.__all__ if n != "__version__"]),
        (verify_access_tokens.emulator, list(verify_access_tokens.emulator.__all__)),
        (verify_access_tokens.testing, list(verify_access_tokens.testing.__all__)),
    ]
    if fastapi_module is not None:
        modules.append((fastapi_module, list(fastapi_module.__all__)))
    for module, names in modules:
        for name in names:
            yield f"{module.__name__}.{name}", getattr(module, name)
    yield "verify_access_tokens.cli.main", cli_main
    yield "verify_access_tokens.cli.build_parser", build_parser


def _unwrap(obj: Any) -> Any:
    """The function under a pytest fixture (pytest >= 8.4 wraps it in an object of its own)."""
    wrapped = getattr(obj, "_get_wrapped_function", None)
    if callable(wrapped):
        return wrapped()
    return getattr(obj, "__wrapped__", obj)


def _members(cls: type) -> Iterator[tuple[str, Any]]:
    """Public methods and properties a class itself defines (inherited ones are checked where
    they are defined, when that class is public), plus ``__init__``."""
    for name, member in vars(cls).items():
        if name.startswith("_") and name != "__init__":
            continue
        if isinstance(member, property) or inspect.isfunction(member):
            yield name, member
        elif isinstance(member, (classmethod, staticmethod)):
            yield name, member.__func__


def _cases() -> Iterator[tuple[str, Any, set[str]]]:
    """(qualified name, callable or property, names its class's docstring documents)."""
    seen: set[int] = set()
    for qualname, obj in _public_objects():
        obj = _unwrap(obj)
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        yield qualname, obj, set()
        if inspect.isclass(obj):
            yield from _model_cases(obj, qualname)


def _model_cases(cls: type, qualname: str | None = None) -> Iterator[tuple[str, Any, set[str]]]:
    """The members of a public class; for attrs classes, its fields as one case."""
    qualname = qualname or cls.__name__
    class_names = _documented_names(cls.__doc__)
    is_attrs = attrs.has(cls)
    if is_attrs:
        # attrs writes ``__init__``: its parameters are the fields, listed as Attributes.
        fields = [f.alias or f.name for f in attrs.fields(cls) if f.init]
        missing = [name for name in fields if name not in class_names]
        yield f"{qualname} fields", _Fields(missing), set()
    for name, member in _members(cls):
        if name == "__init__" and is_attrs:
            continue
        yield f"{qualname}.{name}", member, class_names if name == "__init__" else set()


@attrs.frozen
class _Fields:
    missing: list[str]


_CASES = list(_cases())


@pytest.mark.parametrize(("qualname", "obj", "class_names"), _CASES, ids=[c[0] for c in _CASES])
def test_public_callable_documents_every_parameter(
    qualname: str, obj: Any, class_names: set[str]
) -> None:
    _check(qualname, obj, class_names)


def _check(qualname: str, obj: Any, class_names: set[str]) -> None:
    if isinstance(obj, _Fields):
        assert not obj.missing, f"{qualname}: {obj.missing} are not in its Attributes section"
        return
    own_doc = (obj.fget if isinstance(obj, property) else obj).__doc__
    if qualname.endswith(".__init__") and class_names:
        own_doc = own_doc or ""  # Google style: the class docstring's Args may document it
    else:
        assert own_doc, f"{qualname} has no docstring"
        assert own_doc.strip(), f"{qualname} has an empty docstring"
    if isinstance(obj, property) or inspect.isclass(obj):
        return
    documented = _documented_names(own_doc) | class_names
    missing = [name for name in _parameters(obj) if name not in documented]
    assert not missing, f"{qualname}: parameters {missing} are not in its Args section"


def test_the_walk_covers_the_public_surface() -> None:
    """Guards the test above against silently checking nothing."""
    names = {case[0] for case in _CASES}
    assert "verify_access_tokens.VerifyClient.__init__" in names
    assert "verify_access_tokens.AccessTokens.create" in names
    assert "verify_access_tokens.VerifyClient.account_sid" in names
    assert "verify_access_tokens.emulator.VerifyEmulator" in names
    assert "verify_access_tokens.cli.main" in names
    assert len(names) > 60


def test_args_section_parser() -> None:
    doc = """Summary.

    Args:
        first: One.
        second (int): Two,
            continued: not a name.
        **kwargs: Passed on.

    Returns:
        value: not an argument.
    """
    assert _documented_names(doc) == {"first", "second", "kwargs"}


def test_the_check_catches_what_it_is_for() -> None:
    """An undocumented parameter, a missing docstring and an undocumented field all fail."""

    def half(first: int, second: int) -> None:
        """Summary.

        Args:
            first: One.
        """

    def bare(first: int) -> None:
        pass

    @attrs.frozen
    class Model:
        """Summary.

        Attributes:
            kept: Documented.
        """

        kept: int
        forgotten: int

    with pytest.raises(AssertionError, match=r"\['second'\]"):
        _check("half", half, set())
    with pytest.raises(AssertionError, match="no docstring"):
        _check("bare", bare, set())
    cases = {case[0]: case[1] for case in _model_cases(Model)}
    with pytest.raises(AssertionError, match="forgotten"):
        _check("Model fields", cases["Model fields"], set())
