"""Descriptor stage: one module per descriptor, a registry, the sharded runner.

Importing this package fills ``REGISTRY`` from ``KNOWN_MODULES``. ``ost`` is written separately and
may be absent from a checkout; it is the only module whose absence is tolerated.
"""

from __future__ import annotations

import importlib

from gdo_opt.descriptors.base import REGISTRY, Descriptor, ExtractContext, register

KNOWN_MODULES = ("motion", "dependency", "temporal", "stability", "coverage")
OPTIONAL_MODULES = ("ost",)
# What `gdo-opt extract` computes when --descriptors is not given (ost needs a target set).
DEFAULT_DESCRIPTORS = ("motion", "dependency", "difficulty", "temporal", "stability", "coverage")

for _name in KNOWN_MODULES:
    importlib.import_module(f"gdo_opt.descriptors.{_name}")
for _name in OPTIONAL_MODULES:
    try:
        importlib.import_module(f"gdo_opt.descriptors.{_name}")
    except ModuleNotFoundError as _error:
        if _error.name != f"gdo_opt.descriptors.{_name}":
            raise

__all__ = ["DEFAULT_DESCRIPTORS", "REGISTRY", "Descriptor", "ExtractContext", "register"]
