"""Frame sampling and decoding shared by the motion descriptor and the model passes.

Only numpy + OpenCV + PIL are imported here, so motion workers (separate processes) start fast.
"""

from __future__ import annotations

import numpy as np


class MediaError(Exception):
    """A candidate's media cannot be read; recorded in the ``error`` column, never fatal."""


def sample_indices(n: int, k: int) -> np.ndarray:
    """Up to ``k`` indices spread uniformly over ``range(n)`` (first and last included): index i is
    round(i (n − 1) / (k − 1)), half to even, the same arithmetic as the published ``sample_paths``."""
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    if n <= k:
        return np.arange(n, dtype=np.int64)
    if k == 1:
        return np.zeros(1, dtype=np.int64)
    return np.round(np.arange(k, dtype=np.int64) * (n - 1) / (k - 1)).astype(np.int64)


def nested_indices(n: int, frames: int, sub: int) -> np.ndarray:
    """The published frame choice for flow / colour statistics: ``sub`` of the ``frames`` model frames."""
    outer = sample_indices(n, frames)
    return outer[sample_indices(len(outer), sub)]


def _read_image(path: str, gray: bool) -> np.ndarray:
    import cv2

    image = cv2.imread(path, cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR)
    if image is None:
        raise MediaError(f"cannot read image {path}")
    return image if gray else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _read_video(path: str, indices, gray: bool) -> list[np.ndarray]:
    """Frames ``indices(frame_count)`` of a video file (RGB, or gray)."""
    import cv2

    capture = cv2.VideoCapture(path)
    try:
        if not capture.isOpened():
            raise MediaError(f"cannot open video {path}")
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        frames = []
        for index in indices(count):
            capture.set(cv2.CAP_PROP_POS_FRAMES, int(index))
            ok, frame = capture.read()
            if not ok:
                raise MediaError(f"cannot decode frame {index} of {path}")
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY if gray else cv2.COLOR_BGR2RGB))
        if not frames:
            raise MediaError(f"no frames in video {path}")
        return frames
    finally:
        capture.release()


def load_frames(media, kind: str, k: int, gray: bool = False, sub: int | None = None,
                first_image: bool = False) -> list[np.ndarray]:
    """Decode up to ``k`` uniformly sampled frames (RGB uint8, or gray) of one candidate's media.

    ``sub``: then ``sub`` of those ``k`` (the published flow / colour-statistics frames).
    ``first_image``: image rows use their first image only (the published OneVision reader)."""
    paths = [str(p) for p in (media if media is not None else [])]
    if not paths:
        raise MediaError("no media")
    if kind == "image" and first_image:
        paths = paths[:1]

    def pick(n: int) -> np.ndarray:
        return sample_indices(n, k) if sub is None else nested_indices(n, k, sub)

    if kind == "video":
        return _read_video(paths[0], pick, gray)
    return [_read_image(paths[i], gray) for i in pick(len(paths))]


def motion_stats(media, kind: str, k: int = 8, width: int = 160) -> tuple[float, float]:
    """Fast variant: (AMM, frame diversity) of one candidate: mean Farneback flow magnitude between
    consecutive sampled frames (pixels at ``width`` px wide, aspect kept; levels / iterations 3 / 3)
    and mean absolute frame difference in [0, 1]. Images, and clips with one frame, score 0."""
    import cv2

    if kind == "image":
        return 0.0, 0.0
    cv2.setNumThreads(1)
    frames = load_frames(media, kind, k, gray=True)
    if len(frames) < 2:
        return 0.0, 0.0
    h, w = frames[0].shape[:2]
    size = (width, max(8, int(round(h * width / max(w, 1)))))
    frames = [cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames]
    flows, diffs = [], []
    for prev, nxt in zip(frames[:-1], frames[1:]):
        flow = cv2.calcOpticalFlowFarneback(prev, nxt, None, 0.5, 3, 15, 3, 5, 1.2, 0)
        flows.append(float(np.linalg.norm(flow, axis=2).mean()))
        diffs.append(float(np.abs(prev.astype(np.float32) - nxt.astype(np.float32)).mean() / 255.0))
    return float(np.mean(flows)), float(np.mean(diffs))


PUBLISHED_SIZE = 224  # published flow frames: 224 x 224 gray (aspect not kept)


def motion_published(media, kind: str, frames: int = 32, k: int = 8) -> tuple[float, float]:
    """The published AMM / frame diversity: ``k`` of the ``frames`` model frames, BGR -> gray, resized to
    224 x 224 (INTER_AREA), Farneback (pyr 0.5, levels 2, winsize 15, iterations 2, poly_n 5,
    poly_sigma 1.1); AMM = mean over pairs of the mean flow magnitude, diversity = mean |Δ| / 255.
    Image rows read one image, so they score 0 like one-frame clips."""
    import cv2

    if kind == "image":
        return 0.0, 0.0
    cv2.setNumThreads(1)
    rgb = load_frames(media, kind, frames, sub=k)
    if len(rgb) < 2:
        return 0.0, 0.0
    grays = [cv2.resize(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), (PUBLISHED_SIZE, PUBLISHED_SIZE),
                        interpolation=cv2.INTER_AREA) for f in rgb]
    flows, diffs = [], []
    for prev, cur in zip(grays[:-1], grays[1:]):
        flow = cv2.calcOpticalFlowFarneback(prev, cur, None, 0.5, 2, 15, 2, 5, 1.1, 0)
        flows.append(float(np.mean(np.sqrt(flow[..., 0] ** 2 + flow[..., 1] ** 2))))
        diffs.append(float(np.mean(np.abs(cur.astype(np.float32) - prev.astype(np.float32))) / 255.0))
    return float(np.mean(flows)), float(np.mean(diffs))


def rgb_stats(media, kind: str, frames: int = 32, k: int = 6, first_image: bool = True) -> np.ndarray:
    """The published vision feature: per-channel RGB mean and std (in [0, 1]) over all pixels of ``k``
    of the ``frames`` model frames (full resolution) -> 6 float32."""
    rgb = load_frames(media, kind, frames, sub=k, first_image=first_image)
    pixels = np.concatenate([f.astype(np.float32).reshape(-1, 3) / 255.0 for f in rgb], axis=0)
    return np.concatenate([pixels.mean(axis=0), pixels.std(axis=0)]).astype(np.float32)


def motion_task(media, kind: str, k: int, variant: str = "fast", frames: int = 32) -> tuple[float, float, str]:
    """Worker entry point: never raises, returns (amm, diversity, error)."""
    try:
        if variant == "published":
            amm, div = motion_published(media, kind, frames, k)
        else:
            amm, div = motion_stats(media, kind, k)
        return amm, div, ""
    except Exception as error:  # one bad clip must not kill the pool
        return float("nan"), float("nan"), f"{type(error).__name__}: {error}"


def rgb_task(media, kind: str, frames: int, k: int, first_image: bool) -> tuple[np.ndarray, str]:
    """Worker entry point for ``rgb_stats``: never raises."""
    try:
        return rgb_stats(media, kind, frames, k, first_image), ""
    except Exception as error:
        return np.full(6, np.nan, dtype=np.float32), f"{type(error).__name__}: {error}"
