"""The tf.data pipeline prepares images exactly as the device does; odd inputs are converted or skipped."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from nsl.preprocess import CropSpec, load_input, prepare, read_image
from nsl.config import resolve, to_dict, updated
from nsl.train.pipeline import augmenter, class_weights, make_dataset
from nsl.samples import Sample


def _batches(samples, config, **kwargs):
    images, labels = [], []
    for x, y in make_dataset(samples, config, **kwargs):
        images.append(x.numpy())
        labels.append(y.numpy())
    return np.concatenate(images), np.concatenate(labels)


@pytest.fixture(scope="module")
def odd_images(tmp_path_factory):
    """Grey, RGBA, 16-bit, odd-sized and tiny images, plus a corrupt file."""
    folder = tmp_path_factory.mktemp("odd")
    rng = np.random.default_rng(1)
    files = {"grey.png": rng.integers(0, 255, (37, 53), np.uint8),
             "rgba.png": rng.integers(0, 255, (61, 40, 4), np.uint8),
             "deep.png": rng.integers(0, 65535, (50, 50, 3), np.uint16),
             "wide.jpg": rng.integers(0, 255, (20, 300, 3), np.uint8)}
    for name, image in files.items():
        cv2.imwrite(str(folder / name), image)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    return folder


@pytest.mark.parametrize("decoder", ["tensorflow", "python"])
@pytest.mark.parametrize("color_mode", ["color", "grey", "binary"])
def test_pipeline_matches_the_device_preprocessing(synth_data, color_mode, decoder):
    paths = sorted((synth_data / "Random Background" / "2").glob("*.jpg"))[:5]
    samples = [Sample(str(p), 2) for p in paths]
    config = resolve(overrides={"imgsz": 40, "batch": 2, "color_mode": color_mode, "decode": decoder})
    images, labels = _batches(samples, config)
    spec = config.crop
    expected = np.stack([prepare(read_image(p), spec) for p in paths]).astype(np.float32)
    assert images.dtype == np.float32 and images.shape == (5, 40, 40, 3)
    np.testing.assert_array_equal(images, expected)
    assert labels.tolist() == [2] * 5


@pytest.mark.real_data
def test_tensorflow_decoding_gives_the_device_pixels_on_real_photos_and_odd_files(odd_images, tmp_path):
    """TensorFlow's decoders (JPEG, grey/RGB/RGBA PNG) and the Python fallback (16-bit PNG, an EXIF-turned phone
    photo) give exactly what read_image + prepare give on the device, whole images and hand crops alike."""
    from nsl.train.decode import JPEG, PNG, PYTHON, tf_decodable
    from tests.conftest import real_data
    from tests.hostile import oriented_copy

    photos = sorted(real_data("asl_36").rglob("*.jp*g"))[:4] + sorted(real_data("nsl_numbers").rglob("*.png"))[:2]
    turned = oriented_copy(sorted(real_data("nsl_numbers").rglob("*_1500px.jpg"))[0], tmp_path / "turned.jpg", 6)
    odd = [odd_images / name for name in ("grey.png", "rgba.png", "deep.png", "wide.jpg")]
    paths = [str(p) for p in photos + odd + [turned]]
    kinds = tf_decodable(paths)
    assert kinds[:4] == [JPEG] * 4 and kinds[4:6] == [PNG] * 2
    assert kinds[6:] == [PNG, PNG, PYTHON, JPEG, PYTHON]  # 16-bit PNG and the EXIF turn: Python
    for crop in (False, True):
        boxes = [(30.0, 20.5, 150.0, 170.0) if crop else None for _ in paths]  # a box partly outside small files
        sides = [("Left" if i % 2 else "Right") if crop else "" for i in range(len(paths))]  # Left: mirrored
        samples = [Sample(p, 0, box=b, side=s) for p, b, s in zip(paths, boxes, sides)]
        config = resolve(overrides={"imgsz": 96, "batch": 4})
        images, _ = _batches(samples, config)
        expected = np.stack([load_input(p, config.crop, b, s) for p, b, s in zip(paths, boxes, sides)])
        np.testing.assert_array_equal(images, expected.astype(np.float32))
    unmirrored = load_input(paths[1], config.crop, boxes[1], "Right")
    assert config.crop.mirror_left and not np.array_equal(expected[1], unmirrored)


def test_disk_cache_is_written_once_and_reused(synth_data, tmp_path):
    paths = sorted((synth_data / "Plain Background" / "3").glob("*.jpg"))[:6]
    samples = [Sample(str(p), 3) for p in paths]
    config = resolve(overrides={"imgsz": 32, "batch": 4, "cache_dir": str(tmp_path / "cache")})
    first, _ = _batches(samples, config)
    written = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert any(name.endswith(".index") for name in written)
    again, _ = _batches(samples, config)
    np.testing.assert_array_equal(first, again)
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == written  # read back, not written anew
    other = updated(config, {"imgsz": 40})  # other preprocessing: another cache, never the old one
    assert _batches(samples, other)[0].shape[1] == 40


def test_odd_images_are_converted_and_unreadable_ones_skipped(odd_images, caplog):
    samples = [Sample(str(p), i % 2) for i, p in enumerate(sorted(odd_images.iterdir()))]
    config = resolve(overrides={"imgsz": 32, "batch": 4})
    images, labels = _batches(samples, config)
    assert images.shape == (4, 32, 32, 3) and np.isfinite(images).all()
    assert 0 <= images.min() and images.max() <= 255
    assert "broken.jpg" in caplog.text
    grey = images[[p.name for p in sorted(odd_images.iterdir()) if p.name != "broken.jpg"].index("grey.png")]
    assert np.array_equal(grey[..., 0], grey[..., 1])


def test_augmentation_is_sign_safe_and_configurable(synth_data):
    paths = sorted((synth_data / "Plain Background" / "1").glob("*.jpg"))[:8]
    samples = [Sample(str(p), 1) for p in paths]
    config = resolve(overrides={"imgsz": 32, "batch": 8})
    assert not any("flip" in layer.name for layer in augmenter(config.augment, 0).layers)
    off = updated(config, {f"augment.{key}": 0 for key in to_dict(config)["augment"]} | {"augment.hflip": False})
    assert augmenter(off.augment, 0) is None
    plain, _ = _batches(samples, config)
    augmented, _ = _batches(samples, config, training=True)
    assert augmented.shape == plain.shape and 0 <= augmented.min() and augmented.max() <= 255
    assert not np.array_equal(np.sort(augmented.ravel()), np.sort(plain.ravel()))
    unaugmented, _ = _batches(samples, off, training=True)
    assert sorted(map(bytes, unaugmented)) == sorted(map(bytes, plain))  # only shuffled


def test_class_weights_balance_imbalanced_classes():
    samples = [Sample("a", 0)] * 30 + [Sample("b", 1)] * 10
    assert class_weights(samples, 2, "auto") == pytest.approx({0: 40 / 60, 1: 40 / 20})
    assert class_weights([Sample("a", 0)] * 10 + [Sample("b", 1)] * 11, 2, "auto") is None
    assert class_weights(samples, 2, "none") is None


def test_training_reads_a_phone_photo_upright(tmp_path):
    """The trainer prepares a file by the device's read_image: a JPEG stored sideways with EXIF orientation 6 is
    trained on upright, as a viewer shows it (it was trained on rotated)."""
    from nsl.train.pipeline import load_prepared
    from tests.conftest import real_data
    from tests.hostile import oriented_copy

    photo = sorted(real_data("nsl_numbers").rglob("*_1500px.jpg"))[0]
    spec = CropSpec(size=64)
    upright, ok = load_prepared(str(photo), spec)
    turned, turned_ok = load_prepared(str(oriented_copy(photo, tmp_path / "portrait.jpg", 6)), spec)
    rotated_back = np.rot90(turned, 1)  # the same crop a quarter turn off: how far a sideways read lands
    assert ok and turned_ok
    assert np.abs(turned.astype(int) - upright).mean() < 3 < np.abs(rotated_back.astype(int) - upright).mean()
