"""The offline tiny Qwen3-VL model: loadable with transformers, deterministic, real architecture."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from gdo_opt.cli import main  # noqa: E402
from gdo_opt.descriptors.model import load_model  # noqa: E402


def test_make_tiny_model_cli_loads_and_is_deterministic(tmp_path):
    assert main(["make-tiny-model", str(tmp_path / "a")]) == 0
    assert main(["make-tiny-model", str(tmp_path / "b")]) == 0
    model_a, proc = load_model(tmp_path / "a")
    model_b, _ = load_model(tmp_path / "b")
    assert type(model_a).__name__ == "Qwen3VLForConditionalGeneration"
    for (name, a), (_, b) in zip(model_a.state_dict().items(), model_b.state_dict().items()):
        assert torch.equal(a, b), name
    # The chat template and the special tokens are the Qwen ones.
    ids = proc.prompt_ids("What moves?", np.array([[1, 4, 4]]))
    assert ids.count(proc.image_token_id) == 4  # 4x4 patches merged 2x2
    assert proc.tokenizer.convert_ids_to_tokens(ids[0]) == "<|im_start|>"
    assert proc.temporal_id != proc.static_id
    # A real forward pass with an image.
    from PIL import Image

    enc = proc.image_processor(images=[Image.new("RGB", (40, 56), (200, 10, 10))], return_tensors="pt")
    ids = torch.tensor([proc.prompt_ids("color?", enc["image_grid_thw"].numpy())])
    out = model_a(input_ids=ids, pixel_values=enc["pixel_values"], image_grid_thw=enc["image_grid_thw"],
                  mm_token_type_ids=(ids == proc.image_token_id).long())
    assert out.logits.shape[:2] == ids.shape and torch.isfinite(out.logits).all()


def test_load_model_rejects_non_model_folder(tmp_path):
    from gdo_opt.errors import GdoError

    with pytest.raises(GdoError, match="not a model folder"):
        load_model(tmp_path)
