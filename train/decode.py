"""Which files TensorFlow may decode for the training pipeline, and its decoders, pixel for pixel the device's.

``nsl.preprocess.read_image`` (Pillow reads the header, OpenCV decodes) runs in Python with the GIL held for its
header and glue; TensorFlow's own JPEG and PNG kernels run in C++ in the pipeline's parallel map without it. They
give the same pixels as ``read_image`` for the files this module lets through, checked once per dataset by reading
each file's header (``tf_decodable``, a thread pool, about 0.1 ms a file):

- JPEG in RGB or grey (``decode_jpeg`` with ``dct_method=INTEGER_ACCURATE``: OpenCV's libjpeg-turbo default; the
  TensorFlow default, INTEGER_FAST, is off by up to 5 levels), PNG of 8 bits per channel in grey, RGB or RGBA
  (alpha dropped, as ``nsl.preprocess.to_rgb`` does);
- with no EXIF orientation to apply (a phone photo stored sideways) and within ``nsl.preprocess.MAX_PIXELS``.

Every other file (an EXIF-turned photo, 16-bit or palette PNG, CMYK JPEG, BMP, WebP, ...) and every file whose
header cannot be read goes through ``read_image`` as before, so its orientation, its pixel cap and its one-line
error stay the device's. The resize, the hand crop and the colour mode stay ``nsl.preprocess`` (OpenCV) for all
files: TensorFlow's area resize is 1 level off on about 0.02 % of the pixels and took 3.8 ms against OpenCV's
1.9 ms per 400x400 photo on this project's 2-core machine, so only the decoding moved.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from nsl.preprocess import header_orientation, open_header, too_many_pixels

log = logging.getLogger(__name__)

PYTHON, JPEG, PNG = 0, 1, 2            # how a file is decoded (the pipeline's switch)
JPEG_MODES = ("RGB", "L")
PNG_COLOR_TYPES = (0, 2, 6)           # grey, RGB, RGBA (IHDR colour types); palette (3) and grey+alpha (4) are not
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_is_plain(path: str) -> bool:
    """8 bits per channel, grey/RGB/RGBA, from the IHDR chunk (bytes 24 and 25 of every PNG)."""
    with open(path, "rb") as handle:
        head = handle.read(26)
    return len(head) == 26 and head[:8] == PNG_SIGNATURE and head[24] == 8 and head[25] in PNG_COLOR_TYPES


def decoder_of(path: str) -> int:
    """JPEG or PNG when TensorFlow's decoder gives ``read_image``'s pixels for this file, else PYTHON."""
    try:
        with open_header(path) as image:
            if too_many_pixels(*image.size) or header_orientation(image) != 1:
                return PYTHON
            if image.format == "JPEG" and image.mode in JPEG_MODES:
                return JPEG
            if image.format == "PNG" and _png_is_plain(path):
                return PNG
    except Exception:  # any header Pillow cannot read: read_image says why, in its one line
        return PYTHON
    return PYTHON


def tf_decodable(paths: list[str], workers: int = 8) -> list[int]:
    """``decoder_of`` every path (threads: the header reads are I/O and Pillow's C code)."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        kinds = list(pool.map(decoder_of, paths, chunksize=64))
    slow = kinds.count(PYTHON)
    if slow:
        log.info("decoding: %d of %d files through Python (EXIF orientation, pixel cap or a format TensorFlow's "
                 "decoders do not read as the device does)", slow, len(paths))
    return kinds


def decode(data, kind):
    """The file's bytes -> RGB uint8 (H, W, 3), in the graph; ``kind`` is JPEG or PNG (``decoder_of``)."""
    import tensorflow as tf

    return tf.cond(tf.equal(kind, JPEG),
                   lambda: tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE"),
                   lambda: tf.io.decode_png(data, channels=3, dtype=tf.uint8))
