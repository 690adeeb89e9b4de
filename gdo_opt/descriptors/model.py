"""Model loading and prompt building: the processor, ``load_model`` and one candidate tokenized.

Frames are fed to the model as a list of images (the Qwen2-VL image processor, PIL backend): the
Qwen3-VL video processor needs torchvision, which the CPU environment lacks, and the image path is
deterministic across CPU and GPU. The batched passes live in ``engine.py``, the keyed sampler in
``sampling.py``, the one-at-a-time baseline in ``reference.py``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gdo_opt.descriptors.media import MediaError, load_frames
from gdo_opt.descriptors.settings import mode_options
from gdo_opt.errors import GdoError, ParameterError

PROBE_QUESTION = (
    "Does answering the question above require temporal information (order, motion or change across "
    "frames)? Answer with one word: Temporal or Static."
)
IMAGE_PAD = "<|image_pad|>"
_SENTINEL = "\u2402ANSWER\u2402"

# Published mode unless a caller says otherwise (gdo_opt.descriptors.settings).
DEFAULT_OPTIONS: dict[str, Any] = mode_options("published")


def resolve_dtype(name: str | None, device: str) -> torch.dtype:
    """``auto`` = bf16 on CUDA, float32 on CPU (so CPU results are exact enough to test)."""
    name = (name or "auto").lower()
    if name == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    table = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16,
             "float16": torch.float16, "fp32": torch.float32, "float32": torch.float32}
    if name not in table:
        raise ParameterError("dtype", "expected auto, bf16, fp16 or fp32", name)
    return table[name]


class VLProcessor:
    """Tokenizer + image processor + chat template of a Qwen2.5-VL / Qwen3-VL folder.

    Expands each ``<|image_pad|>`` to ``prod(grid_thw) / merge_size**2`` tokens, exactly as
    ``Qwen3VLProcessor`` / ``Qwen2_5_VLProcessor`` do, without needing their video processor.
    """

    def __init__(self, tokenizer, image_processor, chat_template: str | None):
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.chat_template = chat_template
        self.merge = int(getattr(image_processor, "merge_size", 2))
        self.image_token_id = tokenizer.convert_tokens_to_ids(IMAGE_PAD)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.eos_ids = self._eos_ids()
        self.temporal_id = self.encode("Temporal")[0]
        self.static_id = self.encode("Static")[0]
        self.turn_head, self.turn_tail = self._turn_pieces()
        probe = self._probe_suffix_text()
        self.probe_suffix = self.encode(probe)
        # After an answer span that already ends the turn (loss_span = turn), the probe starts later.
        tail = probe[len(self.turn_tail):] if probe.startswith(self.turn_tail) else probe
        self.probe_suffix_after_turn = self.encode(tail)

    def _eos_ids(self) -> list[int]:
        ids = {self.tokenizer.eos_token_id, self.tokenizer.convert_tokens_to_ids("<|im_end|>")}
        return sorted(i for i in ids if isinstance(i, int) and i >= 0)

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def render(self, messages: list[dict], generation_prompt: bool = True) -> str:
        return self.tokenizer.apply_chat_template(
            messages, chat_template=self.chat_template, tokenize=False, add_generation_prompt=generation_prompt
        )

    @staticmethod
    def user(question: str, n_images: int) -> dict:
        content = [{"type": "image"} for _ in range(n_images)] + [{"type": "text", "text": question}]
        return {"role": "user", "content": content}

    def _probe_suffix_text(self) -> str:
        """Text after the answer that closes the turn and asks the probe (from the chat template)."""
        messages = [
            self.user("Q", 0),
            {"role": "assistant", "content": [{"type": "text", "text": _SENTINEL}]},
            {"role": "user", "content": [{"type": "text", "text": PROBE_QUESTION}]},
        ]
        text = self.render(messages)
        if _SENTINEL not in text:
            raise GdoError("chat template drops the assistant turn; cannot build the temporal probe")
        return text.split(_SENTINEL, 1)[1]

    def _turn_pieces(self) -> tuple[str, str]:
        """Text the chat template puts before and after the answer in the assistant turn."""
        prompt = self.render([self.user("Q", 0)])
        full = self.render([self.user("Q", 0), {"role": "assistant", "content": [{"type": "text", "text": _SENTINEL}]}],
                           generation_prompt=False)
        if not full.startswith(prompt) or _SENTINEL not in full:
            raise GdoError("chat template re-renders the prompt once an answer follows; cannot find the answer span")
        head, tail = full[len(prompt):].split(_SENTINEL, 1)
        return head, tail

    def answer_spans(self, answers: list[str], span: str = "turn") -> list[list[int]]:
        """Token ids the loss covers. ``answer``: the answer alone. ``turn`` (published): everything the
        template adds after the generation prompt (answer + end-of-turn tokens), tokenized in context
        after the prompt, exactly as labels = full[len(prompt):] of the published code."""
        if span == "answer":
            return [list(ids) for ids in self.tokenizer(list(answers), add_special_tokens=False)["input_ids"]]
        stub = self.render([self.user("Q", 0)])
        stub_ids = self.encode(stub)
        texts = [stub + self.turn_head + a + self.turn_tail for a in answers]
        out = []
        for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]:
            if ids[: len(stub_ids)] != stub_ids:
                raise GdoError("tokenizer merges the generation prompt with the answer; cannot split the loss span")
            out.append(list(ids[len(stub_ids):]))
        return out

    def prompt_ids(self, question: str, grids: np.ndarray | None) -> list[int]:
        """Token ids of the user turn + generation prompt, image placeholders expanded."""
        n_images = 0 if grids is None else len(grids)
        text = self.render([self.user(question, n_images)])
        if n_images:
            parts = text.split(IMAGE_PAD)
            if len(parts) != n_images + 1:
                raise GdoError(f"chat template produced {len(parts) - 1} image placeholders for {n_images} images")
            counts = (np.prod(grids, axis=1) // (self.merge**2)).tolist()
            text = "".join(p + IMAGE_PAD * int(c) for p, c in zip(parts[:-1], counts)) + parts[-1]
        return self.encode(text)


def _chat_template(path: Path, tokenizer) -> str | None:
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.chat_template
    if (path / "chat_template.jinja").is_file():
        return (path / "chat_template.jinja").read_text(encoding="utf-8")
    if (path / "chat_template.json").is_file():
        return json.loads((path / "chat_template.json").read_text(encoding="utf-8")).get("chat_template")
    raise GdoError(f"{path}: no chat template (tokenizer_config.json, chat_template.jinja or .json)")


def load_model(path: str | os.PathLike, device: str = "cpu", dtype: str | torch.dtype | None = "auto"):
    """Load a local Qwen3-VL / Qwen2.5-VL folder -> (model in eval mode, VLProcessor). No downloads."""
    from transformers import AutoImageProcessor, AutoModelForImageTextToText, AutoTokenizer

    path = Path(path)
    if not (path / "config.json").is_file():
        raise GdoError(f"{path}: not a model folder (no config.json); try `gdo-opt make-tiny-model DIR`")
    torch_dtype = dtype if isinstance(dtype, torch.dtype) else resolve_dtype(dtype, device)
    try:
        model = AutoModelForImageTextToText.from_pretrained(
            path, local_files_only=True, dtype=torch_dtype, attn_implementation="sdpa"
        )
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        image_processor = AutoImageProcessor.from_pretrained(path, local_files_only=True, backend="pil")
    except (OSError, ValueError, KeyError) as error:
        raise GdoError(f"{path}: cannot load model: {str(error).splitlines()[0]}") from error
    model.to(device).eval()
    return model, VLProcessor(tokenizer, image_processor, _chat_template(path, tokenizer))


@dataclass
class Sample:
    """One candidate, tokenized: prompt with media, prompt without, answer, pixel patches."""

    uid: str
    prompt: list[int]
    blind: list[int]
    answer: list[int]
    pixels: torch.Tensor | None
    grids: torch.Tensor | None
    media_key: tuple | None = None  # identical for candidates that share their media (turns of a clip)
    question: str = ""
    temporal: list[int] | None = None  # the published temporal prompt, tokenized (temporal pass only)


def encode_media(media, kind: str, proc: VLProcessor, frames: int,
                 first_image: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode up to ``frames`` frames (or the image; ``first_image``: only the first of an image row's
    images) and run the image processor -> (pixels, grid_thw)."""
    from PIL import Image

    images = load_frames(media, str(kind), frames, first_image=first_image)
    encoded = proc.image_processor(images=[Image.fromarray(f) for f in images], return_tensors="pt")
    return encoded["pixel_values"], encoded["image_grid_thw"]


def prepare_sample(row: dict, proc: VLProcessor, options: dict, media: tuple | None = None,
                   answer_ids: list[int] | None = None) -> Sample:
    """Tokenize one candidate under ``options`` (frames, image_frames, loss_span; the question and answer
    are taken as given: the engine applies the text normalization). ``media`` = (pixels, grids)
    already encoded (else decoded here); ``answer_ids`` = the loss span already tokenized."""
    question, answer = str(row["question"]), str(row["answer"])
    if media is None:
        media = encode_media(row["media"], row["media_kind"], proc, int(options["frames"]),
                             options.get("image_frames") == "first")
    pixels, grids = media
    if answer_ids is None:
        answer_ids = proc.answer_spans([answer], str(options.get("loss_span", "turn")))[0]
    if not answer.strip() or not answer_ids:
        raise MediaError("empty answer")
    return Sample(
        uid=str(row.get("qa_uid", "")),
        question=question,
        prompt=proc.prompt_ids(question, grids.numpy()),
        blind=proc.prompt_ids(question, None),
        answer=answer_ids,
        pixels=pixels,
        grids=grids,
    )
