"""gdo_tiny: 8 four-way colour MCQs; each image is a solid colour drawn from the doc (no media files)."""

import re

from PIL import Image

LETTERS = "ABCD"


def doc_to_visual(doc):
    return [Image.new("RGB", (32, 32), tuple(doc["rgb"]))]


def doc_to_text(doc, lmms_eval_specific_kwargs=None):
    options = " ".join(f"{letter}. {option}" for letter, option in zip(LETTERS, doc["options"]))
    return f"What color is the image? {options}\nAnswer with the option's letter."


def _letter(text):
    match = re.search(r"\b([ABCD])\b", text.strip().upper())
    return match.group(1) if match else ""


def process_results(doc, results):
    return {"accuracy": float(_letter(results[0]) == doc["answer"])}
