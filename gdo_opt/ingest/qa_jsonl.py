"""The one reader of small question/answer JSONL files: benchmark exclude lists (decontamination)
and OST target sets. Big pool files go through the streaming block reader instead.

A row is either a chat row (``messages`` or ``conversations``; roles from ``role``/``from``, text
from ``content``/``value``) or a flat row (``question``|``prompt``|``query`` and
``answer``|``response``|``output``|``label``). Chat rows give every user -> assistant turn with the
same role set and the same pairing as the pool (system messages dropped, then a user message
followed by an assistant message). Small files, so a plain loop is fine here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gdo_opt.errors import GdoError
from gdo_opt.ingest.schema import ASSISTANT_ROLES, SYSTEM_ROLES, USER_ROLES

QUESTION_KEYS = ("question", "prompt", "query")
ANSWER_KEYS = ("answer", "response", "output", "label")


@dataclass(frozen=True)
class QAPair:
    question: str
    answer: str | None  # None: a flat row without an answer (question-only exclude entries)
    line: int


def message_text(content: Any) -> str:
    """Text of a message content: a string as is; a list of typed parts (OpenAI / ms-swift style)
    as its text parts joined by spaces; anything else as its string form."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) if isinstance(p, dict) else str(p) for p in content
                        if not isinstance(p, dict) or "text" in p)
    return str(content)


def _role(message: dict) -> str:
    return str(message.get("role", message.get("from", "")) or "").strip().lower()


def _chat_pairs(messages: list, line: int) -> Iterator[QAPair]:
    turns = [m for m in messages if isinstance(m, dict) and _role(m) not in SYSTEM_ROLES]
    for first, second in zip(turns, turns[1:]):
        if _role(first) in USER_ROLES and _role(second) in ASSISTANT_ROLES:
            yield QAPair(message_text(first.get("content", first.get("value"))),
                         message_text(second.get("content", second.get("value"))), line)


def read_qa_jsonl(path: str | os.PathLike, what: str = "QA file", need_answer: bool = False) -> list[QAPair]:
    """Every question/answer pair of ``path`` in file order; errors name ``path:line``.

    ``what`` names the file's role in messages ("exclude file", "OST target set").
    ``need_answer``: a flat row without an answer is an error instead of a question-only pair.
    """
    p = Path(path)
    if not p.exists():
        raise GdoError(f"{path}: no such file ({what})")
    if not p.is_file():
        raise GdoError(f"{path}: not a file ({what})")
    pairs: list[QAPair] = []
    with open(p, "rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as error:
                raise GdoError(f"{path}:{line_no}: invalid JSON in the {what} ({error})") from None
            if not isinstance(obj, dict):
                raise GdoError(f"{path}:{line_no}: {what} line is not a JSON object")
            messages = obj.get("messages") or obj.get("conversations")
            if isinstance(messages, list):
                pairs.extend(_chat_pairs(messages, line_no))
                continue
            q = next((obj[k] for k in QUESTION_KEYS if obj.get(k) is not None), None)
            if q is None:
                raise GdoError(f"{path}:{line_no}: {what} row has no {'/'.join(QUESTION_KEYS)} or messages")
            a = next((obj[k] for k in ANSWER_KEYS if obj.get(k) is not None), None)
            if a is None and need_answer:
                raise GdoError(f"{path}:{line_no}: {what} row has a question but no {'/'.join(ANSWER_KEYS)}")
            pairs.append(QAPair(message_text(q), None if a is None else message_text(a), line_no))
    return pairs
