"""The "Writing your own backend" example in docs/solvers.md runs as written."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

from gdo_opt.solvers import unregister_backend

DOC = Path(__file__).resolve().parents[2] / "docs" / "solvers.md"


def test_writing_your_own_backend_example_runs():
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("### Writing your own backend"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    module = types.ModuleType("docs_example")  # dataclasses look their module up in sys.modules
    sys.modules["docs_example"] = module
    try:
        exec(compile(code, str(DOC), "exec"), module.__dict__)
    finally:
        unregister_backend("topk")
        sys.modules.pop("docs_example", None)
