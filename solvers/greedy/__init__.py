"""Greedy selection with a certified gap: ``fill`` (phase 1), ``repair`` (phase 2), ``backend``."""

from .backend import GreedyBackend, GreedyOptions, guided_pass, run_greedy

__all__ = ["GreedyBackend", "GreedyOptions", "guided_pass", "run_greedy"]
