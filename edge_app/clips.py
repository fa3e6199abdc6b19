"""Short videos assembled from still photos: something recorded to run the app, its tests and its benchmark on.

``letterbox`` places a photo in a 640x480 camera-sized frame; ``write_clip`` holds each frame for a few frames,
as a signer holds a sign (the tracker tracks within a photo and detects again at the next one).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import cv2
import numpy as np

from nsl.errors import NslError

WIDTH, HEIGHT = 640, 480


def letterbox(image: np.ndarray, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """``image`` scaled into a black ``width`` x ``height`` frame, aspect kept (channels as given)."""
    scale = min(width / image.shape[1], height / image.shape[0])
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    resized = cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    frame = np.zeros((height, width, 3), np.uint8)
    top, left = (height - resized.shape[0]) // 2, (width - resized.shape[1]) // 2
    frame[top:top + resized.shape[0], left:left + resized.shape[1]] = resized
    return frame


def write_clip(frames: Iterable[np.ndarray], out: str | Path, frames_per_image: int, fps: float = 15.0) -> Path:
    """RGB frames (all one size) to an mp4 video, each held ``frames_per_image`` frames."""
    out, writer = Path(out), None
    try:
        for frame in frames:
            if writer is None:
                writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps,
                                         (frame.shape[1], frame.shape[0]))
                if not writer.isOpened():
                    raise NslError(f"{out}: OpenCV cannot write this video file")
            bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
            for _ in range(frames_per_image):
                writer.write(bgr)
    finally:
        if writer is not None:
            writer.release()
    if writer is None:
        raise NslError(f"{out}: no images to make a clip of")
    return out
