"""The tf.data input pipeline: files -> the device's own crop preprocessing -> cache -> augment -> batches.

Decoding, resizing and the colour mode run through ``nsl.preprocess`` (``read_image`` + ``prepare``) inside
``tf.numpy_function``, so a training image is prepared by the very function the device uses. Images enter the
model as float32 RGB 0..255 (the model rescales). Augmentation is sign-safe by default: small rotation, zoom,
shift, brightness and contrast; a horizontal flip only when ``augment.hflip`` is true (it changes the hand).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import Counter
from pathlib import Path

import numpy as np

from nsl.preprocess import CropSpec, load_input, prepare_input
from nsl.errors import NslError
from nsl.options import AugmentOptions, Options
from nsl.samples import Sample

log = logging.getLogger(__name__)


def load_prepared(path: str, spec: CropSpec, box=None, side: str = "") -> tuple[np.ndarray, bool]:
    """One file as the classifier's uint8 input (the hand crop when ``box``, ``side`` its handedness), and whether
    it could be read (unreadable -> black, False)."""
    try:
        return load_input(path, spec, box, side), True
    except NslError as err:
        log.warning("skipped: %s", err)
        return np.zeros((spec.size, spec.size, 3), np.uint8), False


def augmenter(augment: AugmentOptions, seed: int):
    """A tf_keras Sequential of the configured random transforms (None when all are off). float32 whatever the
    global dtype policy: it runs in the input pipeline on the CPU, where mixed_float16 has no kernel for some of
    these ops (AdjustContrastv2), and the model casts its input itself."""
    import tf_keras as keras

    f32 = {"dtype": "float32"}
    layers = []
    if augment.hflip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed, **f32))
    if augment.rotation:
        layers.append(keras.layers.RandomRotation(augment.rotation / 360.0, fill_mode="nearest", seed=seed, **f32))
    if augment.zoom:
        layers.append(keras.layers.RandomZoom((-augment.zoom, augment.zoom), fill_mode="nearest", seed=seed + 1,
                                              **f32))
    if augment.shift:
        layers.append(keras.layers.RandomTranslation(augment.shift, augment.shift, fill_mode="nearest",
                                                     seed=seed + 2, **f32))
    if augment.brightness:
        layers.append(keras.layers.RandomBrightness(augment.brightness, value_range=(0, 255), seed=seed + 3,
                                                    **f32))
    if augment.contrast:
        layers.append(keras.layers.RandomContrast(augment.contrast, seed=seed + 4, **f32))
    return keras.Sequential(layers, name="augment") if layers else None


def decoded_images(samples: list[Sample], spec: CropSpec, decoder: str = "tensorflow"):
    """A dataset of (uint8 image prepared by the device's function, label); unreadable files dropped.

    ``decoder`` 'tensorflow': files ``nsl.train.decode`` lets through are decoded by TensorFlow's kernels in the
    parallel map (no GIL), then cut and prepared by ``nsl.preprocess`` on those pixels; the others, and every file
    with 'python', are read by ``read_image`` as on the device. Either way the pixels are the device's.
    """
    import tensorflow as tf

    from nsl.train.decode import PYTHON, decode, tf_decodable

    paths = [sample.path for sample in samples]
    labels = np.array([sample.label for sample in samples], np.int32)
    boxes = np.array([sample.box if sample.box is not None else (np.nan,) * 4 for sample in samples], np.float32)
    sides = [sample.side for sample in samples]
    kinds = np.array(tf_decodable(paths) if decoder == "tensorflow" else [PYTHON] * len(paths), np.int32)

    def box_of(box):
        return None if np.isnan(box).any() else tuple(box)

    def load_file(path, box, side):
        return load_prepared(path.decode("utf-8"), spec, box_of(box), side.decode("utf-8"))

    def prepare_pixels(pixels, box, side):
        return prepare_input(pixels, spec, box_of(box), side.decode("utf-8")), True

    def load(path, label, box, side, kind):
        image, ok = tf.cond(
            tf.equal(kind, PYTHON),
            lambda: tuple(tf.numpy_function(load_file, [path, box, side], [tf.uint8, tf.bool])),
            lambda: tuple(tf.numpy_function(prepare_pixels, [decode(tf.io.read_file(path), kind), box, side],
                                            [tf.uint8, tf.bool])))
        image.set_shape((spec.size, spec.size, 3))
        return image, label, ok

    def readable(image, label, ok):
        return ok

    def drop_flag(image, label, ok):
        return image, label

    ds = tf.data.Dataset.from_tensor_slices((paths, labels, boxes.reshape(-1, 4), sides, kinds))
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    # a file whose header reads but whose data TensorFlow cannot decode (truncated): dropped with TensorFlow's
    # warning, as read_image's failures are dropped with theirs
    return ds.ignore_errors(log_warning=True).filter(readable).map(drop_flag)


def make_dataset(samples: list[Sample], options: Options, training: bool = False, repeat: bool = False,
                 one_hot: int = 0, cache: bool | None = None, batch: int | None = None):
    """Batches of (float32 images 0..255, int labels). ``training``: shuffled and augmented; ``repeat``: endless;
    ``one_hot``: labels as one-hot vectors of that many classes (for label smoothing); ``batch``: the global
    batch of a distributed run (default ``batch``). Under a multi-worker strategy each worker reads every file
    list and keeps its share of the batches (auto-shard by data)."""
    import tensorflow as tf

    if not samples:
        raise NslError("no images to feed the model (an empty split: check the data folder and split_ratios)")
    seed = options.hparams.seed
    augment = augmenter(options.augment, seed) if training else None

    def augment_batch(images, batch_labels):
        return augment(tf.cast(images, tf.float32), training=True), batch_labels

    def to_model_input(images, batch_labels):
        images = tf.clip_by_value(tf.cast(images, tf.float32), 0.0, 255.0)
        return images, (tf.one_hot(batch_labels, one_hot) if one_hot else batch_labels)

    ds = decoded_images(samples, options.crop, options.data.decode)
    if options.data.cache if cache is None else cache:
        ds = cached(ds, samples, options)
    if training:
        ds = ds.shuffle(len(samples), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch or options.hparams.batch)
    if augment is not None:
        ds = ds.map(augment_batch, num_parallel_calls=tf.data.AUTOTUNE)
    shard = tf.data.Options()
    shard.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.map(to_model_input, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE).with_options(shard)


def cached(ds, samples: list[Sample], options: Options):
    """``ds`` cached in memory, or in files under ``cache_dir`` when set (for data larger than memory: the first
    epoch writes them, later epochs and later runs over the same files and preprocessing read them)."""
    if options.data.cache_dir is None:
        need = len(samples) * options.crop.size ** 2 * 3
        available = available_memory()
        if available is not None and need > available // 2:
            log.warning("the in-memory cache of %d images needs about %.1f GB, more than half the %.1f GB "
                        "available: set cache_dir=FOLDER to cache on disk (or cache=false)", len(samples),
                        need / 1e9, available / 1e9)
        return ds.cache()
    folder = Path(options.data.cache_dir).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    prefix = folder / f"nsl-{cache_key(samples, options)}"
    if not prefix.with_name(prefix.name + ".index").is_file():
        for stale in folder.glob(prefix.name + "*"):  # what an interrupted first epoch left: written again
            stale.unlink()
    log.info("caching %d prepared images in %s*", len(samples), prefix)
    return ds.cache(str(prefix))


def cache_key(samples: list[Sample], options: Options) -> str:
    """A digest of what the cached images depend on: the files (path, size, modification time), boxes and their
    handedness, labels, the crop preprocessing and the decoder."""
    digest = hashlib.sha256(json.dumps([options.crop.to_dict(), options.data.decode]).encode())
    for sample in samples:
        try:
            stat = os.stat(sample.path)
            stamp = (stat.st_size, stat.st_mtime_ns)
        except OSError:
            stamp = (-1, -1)
        digest.update(f"{sample.path}\0{sample.label}\0{sample.box}\0{sample.side}\0{stamp}\n".encode())
    return digest.hexdigest()[:16]


def available_memory() -> int | None:
    """MemAvailable of /proc/meminfo in bytes (Linux), else None."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def class_weights(samples: list[Sample], num_classes: int, mode: str) -> dict[int, float] | None:
    """Balanced weights n / (k * count) for 'balanced', or for 'auto' when classes differ by more than 20 %."""
    counts = Counter(sample.label for sample in samples)
    present = [counts[c] for c in range(num_classes) if counts[c]]
    if mode == "none" or not present or (mode == "auto" and max(present) <= 1.2 * min(present)):
        return None
    total = sum(present)
    return {c: (total / (len(present) * counts[c]) if counts[c] else 0.0) for c in range(num_classes)}
