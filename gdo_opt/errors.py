"""Library errors: every problem the user can fix (bad file, bad preset, bad argument).

Both are ``ValueError`` subclasses, so a notebook can catch them like any bad-value error. The
library speaks library: a ``ParameterError`` names the *parameter* (``mip_gap``), never a CLI
flag; the CLI (``gdo_opt.commands._common.describe``) renders it with the flag (``--mip-gap``),
prints one line and exits non-zero.
"""

from __future__ import annotations

from typing import Any

_NO_VALUE = object()


class GdoError(ValueError):
    """A user-facing error: the message names the file, line, key or constraint at fault."""


class ParameterError(GdoError):
    """A bad value of one named parameter of a library call or config object.

    ``str(error)`` reads ``"mip_gap 2.0: must be in [0, 1)"`` (or ``"model: required ..."``
    without a value); ``error.render("--mip-gap")`` gives the same sentence under another name.
    """

    def __init__(self, parameter: str, why: str, value: Any = _NO_VALUE):
        self.parameter = parameter
        self.why = why
        self.value = value
        super().__init__(self.render(parameter))

    def render(self, name: str) -> str:
        if self.value is _NO_VALUE:
            return f"{name}: {self.why}"
        return f"{name} {self.value}: {self.why}"

    def __reduce__(self):  # picklable across worker processes
        args = (self.parameter, self.why) if self.value is _NO_VALUE else (self.parameter, self.why, self.value)
        return (type(self), args)


class SolverOptionError(ParameterError):
    """A solver option that does not exist or has a bad value (``solve("greedy", boundd=False)``)."""


class FrozenProblemError(GdoError):
    """A change to a SelectionProblem after it was solved (its results must stay reproducible)."""


__all__ = ["FrozenProblemError", "GdoError", "ParameterError", "SolverOptionError"]
