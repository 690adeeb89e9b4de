"""Frame sampling and decoding shared by the motion descriptor and the model passes.

Only numpy + OpenCV + PIL are imported here, so motion workers (separate processes) start fast.
"""

from __future__ import annotations

import numpy as np


class MediaError(Exception):
    """A candidate's media cannot be read; recorded in the ``error`` column, never fatal."""


def sample_indices(n: int, k: int) -> np.ndarray:
    """Up to ``k`` indices spread uniformly over ``range(n)`` (first and last included)."""
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    if n <= k:
        return np.arange(n, dtype=np.int64)
    return np.unique(np.round(np.linspace(0, n - 1, k)).astype(np.int64))


def _read_image(path: str, gray: bool) -> np.ndarray:
    import cv2

    image = cv2.imread(path, cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR)
    if image is None:
        raise MediaError(f"cannot read image {path}")
    return image if gray else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _read_video(path: str, k: int, gray: bool) -> list[np.ndarray]:
    import cv2

    capture = cv2.VideoCapture(path)
    try:
        if not capture.isOpened():
            raise MediaError(f"cannot open video {path}")
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        frames = []
        for index in sample_indices(count, k):
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


def load_frames(media, kind: str, k: int, gray: bool = False) -> list[np.ndarray]:
    """Decode up to ``k`` uniformly sampled frames (RGB uint8, or gray) of one candidate's media."""
    paths = [str(p) for p in (media if media is not None else [])]
    if not paths:
        raise MediaError("no media")
    if kind == "video":
        return _read_video(paths[0], k, gray)
    return [_read_image(paths[i], gray) for i in sample_indices(len(paths), k)]


def motion_stats(media, kind: str, k: int = 8, width: int = 160) -> tuple[float, float]:
    """(AMM, frame diversity) of one candidate: mean Farneback flow magnitude between consecutive
    sampled frames (pixels at ``width`` px wide, so resolution does not matter) and mean absolute
    frame difference in [0, 1]. Images, and clips with one frame, score 0."""
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


def motion_task(media, kind: str, k: int) -> tuple[float, float, str]:
    """Worker entry point: never raises, returns (amm, diversity, error)."""
    try:
        amm, div = motion_stats(media, kind, k)
        return amm, div, ""
    except Exception as error:  # one bad clip must not kill the pool
        return float("nan"), float("nan"), f"{type(error).__name__}: {error}"
