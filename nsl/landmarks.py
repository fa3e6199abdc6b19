"""Hand landmarks as model features, and the file that carries a dataset's landmarks from the edge environment
(MediaPipe) to the train environment (TensorFlow). numpy only: both sides import this one module, so the device
computes exactly the features the landmark model was trained on.

Features, layout ``xyz21`` (version 1), from MediaPipe's 21 image landmarks of one hand in pixels (x, y, and z,
which MediaPipe gives in the same scale as x):

1. relative to the wrist (point 0);
2. scaled so that the largest wrist-to-point distance in the image plane is 1 (the hand's size and the camera
   distance drop out);
3. a left hand mirrored (x -> -x), so a left-handed signer gives the features of the same sign made with the
   right hand ("handedness made canonical"); MediaPipe's handedness label decides which hand it is;

-> 63 float32 values (x0, y0, z0, x1, ...). Layout ``xyz21+world`` appends the 21 world landmarks (metres, about the
hand's centre), mirrored the same way and scaled by their own largest distance: 126 values. Layout
``xyz21+angles`` appends what does not change with the hand's pose in the image: the cosine of the bend at each
finger joint (15), of the spread between neighbouring fingers (4) and the distances between the five fingertips
(10), from the normalised points: 92 values. Nothing depends on skin, light or background, which is why these
features carry over to signers and rooms a CNN has never seen.

The hands file (``nsl data hands DATA`` writes it, ``nsl.train`` reads it) is an ``.npz`` of arrays over the
dataset's images, keyed by the path relative to the dataset folder and the file's sha256 (a changed file is
redone, an unchanged one is not); see ``HandsTable``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nsl.errors import DataError
from nsl.fileio import atomic_path, user_cache_dir

POINTS = 21
WRIST = 0
LAYOUTS = {"xyz21": 63, "xyz21+world": 126, "xyz21+angles": 92}
FINGERS = ((1, 2, 3, 4), (5, 6, 7, 8), (9, 10, 11, 12), (13, 14, 15, 16), (17, 18, 19, 20))  # thumb .. little
TIPS = tuple(finger[-1] for finger in FINGERS)
FEATURES_VERSION = 1
HANDS_FILE_VERSION = 1


def is_left(side) -> bool:
    """Whether MediaPipe's handedness label (``"Left"`` / ``"Right"``, any case; ``""`` unknown) is a left hand:
    the hands that are mirrored, in these features and in the CNN's crop (``nsl.preprocess.mirrors``)."""
    return str(side).lower() == "left"


def _normalise(points: np.ndarray, mirror: np.ndarray) -> np.ndarray:
    """(N, 21, 3) -> wrist-relative, scaled by the largest x-y distance, x mirrored where ``mirror``."""
    centred = points - points[:, WRIST:WRIST + 1, :]
    reach = np.linalg.norm(centred[..., :2], axis=-1).max(axis=1)
    scaled = centred / np.where(reach > 1e-9, reach, 1.0)[:, None, None]
    scaled[..., 0] *= np.where(mirror, -1.0, 1.0)[:, None]
    return scaled


def _unit(vectors: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.where(norm > 1e-9, norm, 1.0)


def shape_features(scaled: np.ndarray) -> np.ndarray:
    """(N, 21, 3) normalised points -> (N, 29): joint bends, finger spreads, fingertip distances."""
    bends, roots = [], []
    for finger in FINGERS:
        chain = (WRIST, *finger)
        bones = _unit(np.stack([scaled[:, b] - scaled[:, a] for a, b in zip(chain, chain[1:])], axis=1))
        bends.append(np.sum(bones[:, :-1] * bones[:, 1:], axis=-1))  # 3 joints
        roots.append(bones[:, 1])  # the finger's first bone beyond the palm
    spreads = [np.sum(a * b, axis=-1)[:, None] for a, b in zip(roots, roots[1:])]
    tips = [np.linalg.norm(scaled[:, a] - scaled[:, b], axis=-1)[:, None]
            for i, a in enumerate(TIPS) for b in TIPS[i + 1:]]
    return np.concatenate(bends + spreads + tips, axis=1)


def hand_features(landmarks: np.ndarray, handedness, world: np.ndarray | None = None,
                  layout: str = "xyz21") -> np.ndarray:
    """Features of one hand (``landmarks`` (21, 3)) or of many ((N, 21, 3), ``handedness`` a sequence) -> (F,) or
    (N, F) float32, by ``layout`` (see the module notes). ``handedness``: 'Left' / 'Right' as MediaPipe labels it."""
    if layout not in LAYOUTS:
        raise DataError(f"landmark feature layout {layout!r}: expected one of {', '.join(LAYOUTS)}")
    points = np.asarray(landmarks, np.float64)
    single = points.ndim == 2
    points = points[None] if single else points
    if points.shape[1:] != (POINTS, 3):
        raise DataError(f"hand landmarks: expected shape (N, {POINTS}, 3), got {points.shape}")
    sides = [handedness] if single else list(handedness)
    mirror = np.array([is_left(side) for side in sides])
    scaled = _normalise(points, mirror)
    parts = [scaled.reshape(len(points), -1)]
    if layout == "xyz21+angles":
        parts.append(shape_features(scaled))
    if layout == "xyz21+world":
        if world is None:
            raise DataError("landmark feature layout 'xyz21+world' needs the world landmarks")
        world = np.asarray(world, np.float64)
        parts.append(_normalise(world[None] if single else world, mirror).reshape(len(points), -1))
    features = np.concatenate(parts, axis=1).astype(np.float32)
    return features[0] if single else features


def default_hands_path(root: str | Path) -> Path:
    """Where ``nsl data hands`` keeps a dataset's hands file when not told (the dataset may be read-only):
    the user cache, one file per dataset folder."""
    root = Path(root).expanduser().absolute()
    key = hashlib.sha256(str(root).encode()).hexdigest()[:12]
    return user_cache_dir() / "hands" / f"{root.name or 'data'}-{key}.npz"


def feature_spec(layout: str = "xyz21") -> dict:
    """What a bundle records so the device computes the features training used."""
    return {"layout": layout, "size": LAYOUTS[layout], "version": FEATURES_VERSION, "origin": "wrist",
            "scale": "max wrist distance (x, y)", "mirror": "Left hands: x -> -x", "units": "pixels"}


@dataclass
class HandsTable:
    """Per image of a dataset: whether MediaPipe found a hand and what it found.

    Arrays (N rows): ``paths`` (relative to ``root``), ``sha256``, ``found`` (bool), ``landmarks`` (N, 21, 3;
    pixels, NaN when not found), ``world`` (N, 21, 3; metres), ``handedness`` ('Left' | 'Right' | ''),
    ``handedness_score``, ``box`` (N, 4: x0, y0, x1, y1 spanned by the landmarks, pixels), ``crop_box`` (N, 4: the
    box the app would cut, with ``meta['margin']``), ``image_size`` (N, 2: width, height). ``meta``: how it was made
    (hand model, padding, margin, square, mode).
    """

    root: str
    paths: np.ndarray
    sha256: np.ndarray
    found: np.ndarray
    landmarks: np.ndarray
    world: np.ndarray
    handedness: np.ndarray
    handedness_score: np.ndarray
    box: np.ndarray
    crop_box: np.ndarray
    image_size: np.ndarray
    meta: dict = field(default_factory=dict)
    _index: dict = field(default_factory=dict, repr=False)
    _resolved_root: Path | None = field(default=None, repr=False)

    ARRAYS = ("paths", "sha256", "found", "landmarks", "world", "handedness", "handedness_score", "box", "crop_box",
              "image_size")

    @classmethod
    def empty(cls, root: str | Path, meta: dict | None = None) -> "HandsTable":
        return cls.from_rows(str(root), [], meta or {})

    @classmethod
    def from_rows(cls, root: str, rows: list[dict], meta: dict) -> "HandsTable":
        """Rows as ``hand_row`` makes them -> a table."""
        nan_points = np.full((POINTS, 3), np.nan, np.float32)
        nan_box = np.full(4, np.nan, np.float32)

        def column(name, default, dtype):
            return np.array([row.get(name, default) if row.get(name) is not None else default for row in rows],
                            dtype=dtype).reshape((len(rows), *np.shape(default)))

        return cls(root=root, paths=np.array([r["path"] for r in rows], dtype=str),
                   sha256=np.array([r["sha256"] for r in rows], dtype=str),
                   found=np.array([bool(r.get("found")) for r in rows], dtype=bool),
                   landmarks=column("landmarks", nan_points, np.float32), world=column("world", nan_points, np.float32),
                   handedness=np.array([r.get("handedness") or "" for r in rows], dtype=str),
                   handedness_score=np.array([r.get("handedness_score") or 0.0 for r in rows], dtype=np.float32),
                   box=column("box", nan_box, np.float32), crop_box=column("crop_box", nan_box, np.float32),
                   image_size=column("image_size", np.zeros(2, np.int64), np.int64), meta=dict(meta))

    def rows(self) -> list[dict]:
        return [{name: getattr(self, name)[i] for name in self.ARRAYS} for i in range(len(self.paths))]

    def __len__(self) -> int:
        return len(self.paths)

    def index_of(self, relative_path: str) -> int | None:
        if not self._index:
            self._index = {str(p): i for i, p in enumerate(self.paths)}
        return self._index.get(str(relative_path))

    def row_for(self, path: str | Path) -> int | None:
        """The row of an image given by its absolute path (or its path relative to the dataset folder)."""
        path = Path(path)
        if self._resolved_root is None:
            self._resolved_root = Path(self.root).resolve()
        try:
            relative = path.resolve().relative_to(self._resolved_root) if path.is_absolute() else path
        except ValueError:
            return None
        return self.index_of(relative.as_posix())

    def features(self, rows: np.ndarray, layout: str = "xyz21") -> np.ndarray:
        """Features (``hand_features``) of the given rows (all found)."""
        return hand_features(self.landmarks[rows], self.handedness[rows], self.world[rows], layout)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        meta = {**self.meta, "root": self.root, "version": HANDS_FILE_VERSION}
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as handle:
                np.savez_compressed(handle, meta=np.array(json.dumps(meta, ensure_ascii=False)),
                                    **{name: getattr(self, name) for name in self.ARRAYS})
        return path

    @classmethod
    def load(cls, path: str | Path) -> "HandsTable":
        path = Path(path)
        if not path.is_file():
            raise DataError(f"{path}: hands file not found (make it with 'nsl data hands DATA' in the edge "
                            f"environment)")
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                arrays = {name: data[name] for name in cls.ARRAYS}
        except (OSError, ValueError, KeyError, json.JSONDecodeError) as err:
            raise DataError(f"{path}: not a hands file of nsl data hands ({type(err).__name__}: {err})") from None
        if meta.get("version") != HANDS_FILE_VERSION:
            raise DataError(f"{path}: hands file version {meta.get('version')!r} is not {HANDS_FILE_VERSION}; "
                            f"make it again with 'nsl data hands'")
        return cls(root=meta.get("root", ""), meta=meta, **arrays)

    def summary(self) -> dict:
        """Counts: images, hands found, and the images without one."""
        missing = [str(p) for p, f in zip(self.paths, self.found) if not f]
        return {"images": int(len(self)), "found": int(self.found.sum()), "missing": missing}
