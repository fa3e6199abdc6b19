"""Class labels: the 36 NSL consonants by default, or a user's own label set.

A labels file is a CSV with columns ``index,name,roman,ascii`` (``roman`` and ``ascii`` optional). Labels are
keyed by index; ``name`` holds the Devanagari, ``roman`` its ISO 15919 romanisation (ट ṭa, त ta: every consonant
distinct) and ``ascii`` a plain-ASCII spelling that is distinct too (Velthuis: ट .ta, त ta), which the overlay
draws when no Devanagari font is installed. Within a label set no two labels share a name, roman or ascii
spelling (compared without case), so no summary, overlay or folder match can merge two classes.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from nsl.errors import NslError

BUILTIN = {"nsl36": "nsl36.csv"}


@dataclass(frozen=True)
class Label:
    index: int
    name: str
    roman: str
    ascii: str = ""

    def __post_init__(self):
        if not self.ascii:  # a label set without an ascii column: the roman when it is ASCII, else the index
            object.__setattr__(self, "ascii", self.roman if self.roman.isascii() else f"#{self.index}")

    def display(self, devanagari: bool = True) -> str:
        """What the overlay draws: the Devanagari with a font that has it, else the distinct ASCII spelling."""
        return self.name if devanagari else self.ascii

    def fields(self) -> dict:
        """The label as every JSON output carries it, whatever fonts the machine has."""
        return {"index": self.index, "name": self.name, "roman": self.roman, "ascii": self.ascii}


def _parse(text: str, source: str) -> list[Label]:
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows or "index" not in rows[0] or "name" not in rows[0]:
        raise NslError(f"{source}: a labels file needs a header 'index,name[,roman]' and one row per class")
    labels = []
    for line_no, row in enumerate(rows, start=2):
        try:
            index = int(row["index"])
        except (TypeError, ValueError):
            raise NslError(f"{source}:{line_no}: index {row['index']!r} is not an integer") from None
        name = (row.get("name") or "").strip()
        roman = (row.get("roman") or name).strip()
        labels.append(Label(index, name, roman, (row.get("ascii") or "").strip()))
    labels.sort(key=lambda label: label.index)
    if [label.index for label in labels] != list(range(len(labels))):
        raise NslError(f"{source}: label indices must be 0..{len(labels) - 1} without gaps or repeats")
    _check_distinct(labels, source)
    return labels


def _check_distinct(labels: list[Label], source: str) -> None:
    """Two labels with one spelling would merge on screen and in summaries: a one-line error naming both."""
    for column in ("name", "roman", "ascii"):
        seen: dict[str, Label] = {}
        for label in labels:
            key = getattr(label, column).casefold()
            if key in seen:
                raise NslError(f"{source}: labels {seen[key].index} and {label.index} share the {column} "
                               f"{getattr(label, column)!r}; give every class its own {column} spelling")
            seen[key] = label


def load_labels(spec: str | Path) -> list[Label]:
    """Load a built-in label set by name (``nsl36``) or a labels CSV by path."""
    if str(spec) in BUILTIN:
        text = resources.files("nsl").joinpath("labels", BUILTIN[str(spec)]).read_text(encoding="utf-8")
        return _parse(text, f"built-in labels {spec!r}")
    path = Path(spec)
    if not path.is_file():
        raise NslError(f"{path}: labels file not found (use 'nsl36' or a CSV with index,name,roman)")
    return _parse(path.read_text(encoding="utf-8"), str(path))


def labels_from_names(names: list[str]) -> list[Label]:
    """A label set made from class folder names (a user's own classes)."""
    return [Label(i, name, name) for i, name in enumerate(names)]  # folder names: distinct already


def label_keys(labels: list["Label"]) -> dict[str, int]:
    """Every name a class folder may carry for a label (its index, Devanagari name or romanisation) -> index.
    The first label to claim a key keeps it."""
    keys: dict[str, int] = {}
    for label in labels:
        for key in (str(label.index), label.name, label.roman, label.ascii):
            keys.setdefault(key, label.index)
    return keys


def labels_to_dicts(labels: list[Label]) -> list[dict]:
    return [label.fields() for label in labels]


def labels_from_dicts(rows: list[dict], source: str = "labels") -> list[Label]:
    """``[{"index": 0, "name": "क", "roman": "ka"}, ...]`` (a run's labels.json, a bundle's ``labels``) -> labels;
    a one-line error starting with ``source`` unless it is a non-empty list whose indices are 0, 1, 2, ..."""
    if not isinstance(rows, list) or not rows:
        raise NslError(f"{source}: expected a non-empty list of {{index, name, roman}} objects, "
                       f"got {type(rows).__name__} {str(rows)[:40]!r}")
    labels = []
    for position, row in enumerate(rows):
        index = row.get("index") if isinstance(row, dict) else None
        name = row.get("name") if isinstance(row, dict) else None
        if type(index) is not int or index != position or not isinstance(name, str):
            raise NslError(f"{source}: entry {position} must be {{\"index\": {position}, \"name\": TEXT, ...}} "
                           f"(the labels in output order), got {str(row)[:60]}")
        labels.append(Label(index, name, str(row.get("roman", name)), str(row.get("ascii") or "")))
    return _respelled(labels) if all(isinstance(row, dict) and "ascii" not in row for row in rows) else labels


def _respelled(labels: list[Label]) -> list[Label]:
    """Labels saved before the ascii spelling existed: the 36 consonants take today's distinct spellings (their
    roman then merged ट/त and four more pairs); any other set stays as it was saved."""
    builtin = load_labels("nsl36")
    if [label.name for label in labels] != [label.name for label in builtin]:
        return labels
    return builtin
