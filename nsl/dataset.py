"""Reading a dataset folder into labelled samples: the published NSL layout, class folders, or TFRecords.

Layouts (detected):

- ``nsl``: the published layout, ``ROOT/<subset>/<class>/*.jpg`` (``Plain Background``, ``Random Background``);
  the dataset is the union of its subsets and each sample remembers its subset.
- ``folders``: ``ROOT/<class>/*.jpg`` (images may sit in sub-folders of a class folder).
- ``tfrecord``: ``ROOT`` is, or holds, TFRecord files of ``tf.train.Example`` with ``image`` (encoded bytes) and
  ``label`` (int64). They are extracted once into a cache of image files (``nsl.train.tfrecords``, which registers itself here:
  TensorFlow reads the records, so a TFRecord dataset needs the train environment), so every
  later step works with paths.

Labels: ``nsl36`` (class folder ``N`` -> consonant ``N``; the label set is the first max(N)+1 consonants, so
a 5-class synthetic set gets 5 labels), ``auto`` (the folder names, in natural order: ``10`` after ``9``), or
the path of a labels CSV (``index,name,roman``; a folder matches a label by index, name or roman).

No TensorFlow here (the edge environment scans folders too); only TFRecord extraction imports it, lazily.
"""

from __future__ import annotations

import errno
import logging
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from nsl.errors import DataError
from nsl.fileio import IMAGE_SUFFIXES, is_image_file
from nsl.labels import Label, label_keys, labels_from_names, load_labels
from nsl.preprocess import open_header, too_many_pixels
from nsl.samples import Sample

log = logging.getLogger(__name__)

IGNORED_NAMES = ("__MACOSX", "Thumbs.db", "desktop.ini")
RECORD_SUFFIXES = (".tfrecord", ".tfrecords", ".tfrec", ".record")
_record_extractor: Callable[[list[Path]], Path] | None = None


def register_record_extractor(extract: Callable[[list[Path]], Path]) -> None:
    """Called by the train side (TensorFlow reads TFRecords): ``extract(records) -> folder of class folders``."""
    global _record_extractor
    _record_extractor = extract


def is_tfrecord(path: Path) -> bool:
    """``x.tfrecord``, ``x.tfrec``, ``x.record`` or a shard such as ``train.tfrecord-00000-of-00004``."""
    name = path.name.lower()
    return path.suffix.lower() in RECORD_SUFFIXES or any(f"{s}-" in name for s in RECORD_SUFFIXES)


def find_tfrecords(root: Path) -> list[Path]:
    """The TFRecord files that ``root`` is or holds (recursively); [] for an image folder."""
    if root.is_file():
        return [root] if is_tfrecord(root) else []
    return sorted(p for p in root.rglob("*") if p.is_file() and is_tfrecord(p) and not p.name.startswith("."))


@dataclass
class DatasetIndex:
    """What a dataset folder holds: its labels, its image files, and the files that cannot be used."""

    root: Path
    layout: str  # "nsl" | "folders" | "tfrecord"
    labels: list[Label]
    samples: list[Sample]
    bad_files: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    other_files: list[str] = field(default_factory=list)  # not image files by their extension (ignored)

    def counts(self) -> dict[str, dict[int, int]]:
        """Images per subset ("" for a flat layout) and label."""
        table: dict[str, dict[int, int]] = {}
        for sample in self.samples:
            per_label = table.setdefault(sample.subset, {})
            per_label[sample.label] = per_label.get(sample.label, 0) + 1
        return table


def natural_key(name: str) -> tuple:
    """Sort key that orders digit runs as numbers: '9' < '10', 'img2' < 'img10'."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part.lower())
                 for part in re.split(r"(\d+)", name) if part)


def _visible(path: Path) -> bool:
    return not path.name.startswith(".") and path.name not in IGNORED_NAMES


def _children(folder: Path) -> tuple[list[Path], list[Path]]:
    """(sub-folders, files) of ``folder``, hidden entries left out, in natural order."""
    try:
        entries = sorted((p for p in folder.iterdir() if _visible(p)), key=lambda p: natural_key(p.name))
    except OSError as err:
        raise DataError(f"{folder}: cannot list the folder ({err.strerror or err})") from None
    return [p for p in entries if p.is_dir()], [p for p in entries if p.is_file()]


def _class_files(folder: Path) -> list[Path]:
    """All files under a class folder (recursively), hidden ones left out, in natural order."""
    files = [p for p in folder.rglob("*") if p.is_file()
             and all(_visible(Path(part)) for part in p.relative_to(folder).parts)]
    return sorted(files, key=lambda p: natural_key(str(p.relative_to(folder))))


def _detect_layout(root: Path) -> tuple[str, dict[str, list[Path]]]:
    """The layout and its class folders by subset ("" for a flat layout)."""
    folders, files = _children(root)
    if not folders:
        has_images = any(is_image_file(p) for p in files)
        hint = " (the images must sit in one folder per class)" if has_images else ""
        raise DataError(f"{root}: no class folders found{hint}")
    direct_images = [f for f in folders if any(is_image_file(p) for p in _children(f)[1])]
    if direct_images:
        return "folders", {"": folders}
    subsets = {f.name: _children(f)[0] for f in folders}
    if len(folders) == 1 and subsets[folders[0].name] and not any(
            is_image_file(p) for sub in subsets[folders[0].name] for p in _children(sub)[1]):
        log.info("%s: using the single folder inside it, %s", root, folders[0].name)
        return _detect_layout(folders[0])
    if all(subsets.values()):
        return "nsl", subsets
    return "folders", {"": folders}


def _label_map(labels_spec: str, class_names: list[str], root: Path) -> tuple[list[Label], dict[str, int]]:
    """The label set and folder name -> label index."""
    spec = str(labels_spec)
    if spec == "auto":
        labels = labels_from_names(class_names)
        return labels, {label.name: label.index for label in labels}
    builtin = load_labels(spec)
    if spec == "nsl36":
        bad = [n for n in class_names if not n.isdigit() or int(n) >= len(builtin)]
        if bad:
            raise DataError(f"{root}: class folder '{bad[0]}' is not a number 0..{len(builtin) - 1}; "
                            f"name the folders by class index or use labels=auto (folder names as labels)")
        labels = builtin[:max(int(n) for n in class_names) + 1]
        return labels, {n: int(n) for n in class_names}
    keys = label_keys(builtin)
    unknown = [n for n in class_names if n not in keys]
    if unknown:
        raise DataError(f"{spec}: labels file does not match class folder '{unknown[0]}' in {root} "
                        f"(a folder must be named by a label's index, name or roman)")
    return builtin, {n: keys[n] for n in class_names}


def _collect(root: Path, layout: str, class_folders: dict[str, list[Path]], labels_spec) -> DatasetIndex:
    names = sorted({f.name for folders in class_folders.values() for f in folders}, key=natural_key)
    labels, label_of = _label_map(labels_spec, names, root)
    index = DatasetIndex(root, layout, labels, samples=[])
    for subset, folders in class_folders.items():
        for folder in folders:
            files = _class_files(folder)
            images = [p for p in files if is_image_file(p)]
            index.other_files += [str(p) for p in files if not is_image_file(p)]
            if not images:
                raise DataError(f"{folder}: class folder has no images ({', '.join(IMAGE_SUFFIXES)}); "
                                f"add images or remove the folder")
            for path in images:
                if path.stat().st_size == 0:
                    index.bad_files.append((str(path), "empty file (0 bytes)"))
                else:
                    index.samples.append(Sample(str(path), label_of[folder.name], subset))
    return index


def _missing_reason(root: Path) -> str:
    """Why ``root`` does not exist: no such path, a link to nothing, or a loop of symbolic links."""
    if not root.is_symlink():
        return "dataset folder not found"
    try:
        root.resolve(strict=True)
    except (RuntimeError, OSError) as err:  # Python 3.11-3.12 report a loop as RuntimeError, later ones as ELOOP
        if isinstance(err, RuntimeError) or err.errno == errno.ELOOP:
            return "a loop of symbolic links (it leads back to itself); point it at the dataset folder"
    return f"a symbolic link to {os.readlink(root)}, which does not exist"


def scan_dataset(root: str | Path, labels: str | Path = "nsl36") -> DatasetIndex:
    """Index a dataset folder (no decoding): labels, samples (absolute paths) in a fixed order, and zero-byte
    files as bad files."""
    if root is None or str(root) in ("", "None"):
        raise DataError("no dataset given: pass data=FOLDER (the published layout, class folders or TFRecords)")
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(f"{root}: {_missing_reason(root)}")
    records = find_tfrecords(root)
    if records:
        if _record_extractor is None:
            raise DataError(f"{root}: TFRecord files; reading them needs TensorFlow (the train environment: "
                            f"pip install 'nsl-edge[train]'), or extract them to class folders first")
        index = scan_dataset(_record_extractor(records), labels)
        index.root, index.layout = root, "tfrecord"
        return index
    if not root.is_dir():
        raise DataError(f"{root}: not a folder (expected a dataset folder or TFRecord files)")
    root = root.absolute()  # samples carry absolute paths: a split file stays valid from any folder
    _, files = _children(root)
    if not _children(root)[0] and not files:
        raise DataError(f"{root}: dataset folder is empty")
    layout, class_folders = _detect_layout(root)
    index = _collect(root, layout, class_folders, labels)
    log.debug("%s: %s layout, %d images, %d classes", root, layout, len(index.samples), len(index.labels))
    return index


def probe_image(path: str | Path) -> str | None:
    """Why the file cannot be used as an image (None when it decodes). A quick reduced-size JPEG decode."""
    try:
        with open_header(path) as image:
            if too_many_pixels(*image.size):
                return too_many_pixels(*image.size)
            image.draft("RGB", (max(1, image.width // 8), max(1, image.height // 8)))
            image.load()
    except UnidentifiedImageError:
        return "not an image (unknown format)"
    except OSError as err:
        return f"unreadable ({err})"
    except (ValueError, SyntaxError, Image.DecompressionBombError) as err:
        return f"unreadable ({err})"
    return None


def find_unreadable(paths: list[str], workers: int = 4) -> list[tuple[str, str]]:
    """(path, reason) for every file in ``paths`` that does not decode."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        reasons = list(tqdm(pool.map(probe_image, paths, chunksize=64), total=len(paths), desc="checking images",
                            unit="img", leave=False, disable=len(paths) < 2000))
    return [(path, reason) for path, reason in zip(paths, reasons) if reason]


def load_for_training(root: str | Path, labels: str | Path = "nsl36", max_bad_fraction: float = 0.05) -> DatasetIndex:
    """Scan and decode-check every image; bad files are listed, dropped, and stop the run past a share."""
    index = scan_dataset(root, labels)
    index.bad_files += find_unreadable([s.path for s in index.samples])
    bad_paths = {path for path, _ in index.bad_files}
    index.samples = [s for s in index.samples if s.path not in bad_paths]
    total = len(index.samples) + len(index.bad_files)
    if index.bad_files:
        first = "; ".join(f"{path} ({reason})" for path, reason in index.bad_files[:3])
        log.warning("%s: %d of %d images cannot be used and are skipped, e.g. %s", index.root,
                    len(index.bad_files), total, first)
        share, limit = len(index.bad_files) / total, max_bad_fraction
        if share > limit:
            raise DataError(f"{index.root}: {share:.0%} of the images cannot be used (more than "
                            f"max_bad_fraction={limit}), e.g. {index.bad_files[0][0]}; "
                            f"see 'nsl data check {index.root}'")
    present = {s.label for s in index.samples}
    if len(present) < 2:
        raise DataError(f"{index.root}: images of {len(present)} class found; a classifier needs at least 2")
    return index

