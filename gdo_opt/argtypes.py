"""Shared argparse types: a nonsensical option value is an argument error before any work starts.

Why here: ``--frames-fps 0`` once put every clip in ``3min+`` and ``--stability-k 0`` made every row an
error with exit 0. Every command uses these types, so one rule ("a count is >= 1", "a seed is a
non-negative 32-bit integer") holds everywhere and the message is the same one line.
"""

from __future__ import annotations

import argparse
import math
import re

SEED_MAX = 2**32 - 1  # numpy / torch / HiGHS all accept 32-bit unsigned seeds
_DEVICE = re.compile(r"^(auto|cpu|cuda|cuda:\d+|mps)$")


def _number(text: str, kind: type) -> int | float:
    try:
        value = kind(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r}: must be a finite number")
    return value


def positive_int(text: str) -> int:
    """A count that must be at least 1 (frames, samples, batch sizes, chunk sizes)."""
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: must be >= 1")
    return value


def nonneg_int(text: str) -> int:
    """A count where 0 means "none" or "off" (workers, baseline multiplier, top-k)."""
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value}: must be >= 0")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (frame rates, time limits, step sizes)."""
    value = _number(text, float)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value:g}: must be > 0")
    return value


def nonneg_float(text: str) -> float:
    value = _number(text, float)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value:g}: must be >= 0")
    return value


def unit_float(text: str) -> float:
    """A probability-like value in (0, 1] (top-p)."""
    value = _number(text, float)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{value:g}: must be in (0, 1]")
    return value


def seed(text: str) -> int:
    """A random seed: an integer in [0, 2**32 - 1]."""
    value = _number(text, int)
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"{value}: a seed must be in [0, {SEED_MAX}]")
    return value


def device(text: str) -> str:
    """auto, cpu, cuda, cuda:N or mps (whether it exists is checked when the model loads)."""
    if not _DEVICE.match(text):
        raise argparse.ArgumentTypeError(f"{text!r}: expected auto, cpu, cuda, cuda:N or mps")
    return text
