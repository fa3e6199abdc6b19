"""Hand trackers behind one interface (``Tracker``): ``detect(frame_rgb, timestamp_ms) -> list[Hand]``,
``close()`` and a ``name`` (the summary's "hand_tracker"); ``make_hands`` builds the one the options ask for.

``MediaPipeHands`` runs the Tasks HandLandmarker: VIDEO mode for streams (landmark tracking, so the palm
detector runs only when a hand is lost) and IMAGE mode for stills, where the picture is padded with a border
first (a hand that fills the picture defeats the palm detector). ``RoiHands`` reports one fixed region, as
the dataset's capture tool cropped it, and ``WholeImage`` the whole picture (a ready crop).

A hand carries its box; ``nsl.preprocess.crop_hand(frame, hand.box, spec, hand.grow, hand.handedness)`` cuts the
classifier input from it and ``crop_box`` (same arguments, no frame) is the box that input was cut at.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import cv2
import numpy as np

from nsl.errors import NslError

log = logging.getLogger(__name__)

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels


@dataclass(frozen=True)
class Hand:
    """One hand in one frame."""

    box: Box                         # spanned by the landmarks (or the fixed region, the whole image)
    score: float                     # handedness confidence of MediaPipe (1.0 for a fixed region)
    handedness: str = ""             # "Left" / "Right" as MediaPipe sees the subject, "" when unknown
    landmarks: np.ndarray | None = None  # (21, 3): x, y in pixels, z (depth) in the same scale (nsl.landmarks)
    track_id: int = 0                # stable across frames while the hand stays in view
    grow: bool = True                # False: ``box`` is already the crop (fixed region, whole image), cut as it is
    world: np.ndarray | None = None  # (21, 3) world landmarks, metres about the hand's centre


@dataclass(frozen=True)
class Confidences:
    """MediaPipe HandLandmarker's three thresholds, by its own names (0..1; MediaPipe's default 0.5 each):
    the palm detector's score to report a hand, the landmark model's score that a hand is present, and the
    score to keep tracking in VIDEO mode (below it the palm detector runs again)."""

    min_hand_detection_confidence: float = 0.5
    min_hand_presence_confidence: float = 0.5
    min_tracking_confidence: float = 0.5

    def __post_init__(self):
        for name, value in self.as_options().items():
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= value <= 1.0:
                raise NslError(f"--{name.replace('_', '-')} {value!r}: expected a number from 0 to 1 "
                               f"(MediaPipe's default is 0.5)")

    def as_options(self) -> dict:
        return {"min_hand_detection_confidence": self.min_hand_detection_confidence,
                "min_hand_presence_confidence": self.min_hand_presence_confidence,
                "min_tracking_confidence": self.min_tracking_confidence}


@runtime_checkable
class Tracker(Protocol):
    """What the app and ``nsl predict`` need of a hand tracker."""

    name: str                        # what the summary reports as "hand_tracker"

    def detect(self, frame_rgb: np.ndarray, timestamp_ms: int | None = None) -> list[Hand]:
        """The hands of one RGB frame (``timestamp_ms``: the frame's time, for trackers that follow hands)."""

    def close(self) -> None:
        """Release the tracker's resources."""


def landmark_box(points: np.ndarray) -> Box:
    x0, y0 = points[:, :2].min(axis=0)
    x1, y1 = points[:, :2].max(axis=0)
    return float(x0), float(y0), float(x1), float(y1)


def parse_roi(text: str) -> Box:
    """``x,y,w,h`` in pixels -> (x0, y0, x1, y1)."""
    try:
        x, y, w, h = (float(part) for part in text.split(","))
    except ValueError:
        raise NslError(f"--roi {text!r}: expected x,y,w,h in pixels, for example 200,100,300,300") from None
    if w <= 0 or h <= 0:
        raise NslError(f"--roi {text!r}: width and height must be positive")
    return x, y, x + w, y + h


class RoiHands:
    """A fixed region reported as the one hand of every frame (no detector); it is the crop, not grown.

    A region wholly outside a frame is an error (there is nothing of the frame to classify, only black padding);
    one partly outside is warned about once per frame size (the part outside is padded black)."""

    def __init__(self, roi: Box):
        self.roi = tuple(map(float, roi))
        x0, y0, x1, y1 = self.roi
        self.name = f"fixed region {x0:g},{y0:g},{x1 - x0:g},{y1 - y0:g}"  # as --roi x,y,w,h
        self._checked: set[tuple[int, int]] = set()

    def detect(self, frame_rgb: np.ndarray, timestamp_ms: int | None = None) -> list[Hand]:
        height, width = frame_rgb.shape[:2]
        if (width, height) not in self._checked:
            self._check(width, height)
            self._checked.add((width, height))
        return [Hand(box=self.roi, score=1.0, handedness="roi", grow=False)]

    def _check(self, width: int, height: int) -> None:
        x0, y0, x1, y1 = self.roi
        inside_w, inside_h = min(x1, width) - max(x0, 0), min(y1, height) - max(y0, 0)
        region = self.name.removeprefix("fixed region ")
        if inside_w <= 0 or inside_h <= 0:
            raise NslError(f"--roi {region}: the region lies outside the {width}x{height} frame (x, y are pixels "
                           f"from the top left corner; the frame spans 0..{width - 1}, 0..{height - 1})")
        share = inside_w * inside_h / ((x1 - x0) * (y1 - y0))
        if share < 1:
            log.warning("--roi %s: %.0f%% of the region lies outside the %dx%d frame and is classified as black "
                        "padding", region, 100 * (1 - share), width, height)

    def close(self) -> None:
        pass


class WholeImage:
    """The whole picture reported as the one hand (``nsl predict --no-detect``: the image is a ready crop)."""

    name = "whole image"

    def detect(self, frame_rgb: np.ndarray, timestamp_ms: int | None = None) -> list[Hand]:
        height, width = frame_rgb.shape[:2]
        return [Hand(box=(0.0, 0.0, float(width), float(height)), score=1.0, grow=False)]

    def close(self) -> None:
        pass


class BoxTracks:
    """Stable ids for hands across frames (nearest centre) and an exponential average of each box."""

    def __init__(self, alpha: float = 0.5, max_missed: int = 5):
        self.alpha, self.max_missed = alpha, max_missed
        self.tracks: dict[int, tuple[np.ndarray, int]] = {}  # id -> (box, frames since seen)
        self.next_id = 0

    def _match(self, box: np.ndarray, taken: set[int]) -> int | None:
        centre, side = (box[:2] + box[2:]) / 2, max(box[2] - box[0], box[3] - box[1], 1.0)
        best, best_dist = None, 1.0
        for track_id, (old, _) in self.tracks.items():
            if track_id not in taken:
                dist = np.linalg.norm((old[:2] + old[2:]) / 2 - centre) / side
                if dist < best_dist:
                    best, best_dist = track_id, dist
        return best

    def update(self, boxes: list[Box]) -> list[tuple[int, Box]]:
        """Assign ids to this frame's boxes and return (id, smoothed box) in the same order."""
        out, seen = [], set()
        for box in boxes:
            box = np.asarray(box, dtype=float)
            track_id = self._match(box, seen)
            if track_id is None:
                track_id, self.next_id = self.next_id, self.next_id + 1
            else:
                box = self.alpha * box + (1 - self.alpha) * self.tracks[track_id][0]
            seen.add(track_id)
            self.tracks[track_id] = (box, 0)
            out.append((track_id, tuple(float(v) for v in box)))
        for track_id, (box, missed) in list(self.tracks.items()):
            if track_id not in seen:
                if missed + 1 > self.max_missed:
                    del self.tracks[track_id]
                else:
                    self.tracks[track_id] = (box, missed + 1)
        return out


TRACK_MAX_SIDE = 1920  # larger frames are tracked on a copy shrunk to this side (boxes mapped back)


def shrink_for_tracking(frame_rgb: np.ndarray, max_side: int = TRACK_MAX_SIDE) -> tuple[np.ndarray, float]:
    """(frame, 1.0), or a copy whose longer side is ``max_side`` and its scale: MediaPipe converts the whole frame
    (a 30000 x 30000 still took 10 GB and crashed it), and its models see 192-224 px crops anyway."""
    height, width = frame_rgb.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1:
        return frame_rgb, 1.0
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(frame_rgb, size, interpolation=cv2.INTER_AREA), scale


STILL_PADDING = 0.25  # a still gets this border (fraction of its longer side) before the palm detector sees it
STILL_RETRY_PADDING = 0.5  # and, when no hand is found, once more with this one: a hand that fills the photo (a
# tight crop) is found with more border around it (asl_36: 13 of the 16 photos without a hand at 0.25)


class MediaPipeHands:
    """MediaPipe Tasks HandLandmarker; ``mode`` is "video" (tracking across frames) or "image" (stills: padded
    by ``still_padding``, and tried again with ``retry_padding`` when no hand is found). Frames over
    ``TRACK_MAX_SIDE`` are tracked shrunk (``shrink_for_tracking``); boxes and landmarks stay in the frame's own
    pixels."""

    def __init__(self, model_path, max_hands: int = 1, mode: str = "video", still_padding: float = STILL_PADDING,
                 box_alpha: float = 0.6, confidences: "Confidences | None" = None,
                 retry_padding: float | None = STILL_RETRY_PADDING):
        from mediapipe.tasks.python.core.base_options import BaseOptions
        from mediapipe.tasks.python.vision import HandLandmarker, HandLandmarkerOptions, RunningMode

        if mode not in ("video", "image"):
            raise NslError(f"hand tracker mode {mode!r}: expected video or image")
        self.mode, self.still_padding, self.retry_padding = mode, still_padding, retry_padding
        self.name = f"MediaPipe {mode.upper()} mode ({Path(model_path).name})"
        self.tracks = BoxTracks(alpha=box_alpha if mode == "video" else 1.0)
        self.last_timestamp, self.had_hands = -1, False
        from nsl.edge.hand_model import check_loads

        check_loads(Path(model_path))  # in a child process first: a crafted file must not take this one down
        options = HandLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(model_path)),
            running_mode=RunningMode.VIDEO if mode == "video" else RunningMode.IMAGE,
            num_hands=max_hands, **(confidences or Confidences()).as_options())
        try:
            self.landmarker = HandLandmarker.create_from_options(options)
        except (RuntimeError, ValueError) as err:
            raise NslError(f"{model_path}: MediaPipe cannot load this hand model ({err}); "
                           "rebuild it with 'nsl hand-model build --force'") from None

    def _run(self, frame_rgb: np.ndarray, timestamp_ms: int | None):
        import mediapipe as mp

        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(frame_rgb))
        if self.mode == "image":
            return self.landmarker.detect(image)
        # VIDEO mode needs strictly increasing timestamps
        timestamp = max(int(timestamp_ms if timestamp_ms is not None else 0), self.last_timestamp + 1)
        self.last_timestamp = timestamp
        return self.landmarker.detect_for_video(image, timestamp)

    def detect(self, frame_rgb: np.ndarray, timestamp_ms: int | None = None) -> list[Hand]:
        frame_rgb, scale = shrink_for_tracking(frame_rgb)
        if self.mode == "image":
            paddings = [self.still_padding] + ([self.retry_padding] if self.retry_padding is not None else [])
            for padding in paddings:  # the first that finds a hand
                padded, pad = _padded(frame_rgb, padding)
                result = self._run(padded, timestamp_ms)
                if result.hand_landmarks:
                    break
            return self._hands(result, padded.shape, pad, scale)
        result = self._run(frame_rgb, timestamp_ms)
        if not result.hand_landmarks and self.had_hands:
            # tracking lost the hand (it moved fast, or the scene cut): the palm detector runs on the next
            # call, so make that call now on this frame instead of missing it
            result = self._run(frame_rgb, self.last_timestamp + 1)
        self.had_hands = bool(result.hand_landmarks)
        return self._hands(result, frame_rgb.shape, 0, scale)

    def _hands(self, result, shape, pad: int, scale: float) -> list[Hand]:
        found = [_found_hand(points, categories, world, shape, pad, scale) for points, categories, world
                 in zip(result.hand_landmarks, result.handedness, _world_of(result))]
        tracked = self.tracks.update([landmark_box(pixels) for pixels, _, _, _ in found])
        return [Hand(box=box, score=score, handedness=side, landmarks=pixels, track_id=track_id, world=world)
                for (pixels, side, score, world), (track_id, box) in zip(found, tracked)]

    def close(self) -> None:
        self.landmarker.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _padded(frame_rgb: np.ndarray, padding: float) -> tuple[np.ndarray, int]:
    """The frame with a black border of ``padding`` x its longer side, and the border's width in pixels."""
    pad = int(round(padding * max(frame_rgb.shape[:2]))) if padding > 0 else 0
    if not pad:
        return frame_rgb, 0
    return cv2.copyMakeBorder(frame_rgb, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(0, 0, 0)), pad


def _world_of(result) -> list:
    world = getattr(result, "hand_world_landmarks", None) or []
    return list(world) + [None] * (len(result.hand_landmarks) - len(world))


def _found_hand(points, categories, world, shape, pad: int, scale: float = 1.0) -> tuple:
    """(landmarks (21, 3) in the original frame's pixels (``scale``: how much the tracked frame was shrunk), z
    scaled like x; handedness; its score; world (21, 3))."""
    width, height = shape[1], shape[0]
    pixels = np.array([(p.x * width, p.y * height, p.z * width) for p in points], dtype=float)
    pixels[:, :2] -= pad
    pixels /= scale
    best = max(categories, key=lambda c: c.score) if categories else None
    metres = np.array([(p.x, p.y, p.z) for p in world], dtype=float) if world else None
    return pixels, best.category_name if best else "", float(best.score) if best else 0.0, metres


def make_hands(model_path=None, roi: Box | None = None, max_hands: int = 1, mode: str = "video",
               whole_image: bool = False, confidences: "Confidences | None" = None) -> Tracker:
    """The tracker for the options: the whole image (``whole_image``), else a fixed region when ``roi`` is
    given, else MediaPipe with ``model_path`` (a resolved hand_landmarker.task)."""
    if max_hands not in (1, 2):
        raise NslError(f"--hands {max_hands}: expected 1 or 2")
    if whole_image:
        return WholeImage()
    if roi is not None:
        return RoiHands(roi)
    return MediaPipeHands(model_path, max_hands=max_hands, mode=mode, confidences=confidences)

