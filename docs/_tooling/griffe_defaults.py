"""griffe extension: signature defaults read as values, and the "not given" type is hidden.

``max_retries: int = DEFAULT_MAX_RETRIES`` renders as ``max_retries: int = 2``, and the
``None`` that stands for a package default as that default (``timeout ... = 35.0``); the value
comes from the running package (``support.rendered_default``), never copied here. In
``with_options`` and the like, ``x: float | NotGiven = NOT_GIVEN`` renders as
``x: float = ...`` ("not given: unchanged").
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import griffe

sys.path.insert(0, str(Path(__file__).resolve().parent))
import support


def _without_not_given(annotation: Any) -> Any:
    """``A | NotGiven | B`` as ``A | B``."""
    if not isinstance(annotation, griffe.ExprBinOp) or annotation.operator != "|":
        return annotation
    operands: list[Any] = []

    def flatten(expr: Any) -> None:
        if isinstance(expr, griffe.ExprBinOp) and expr.operator == "|":
            flatten(expr.left)
            flatten(expr.right)
        elif str(expr) != "NotGiven":
            operands.append(expr)

    flatten(annotation)
    result = operands[0]
    for operand in operands[1:]:
        result = griffe.ExprBinOp(result, "|", operand)
    return result


class RuntimeDefaults(griffe.Extension):
    """Rewrites the defaults of ``verify_access_tokens``'s functions as they load."""

    def on_function(self, *, func: griffe.Function, **kwargs: Any) -> None:
        if not func.path.startswith("verify_access_tokens."):
            return
        for parameter in func.parameters:
            if parameter.default is None:
                continue
            value = support.rendered_default(func.path, parameter.name, str(parameter.default))
            if value is not None:
                parameter.default = value
                parameter.annotation = _without_not_given(parameter.annotation)
