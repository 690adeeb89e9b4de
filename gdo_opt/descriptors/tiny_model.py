"""A tiny, randomly initialised Qwen3-VL model written entirely offline (no downloads).

Every model test and the CPU benchmark load it, so the descriptor stage exercises the real
``transformers`` Qwen3-VL code path (vision tower, deepstack, M-RoPE, processor, chat template)
without a checkpoint. The tokenizer is a byte-level BPE with no merges (one token per byte, so it is
built in code, deterministic and covers any text) plus the Qwen special tokens.
"""

from __future__ import annotations

import os
from pathlib import Path

from gdo_opt.errors import GdoError

SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]

# Qwen-style chat template: media items become <|vision_start|><|image_pad|><|vision_end|>.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif item['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Vision geometry: 8-px patches merged 2x2 -> one LLM token per 16x16 pixels; images are resized to at
# most 64x64 pixels (16 tokens), so an 8-frame clip costs 128 tokens.
PATCH = 8
MERGE = 2
MAX_PIXELS = 64 * 64
MIN_PIXELS = 16 * 16


def build_tokenizer():
    """Byte-level BPE without merges + Qwen special tokens, as a ``PreTrainedTokenizerFast``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {symbol: index for index, symbol in enumerate(alphabet)}
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    core.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=SPECIAL_TOKENS[1:],
        clean_up_tokenization_spaces=False,
    )
    tokenizer.add_special_tokens({"additional_special_tokens": SPECIAL_TOKENS[1:]})
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.padding_side = "left"
    return tokenizer


def build_config(tokenizer, vocab_size: int):
    """Qwen3-VL config with tiny sizes; ids of the special tokens come from the tokenizer."""
    from transformers import Qwen3VLConfig

    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in SPECIAL_TOKENS}
    text = {
        "vocab_size": vocab_size,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "max_position_embeddings": 4096,
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": 10000.0,
            "mrope_section": [4, 2, 2],  # sums to head_dim / 2
            "mrope_interleaved": True,
        },
        "pad_token_id": ids["<|endoftext|>"],
        "bos_token_id": ids["<|im_start|>"],
        "eos_token_id": ids["<|im_end|>"],
    }
    vision = {
        "depth": 2,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_heads": 2,
        "patch_size": PATCH,
        "spatial_merge_size": MERGE,
        "temporal_patch_size": 2,
        "out_hidden_size": 64,
        "num_position_embeddings": 64,  # 8x8 learned grid, interpolated to the image grid
        "deepstack_visual_indexes": [0],
    }
    return Qwen3VLConfig(
        text_config=text,
        vision_config=vision,
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )


def build_image_processor(max_pixels: int = MAX_PIXELS):
    """The Qwen2-VL PIL image processor Qwen3-VL uses (no torchvision needed).

    ``max_pixels`` caps the resized image area: 32 * 32 gives 16 patches = 4 LLM tokens per image,
    which is what keeps the demo's model stage within its minute on 2 CPU cores.

    ``Qwen3VLProcessor`` itself cannot be built without torchvision (its video processor needs it),
    so the folder holds the tokenizer + image processor and ``gdo_opt.descriptors.model`` expands
    the image placeholders itself, exactly as the processor would.
    """
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    return Qwen2VLImageProcessorPil(
        patch_size=PATCH,
        merge_size=MERGE,
        temporal_patch_size=2,
        size={"shortest_edge": min(MIN_PIXELS, max_pixels), "longest_edge": max_pixels},
    )


def make_tiny_model(out_dir: str | os.PathLike, seed: int = 0, max_pixels: int = MAX_PIXELS) -> Path:
    """Write the tiny model + processor + tokenizer to ``out_dir``; same seed -> same weights.

    ``max_pixels`` only changes the image processor (how small images are resized), not the weights."""
    import torch
    from transformers import Qwen3VLForConditionalGeneration

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise GdoError(f"{out}: exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    vocab_size = ((len(tokenizer) + 63) // 64) * 64
    config = build_config(tokenizer, vocab_size)
    torch.manual_seed(seed)
    model = Qwen3VLForConditionalGeneration(config).eval()
    model.generation_config.pad_token_id = config.text_config.pad_token_id
    model.generation_config.eos_token_id = config.text_config.eos_token_id
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    if max_pixels < (PATCH * MERGE) ** 2:
        raise GdoError(f"max_pixels {max_pixels}: must be >= {(PATCH * MERGE) ** 2} (one merged patch)")
    build_image_processor(max_pixels).save_pretrained(out)
    return out
