"""Quiet by default: other libraries' deprecation warnings and progress bars stay off the console.

transformers prints a FutureWarning per forward pass and Hugging Face draws its own bars for
writing and loading weights; around our own progress lines they are noise. Every command runs
quiet unless ``--verbose``. Environment variables carry the setting into worker processes
(extract's workers, torchrun ranks), and libraries already imported are told directly.
"""

from __future__ import annotations

import os
import sys
import warnings

QUIET_ENV = {
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",  # huggingface_hub and transformers bars (weights, shards)
    "TRANSFORMERS_VERBOSITY": "error",  # transformers' logger: deprecation notices are warnings
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
}
QUIET_WARNINGS = ("ignore::FutureWarning", "ignore::DeprecationWarning")


def quiet_libraries(verbose: bool = False) -> None:
    """Silence foreign warnings and progress bars (no-op with ``verbose``); never imports them."""
    if verbose:
        return
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    current = [w for w in os.environ.get("PYTHONWARNINGS", "").split(",") if w]
    os.environ["PYTHONWARNINGS"] = ",".join(current + [w for w in QUIET_WARNINGS if w not in current])
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    if "transformers" in sys.modules:  # imported before us (tests, notebooks): tell it directly
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    if "huggingface_hub" in sys.modules:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
