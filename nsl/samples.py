"""What every training step passes around: one labelled image file, and a split saved as a list of files."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from nsl.errors import DataError
from nsl.fileio import atomic_path

SPLITS = ("train", "val", "test")
SPLIT_FIELDS = ("path", "label", "subset", "group", "split", "box", "side")


@dataclass(frozen=True)
class Sample:
    """One image: its file, class index, the dataset subset it came from (e.g. 'Plain Background') and an
    optional group id (images of one group, e.g. consecutive captures, must stay on one side of a split)."""

    path: str
    label: int
    subset: str = ""
    group: str = ""
    box: tuple | None = None  # the hand's landmark box (x0, y0, x1, y1, pixels) when the run crops to hands
    side: str = ""            # that hand's handedness as MediaPipe calls it ("Left" / "Right"), "" unknown


def _box_text(box) -> str:
    return "" if box is None else " ".join(f"{v:.2f}" for v in box)


def _box_of(text: str | None) -> tuple | None:
    return tuple(float(v) for v in text.split()) if text and text.strip() else None


def save_split(split: dict[str, list[Sample]], path: str | Path) -> Path:
    """Write ``{'train': [...], 'val': [...], 'test': [...]}`` as CSV (path, label, subset, group, split, box, side), atomically."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(SPLIT_FIELDS)
        for name in SPLITS:
            for sample in split.get(name, []):
                writer.writerow([sample.path, sample.label, sample.subset, sample.group, name, _box_text(sample.box),
                                 sample.side])
    return path


def load_split(path: str | Path) -> dict[str, list[Sample]]:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: split file not found (was the run made by 'nsl train'?)")
    split: dict[str, list[Sample]] = {name: [] for name in SPLITS}
    with open(path, newline="", encoding="utf-8") as handle:
        for line_no, row in enumerate(csv.DictReader(handle), start=2):
            if row.get("split") not in split:
                raise DataError(f"{path}:{line_no}: split must be one of {', '.join(SPLITS)}, got {row.get('split')!r}")
            split[row["split"]].append(Sample(row["path"], int(row["label"]), row.get("subset") or "",
                                              row.get("group") or "", _box_of(row.get("box")),
                                              row.get("side") or ""))
    return split
