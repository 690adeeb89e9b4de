"""Which torch device the descriptor stage runs on, checked before a model is loaded.

Why: ``extract --device cuda:0`` on a CPU-only machine used to end in a CUDA traceback from deep
inside torch. Here the request is checked against what torch can see and refused in one line.
"""

from __future__ import annotations

from gdo_opt.errors import GdoError


def resolve_device(requested: str | None, local_rank: int = 0) -> str:
    """``auto`` -> ``cuda:LOCAL_RANK`` when CUDA is available, else ``cpu``; explicit devices are checked."""
    import torch

    name = (requested or "auto").strip().lower()
    if name == "auto":
        return f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return "cpu"
    if name == "mps":
        backend = getattr(torch.backends, "mps", None)
        if backend is None or not backend.is_available():
            raise GdoError("--device mps: Apple MPS is not available on this machine (use --device cpu or auto)")
        return "mps"
    if name == "cuda" or name.startswith("cuda:"):
        index_text = name.partition(":")[2] or str(local_rank)
        if not index_text.isdigit():
            raise GdoError(f"--device {requested}: expected cuda:N with N a GPU index")
        if not torch.cuda.is_available():
            why = "torch was built without CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise GdoError(f"--device {requested}: CUDA is not available on this machine ({why}); "
                           "use --device cpu or auto")
        count = torch.cuda.device_count()
        if int(index_text) >= count:
            raise GdoError(f"--device {requested}: only {count} CUDA device(s) visible (cuda:0..cuda:{count - 1})")
        return f"cuda:{int(index_text)}"
    raise GdoError(f"--device {requested}: expected auto, cpu, cuda, cuda:N or mps")
