"""TFRecords of the dataset's authors -> a cache folder of image files, so every later step works with paths.

Records are ``tf.train.Example`` with the encoded image under ``image`` (also accepted: ``image/encoded``,
``image_raw``) and the class index under ``label`` (also ``image/class/label``). The images are written as they
are (no re-encoding) to ``CACHE/tfrecords/<key>/<label>/<file>_<n>.<ext>``, where ``CACHE`` is ``NSL_CACHE_DIR``
or ``~/.cache/nsl`` (``XDG_CACHE_HOME`` respected) and ``key`` hashes the records' paths, sizes and modification
times: a changed file is extracted again, an unchanged one once. The folder appears whole or not at all.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

from tqdm import tqdm

from nsl.errors import DataError
from nsl.fileio import atomic_dir

log = logging.getLogger(__name__)

IMAGE_KEYS = ("image", "image/encoded", "image_raw")
LABEL_KEYS = ("label", "image/class/label")


def cache_root() -> Path:
    if os.environ.get("NSL_CACHE_DIR"):
        return Path(os.environ["NSL_CACHE_DIR"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "nsl"


def _cache_key(records: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in records:
        stat = path.stat()
        digest.update(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def _feature(features, keys: tuple[str, ...], path: Path, number: int):
    for key in keys:
        if key in features:
            return features[key]
    raise DataError(f"{path}: record {number} has no feature {' / '.join(keys)} "
                    f"(it has: {', '.join(sorted(features)) or 'none'}); expected 'image' (JPEG bytes) and 'label'")


def _suffix(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return ".png"
    if data.startswith(b"BM"):
        return ".bmp"
    return ".jpg"


def _extract_file(path: Path, out: Path) -> int:
    """Write the images of one TFRecord file into ``out/<label>/``; returns how many."""
    import tensorflow as tf

    count = 0
    try:
        for number, raw in enumerate(tf.data.TFRecordDataset(str(path)).as_numpy_iterator()):
            features = tf.train.Example.FromString(raw).features.feature
            image = _feature(features, IMAGE_KEYS, path, number).bytes_list.value
            label = _feature(features, LABEL_KEYS, path, number).int64_list.value
            if len(image) != 1 or len(label) != 1 or label[0] < 0:
                raise DataError(f"{path}: record {number} must hold one image and one label >= 0")
            folder = out / str(label[0])
            folder.mkdir(exist_ok=True)
            (folder / f"{path.name}_{number:06d}{_suffix(image[0])}").write_bytes(image[0])
            count += 1
    except tf.errors.OpError as err:
        raise DataError(f"{path}: not a readable TFRecord file ({err.message.splitlines()[0]})") from None
    return count


def extract_tfrecords(records: list[Path]) -> Path:
    """Extract ``records`` into the cache once; returns the cache folder (one folder per label)."""
    from nsl.env import require

    target = cache_root() / "tfrecords" / _cache_key(records)
    if target.is_dir():
        log.info("TFRecords: using the images extracted before in %s", target)
        return target
    require("train", "data (reading TFRecords)")
    with atomic_dir(target) as tmp:
        total = sum(_extract_file(path, tmp) for path in tqdm(records, desc="extracting TFRecords", unit="file",
                                                               leave=False))
        if total == 0:
            raise DataError(f"{records[0].parent}: the TFRecord files hold no records")
    log.info("TFRecords: extracted %d images from %d file(s) into %s", total, len(records), target)
    return target
