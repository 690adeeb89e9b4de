"""Descriptor stage: one module per descriptor, a registry, the sharded runner.

The registry is lazy: importing this package is cheap (``gdo-opt extract --help`` must not load
pandas or torch). The first access to ``REGISTRY`` (or ``registry()``) imports ``KNOWN_MODULES``,
whose classes add themselves with ``@register``; a descriptor of your own is one more module that
uses ``@register`` (import it before the run, or add it to ``KNOWN_MODULES``). ``ost`` may be absent
from a checkout; it is the only module whose absence is tolerated.
"""

from __future__ import annotations

import importlib
from typing import Any

KNOWN_MODULES = ("motion", "dependency", "temporal", "stability", "coverage")
OPTIONAL_MODULES = ("ost",)
# What `gdo-opt extract` computes when --descriptors is not given (ost needs a target set).
DEFAULT_DESCRIPTORS = ("motion", "dependency", "difficulty", "temporal", "stability", "coverage")

# names served lazily from gdo_opt.descriptors.base
_BASE_NAMES = ("Descriptor", "ExtractContext", "ModeDescriptor", "register")
_loaded = False


def registry() -> dict[str, Any]:
    """Descriptor name -> class, with every known descriptor module imported (once)."""
    global _loaded
    from gdo_opt.descriptors.base import REGISTRY

    if not _loaded:
        for name in KNOWN_MODULES:
            importlib.import_module(f"gdo_opt.descriptors.{name}")
        for name in OPTIONAL_MODULES:
            try:
                importlib.import_module(f"gdo_opt.descriptors.{name}")
            except ModuleNotFoundError as error:
                if error.name != f"gdo_opt.descriptors.{name}":
                    raise
        _loaded = True
    return REGISTRY


def __getattr__(name: str) -> Any:
    if name == "REGISTRY":
        return registry()
    if name in _BASE_NAMES:
        from gdo_opt.descriptors import base

        return getattr(base, name)
    raise AttributeError(f"module 'gdo_opt.descriptors' has no attribute {name!r}")


__all__ = ["DEFAULT_DESCRIPTORS", "KNOWN_MODULES", "REGISTRY", "Descriptor", "ExtractContext", "ModeDescriptor",
           "register", "registry"]
