"""The crop path shared by training, export and the device."""

import numpy as np
import pytest

from nsl.preprocess import (CropSpec, apply_color_mode, crop, crop_box, crop_hand, expand_box, prepare, read_image,
                            to_rgb)
from nsl.errors import NslError


def test_any_frame_becomes_rgb_uint8():
    grey = np.full((5, 7), 100, np.uint8)
    assert to_rgb(grey).shape == (5, 7, 3)
    assert to_rgb(grey[..., None]).shape == (5, 7, 3)
    rgba = np.zeros((5, 7, 4), np.uint8)
    rgba[..., 0] = 200
    assert to_rgb(rgba)[0, 0].tolist() == [200, 0, 0]
    bgr = np.zeros((2, 2, 3), np.uint8)
    bgr[..., 0] = 255  # blue in OpenCV's order
    assert to_rgb(bgr, bgr=True)[0, 0].tolist() == [0, 0, 255]
    assert to_rgb(np.full((2, 2, 3), 300.0)).max() == 255
    with pytest.raises(NslError, match="expected an image of shape"):
        to_rgb(np.zeros((2, 2, 5)))


def test_box_grows_by_margin_and_becomes_square():
    assert expand_box((10, 20, 30, 60), margin=0.1, square=False) == pytest.approx((8, 16, 32, 64))
    x0, y0, x1, y1 = expand_box((10, 20, 30, 60), margin=0.0, square=True)
    assert (x1 - x0, y1 - y0) == (40, 40) and (x0 + x1) / 2 == 20 and (y0 + y1) / 2 == 40


def test_crop_pads_outside_the_frame_with_black():
    frame = np.full((10, 10, 3), 255, np.uint8)
    out = crop(frame, (-5, -5, 5, 5))
    assert out.shape == (10, 10, 3)
    assert out[:5, :5].max() == 0 and out[5:, 5:].min() == 255
    with pytest.raises(NslError, match="empty crop box"):
        crop(frame, (5, 5, 5, 9))


def test_color_modes():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    grey = apply_color_mode(image, CropSpec(size=40, color_mode="grey"))
    assert grey.shape == (40, 40, 3) and (grey[..., 0] == grey[..., 2]).all()
    binary = apply_color_mode(image, CropSpec(size=40, color_mode="binary"))
    assert set(np.unique(binary)) <= {0, 255}
    with pytest.raises(NslError, match="color_mode 'sepia'"):
        CropSpec(color_mode="sepia")
    with pytest.raises(NslError, match="odd number"):
        CropSpec(color_mode="binary", threshold_block=10)


def test_crop_hand_gives_the_classifier_input():
    frame = np.zeros((480, 640, 3), np.uint8)
    frame[100:200, 300:380] = 255
    out = crop_hand(frame, (300, 100, 380, 200), CropSpec(size=64, margin=0.1))
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8
    # the hand fills the middle, the square margin is black on the sides
    assert out[32, 32].tolist() == [255, 255, 255] and out[32, 0].tolist() == [0, 0, 0]
    assert prepare(frame, CropSpec(size=32)).shape == (32, 32, 3)


def test_crop_box_is_where_crop_hand_cuts():
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    spec, box = CropSpec(size=32, margin=0.1), (50.4, 20.0, 90.0, 100.6)
    assert crop_box(box, spec) == expand_box(box, spec.margin, spec.square)
    assert np.array_equal(crop_hand(frame, box, spec), prepare(crop(frame, crop_box(box, spec)), spec))
    # a box that is already the crop (a fixed region, the whole image) is cut as it is
    assert crop_box(box, spec, grow=False) == box
    assert np.array_equal(crop_hand(frame, box, spec, grow=False), prepare(crop(frame, box), spec))


def test_read_image_errors_name_the_file(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("not an image")
    with pytest.raises(NslError, match=r"empty\.jpg: empty file"):
        read_image(tmp_path / "empty.jpg")
    with pytest.raises(NslError, match=r"text\.jpg: not a readable image"):
        read_image(tmp_path / "text.jpg")
    with pytest.raises(NslError, match=r"missing\.jpg: cannot read"):
        read_image(tmp_path / "missing.jpg")
