"""A deterministic synthetic sign dataset in the published layout, for tests and the demo.

Each class is a drawn hand (palm, forearm, thumb and four fingers) in its own configuration: which fingers
are extended, half bent or folded, how far they are spread and how the hand is tilted. Class configurations
are fixed (they do not depend on ``seed``) and any two differ in at least three of those traits, so a small
CNN separates them. Images sit on a plain background (``Plain Background/``) or a cluttered one
(``Random Background/``) and are jittered in position, scale, rotation, skin tone and light.

Images come in capture sessions of ``SESSION_LENGTH`` consecutive files: one scene per session, with a
tiny per-frame jitter, like frames saved from one continuous capture. A grouped split has something to group.
Same arguments -> byte-identical files (one seeded generator per image, OpenCV's own JPEG encoder).
"""

from __future__ import annotations

import itertools
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from nsl.errors import DataError
from nsl.fileio import atomic_dir

log = logging.getLogger(__name__)

SUBSETS = ("Plain Background", "Random Background")
SESSION_LENGTH = 5
JPEG_QUALITY = 90
FOLDED, BENT, EXTENDED = 0, 1, 2  # finger states; for the thumb: across the palm, alongside, out
SPREADS = (2.0, 18.0)  # degrees between neighbouring fingers
TILTS = (-25.0, 0.0, 25.0)  # hand rotation, degrees
_POSE_SEED = 20251014  # fixes the class configurations independently of the dataset seed

# Hand geometry in hand units (1 = hand length); x right, y down, palm centre at the origin.
FINGER_BASES = ((-0.125, -0.19), (-0.042, -0.21), (0.042, -0.2), (0.125, -0.17))  # index, middle, ring, little
FINGER_LENGTHS = (0.36, 0.40, 0.37, 0.29)
FINGER_WIDTH = 0.085


@dataclass(frozen=True)
class HandPose:
    """One class: finger states (thumb, index, middle, ring, little), spread and tilt in degrees."""

    fingers: tuple[int, ...]
    spread: float
    tilt: float

    def traits(self) -> tuple:
        return (*self.fingers, self.spread, self.tilt)


def class_poses(classes: int) -> list[HandPose]:
    """``classes`` hand configurations, each differing from every other in at least 3 traits where possible."""
    candidates = [HandPose(fingers, spread, tilt) for fingers in itertools.product((FOLDED, BENT, EXTENDED), repeat=5)
                  for spread in SPREADS for tilt in TILTS]
    if not 1 <= classes <= len(candidates):
        raise DataError(f"--classes must be between 1 and {len(candidates)}, got {classes}")
    order = np.random.default_rng(_POSE_SEED).permutation(len(candidates))
    chosen: list[HandPose] = []
    for min_distance in (3, 2, 1):
        for index in order:
            pose = candidates[index]
            if len(chosen) == classes:
                return chosen
            if pose not in chosen and all(_distance(pose, other) >= min_distance for other in chosen):
                chosen.append(pose)
    return chosen


def _distance(a: HandPose, b: HandPose) -> int:
    return sum(x != y for x, y in zip(a.traits(), b.traits()))


@dataclass(frozen=True)
class Scene:
    """Where and how one image is drawn."""

    centre: tuple[float, float]  # pixels
    unit: float  # pixels per hand unit
    angle: float  # degrees, positive = clockwise
    skin: tuple[float, float, float]  # BGR
    brightness: float
    light_direction: float  # radians
    background_seed: int


def _session_scene(rng: np.random.Generator, pose: HandPose, size: int) -> Scene:
    tone = rng.uniform(0.0, 1.0)
    light, dark = np.array([170.0, 195.0, 235.0]), np.array([55.0, 85.0, 140.0])
    skin = tuple(float(v) for v in light * (1 - tone) + dark * tone + rng.normal(0, 6, 3))
    return Scene(centre=(size * rng.uniform(0.38, 0.62), size * rng.uniform(0.55, 0.68)),
                 unit=size * rng.uniform(0.62, 0.76), angle=pose.tilt + rng.uniform(-4, 4), skin=skin,
                 brightness=rng.uniform(0.75, 1.15), light_direction=rng.uniform(0, 2 * math.pi),
                 background_seed=int(rng.integers(2**31)))


def _frame_scene(rng: np.random.Generator, session: Scene, size: int) -> Scene:
    """A small jitter of the session's scene: the next frame of the same capture."""
    jitter = size * 0.006
    return Scene(centre=(session.centre[0] + rng.normal(0, jitter), session.centre[1] + rng.normal(0, jitter)),
                 unit=session.unit * rng.uniform(0.99, 1.01), angle=session.angle + rng.normal(0, 0.8),
                 skin=session.skin, brightness=session.brightness * rng.uniform(0.985, 1.015),
                 light_direction=session.light_direction, background_seed=session.background_seed)


def plain_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A nearly uniform wall: one colour, a soft gradient."""
    base = rng.uniform(150, 245) if rng.random() < 0.7 else rng.uniform(25, 90)
    colour = base + rng.normal(0, 10, 3)
    ramp = np.linspace(-1, 1, size, dtype=np.float32)
    gradient = rng.uniform(-14, 14) * ramp[None, :, None] + rng.uniform(-14, 14) * ramp[:, None, None]
    return np.clip(colour[None, None, :] + gradient, 0, 255).astype(np.uint8)


def cluttered_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A busy room: random rectangles, discs and lines in random colours, softened."""
    image = np.empty((size, size, 3), np.uint8)
    image[:] = rng.integers(30, 230, 3)
    for _ in range(int(rng.integers(12, 24))):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        x0, y0, x1, y1 = (int(v) for v in rng.integers(-size // 4, size + size // 4, 4))
        kind = rng.integers(3)
        if kind == 0:
            cv2.rectangle(image, (x0, y0), (x1, y1), colour, -1)
        elif kind == 1:
            cv2.circle(image, (x0, y0), int(rng.integers(size // 20, size // 4)), colour, -1, cv2.LINE_AA)
        else:
            cv2.line(image, (x0, y0), (x1, y1), colour, int(rng.integers(1, max(2, size // 24))), cv2.LINE_AA)
    return cv2.GaussianBlur(image, (3, 3), 0)


class _Painter:
    """Draws in hand units on an image, with anti-aliased, sub-pixel strokes."""

    SHIFT = 4

    def __init__(self, image: np.ndarray, scene: Scene):
        self.image, self.scene = image, scene
        self.fill = scene.skin
        self.edge = tuple(v * 0.62 for v in scene.skin)
        rad = math.radians(scene.angle)
        self.rotation = np.array([[math.cos(rad), -math.sin(rad)], [math.sin(rad), math.cos(rad)]])

    def px(self, points) -> np.ndarray:
        """Hand units -> fixed-point pixel coordinates (int32, scaled by 2**SHIFT)."""
        points = np.atleast_2d(np.asarray(points, np.float64))
        pixels = points @ self.rotation.T * self.scene.unit + self.scene.centre
        return np.round(pixels * (1 << self.SHIFT)).astype(np.int32)

    def width(self, units: float) -> int:
        return max(1, int(round(units * self.scene.unit)))

    def polygon(self, points) -> None:
        outline = self.px(points)
        cv2.fillPoly(self.image, [outline], self.fill, cv2.LINE_AA, self.SHIFT)
        cv2.polylines(self.image, [outline], True, self.edge, max(1, self.width(0.012)), cv2.LINE_AA, self.SHIFT)

    def capsule(self, start, end, width: float) -> None:
        """A finger segment: a thick line with round ends and a darker rim."""
        (x0, y0), (x1, y1) = self.px(start)[0], self.px(end)[0]
        rim = self.width(0.014)
        cv2.line(self.image, (x0, y0), (x1, y1), self.edge, self.width(width) + 2 * rim, cv2.LINE_AA, self.SHIFT)
        cv2.line(self.image, (x0, y0), (x1, y1), self.fill, self.width(width), cv2.LINE_AA, self.SHIFT)


def _direction(degrees: float) -> np.ndarray:
    """Unit vector at ``degrees`` clockwise from straight up."""
    rad = math.radians(degrees)
    return np.array([math.sin(rad), -math.cos(rad)])


def draw_hand(image: np.ndarray, pose: HandPose, scene: Scene) -> None:
    """Forearm, palm, the four fingers, then the thumb (on top, so a thumb across the palm shows)."""
    paint = _Painter(image, scene)
    paint.polygon([(-0.13, 0.15), (0.13, 0.15), (0.17, 1.6), (-0.17, 1.6)])
    theta = np.linspace(0, 2 * math.pi, 40, endpoint=False)
    paint.polygon(np.stack([0.2 * np.cos(theta), 0.23 * np.sin(theta)], axis=1))
    curled = []
    for k, (base, length, state) in enumerate(zip(FINGER_BASES, FINGER_LENGTHS, pose.fingers[1:])):
        direction = _direction((k - 1.5) * pose.spread)
        base = np.array(base)
        if state == EXTENDED:
            paint.capsule(base, base + direction * length, FINGER_WIDTH)
        elif state == BENT:
            knuckle = base + direction * length * 0.45
            paint.capsule(base, knuckle, FINGER_WIDTH)
            curled.append((knuckle, knuckle + _direction(160 + (k - 1.5) * 8) * length * 0.35))
        else:
            paint.capsule(base, base + direction * 0.05, FINGER_WIDTH * 1.1)
    for start, end in curled:
        paint.capsule(start, end, FINGER_WIDTH * 0.95)
    thumb_base = np.array([-0.15, 0.06])
    thumb = {EXTENDED: _direction(-62) * 0.31, BENT: _direction(-12) * 0.3, FOLDED: np.array([0.21, -0.09])}
    paint.capsule(thumb_base, thumb_base + thumb[pose.fingers[0]], FINGER_WIDTH * 1.15)


def _apply_light(image: np.ndarray, scene: Scene, rng: np.random.Generator) -> np.ndarray:
    """Overall brightness, a directional light gradient and sensor noise."""
    size = image.shape[0]
    ramp = np.linspace(-0.5, 0.5, size, dtype=np.float32)
    gradient = math.cos(scene.light_direction) * ramp[None, :] + math.sin(scene.light_direction) * ramp[:, None]
    gain = scene.brightness * (1.0 + 0.25 * gradient)[..., None]
    noisy = image.astype(np.float32) * gain + rng.normal(0, 3.0, image.shape).astype(np.float32)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def render(pose: HandPose, scene: Scene, cluttered: bool, rng: np.random.Generator, size: int) -> np.ndarray:
    """One BGR image of ``pose`` in ``scene``."""
    background_rng = np.random.default_rng(scene.background_seed)
    image = cluttered_background(background_rng, size) if cluttered else plain_background(background_rng, size)
    draw_hand(image, pose, scene)
    return _apply_light(image, scene, rng)


def _write_class(folder: Path, label: int, pose: HandPose, subset_index: int, per_class: int, size: int,
                 seed: int) -> None:
    folder.mkdir(parents=True)
    session = None
    for index in range(per_class):
        if index % SESSION_LENGTH == 0:
            session_rng = np.random.default_rng([seed, subset_index, label, index // SESSION_LENGTH, 1])
            session = _session_scene(session_rng, pose, size)
        rng = np.random.default_rng([seed, subset_index, label, index, 2])
        image = render(pose, _frame_scene(rng, session, size), subset_index == 1, rng, size)
        ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise DataError(f"{folder}: OpenCV could not encode a JPEG")
        (folder / f"{label}_{index:04d}.jpg").write_bytes(encoded.tobytes())


def synthesize(out: str | Path, classes: int = 36, per_class: int = 20, size: int = 128, seed: int = 0,
               force: bool = False) -> Path:
    """Write ``OUT/Plain Background/<class>/*.jpg`` and ``OUT/Random Background/<class>/*.jpg``.

    ``per_class`` images per class in *each* subset (2 x classes x per_class in all). ``OUT`` must be absent
    or empty unless ``force`` (then it is replaced). The folder appears whole or not at all.
    """
    out = Path(out)
    if per_class < 1 or size < 16:
        raise DataError(f"--per-class must be >= 1 and --size >= 16, got {per_class} and {size}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise DataError(f"{out}: already exists and is not empty (choose another folder or pass --force)")
    poses = class_poses(classes)
    jobs = [(s, label) for s in range(len(SUBSETS)) for label in range(classes)]
    with atomic_dir(out, force=True) as tmp:
        for subset_index, label in tqdm(jobs, desc="synth", unit="class", leave=False):
            _write_class(tmp / SUBSETS[subset_index] / str(label), label, poses[label], subset_index,
                         per_class, size, seed)
    log.info("synth: %d images (%d classes x %d x %d subsets, %d px) in %s",
             len(jobs) * per_class, classes, per_class, len(SUBSETS), size, out)
    return out
