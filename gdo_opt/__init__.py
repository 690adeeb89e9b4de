"""gdo-opt: pick the training subset for multimodal instruction tuning by exact optimization."""

from gdo_opt.errors import GdoError

__version__ = "0.1.0"

__all__ = ["GdoError", "__version__"]
