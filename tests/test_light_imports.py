"""`import gdo_opt`, `gdo-opt --help` and every subcommand's `--help` stay light: none of the heavy
libraries is imported until a command runs (each check in a fresh interpreter)."""

import json
import subprocess
import sys

import pytest

from gdo_opt.cli import COMMANDS

HEAVY = ("pandas", "scipy", "torch", "highspy", "ortools", "pyarrow", "transformers", "cvxpy")

PROBE = """
import contextlib, io, json, sys
argv = json.loads(sys.argv[1])
if argv is None:
    import gdo_opt
else:
    from gdo_opt.cli import main
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
        main(argv)
print(json.dumps(sorted(m for m in {heavy} if m in sys.modules)))
""".replace("{heavy}", repr(HEAVY))


def _heavy_after(argv) -> list[str]:
    out = subprocess.run([sys.executable, "-c", PROBE, json.dumps(argv)], capture_output=True, text=True,
                         check=True, timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("argv", [None, ["--help"], *[[name, "--help"] for name in COMMANDS]],
                         ids=lambda a: "import gdo_opt" if a is None else " ".join(a))
def test_light(argv):
    assert _heavy_after(argv) == []


def test_probe_sees_heavy_imports():
    """The probe itself works: running a module that needs pandas shows pandas."""
    out = subprocess.run([sys.executable, "-c", "import sys, gdo_opt.goal.constraints; "
                          "print('pandas' in sys.modules)"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def test_lazy_public_names():
    import gdo_opt

    assert gdo_opt.SelectionProblem.__name__ == "SelectionProblem"
    assert issubclass(gdo_opt.GdoError, ValueError) and issubclass(gdo_opt.ParameterError, gdo_opt.GdoError)
    with pytest.raises(AttributeError):
        gdo_opt.no_such_name  # noqa: B018


def test_metrics_reader_is_light():
    """`select` forks the metrics parse before it imports anything heavy: the module that starts it
    must not import pandas, numpy or pyarrow itself."""
    code = ("import sys, json; import gdo_opt.goal.metrics_read; "
            "print(json.dumps(sorted(m for m in ('pandas', 'numpy', 'pyarrow', 'scipy') if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
