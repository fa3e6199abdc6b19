"""Perceptual hashes of image files and the near-duplicate pairs and groups they imply.

A 64-bit pHash (ImageHash) per file; two files are near-duplicates when their hashes differ in at most
``max_distance`` bits. The pair search compares every hash with every later one in blocks (numpy popcount):
54,000 hashes take about 10 s on one core, with memory bounded by the block size. Restricting the search to
buckets (a class, say) makes it proportionally cheaper.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image
from tqdm import tqdm

from nsl.preprocess import open_header, too_many_pixels

log = logging.getLogger(__name__)

BLOCK_ROWS = 256
NO_HASH = np.uint64(0)  # stands for a file that could not be hashed; such rows are never paired


DECODE_SIZE = 256  # big photos are decoded at a reduced scale (JPEG draft), at least this size


def open_reduced(source) -> tuple[Image.Image, tuple[int, int], str]:
    """(decoded image, original (width, height), original mode) of a path or file object; big JPEGs are
    decoded at a reduced scale. Raises OSError / ValueError / SyntaxError when the file does not decode."""
    image = open_header(source)  # the pixel limit of every decoder (nsl.preprocess), checked before decoding
    size, mode = image.size, image.mode
    if too_many_pixels(*size):
        image.close()
        raise ValueError(too_many_pixels(*size))
    image.draft("RGB", (DECODE_SIZE, DECODE_SIZE))
    image.load()
    return image, size, mode


def phash_image(image: Image.Image) -> int:
    """64-bit pHash of a decoded image, as an int."""
    import imagehash

    bits = imagehash.phash(image.convert("L")).hash.flatten()
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def phash_file(path: str) -> int | None:
    """The file's perceptual hash, or None when it does not decode."""
    try:
        image = open_reduced(path)[0]
        with image:
            return phash_image(image)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None


def phash_files(paths: list[str], workers: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """(uint64 hashes, bool mask of the files that hashed) for ``paths``, in order."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(tqdm(pool.map(phash_file, paths, chunksize=32), total=len(paths), desc="hashing images",
                            unit="img", leave=False, disable=len(paths) < 500))
    valid = np.array([value is not None for value in results], dtype=bool)
    hashes = np.array([value or 0 for value in results], dtype=np.uint64)
    return hashes, valid


def hamming(a: int, b: int) -> int:
    return int(a ^ b).bit_count()


def near_pairs(hashes: np.ndarray, max_distance: int, valid: np.ndarray | None = None) -> np.ndarray:
    """Index pairs (i < j), shape (K, 2), of hashes within ``max_distance`` bits of each other."""
    hashes = np.asarray(hashes, dtype=np.uint64)
    valid = np.ones(len(hashes), bool) if valid is None else np.asarray(valid, bool)
    found = []
    for start in range(0, len(hashes), BLOCK_ROWS):
        rows = hashes[start:start + BLOCK_ROWS]
        distance = np.bitwise_count(rows[:, None] ^ hashes[None, start:])
        i, j = np.nonzero(distance <= max_distance)
        keep = j > i  # columns start at ``start``: j > i means a later file, and never the file itself
        i, j = i[keep] + start, j[keep] + start
        both = valid[i] & valid[j]
        found.append(np.stack([i[both], j[both]], axis=1))
    return np.concatenate(found) if found else np.empty((0, 2), np.int64)


def near_pairs_by_bucket(hashes: np.ndarray, max_distance: int, buckets, valid: np.ndarray | None = None) -> np.ndarray:
    """Like ``near_pairs``, but only pairs inside one bucket (e.g. one class): much cheaper on big datasets."""
    buckets = np.asarray(buckets)
    valid = np.ones(len(hashes), bool) if valid is None else np.asarray(valid, bool)
    found = [np.empty((0, 2), np.int64)]
    for bucket in np.unique(buckets):
        members = np.flatnonzero(buckets == bucket)
        pairs = near_pairs(np.asarray(hashes)[members], max_distance, valid[members])
        found.append(members[pairs])
    return np.concatenate(found)


def connected_groups(count: int, pairs: np.ndarray) -> np.ndarray:
    """Group id (0..G-1, in order of first member) of each of ``count`` items, linking every pair transitively."""
    parent = np.arange(count)

    def find(node: int) -> int:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for i, j in np.asarray(pairs).tolist():
        root_i, root_j = find(i), find(j)
        if root_i != root_j:
            parent[max(root_i, root_j)] = min(root_i, root_j)
    roots = np.array([find(node) for node in range(count)], dtype=np.int64)
    return np.unique(roots, return_inverse=True)[1].reshape(-1)  # a root is its group's first member
