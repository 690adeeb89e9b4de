"""Which parameters OST differentiates (θ of the one step); everything else stays frozen."""

from __future__ import annotations

import re
from typing import Any

from gdo_opt.errors import GdoError

DEFAULT_PARAMS = "lm_head"


def select_params(model: Any, spec: str = DEFAULT_PARAMS) -> dict[str, Any]:
    """Names → tensors of the parameters OST differentiates; everything else stays frozen.

    ``lm_head`` (the default): the output projection — on the toy check it separates corrupted answers
    best (docs/ost.md); with tied embeddings it is the shared embedding matrix. ``last_layers:N``: the
    last N blocks of the language model's ``layers`` list plus its final norm. ``re:<regex>``:
    parameters whose name matches.
    """
    named = dict(model.named_parameters())
    spec = spec.strip()
    if spec.startswith("last_layers:"):
        try:
            n = int(spec.split(":", 1)[1])
        except ValueError:
            raise GdoError(f"ost_params: {spec!r}: expected last_layers:N with an integer N") from None
        if n < 1:
            raise GdoError(f"ost_params: {spec!r}: N must be >= 1")
        stacks: dict[str, set[int]] = {}
        for name in named:
            match = re.match(r"^(.*?)layers\.(\d+)\.", name)
            if match:
                stacks.setdefault(match.group(1), set()).add(int(match.group(2)))
        if not stacks:
            raise GdoError(f"ost_params: {spec!r}: the model has no '<prefix>layers.<i>.' parameters")
        # The language model's stack: prefer an explicit language_model prefix, then the deepest stack.
        prefix = max(stacks, key=lambda p: ("language_model" in p, len(stacks[p]), -len(p)))
        top = sorted(stacks[prefix])[-n:]
        keep = tuple(f"{prefix}layers.{i}." for i in top)
        chosen = [name for name in named if name.startswith(keep) or name == f"{prefix}norm.weight"]
    elif spec == "lm_head":
        head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
        chosen = [name for name, p in named.items() if head is not None and p is head.weight]
        chosen = chosen or [name for name in named if re.search(r"(^|\.)lm_head\.", name)]
    elif spec.startswith("re:"):
        try:
            pattern = re.compile(spec[3:])
        except re.error as error:
            raise GdoError(f"ost_params: {spec!r}: bad regex ({error})") from None
        chosen = [name for name in named if pattern.search(name)]
    else:
        raise GdoError(f"ost_params: {spec!r}: expected last_layers:N, lm_head or re:<regex>")
    if not chosen:
        raise GdoError(f"ost_params: {spec!r} selects no parameters")
    return {name: named[name].detach() for name in chosen}
