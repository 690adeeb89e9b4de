"""gdo-opt: pick the training subset for multimodal instruction tuning by exact optimization.

Importing the package is light: the public names below are loaded on first use (PEP 562), so
``import gdo_opt`` and every ``gdo-opt <command> --help`` import neither pandas, scipy, torch nor
a solver.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from gdo_opt.errors import GdoError, ParameterError

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY = {
    "Selection": "gdo_opt.selection.problem",
    "SelectionProblem": "gdo_opt.selection.problem",
    "Violation": "gdo_opt.selection.problem",
}

if TYPE_CHECKING:  # pragma: no cover
    from gdo_opt.selection.problem import Selection, SelectionProblem, Violation


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'gdo_opt' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = ["GdoError", "ParameterError", "Selection", "SelectionProblem", "Violation", "__version__"]
