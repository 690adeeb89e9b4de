"""The descriptor plug-in contract (docs/CONTRACTS.md): a named class that fills raw columns.

The runner calls ``setup`` once per process, then for every chunk ``prefetch`` (optional: start
CPU work so it overlaps the model) and ``compute``. Model descriptors share forward passes through
``ctx.engine`` (gdo_opt.descriptors.engine), which memoizes one set of passes per chunk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from gdo_opt.errors import GdoError, ParameterError


@dataclass
class ExtractContext:
    """What descriptors share in one process: the model, its processor, device, dtype and CLI options."""

    model: Any = None
    processor: Any = None
    device: str = "cpu"
    dtype: Any = None
    options: dict[str, Any] = field(default_factory=dict)
    engine: Any = None  # gdo_opt.descriptors.engine.ModelEngine when a model is loaded
    pool: Any = None  # concurrent.futures executor for CPU work (motion)
    rank: int = 0
    world_size: int = 1
    # Per-candidate errors of the current chunk: qa_uid -> list of "descriptor: message".
    errors: dict[str, list[str]] = field(default_factory=dict)

    def add_error(self, qa_uid: str, where: str, message: str) -> None:
        self.errors.setdefault(qa_uid, []).append(f"{where}: {' '.join(str(message).split())}"[:300])


class Descriptor:
    """Base class: subclasses set ``name``, ``columns``, ``needs_model`` and implement ``compute``."""

    name: str = ""
    columns: tuple[str, ...] = ()
    needs_model: bool = False
    # Model passes this descriptor reads (see ModelEngine.PASSES); the engine runs their union once.
    passes: tuple[str, ...] = ()

    def passes_for(self, options: dict) -> tuple[str, ...]:
        """Model passes needed under ``options`` (default: the class's ``passes``)."""
        return self.passes

    def requires_model(self, options: dict) -> bool:
        return self.needs_model

    def setup(self, ctx: ExtractContext) -> None:
        """Load what the descriptor needs once per process (default: nothing)."""

    def prefetch(self, batch: pd.DataFrame, ctx: ExtractContext) -> None:
        """Start background work for ``batch`` before the model runs (default: nothing)."""

    def compute(self, batch: pd.DataFrame, ctx: ExtractContext) -> dict[str, np.ndarray]:
        raise NotImplementedError


class ModeDescriptor(Descriptor):
    """A descriptor with variants chosen by ``options[mode_option]`` (first of ``modes`` by default).

    ``mode`` validates the option; the runner asks ``requires_model`` (true for ``model_modes``) and
    ``passes_for`` (``mode_passes``), so a model-free variant needs no ``--model``."""

    mode_option: str = ""  # options key, e.g. "coverage_mode" (CLI flag --coverage-mode)
    modes: tuple[str, ...] = ("model",)  # accepted values
    model_modes: tuple[str, ...] = ("model",)  # the variants that read the model
    mode_passes: dict[str, tuple[str, ...]] = {}

    @classmethod
    def mode(cls, options: dict) -> str:
        mode = str(options.get(cls.mode_option, cls.modes[0]))
        if mode not in cls.modes:
            raise ParameterError(cls.mode_option, f"expected {', '.join(cls.modes)}", mode)
        return mode

    def requires_model(self, options: dict) -> bool:
        return self.mode(options) in self.model_modes

    def passes_for(self, options: dict) -> tuple[str, ...]:
        return self.mode_passes.get(self.mode(options), ())


REGISTRY: dict[str, type[Descriptor]] = {}


def register(cls: type[Descriptor]) -> type[Descriptor]:
    """Class decorator: add ``cls`` to REGISTRY under ``cls.name``."""
    if not cls.name:
        raise GdoError(f"descriptor class {cls.__name__} has no name")
    REGISTRY[cls.name] = cls
    return cls


def nan_column(n: int) -> np.ndarray:
    return np.full(n, np.nan, dtype=np.float64)
