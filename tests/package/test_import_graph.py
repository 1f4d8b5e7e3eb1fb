"""The package's modules import each other without cycles, imports inside functions included.

A cycle hidden in a function-level import is still a cycle: two modules that cannot be read,
tested or moved apart. ``if TYPE_CHECKING:`` imports do not run and are not counted.
"""

from __future__ import annotations

import ast

from helpers.imports import import_graph, runtime_imports


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def test_no_module_imports_itself_back_even_inside_a_function() -> None:
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_function_level_cycle() -> None:
    tree = ast.parse("def f():\n    from .b import x\n")
    assert len(runtime_imports(tree)) == 1
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]


def test_serialization_sits_below_the_models() -> None:
    graph = import_graph()
    assert "verify_access_tokens.models" in graph["verify_access_tokens._serde"]
    assert "verify_access_tokens._serde" not in graph["verify_access_tokens.models"]
