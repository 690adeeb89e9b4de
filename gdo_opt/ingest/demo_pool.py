"""A small, realistic demo pool with real media and known ground truth (for `make demo` and tests).

Writes both LLaVA formats: ``onevision.jsonl`` (one 64x64 PNG per row) and ``video.jsonl``
(LLaVA-Video rows whose ``images`` are 8-16 PNG frames of a textured shape moving at a known speed:
0 = static, 1 = slow, 3 = fast pixels/frame). ``truth.json`` records each clip's speed and
direction so motion descriptors can be checked against the truth. The pool mimics real pools:
skewed sources with a long tail, multi-turn rows, several rows per video, exact duplicates, MCQ
and open questions, temporal and static questions, and the three message spellings
(role/content, from/value, human/gpt). Everything derives from one ``numpy`` generator, so the
same seed gives byte-identical JSONL and PNG files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from gdo_opt.atomic import write_json, write_jsonl

SIZE = 64
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 180, 60),
    "blue": (40, 80, 220),
    "yellow": (230, 210, 40),
    "purple": (150, 60, 190),
    "orange": (240, 140, 30),
}
SHAPES = ("circle", "square", "triangle")
# Speeds in pixels/frame: the label a question may ask about, and the true value in truth.json.
SPEEDS: dict[str, int] = {"static": 0, "slow": 1, "fast": 3}
DIRECTIONS: dict[str, tuple[int, int]] = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
# Skewed source mixes (weights ~ Zipf): a few big sources and a long tail, like the real pools.
IMAGE_SOURCES = (
    "llava_ov/general_vqa", "sharegpt4v_coco", "clevr_synth", "ai2d", "chartqa",
    "geo170k", "textvqa", "vizwiz", "infographic_vqa",
)
VIDEO_SOURCES = (
    "llava_video/academic", "llava_video/youtube", "nextqa", "activitynet_qa",
    "perceptiontest", "ego4d_nlq", "clevrer",
)
LETTERS = "ABCD"


@dataclass(frozen=True)
class DemoPool:
    """Paths of a generated demo pool plus the numbers tests and docs quote."""

    root: Path
    onevision: Path
    video: Path
    bench: Path
    truth: Path
    n_image_rows: int
    n_video_rows: int
    n_qa: int


def _a(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


def _zipf_weights(n: int, s: float = 1.2) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1) ** s
    return w / w.sum()


def _texture(rng: np.random.Generator, h: int, w: int, amp: float) -> np.ndarray:
    """Smooth random texture (blurred noise + fine grain) so optical flow has features to track."""
    coarse = rng.normal(0.0, 1.0, (h // 8 + 2, w // 8 + 2))
    up = np.kron(coarse, np.ones((8, 8)))[:h, :w]
    fine = rng.normal(0.0, 0.5, (h, w))
    return amp * (up + fine)


def _shape_mask(shape: str, size: int) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size]
    c = (size - 1) / 2.0
    if shape == "circle":
        return (yy - c) ** 2 + (xx - c) ** 2 <= (size / 2.0) ** 2
    if shape == "square":
        return np.ones((size, size), dtype=bool)
    return (yy >= (size - 1) - 2 * np.abs(xx - c)) & (yy >= 0)  # triangle, apex at the top


def _paste(canvas: np.ndarray, patch: np.ndarray, mask: np.ndarray, x: int, y: int) -> None:
    """Paste ``patch`` (masked) with its top-left at (x, y); clips at the borders."""
    h, w = mask.shape
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, SIZE), min(y + h, SIZE)
    if x0 >= x1 or y0 >= y1:
        return
    sub_m = mask[y0 - y : y1 - y, x0 - x : x1 - x]
    region = canvas[y0:y1, x0:x1]
    region[sub_m] = patch[y0 - y : y1 - y, x0 - x : x1 - x][sub_m]


def _save_png(arr: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB").save(path, format="PNG", compress_level=6)


def _background(rng: np.random.Generator) -> np.ndarray:
    base = rng.integers(90, 170, size=3).astype(np.float64)
    return base[None, None, :] + _texture(rng, SIZE, SIZE, 12.0)[:, :, None]


def _object_patch(rng: np.random.Generator, color: str, size: int) -> np.ndarray:
    rgb = np.asarray(COLORS[color], dtype=np.float64)
    return rgb[None, None, :] + _texture(rng, size, size, 18.0)[:, :, None]


def _mcq(question: str, correct: str, options: list[str], rng: np.random.Generator) -> tuple[str, str]:
    """Four-option MCQ in the common LLaVA style; returns (question text, answer letter)."""
    others = [o for o in options if o != correct]
    picks = [correct, *rng.choice(others, size=min(3, len(others)), replace=False).tolist()]
    order = rng.permutation(len(picks))
    opts = [picks[i] for i in order]
    lines = "\n".join(f"{LETTERS[i]}. {o}" for i, o in enumerate(opts))
    letter = LETTERS[opts.index(correct)]
    return f"{question}\n{lines}\nAnswer with the option's letter from the given choices directly.", letter


def _messages(turns: list[tuple[str, str]], tag: str, spelling: int) -> tuple[str, list[dict]]:
    """Encode QA turns in one of the three spellings; the media tag goes in the first user turn."""
    key, msgs = "messages", []
    for k, (q, a) in enumerate(turns):
        q = f"{tag}\n{q}" if k == 0 else q
        if spelling == 0:
            msgs += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
        elif spelling == 1:
            key = "conversations"
            msgs += [{"from": "human", "value": q}, {"from": "gpt", "value": a}]
        else:
            msgs += [{"from": "user", "value": q}, {"from": "assistant", "value": a}]
    return key, msgs


def _image_qas(rng: np.random.Generator, color: str, shape: str, cx: int, cy: int) -> list[tuple[str, str]]:
    side = "left" if cx < SIZE / 2 else "right"
    vert = "top" if cy < SIZE / 2 else "bottom"
    pool = [
        (f"What color is the {shape}?", color),
        ("What shape is shown in the image?", shape),
        (f"Is the {color} {shape} on the left or the right side of the image?", side),
        ("Describe the image in one sentence.",
         f"The image shows {_a(color)} {shape} near the {vert} {side} of a textured gray background."),
        (f"The {shape} is centred near pixel ({cx}, {cy}). Which quadrant of the image is it in?",
         f"It is in the {vert}-{side} quadrant."),
        _mcq("Which color is the object in the image?", color, list(COLORS), rng),
        _mcq("Which shape appears in the image?", shape, list(SHAPES), rng),
        (f"Is there a {shape} in the image? Answer yes or no.", "Yes"),
    ]
    k = int(rng.choice([1, 1, 1, 2, 2, 3]))
    idx = rng.choice(len(pool), size=k, replace=False)
    return [pool[i] for i in idx]


def _video_qas(rng: np.random.Generator, color: str, shape: str, speed: str, direction: str) -> list[tuple[str, str]]:
    moving = speed != "static"
    temporal = [
        (f"In which direction does the {color} {shape} move during the video?",
         direction if moving else "It does not move; it stays in place."),
        (f"Does the {shape} move fast or slowly, or does it stay still?",
         {"static": "It stays still.", "slow": "It moves slowly.", "fast": "It moves fast."}[speed]),
        ("What happens in the video from the first frame to the last?",
         f"The {color} {shape} moves {direction} across the frame." if moving
         else f"Nothing changes; the {color} {shape} stays in the same place."),
        _mcq(f"Which direction is the {shape} moving?", direction if moving else "not moving",
             [*DIRECTIONS, "not moving"], rng),
        _mcq("How fast is the object moving?", speed if moving else "not moving",
             ["slow", "fast", "not moving", "it jumps randomly"], rng),
        (f"Where is the {shape} at the end of the video compared with the start?",
         f"Further {direction} than where it started." if moving else "In the same place as at the start."),
    ]
    static = [
        (f"What color is the {shape} in the video?", color),
        ("What shape appears in the video?", shape),
        _mcq("What color is the object in the video?", color, list(COLORS), rng),
        (f"Is the {shape} {color}? Answer yes or no.", "Yes"),
    ]
    n_t = int(rng.integers(2, 5))
    n_s = int(rng.integers(1, 4))
    picks = [temporal[i] for i in rng.choice(len(temporal), size=n_t, replace=False)]
    picks += [static[i] for i in rng.choice(len(static), size=n_s, replace=False)]
    return [picks[i] for i in rng.permutation(len(picks))]


def make_demo_pool(out_dir: str | Path, seed: int = 0, n_images: int = 900, n_videos: int = 160) -> DemoPool:
    """Write the demo pool into ``out_dir``; ~2,500 QA pairs with the defaults, in a few seconds.

    Same ``seed`` -> byte-identical files. Media paths in the JSONL are relative to ``out_dir``.
    """
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    img_w = _zipf_weights(len(IMAGE_SOURCES))
    vid_w = _zipf_weights(len(VIDEO_SOURCES))
    qa_count = 0

    # ---- images (LLaVA-OneVision rows) ----
    ov_rows: list[dict] = []
    for i in range(n_images):
        color = str(rng.choice(list(COLORS)))
        shape = str(rng.choice(SHAPES))
        size = int(rng.integers(12, 22))
        x, y = (int(v) for v in rng.integers(2, SIZE - size - 2, size=2))
        canvas = _background(rng)
        _paste(canvas, _object_patch(rng, color, size), _shape_mask(shape, size), x, y)
        rel = f"media/images/img_{i:05d}.png"
        _save_png(canvas, root / rel)
        turns = _image_qas(rng, color, shape, x + size // 2, y + size // 2)
        key, msgs = _messages(turns, "<image>", int(rng.choice(3, p=[0.6, 0.3, 0.1])))
        source = str(rng.choice(IMAGE_SOURCES, p=img_w))
        ov_rows.append({"id": f"img-{i:05d}", "images": [rel], key: msgs, "data_source": source})
    # exact duplicates: same media and QA under a new id (as when pools are concatenated)
    for j, src in enumerate(rng.choice(len(ov_rows), size=max(1, n_images // 30), replace=False)):
        dup = dict(ov_rows[int(src)])
        dup["id"] = f"img-dup-{j:04d}"
        ov_rows.append(dup)
    qa_count += sum(len(r.get("messages", r.get("conversations", []))) // 2 for r in ov_rows)

    # ---- videos (LLaVA-Video rows with frame lists) ----
    vv_rows: list[dict] = []
    truth: dict[str, dict] = {}
    speed_names = list(SPEEDS)
    for v in range(n_videos):
        vid = f"vid_{v:04d}"
        color = str(rng.choice(list(COLORS)))
        shape = str(rng.choice(SHAPES))
        speed = speed_names[v % 3] if v < 3 else str(rng.choice(speed_names, p=[0.3, 0.35, 0.35]))
        direction = str(rng.choice(list(DIRECTIONS)))
        n_frames = int(rng.integers(8, 17))
        size = 14
        s = SPEEDS[speed]
        dx, dy = DIRECTIONS[direction]
        travel = s * (n_frames - 1)
        # start so that the whole path stays inside the frame
        cx0 = (SIZE - size) / 2 - dx * travel / 2 + rng.integers(-3, 4)
        cy0 = (SIZE - size) / 2 - dy * travel / 2 + rng.integers(-3, 4)
        bg = _background(rng)
        patch = _object_patch(rng, color, size)
        mask = _shape_mask(shape, size)
        frames = []
        for f in range(n_frames):
            canvas = bg.copy()
            _paste(canvas, patch, mask, int(round(cx0 + dx * s * f)), int(round(cy0 + dy * s * f)))
            canvas += rng.normal(0.0, 1.5, canvas.shape)  # sensor noise: static clips are not bit-identical
            rel = f"media/videos/{vid}/frame_{f:03d}.png"
            _save_png(canvas, root / rel)
            frames.append(rel)
        truth[vid] = {"speed": float(s), "static": s == 0, "speed_label": speed,
                      "direction": direction if s else "none", "n_frames": n_frames,
                      "color": color, "shape": shape}
        qas = _video_qas(rng, color, shape, speed, direction)
        # several QA per video, split over 1-2 rows (rows sharing a video_id, as in LLaVA-Video)
        cut = int(rng.integers(1, len(qas))) if len(qas) > 3 and rng.random() < 0.5 else len(qas)
        source = str(rng.choice(VIDEO_SOURCES, p=vid_w))
        duration = round(n_frames * float(rng.choice([0.5, 1.5, 3.0])), 1)  # seconds the frames span
        for part, chunk in enumerate((qas[:cut], qas[cut:])):
            if not chunk:
                continue
            key, msgs = _messages(chunk, "<video>", int(rng.choice(3, p=[0.7, 0.2, 0.1])))
            vv_rows.append({"id": f"{vid}-{part}", "video_id": vid, "images": frames, key: msgs,
                            "data_source": source, "duration": duration})
            qa_count += len(chunk)

    # ---- benchmark-style exclude file: a few pool QA (leaked) plus unrelated items ----
    # Leak only the position questions: their text is nearly unique, so decontamination drops a few
    # candidates, not every "What color is ...?" in the pool.
    bench = []
    for r in ov_rows[:n_images]:
        msgs = r.get("messages") or r.get("conversations")
        for q_msg, a_msg in zip(msgs[0::2], msgs[1::2]):
            q = q_msg.get("content", q_msg.get("value")).replace("<image>\n", "")
            if "centred near pixel" in q and len(bench) < 6 and rng.random() < 0.3:
                bench.append({"question": q, "answer": a_msg.get("content", a_msg.get("value"))})
    bench += [{"question": "How many people are crossing the street?", "answer": "3"},
              {"question": "What is the capital of France?", "answer": "Paris"}]

    onevision = root / "onevision.jsonl"
    video = root / "video.jsonl"
    bench_path = root / "bench.jsonl"
    truth_path = root / "truth.json"
    write_jsonl(onevision, ov_rows)
    write_jsonl(video, vv_rows)
    write_jsonl(bench_path, bench)
    write_json(truth_path, truth)
    return DemoPool(root, onevision, video, bench_path, truth_path, len(ov_rows), len(vv_rows), qa_count)


def demo_text_rows(n_pairs: int, seed: int = 0) -> list[dict]:
    """Text-only LLaVA-style rows (no media written) for benchmarks: ~``n_pairs`` QA pairs."""
    rng = np.random.default_rng(seed)
    rows, pairs, i = [], 0, 0
    while pairs < n_pairs:
        color, shape = str(rng.choice(list(COLORS))), str(rng.choice(SHAPES))
        if i % 4 == 3:
            turns = _video_qas(rng, color, shape, str(rng.choice(list(SPEEDS))), str(rng.choice(list(DIRECTIONS))))
            frames = [f"frames/v{i}/f{f:03d}.jpg" for f in range(int(rng.integers(16, 96)))]
            key, msgs = _messages(turns, "<video>", i % 3)
            rows.append({"id": f"r{i}", "video_id": f"v{i}", "images": frames, key: msgs,
                         "data_source": VIDEO_SOURCES[i % len(VIDEO_SOURCES)]})
        else:
            turns = _image_qas(rng, color, shape, int(rng.integers(0, 64)), int(rng.integers(0, 64)))
            key, msgs = _messages(turns, "<image>", i % 3)
            rows.append({"id": f"r{i}", "images": [f"img/{i}.jpg"], key: msgs,
                         "data_source": IMAGE_SOURCES[i % len(IMAGE_SOURCES)]})
        pairs += len(turns)
        i += 1
    return rows
