"""gdo-opt: pick the training subset for multimodal instruction tuning by exact optimization."""

from gdo_opt.errors import GdoError
from gdo_opt.selection.problem import Selection, SelectionProblem, Violation

__version__ = "0.1.0"

__all__ = ["GdoError", "Selection", "SelectionProblem", "Violation", "__version__"]
