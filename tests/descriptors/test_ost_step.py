"""OST as the method describes it (gdo_opt.descriptors.ost_step): one simulated optimizer step on the whole
tiny Qwen3-VL proxy (or its LoRA adapters) with the candidate's media, against a validation set read
from an ingestable file (another demo pool, media included)."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from gdo_opt.descriptors.ost_step import StepScorer, read_validation  # noqa: E402
from gdo_opt.descriptors.settings import resolve  # noqa: E402

LR = 1e-2


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from gdo_opt.descriptors.model import load_model
    from gdo_opt.descriptors.tiny_model import make_tiny_model
    from gdo_opt.ingest.demo_pool import make_demo_pool
    from gdo_opt.ingest.pool import ingest

    root = tmp_path_factory.mktemp("ost_step")
    pool = make_demo_pool(root / "pool", seed=0, n_images=3, n_videos=3)
    cands = ingest(onevision=[pool.onevision], video=[pool.video], out_dir=root / "cand", progress=False).to_pandas()
    target = make_demo_pool(root / "target", seed=1, n_images=3, n_videos=3)
    val, dropped = read_validation(str(target.video), cands["question"].tolist())
    model, proc = load_model(make_tiny_model(root / "model"))
    opts = {**resolve({}), "frames": 4}
    kinds = cands["media_kind"]
    rows = cands.loc[[kinds[kinds == "image"].index[0], kinds[kinds == "frames"].index[0]]].to_dict("records")
    return {"model": model, "proc": proc, "val": val[:3], "dropped": dropped, "rows": rows, "opts": opts,
            "cands": cands}


def _sgd_utility(model, scorer, row, params):
    """Utility by hand: a model copy, one torch.optim.SGD step on ``params`` (names), val loss before/after."""
    model = copy.deepcopy(model)
    named = dict(model.named_parameters())
    chosen = [named[n] for n in params]
    for p in model.parameters():
        p.requires_grad_(False)
    for p in chosen:
        p.requires_grad_(True)
    opt = torch.optim.SGD(chosen, lr=LR)
    with torch.no_grad():
        before = np.mean([float(model(**v).loss) for v in scorer.val])
    x = scorer.inputs(row)
    assert "pixel_values" in x and int(x["mm_token_type_ids"].sum()) > 0  # the sample's media is fed
    model(**x).loss.backward()
    opt.step()
    with torch.no_grad():
        after = np.mean([float(model(**v).loss) for v in scorer.val])
    return before - after


def test_validation_from_an_ingestable_file_keeps_media(world):
    val = world["val"]
    assert len(val) == 3 and all(len(v["media"]) > 0 for v in val)
    assert {v["media_kind"] for v in val} == {"frames"}


def test_exact_step_on_the_whole_proxy_equals_a_manual_sgd_step(world):
    scorer = StepScorer(world["model"], world["proc"], world["val"], world["opts"], params="all", lr=LR)
    assert scorer.n_params == sum(p.numel() for p in world["model"].parameters())
    assert all("pixel_values" in v for v in scorer.val)
    got = scorer.exact(world["rows"])
    for value, row in zip(got, world["rows"]):
        want = _sgd_utility(world["model"], scorer, row, scorer.names)
        assert value == pytest.approx(want, rel=1e-4, abs=1e-7)
    assert np.all(got != 0)
    # First order = η ∇L_val · ∇L_x (the scalable variant), by hand with autograd.
    first = scorer.first_order(world["rows"])
    model = copy.deepcopy(world["model"])
    params = list(model.parameters())
    g_val = torch.autograd.grad(torch.stack([model(**v).loss for v in scorer.val]).mean(), params)
    for value, row in zip(first, world["rows"]):
        g_x = torch.autograd.grad(model(**scorer.inputs(row)).loss, params, allow_unused=True)
        dot = sum(float((a * b).sum()) for a, b in zip(g_val, g_x) if a is not None and b is not None)
        assert value == pytest.approx(LR * dot, rel=1e-4, abs=1e-9)
    # The original model is untouched.
    assert scorer.exact(world["rows"][:1])[0] == pytest.approx(got[0], rel=1e-9)


def test_exact_step_on_lora_adapters_equals_a_manual_sgd_step(world):
    pytest.importorskip("peft")
    scorer = StepScorer(world["model"], world["proc"], world["val"], world["opts"], params="lora", lr=LR)
    assert all("lora_" in n for n in scorer.names) and 0 < scorer.n_params < 0.5 * sum(
        p.numel() for p in world["model"].parameters())
    assert not any("lora_" in n for n, _ in world["model"].named_parameters())  # wrapped a copy
    got = scorer.exact(world["rows"])
    for value, row in zip(got, world["rows"]):
        assert value == pytest.approx(_sgd_utility(scorer.model, scorer, row, scorer.names), rel=1e-4, abs=1e-8)


def test_bad_rows_are_recorded_not_fatal(world):
    scorer = StepScorer(world["model"], world["proc"], world["val"][:1], world["opts"], params="lm_head", lr=LR)
    rows = [world["rows"][0], {**world["rows"][1], "media": ["/nonexistent.png"], "media_kind": "frames"}]
    got = scorer.exact(rows)
    assert np.isfinite(got[0]) and np.isnan(got[1]) and "cannot read image" in scorer.errors[1]
    assert isinstance(pd.Series(got).sum(), float)
