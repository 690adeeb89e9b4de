"""Library errors name parameters; the CLI names flags (one line, exit 2)."""

import pickle

import pytest

from gdo_opt.cli import main
from gdo_opt.errors import GdoError, ParameterError
from gdo_opt.subset.pipeline import SelectConfig


def test_parameter_error_names_the_parameter():
    error = ParameterError("mip_gap", "must be in [0, 1)", 2.0)
    assert isinstance(error, ValueError) and isinstance(error, GdoError)
    assert str(error) == "mip_gap 2.0: must be in [0, 1)"
    assert error.render("--mip-gap") == "--mip-gap 2.0: must be in [0, 1)"
    assert str(ParameterError("model", "required for: dependency")) == "model: required for: dependency"
    back = pickle.loads(pickle.dumps(error))
    assert (back.parameter, str(back)) == ("mip_gap", str(error))


@pytest.mark.parametrize("kwargs, parameter", [
    ({"mip_gap": 1.0}, "mip_gap"), ({"mip_gap": -0.1}, "mip_gap"), ({"time_limit": 0}, "time_limit"),
    ({"baseline_multiplier": -1}, "baseline_multiplier"), ({"solver": "simplex"}, "solver"),
    ({"frames_as": "gif"}, "frames_as"), ({"target_count": 0}, "target_count"),
])
def test_select_config_validates_in_the_library(kwargs, parameter):
    with pytest.raises(ParameterError) as info:
        SelectConfig(**kwargs)
    assert info.value.parameter == parameter and "--" not in str(info.value)


def test_cli_renders_flags(tmp_path, capsys):
    code = main(["select", "--candidates", str(tmp_path / "none.parquet"), "--preset", "temp", "--mip-gap", "2", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert err == "gdo-opt select: error: --mip-gap 2.0: must be in [0, 1)"
