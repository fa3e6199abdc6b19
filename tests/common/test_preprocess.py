"""The crop path shared by training, export and the device."""

import resource
import subprocess
import sys
import time

import numpy as np
import pytest

from nsl.preprocess import (MAX_PIXELS, CropSpec, apply_color_mode, crop, crop_box, crop_hand, expand_box, mirrors,
                            prepare, read_image, to_rgb)
from nsl.errors import NslError
from tests.conftest import real_data
from tests.hostile import oriented_copy, png_bomb


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


def test_a_conversion_writes_into_the_array_given():
    out = np.empty((2, 2, 3), np.uint8)
    bgr = np.zeros((2, 2, 3), np.uint8)
    bgr[..., 0] = 255
    assert to_rgb(bgr, bgr=True, out=out) is out and out[0, 0].tolist() == [0, 0, 255]
    assert to_rgb(np.full((2, 2), 9, np.uint8), out=out) is out and out[1, 1].tolist() == [9, 9, 9]
    assert to_rgb(np.zeros((2, 2, 4), np.uint8), out=out) is out


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


def test_a_left_hand_is_cut_as_the_same_right_hand_when_the_spec_mirrors():
    """A frame and its mirror image: the mirrored frame's hand (MediaPipe: Left) at the mirrored box gives exactly
    the crop of the original right hand; without mirror_left, or for a Right or unknown hand, nothing is flipped."""
    rng = np.random.default_rng(3)
    frame = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    box, width = (40, 20, 100, 90), frame.shape[1]
    mirrored_box = (width - box[2], box[1], width - box[0], box[3])
    spec = CropSpec(size=32, margin=0.0, mirror_left=True)
    right = crop_hand(frame, box, spec, side="Right")
    assert np.array_equal(crop_hand(frame[:, ::-1], mirrored_box, spec, side="Left"), right)
    assert np.array_equal(right, crop_hand(frame, box, spec)) and np.array_equal(right, crop_hand(frame, box, CropSpec(
        size=32, margin=0.0), side="Right"))
    unmirrored = crop_hand(frame[:, ::-1], mirrored_box, CropSpec(size=32, margin=0.0), side="Left")
    assert np.array_equal(unmirrored, right[:, ::-1])
    assert mirrors(spec, "left") and not mirrors(spec, "roi") and not mirrors(CropSpec(), "Left")
    # a bundle written before the key reads as it was trained: no mirroring
    assert CropSpec.from_dict({"size": 32}).mirror_left is False
    with pytest.raises(NslError, match="mirror_left must be true or false"):
        CropSpec(mirror_left="yes")


def test_read_image_errors_name_the_file(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("not an image")
    with pytest.raises(NslError, match=r"empty\.jpg: empty file"):
        read_image(tmp_path / "empty.jpg")
    with pytest.raises(NslError, match=r"text\.jpg: not a readable image"):
        read_image(tmp_path / "text.jpg")
    with pytest.raises(NslError, match=r"missing\.jpg: cannot read"):
        read_image(tmp_path / "missing.jpg")


@pytest.mark.parametrize("orientation", range(2, 9))
def test_read_image_turns_a_photo_upright_as_its_exif_orientation_says(tmp_path, orientation):
    """Lossless (PNG with an eXIf chunk): exactly the stored pixels turned as Pillow's exif_transpose turns them."""
    from PIL import Image, ImageOps

    photo = sorted(real_data("nsl_numbers").rglob("*_1500px.jpg"))[0]  # a phone photo, 1500 x 1000
    stored = oriented_copy(photo, tmp_path / f"oriented_{orientation}.png", orientation)
    with Image.open(stored) as image:
        viewer = np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
    assert np.array_equal(read_image(stored), viewer)
    assert np.array_equal(read_image(stored), read_image(photo))


def test_a_rotated_phone_jpeg_reads_upright(tmp_path):
    """A JPEG stored sideways with orientation 6 (how phones save a portrait shot) reads as the upright photo."""
    photo = sorted(real_data("nsl_numbers").rglob("*_1500px.jpg"))[0]
    upright = read_image(photo)
    rotated = read_image(oriented_copy(photo, tmp_path / "portrait.jpg", 6))
    assert rotated.shape == upright.shape == (1000, 1500, 3)
    assert np.abs(rotated.astype(int) - upright).mean() < 3  # recompression only


def test_too_many_pixels_is_refused_before_decoding(tmp_path):
    """A 12000 x 12000 PNG of 0.2 MB (144 MP, 432 MB as RGB): refused from its header, at once."""
    bomb = png_bomb(tmp_path / "bomb.png", 12000, 12000)
    assert 12000 * 12000 > MAX_PIXELS and bomb.stat().st_size < 1 << 20
    began = time.perf_counter()
    with pytest.raises(NslError, match=r"bomb\.png: 12000x12000 is 144 megapixels, more than the 89\.5 MP"):
        read_image(bomb)
    assert time.perf_counter() - began < 0.5


def test_a_pixel_bomb_costs_no_memory(tmp_path):
    """30000 x 30000 (2.7 GB as RGB; mediapipe took 10 GB on it): read in a child process that may not use 1 GB."""
    bomb = png_bomb(tmp_path / "bomb.png", 30000, 30000)

    def cap_memory():
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    code = "import sys; from nsl.preprocess import read_image; read_image(sys.argv[1])"
    proc = subprocess.run([sys.executable, "-c", code, str(bomb)], capture_output=True, text=True, timeout=60,
                          preexec_fn=cap_memory)
    assert proc.returncode == 1 and "NslError: " in proc.stderr and "900000000 pixels" in proc.stderr, proc.stderr
