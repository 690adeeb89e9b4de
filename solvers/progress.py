"""A status line per solver phase on stderr: what a long solve is doing, while it does it.

Backends call ``options.report(event=..., **fields)``; ``SolveOptions.progress`` is any callable
taking that dict (None: silent). ``StderrProgress`` prints one line per event, e.g.

    [   3.2 s] auto · pricing round 2 · core 25,310 · LP bound 12345.6789 · +812 columns
    [   9.8 s] auto · mip 0 · 31,004 columns · incumbent 12345.1 · gap 4.1e-05

The CLI uses it unless ``--no-progress``; tests pass a list's ``append`` to collect the events.
"""

from __future__ import annotations

import math
import sys
import time


def _fmt(value) -> str:
    if isinstance(value, float):
        if not math.isfinite(value):
            return "–"
        return f"{value:.6g}" if abs(value) < 1e6 else f"{value:.10g}"
    if isinstance(value, (int,)) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


# event -> the fields shown, in order, with their labels
_FIELDS = {
    "pricing": (("round", "round"), ("core", "core"), ("rows", "rows"), ("lp", "core LP"), ("bound", "pool bound"),
                ("positive", "priced positive"), ("added", "+columns")),
    "mip": (("attempt", "attempt"), ("columns", "columns"), ("status", ""), ("objective", "incumbent")),
}


class StderrProgress:
    """One line per event on ``stream`` (stderr by default), with the time since it was created."""

    def __init__(self, prefix: str = "", stream=None) -> None:
        self.prefix = prefix
        self.stream = stream
        self.start = time.perf_counter()

    def __call__(self, event: dict) -> None:
        stream = self.stream or sys.stderr
        name = str(event.get("event", "?"))
        parts = [f"[{time.perf_counter() - self.start:7.1f} s]"]
        if self.prefix:
            parts.append(self.prefix)
        if event.get("solver"):
            parts.append(str(event["solver"]))
        parts.append(name)
        shown = {"event", "solver"}
        for key, label in _FIELDS.get(name, ()):
            if key in event:
                parts.append(f"{label} {_fmt(event[key])}".strip())
                shown.add(key)
        for key, value in event.items():
            if key not in shown and key not in ("seconds", "elapsed"):
                parts.append(f"{key.replace('_', ' ')} {_fmt(value)}")
        print(" · ".join(parts), file=stream, flush=True)
