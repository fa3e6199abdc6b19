"""The tf.data input pipeline: files -> the device's own crop preprocessing -> cache -> augment -> batches.

Decoding, resizing and the colour mode run through ``nsl.preprocess`` (``read_image`` + ``prepare``) inside
``tf.numpy_function``, so a training image is prepared by the very function the device uses. Images enter the
model as float32 RGB 0..255 (the model rescales). Augmentation is sign-safe by default: small rotation, zoom,
shift, brightness and contrast; a horizontal flip only when ``augment.hflip`` is true (it changes the hand).
"""

from __future__ import annotations

import logging
from collections import Counter

import numpy as np

from nsl.preprocess import CropSpec, load_input
from nsl.errors import NslError
from nsl.options import AugmentOptions, Options
from nsl.samples import Sample

log = logging.getLogger(__name__)


def load_prepared(path: str, spec: CropSpec, box=None) -> tuple[np.ndarray, bool]:
    """One file as the classifier's uint8 input (the hand crop when ``box``), and whether it could be read
    (unreadable -> black, False)."""
    try:
        return load_input(path, spec, box), True
    except NslError as err:
        log.warning("skipped: %s", err)
        return np.zeros((spec.size, spec.size, 3), np.uint8), False


def augmenter(augment: AugmentOptions, seed: int):
    """A tf_keras Sequential of the configured random transforms (None when all are off)."""
    import tf_keras as keras

    layers = []
    if augment.hflip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed))
    if augment.rotation:
        layers.append(keras.layers.RandomRotation(augment.rotation / 360.0, fill_mode="nearest", seed=seed))
    if augment.zoom:
        layers.append(keras.layers.RandomZoom((-augment.zoom, augment.zoom), fill_mode="nearest", seed=seed + 1))
    if augment.shift:
        layers.append(keras.layers.RandomTranslation(augment.shift, augment.shift, fill_mode="nearest",
                                                     seed=seed + 2))
    if augment.brightness:
        layers.append(keras.layers.RandomBrightness(augment.brightness, value_range=(0, 255), seed=seed + 3))
    if augment.contrast:
        layers.append(keras.layers.RandomContrast(augment.contrast, seed=seed + 4))
    return keras.Sequential(layers, name="augment") if layers else None


def decoded_images(samples: list[Sample], spec: CropSpec):
    """A dataset of (uint8 image prepared by the device's function, label); unreadable files dropped."""
    import tensorflow as tf

    paths = [sample.path for sample in samples]
    labels = np.array([sample.label for sample in samples], np.int32)
    boxes = np.array([sample.box if sample.box is not None else (np.nan,) * 4 for sample in samples], np.float32)

    def load_file(path, box):
        return load_prepared(path.decode("utf-8"), spec, None if np.isnan(box).any() else tuple(box))

    def load(path, label, box):
        image, ok = tf.numpy_function(load_file, [path, box], [tf.uint8, tf.bool])
        image.set_shape((spec.size, spec.size, 3))
        return image, label, ok

    def readable(image, label, ok):
        return ok

    def drop_flag(image, label, ok):
        return image, label

    ds = tf.data.Dataset.from_tensor_slices((paths, labels, boxes.reshape(-1, 4)))
    return ds.map(load, num_parallel_calls=tf.data.AUTOTUNE).filter(readable).map(drop_flag)


def make_dataset(samples: list[Sample], options: Options, training: bool = False, repeat: bool = False,
                 one_hot: int = 0, cache: bool | None = None):
    """Batches of (float32 images 0..255, int labels). ``training``: shuffled and augmented; ``repeat``: endless;
    ``one_hot``: labels as one-hot vectors of that many classes (for label smoothing)."""
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

    ds = decoded_images(samples, options.crop)
    if options.data.cache if cache is None else cache:
        ds = ds.cache()
    if training:
        ds = ds.shuffle(len(samples), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(options.hparams.batch)
    if augment is not None:
        ds = ds.map(augment_batch, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.map(to_model_input).prefetch(tf.data.AUTOTUNE)


def class_weights(samples: list[Sample], num_classes: int, mode: str) -> dict[int, float] | None:
    """Balanced weights n / (k * count) for 'balanced', or for 'auto' when classes differ by more than 20 %."""
    counts = Counter(sample.label for sample in samples)
    present = [counts[c] for c in range(num_classes) if counts[c]]
    if mode == "none" or not present or (mode == "auto" and max(present) <= 1.2 * min(present)):
        return None
    total = sum(present)
    return {c: (total / (len(present) * counts[c]) if counts[c] else 0.0) for c in range(num_classes)}
