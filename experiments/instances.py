"""The instance generators live in ``gdo_opt.testing.instances`` (tests and benchmarks share them)."""

from gdo_opt.testing.instances import *  # noqa: F403
from gdo_opt.testing.instances import (  # noqa: F401
    PRESETS,
    Instance,
    make_instance,
    random_small_instance,
    random_small_problem,
)
