"""A captured dataset of a user's own signers, in the published layout: ``OUT/<class index>/`` holds
``SIGNER_SESSION_CLASS_NUMBER.jpg``, each the app's own crop (``nsl.preprocess.crop_hand`` of the tracker's
hand box, colour, ``size`` x ``size``), and ``OUT/landmarks.npz`` (``nsl.landmarks.HandsTable``) their hands:
the 21 landmarks and the box in the saved crop's pixels, the world landmarks, the handedness.

``CaptureStore`` knows the file names and what is there already (so a session resumes: numbers go on, counts
include earlier sessions); ``CaptureStore.save`` writes one crop atomically and ``flush`` the landmarks file.
Signer and session carry no underscore, so ``group_pattern='^([^_]+)_'`` groups by signer and
``'^([^_]+_[^_]+)_'`` by signer and session (``nsl train split=grouped``).
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from nsl.errors import NslError
from nsl.fileio import atomic_path, sha256_of
from nsl.landmarks import HandsTable
from nsl.labels import Label
from nsl.preprocess import CropSpec, crop_box, crop_hand

log = logging.getLogger(__name__)

LANDMARKS_FILE = "landmarks.npz"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,39}$")  # signer and session: no underscore, no path characters
SIGNER_PATTERN = "^([^_]+)_"                           # the group_pattern that groups captured files by signer


def check_name(kind: str, value: str) -> str:
    if not NAME.match(value or ""):
        raise NslError(f"--{kind} {value!r}: use letters, digits and '-' (at most 40, no '_', no spaces), "
                       f"e.g. --{kind} asha-1; the file names carry it and split=grouped reads it back")
    return value


def default_session() -> str:
    """Today's date: one session per day unless --session says otherwise (a rerun the same day resumes it)."""
    return time.strftime("%Y%m%d")


@dataclass(frozen=True)
class Saved:
    """One crop written: where, and the hand row of the landmarks file."""

    path: Path
    row: dict


class CaptureStore:
    """The folder ``out`` as a captured dataset for ``labels``, written by ``signer`` in ``session``."""

    def __init__(self, out: str | Path, labels: list[Label], signer: str, session: str, spec: CropSpec):
        self.out = Path(out).expanduser()
        self.labels, self.spec = labels, spec
        self.signer, self.session = check_name("signer", signer), check_name("session", session)
        if self.out.exists() and not self.out.is_dir():
            raise NslError(f"--out {self.out}: is a file; name a folder (it is created, or resumed when it holds "
                           f"an earlier capture)")
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise NslError(f"--out {self.out}: cannot create this folder ({err.strerror or err})") from None
        self.table = self._load_table()
        self.rows = [{**row, "path": str(row.pop("paths"))} for row in self.table.rows()]  # as from_rows takes them
        self.counts = {label.index: self._files(label.index) for label in labels}
        self.next_number = {label.index: self._next_number(label.index) for label in labels}
        self.dirty = False

    def _load_table(self) -> HandsTable:
        path = self.out / LANDMARKS_FILE
        meta = {"hand_model": "", "mode": "video", "padding": 0.0, "margin": self.spec.margin,
                "square": self.spec.square, "capture": True, "coordinates": "saved crop pixels"}
        return HandsTable.load(path) if path.is_file() else HandsTable.empty(self.out, meta)

    def prefix(self, index: int) -> str:
        return f"{self.signer}_{self.session}_{index:02d}_"

    def _files(self, index: int) -> list[Path]:
        folder = self.out / str(index)
        return sorted(folder.glob("*.jpg")) if folder.is_dir() else []

    def _next_number(self, index: int) -> int:
        numbers = [int(p.stem.rsplit("_", 1)[1]) for p in self.counts[index]
                   if p.name.startswith(self.prefix(index)) and p.stem.rsplit("_", 1)[1].isdigit()]
        return max(numbers, default=-1) + 1

    def count(self, index: int, signer_only: bool = False) -> int:
        files = self.counts[index]
        return sum(p.name.startswith(f"{self.signer}_") for p in files) if signer_only else len(files)

    def first_incomplete(self, target: int) -> int:
        """The first class this signer has fewer than ``target`` crops of (a resumed session starts there)."""
        return next((pos for pos, label in enumerate(self.labels) if self.count(label.index, True) < target), 0)

    def save(self, index: int, frame_rgb: np.ndarray, hand) -> Saved:
        """Crop ``hand`` from ``frame_rgb`` as the device does and write it under the next free number."""
        image = crop_hand(frame_rgb, hand.box, self.spec)
        folder = self.out / str(index)
        folder.mkdir(exist_ok=True)
        path = folder / f"{self.prefix(index)}{self.next_number[index]:04d}.jpg"
        ok, data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
        if not ok:
            raise NslError(f"{path}: OpenCV cannot encode the crop")
        with atomic_path(path) as tmp:
            Path(tmp).write_bytes(data.tobytes())
        self.next_number[index] += 1
        self.counts[index].append(path)
        row = self._row(path, hand, crop_box(hand.box, self.spec))
        self.rows.append(row)
        self.dirty = True
        return Saved(path, row)

    def _row(self, path: Path, hand, box) -> dict:
        """The hand in the saved crop's pixels (the crop is ``box`` of the frame resized to size x size)."""
        x0, y0, x1, y1 = box
        scale = np.array([self.spec.size / (x1 - x0), self.spec.size / (y1 - y0)])
        row = {"path": path.relative_to(self.out).as_posix(), "sha256": sha256_of(path), "found": True,
               "image_size": [self.spec.size, self.spec.size], "handedness": hand.handedness,
               "handedness_score": hand.score, "world": hand.world}
        if hand.landmarks is not None:
            points = np.array(hand.landmarks, dtype=float)
            points[:, :2] = (points[:, :2] - (x0, y0)) * scale
            points[:, 2] *= scale[0]
            box_in_crop = [*points[:, :2].min(axis=0), *points[:, :2].max(axis=0)]
            row.update(landmarks=points, box=box_in_crop, crop_box=[0.0, 0.0, self.spec.size, self.spec.size])
        return row

    def discard(self, saved: list[Saved]) -> None:
        """Remove the crops of a take (redo): their files and their landmark rows."""
        paths = {item.path for item in saved}
        for path in paths:
            path.unlink(missing_ok=True)
        for index in self.counts:
            self.counts[index] = [p for p in self.counts[index] if p not in paths]
        relative = {p.relative_to(self.out).as_posix() for p in paths}
        self.rows = [row for row in self.rows if str(row["path"]) not in relative]
        self.dirty = True

    def flush(self) -> Path:
        """Write the landmarks file (atomically) when something changed; rows of files gone are dropped."""
        path = self.out / LANDMARKS_FILE
        if self.dirty:
            kept = [row for row in self.rows if (self.out / str(row["path"])).is_file()]
            HandsTable.from_rows(str(self.out.resolve()), kept, self.table.meta).save(path)
            self.dirty = False
        return path

    def summary(self) -> dict:
        return {"out": str(self.out), "signer": self.signer, "session": self.session,
                "landmarks": str(self.out / LANDMARKS_FILE), "group_pattern": SIGNER_PATTERN,
                "classes": [{**label.fields(), "images": self.count(label.index),
                             "this_signer": self.count(label.index, True)} for label in self.labels]}
