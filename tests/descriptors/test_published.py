"""The ``published`` mode (the default) against an independent re-computation of the published GDO
definitions (rujiewu/GDO gdo/extract_six_metrics.py, gdo/merge_metrics.py), written again here from the
definitions with transformers / OpenCV / sklearn directly -- none of our descriptor code is used for the
expected values. A few demo samples, the tiny offline model, plus one 40-frame clip so that the
32-of-n model frames and the 8-of-32 flow frames are really sampled.

Sampling: the published code draws from torch's global generator; ours uses the keyed sampler (so
shards and restarts agree), so the re-computation passes the same keyed sampler to ``generate`` and
checks everything else: temperature 0.8, top-p 0.9, no top-k, 32 new tokens, word-set Jaccard.
Hashed text bins: MurmurHash3 instead of Python's per-process salted ``hash()`` (docs/descriptors.md).
"""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
cv2 = pytest.importorskip("cv2")

from gdo_opt.descriptors.merge import merge_shards  # noqa: E402
from gdo_opt.descriptors.runner import run_extract  # noqa: E402
from gdo_opt.descriptors.sampling import KeyedGumbelSampler, row_key  # noqa: E402

WORD = re.compile(r"[A-Za-z0-9_]+")
MEDIA = re.compile(r"<image>|<video>|<audio>")
OPTS = {"chunk_size": 64, "workers": 1, "threads": 1}  # published defaults otherwise
IMAGE_PAD = "<|image_pad|>"


def norm(text) -> str:
    return " ".join(MEDIA.sub(" ", str(text)).split())


def sample_paths(paths, target: int) -> list[str]:
    paths = [str(p) for p in paths]
    n = len(paths)
    if target <= 0 or n <= target:
        return paths
    return [paths[int(round(i * (n - 1) / (target - 1)))] for i in range(target)]


def model_paths(row) -> list[str]:
    return [str(row["media"][0])] if row["media_kind"] == "image" else sample_paths(row["media"], 32)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from PIL import Image

    from gdo_opt.descriptors.tiny_model import make_tiny_model
    from gdo_opt.ingest.demo_pool import make_demo_pool
    from gdo_opt.ingest.pool import ingest

    root = tmp_path_factory.mktemp("published")
    pool = make_demo_pool(root / "pool", seed=0, n_images=3, n_videos=3)
    ingest(onevision=[pool.onevision], video=[pool.video], out_dir=root / "cand", progress=False)
    cands = pd.read_parquet(root / "cand" / "candidates.parquet")
    rng = np.random.default_rng(0)
    (root / "long").mkdir()
    paths = []
    for i in range(40):  # a square moving right over noise
        frame = rng.integers(0, 60, size=(40, 48, 3), dtype=np.uint8)
        frame[10:22, i:i + 12] = (230, 40, 40)
        paths.append(str(root / "long" / f"f{i:02d}.png"))
        Image.fromarray(frame).save(paths[-1])
    long = cands[cands["media_kind"] == "frames"].iloc[0].copy()
    long["qa_uid"], long["video_uid"], long["media"] = "vv::long::t0", "long", paths
    long["question"] = "<video>\nWhat  happens\nfirst?"
    table = pd.concat([cands, long.to_frame().T], ignore_index=True)
    table.to_parquet(root / "cands.parquet")
    model = make_tiny_model(root / "model")
    run_extract(root / "cands.parquet", root / "shards", model=model, options=OPTS, progress=False)
    shards = pd.concat([pd.read_parquet(f) for f in sorted((root / "shards").glob("*.parquet"))])
    table = table.set_index("qa_uid")
    kinds = table["media_kind"]
    picks = list(kinds[kinds == "image"].index[:2]) + list(kinds[kinds == "frames"].index[:1]) + ["vv::long::t0"]
    return {"root": root, "model": model, "table": table, "shards": shards.set_index("qa_uid"), "picks": picks}


@pytest.fixture(scope="module")
def hf(world):
    from transformers import AutoImageProcessor, AutoModelForImageTextToText, AutoTokenizer

    path = world["model"]
    model = AutoModelForImageTextToText.from_pretrained(path, local_files_only=True, dtype=torch.float32).eval()
    for key in ("temperature", "top_p", "top_k"):  # as the published build_model does
        setattr(model.generation_config, key, None)
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    return model, tok, AutoImageProcessor.from_pretrained(path, local_files_only=True, backend="pil")


def _inputs(hf, row, use_images: bool, answer: bool):
    """The published make_texts + processor call: images first, then the question; pads expanded."""
    from PIL import Image

    model, tok, ip = hf
    images = [Image.open(p).convert("RGB") for p in model_paths(row)] if use_images else []
    content = [{"type": "image"} for _ in images] + [{"type": "text", "text": norm(row["question"])}]
    messages = [{"role": "user", "content": content}]
    prompt = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    full = tok.apply_chat_template(
        messages + [{"role": "assistant", "content": [{"type": "text", "text": norm(row["answer"])}]}],
        tokenize=False, add_generation_prompt=False)
    extra = {}
    if images:
        enc = ip(images=images, return_tensors="pt")
        counts = (enc["image_grid_thw"].prod(-1) // 4).tolist()

        def expand(text):
            parts = text.split(IMAGE_PAD)
            return "".join(p + IMAGE_PAD * c for p, c in zip(parts[:-1], counts)) + parts[-1]

        prompt, full = expand(prompt), expand(full)
        extra = {"pixel_values": enc["pixel_values"], "image_grid_thw": enc["image_grid_thw"]}
    ids = tok([full if answer else prompt], add_special_tokens=False, return_tensors="pt")["input_ids"]
    prompt_len = len(tok(prompt, add_special_tokens=False)["input_ids"])
    image_id = tok.convert_tokens_to_ids(IMAGE_PAD)
    extra["mm_token_type_ids"] = (ids == image_id).long()
    return ids, prompt_len, extra, len(images)


def test_losses_cover_answer_and_end_of_turn_with_all_32_frames(world, hf):
    model, tok, _ = hf
    for uid in world["picks"]:
        row = world["table"].loc[uid]
        losses = {}
        for use in (True, False):
            ids, prompt_len, extra, n_images = _inputs(hf, row, use, answer=True)
            labels = ids.clone()
            labels[:, :prompt_len] = -100
            assert tok.decode(ids[0, prompt_len:]) == norm(row["answer"]) + "<|im_end|>\n"
            with torch.no_grad():
                losses[use] = float(model(input_ids=ids, labels=labels, **extra).loss)
            if use:
                assert n_images == (1 if row["media_kind"] == "image" else min(32, len(row["media"])))
        got = world["shards"].loc[uid]
        assert got["loss_video"] == pytest.approx(losses[True], abs=1e-4), uid
        assert got["loss_blind"] == pytest.approx(losses[False], abs=1e-4), uid
        assert got["vds"] == pytest.approx(losses[False] - losses[True], abs=2e-4), uid
        assert got["ppl"] == pytest.approx(np.exp(losses[True]), rel=1e-4), uid
    assert len(world["table"].loc["vv::long::t0", "media"]) == 40  # really sampled 32 of 40


def _published_motion(paths):
    grays = [cv2.resize(cv2.cvtColor(cv2.imread(p), cv2.COLOR_BGR2GRAY), (224, 224), interpolation=cv2.INTER_AREA)
             for p in sample_paths(sample_paths(paths, 32), 8)]
    if len(grays) <= 1:
        return 0.0, 0.0
    mags, diffs = [], []
    for prev, cur in zip(grays[:-1], grays[1:]):
        flow = cv2.calcOpticalFlowFarneback(prev, cur, None, pyr_scale=0.5, levels=2, winsize=15, iterations=2,
                                            poly_n=5, poly_sigma=1.1, flags=0)
        mags.append(float(np.mean(np.sqrt(flow[..., 0] ** 2 + flow[..., 1] ** 2))))
        diffs.append(float(np.mean(np.abs(cur.astype(np.float32) - prev.astype(np.float32))) / 255.0))
    return float(np.mean(mags)), float(np.mean(diffs))


def test_motion_uses_8_of_32_frames_at_224_with_farneback_2_2(world):
    for uid in world["picks"]:
        row = world["table"].loc[uid]
        amm, div = (0.0, 0.0) if row["media_kind"] == "image" else _published_motion(list(row["media"]))
        got = world["shards"].loc[uid]
        assert got["amm"] == pytest.approx(amm, abs=1e-6) and got["frame_diversity"] == pytest.approx(div, abs=1e-6)
    assert world["shards"].loc["vv::long::t0", "amm"] > 0.5  # the square really moves


def test_temporal_need_is_the_published_three_token_answer(world, hf):
    from gdo_opt.descriptors.engine import ModelEngine
    from gdo_opt.descriptors.model import load_model
    from gdo_opt.descriptors.published import parse_temporal
    from gdo_opt.descriptors.settings import resolve

    np.testing.assert_array_equal(parse_temporal(["Temporal", " static.", "Tem", "", "STATIC or temporal"]),
                                  [1.0, 0.0, 0.5, 0.5, 1.0])
    model, tok, _ = hf
    ours, proc = load_model(world["model"])
    engine = ModelEngine(ours, proc, "cpu", resolve({}))
    engine.request("temporal")
    batch = world["table"].loc[world["picks"]].reset_index()
    engine.results(batch)
    for uid in world["picks"]:
        question = norm(world["table"].loc[uid, "question"])
        prompt = ("Decide if the question requires temporal reasoning over multiple frames.\n"
                  "Answer only one word: Temporal or Static.\n" f"Question: {question}")
        text = tok.apply_chat_template([{"role": "user", "content": [{"type": "text", "text": prompt}]}],
                                       tokenize=False, add_generation_prompt=True)
        ids = tok([text], add_special_tokens=False, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            gen = model.generate(input_ids=ids, do_sample=False, max_new_tokens=3)
        answer = tok.batch_decode(gen[:, ids.shape[1]:], skip_special_tokens=True)[0].strip().lower()
        expected = 1.0 if "temporal" in answer else 0.0 if "static" in answer else 0.5
        assert engine._temporal[question]["temporal_text"].strip().lower() == answer, uid
        assert world["shards"].loc[uid, "temporal_prob"] == expected, uid


def test_stability_samples_five_answers_at_t08_p09_32_tokens_word_jaccard(world, hf):
    model, tok, _ = hf
    for uid in [world["picks"][0], "vv::long::t0"]:
        row = world["table"].loc[uid]
        ids, _, extra, _ = _inputs(hf, row, True, answer=False)
        texts, lengths = [], []
        for j in range(5):
            with torch.no_grad():
                out = model.generate(input_ids=ids, **extra, do_sample=True, top_p=0.9, temperature=0.8,
                                     max_new_tokens=32,
                                     logits_processor=[KeyedGumbelSampler([row_key(0, uid, j)], ids.shape[1])])
            lengths.append(out.shape[1] - ids.shape[1])
            texts.append(tok.batch_decode(out[:, ids.shape[1]:], skip_special_tokens=True)[0].strip())
        assert max(lengths) == 32 and len(set(texts)) > 1
        sets = [set(WORD.findall(t.lower())) for t in texts]
        sims = [1.0 if not (a or b) else len(a & b) / max(len(a | b), 1)
                for i, a in enumerate(sets) for b in sets[i + 1:]]
        assert world["shards"].loc[uid, "stability"] == pytest.approx(float(np.mean(sims)), abs=1e-12), uid


def _text_feature(question: str, answer: str) -> np.ndarray:
    from sklearn.utils import murmurhash3_32

    vec = np.zeros(16, dtype=np.float32)
    for token in WORD.findall(question.lower()) + WORD.findall(answer.lower()):
        vec[abs(murmurhash3_32(token, seed=0)) % 16] += 1.0
    return vec / float(np.linalg.norm(vec) + 1e-6)


def _vision_feature(paths) -> np.ndarray:
    rgbs = [cv2.cvtColor(cv2.imread(p), cv2.COLOR_BGR2RGB).astype(np.float32).reshape(-1, 3) / 255.0
            for p in sample_paths(paths, 6)]
    arr = np.concatenate(rgbs, axis=0)
    return np.concatenate([arr.mean(axis=0), arr.std(axis=0)])


def test_coverage_features_clusters_and_normalisation(world):
    from sklearn.cluster import MiniBatchKMeans

    table, shards = world["table"], world["shards"]
    uids = sorted(shards.index)
    feats = []
    for uid in uids:
        row = table.loc[uid]
        pub = np.concatenate([_text_feature(norm(row["question"]), norm(row["answer"])),
                              _vision_feature(model_paths(row))])
        np.testing.assert_allclose(shards.loc[uid, "pub_feat"], pub, atol=1e-6, err_msg=uid)
        s = shards.loc[uid]
        feats.append(np.concatenate([pub, [s["temporal_prob"], s["amm"], s["frame_diversity"], s["ppl"], s["vds"]]]))
    x = np.asarray(feats, dtype=np.float32)
    root = world["root"]
    report = merge_shards([root / "shards"], root / "k3.parquet", n_clusters=3)
    merged = pd.read_parquet(root / "k3.parquet").set_index("qa_uid").loc[uids]
    km = MiniBatchKMeans(n_clusters=3, random_state=42, batch_size=8192, n_init=3, reassignment_ratio=0.01)
    km.partial_fit(x[:3])
    km.partial_fit(x[3:])
    labels = km.predict(x)
    dist = np.linalg.norm(x - km.cluster_centers_[labels], axis=1)
    assert report["clustering"]["k"] == 3 and report["clustering"]["seed"] == 42
    np.testing.assert_array_equal(merged["cluster"], labels)
    np.testing.assert_allclose(merged["coverage"], np.exp(-dist), rtol=1e-5)
    np.testing.assert_allclose(merged["hardness"], 1 - np.exp(-dist), atol=1e-6)
    # Published normalisation: median and IQR / 1.349, unclipped; the published quality score.

    def zs(v):
        q25, q50, q75 = np.quantile(v, [0.25, 0.5, 0.75])
        return (v - q50) / max(max(q75 - q25, 1e-6) / 1.349, 1e-6)

    m = merged
    sig = 1 / (1 + np.exp(-(zs(m["vds"].to_numpy()) + zs(m["frame_diversity"].to_numpy()))))
    quality = (0.28 * sig + 0.18 * m["stability"] + 0.14 * np.exp(-np.abs(zs(m["ppl"].to_numpy())))
               + 0.12 * np.exp(-np.abs(zs(m["amm"].to_numpy()))) + 0.12 * m["temporal_prob"]
               + 0.10 * m["coverage"] + 0.06 * m["hardness"])
    np.testing.assert_allclose(m["quality_score"], quality, rtol=1e-9)
    np.testing.assert_allclose(m["z_vds"], zs(m["vds"].to_numpy()), rtol=1e-9)
    # Default k: 4096 capped by the rows (so on a small pool every row is its own cluster).
    full = merge_shards([root / "shards"], root / "d.parquet")
    assert full["clustering"]["k"] == len(uids) and full["clustering"]["k_requested"] == 4096
    assert json.loads((root / "shards" / "manifest.json").read_text())["options"]["mode"] == "published"
