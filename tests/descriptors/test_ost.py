"""OST utility: the maths against hand-rolled references, and the acceptance check of issue 6 —
after a short clean warm-up, corrupted (shuffled-answer) samples get lower utility in both modes."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from scipy.stats import spearmanr  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from gdo_opt.descriptors.ost_data import decontaminate, load_validation  # noqa: E402
from gdo_opt.descriptors.ost_params import select_params  # noqa: E402
from gdo_opt.descriptors.ost_scorer import OstScorer  # noqa: E402
from gdo_opt.descriptors.ost_tokens import Encoded, encode_pairs  # noqa: E402
from gdo_opt.errors import GdoError  # noqa: E402
from gdo_opt.testing.ost_fixtures import toy_model, toy_pool, toy_targets, toy_tokenizer, warm_up  # noqa: E402

N_POOL = 96


@pytest.fixture(scope="module")
def toy():
    """A tiny Qwen3 LM warmed up on clean data (pool questions + target phrasing), a corrupted pool."""
    torch.manual_seed(0)
    tok = toy_tokenizer()
    questions, answers, bad, clean = toy_pool(N_POOL, corrupt=0.3, seed=0)
    targets = toy_targets(0)
    model = toy_model(tok, seed=0)
    warm = encode_pairs(tok, [q for q, _ in targets] + questions, [a for _, a in targets] + clean, 64)
    curve = warm_up(model, warm, steps=80, batch=32, lr=3e-3, seed=0, pad_id=tok.pad_token_id)
    assert curve[-1] < 0.5 * curve[0]
    val = encode_pairs(tok, [q for q, _ in targets], [a for _, a in targets], 64)
    pool = encode_pairs(tok, questions, answers, 64)
    scorer = OstScorer(model, val, lr=1e-3, proj_dim=512, pad_id=tok.pad_token_id, seed=0)
    return {"tok": tok, "model": model, "val": val, "pool": pool, "bad": bad, "scorer": scorer,
            "questions": questions, "answers": answers, "targets": targets}


def _loss(model, enc, i):
    ids = torch.from_numpy(enc.ids[i])[None]
    labels = ids.clone()
    labels[0, : enc.start[i]] = -100
    return model(input_ids=ids, labels=labels, use_cache=False).loss


def test_utility_ranks_clean_above_corrupted_in_both_modes(toy):
    scorer, bad = toy["scorer"], toy["bad"]
    assert scorer.projection == "gaussian" and scorer.proj_dim < scorer.n_params
    exact, mode_e = scorer.score(toy["pool"], "exact")
    first, mode_f = scorer.score(toy["pool"], "first_order")
    assert (mode_e, mode_f) == ("exact", "first_order")
    assert np.isfinite(exact).all() and np.isfinite(first).all()
    auc_exact = roc_auc_score(~bad, exact)
    auc_first = roc_auc_score(~bad, first)
    rho = spearmanr(exact, first)[0]
    print(f"AUC exact {auc_exact:.3f} first-order {auc_first:.3f} spearman {rho:.3f}")
    assert auc_exact >= 0.75 and auc_first >= 0.75
    assert rho > 0.5
    assert exact[bad].mean() < 0 < exact[~bad].mean()  # corrupted samples hurt the target set


def test_exact_equals_a_real_sgd_step(toy):
    """Utility of sample i = L_val before − after one torch.optim.SGD step on lm_head of a model copy."""
    scorer, pool, val = toy["scorer"], toy["pool"], toy["val"]
    idx = np.array([0, int(np.flatnonzero(toy["bad"])[0])])
    got = scorer.exact(Encoded([pool.ids[i] for i in idx], pool.start[idx]))
    for k, i in enumerate(idx):
        model = copy.deepcopy(toy["model"])
        for name, p in model.named_parameters():
            p.requires_grad_(name == "lm_head.weight")
        opt = torch.optim.SGD([model.lm_head.weight], lr=scorer.lr)
        with torch.no_grad():
            before = np.mean([_loss(model, val, j).item() for j in range(len(val))])
        _loss(model, pool, i).backward()
        opt.step()
        with torch.no_grad():
            after = np.mean([_loss(model, val, j).item() for j in range(len(val))])
        assert got[k] == pytest.approx(before - after, rel=1e-3, abs=1e-7)


def test_first_order_without_projection_is_the_gradient_dot_product(toy):
    full = OstScorer(toy["model"], toy["val"], lr=1e-3, proj_dim=0, pad_id=toy["tok"].pad_token_id)
    pool, val = toy["pool"], toy["val"]
    idx = np.arange(3)
    got = full.first_order(Encoded([pool.ids[i] for i in idx], pool.start[idx]))
    model = copy.deepcopy(toy["model"])
    weight = model.lm_head.weight
    g_val = torch.autograd.grad(torch.stack([_loss(model, val, j) for j in range(len(val))]).mean(), weight)[0]
    for i in idx:
        g_x = torch.autograd.grad(_loss(model, pool, i), weight)[0]
        assert got[i] == pytest.approx(1e-3 * float((g_val * g_x).sum()), rel=1e-3, abs=1e-9)


def test_sketch_projection_agrees_and_scores_are_chunk_invariant(toy):
    sketch = OstScorer(toy["model"], toy["val"], lr=1e-3, proj_dim=512, projection="sketch",
                           pad_id=toy["tok"].pad_token_id, chunk_size=5)
    first = toy["scorer"].first_order(toy["pool"])
    approx = sketch.first_order(toy["pool"])
    assert spearmanr(first, approx)[0] > 0.8
    assert roc_auc_score(~toy["bad"], approx) >= 0.75
    # a candidate's score does not depend on its neighbours in the chunk
    pool, idx = toy["pool"], np.arange(7, 19)
    part = sketch.first_order(Encoded([pool.ids[i] for i in idx], pool.start[idx]))
    np.testing.assert_allclose(part, approx[idx], rtol=1e-4, atol=1e-9)
    # same seed, same numbers
    again = OstScorer(toy["model"], toy["val"], lr=1e-3, proj_dim=512, projection="sketch",
                          pad_id=toy["tok"].pad_token_id)
    np.testing.assert_allclose(again.first_order(Encoded(pool.ids[:4], pool.start[:4])), approx[:4], rtol=1e-5)


def test_parameter_subsets(toy):
    model = toy["model"]
    assert list(select_params(model, "lm_head")) == ["lm_head.weight"]
    last = select_params(model, "last_layers:1")
    assert all(n.startswith("model.layers.1.") or n == "model.norm.weight" for n in last)
    assert "model.norm.weight" in last and len(select_params(model, "last_layers:2")) > len(last)
    assert list(select_params(model, r"re:layers\.0\.mlp\.down")) == ["model.layers.0.mlp.down_proj.weight"]
    for bad in ("last_layers:x", "last_layers:0", "re:nothing_matches", "everything"):
        with pytest.raises(GdoError):
            select_params(model, bad)


def test_validation_loading_and_decontamination(tmp_path):
    path = tmp_path / "val.jsonl"
    rows = [
        {"question": "What color is the apple ?", "answer": "red"},
        {"messages": [{"role": "user", "content": "<image>Where is it?"}, {"role": "assistant", "content": "farm"},
                      {"role": "user", "content": [{"type": "text", "text": "And now?"}]},
                      {"role": "assistant", "content": "city"}]},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    pairs = load_validation(path)
    assert pairs == [("What color is the apple ?", "red"), ("Where is it?", "farm"), ("And now?", "city")]
    kept, dropped = decontaminate(pairs, ["what  COLOR is the apple?", "unrelated"])
    assert dropped == 1 and kept == pairs[1:]
    path.write_text('{"question": "q"}\n', encoding="utf-8")
    with pytest.raises(GdoError, match=r"val.jsonl:1"):
        load_validation(path)
    path.write_text("{not json\n", encoding="utf-8")
    with pytest.raises(GdoError, match=r"val.jsonl:1: invalid JSON"):
        load_validation(path)


def test_descriptor_on_the_tiny_vlm(tmp_path, toy):
    """The registered descriptor end to end: own proxy (tiny Qwen3-VL), decontamination, both modes."""
    from gdo_opt.descriptors import REGISTRY
    from gdo_opt.descriptors.base import ExtractContext
    from gdo_opt.descriptors.tiny_model import make_tiny_model

    model_dir = make_tiny_model(tmp_path / "tiny", seed=0)
    targets = toy["targets"][:6] + [(toy["questions"][0], toy["answers"][0])]  # one leaked item
    val = tmp_path / "val.jsonl"
    val.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in targets), encoding="utf-8")
    batch = pd.DataFrame({"qa_uid": [f"gen::{i}::t0" for i in range(6)], "question": toy["questions"][:6],
                          "answer": toy["answers"][:5] + [""]})
    batch.to_parquet(tmp_path / "candidates.parquet")
    values = {}
    for mode in ("exact", "first_order"):
        ctx = ExtractContext(device="cpu", options={"ost_val": str(val), "ost_model": str(model_dir),
                                                    "ost_pool": str(tmp_path), "ost_mode": mode, "ost_lr": 1e-2})
        descriptor = REGISTRY["ost"]()
        assert not descriptor.requires_model(ctx.options)
        descriptor.setup(ctx)
        assert descriptor.dropped == 1 and descriptor.mode == mode
        values[mode] = descriptor.compute(batch, ctx)["ost"]
        assert np.isfinite(values[mode][:5]).all() and np.isnan(values[mode][5])
        assert ctx.errors == {"gen::5::t0": ["ost: empty answer"]}
    assert spearmanr(values["exact"][:5], values["first_order"][:5])[0] > 0.5
    with pytest.raises(GdoError, match="ost_val"):
        REGISTRY["ost"]().setup(ExtractContext(options={"ost_model": str(model_dir)}))


def test_ost_preset_ranks_by_ost_only():
    from gdo_opt.goal.preset import load_preset

    preset = load_preset("ost")
    assert [(t.descriptor, t.sign, t.required) for t in preset.score.active_terms()] == [("ost", 1, True)]
    assert preset.feasibility.dedup and preset.feasibility.per_video_cap == 8
    assert preset.feasibility.video_share == (0.0, 1.0) and preset.feasibility.stratum_tolerance is None
