"""The crop and its preprocessing, shared by training, export calibration/validation and the device.

numpy and OpenCV only (no TensorFlow): the trainer imports this module too, so a crop is prepared the same
way everywhere. Images are RGB ``uint8`` arrays (H, W, 3) unless a name says otherwise.

Order, everywhere: (crop the hand box) -> resize to the model input -> colour mode (color | grey | binary).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from nsl.errors import NslError
from nsl.landmarks import is_left

COLOR_MODES = ("color", "grey", "binary")
# Pillow's own limit (a 256 MB RGB frame, 89.5 MP): a file whose header asks for more is refused before decoding.
# OpenCV's decoders allow 1 Gpx, and a 30000 x 30000 PNG of 2.7 MB then takes gigabytes.
MAX_PIXELS = (1 << 30) // 4 // 3
EXIF_ORIENTATION = 0x0112
# EXIF orientation -> the turn that shows the stored pixels upright (as Pillow's ImageOps.exif_transpose does)
_UPRIGHT = {
    2: lambda a: cv2.flip(a, 1),
    3: lambda a: cv2.rotate(a, cv2.ROTATE_180),
    4: lambda a: cv2.flip(a, 0),
    5: cv2.transpose,
    6: lambda a: cv2.rotate(a, cv2.ROTATE_90_CLOCKWISE),
    7: lambda a: cv2.rotate(cv2.transpose(a), cv2.ROTATE_180),
    8: lambda a: cv2.rotate(a, cv2.ROTATE_90_COUNTERCLOCKWISE),
}


@dataclass(frozen=True)
class CropSpec:
    """What the classifier expects of a crop; stored in the bundle's metadata under ``preprocess``."""

    size: int = 224
    color_mode: str = "color"
    margin: float = 0.10
    square: bool = True
    blur: int = 5
    threshold_block: int = 11
    threshold_c: int = 2
    mirror_left: bool = False  # a hand MediaPipe calls Left is mirrored, so the classifier always sees a right hand

    def __post_init__(self):
        """Checked here as well as by the options: a bundle's metadata builds one from JSON a user may edit."""
        _check_number("size", self.size, int, 1)
        _check_number("margin", self.margin, (int, float), 0)
        _check_number("blur", self.blur, int, 0)
        _check_number("threshold_block", self.threshold_block, int, 0)
        _check_number("threshold_c", self.threshold_c, (int, float), float("-inf"))
        for name in ("square", "mirror_left"):
            if not isinstance(getattr(self, name), bool):
                raise NslError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if self.color_mode not in COLOR_MODES:
            raise NslError(f"color_mode {self.color_mode!r} is not one of {', '.join(COLOR_MODES)}")
        if self.color_mode == "binary" and (self.threshold_block < 3 or self.threshold_block % 2 == 0):
            raise NslError(f"threshold_block must be an odd number >= 3, got {self.threshold_block}")

    @classmethod
    def from_config(cls, config: dict) -> "CropSpec":
        return cls(size=int(config["imgsz"]), color_mode=config["color_mode"], margin=float(config["crop_margin"]),
                   square=bool(config["crop_square"]), blur=int(config["blur"]),
                   threshold_block=int(config["threshold_block"]), threshold_c=int(config["threshold_c"]),
                   mirror_left=bool(config.get("crop_mirror", False)))

    @classmethod
    def from_dict(cls, data: dict) -> "CropSpec":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def to_dict(self) -> dict:
        return asdict(self)


def _check_number(name: str, value, kinds, minimum) -> None:
    """A finite number of ``kinds`` (never a bool) that is at least ``minimum``; else a one-line error."""
    whole = kinds is int
    if isinstance(value, bool) or not isinstance(value, kinds) or not np.isfinite(value) or value < minimum:
        kind = "a whole number" if whole else "a number"
        bound = f" >= {minimum}" if np.isfinite(minimum) else ""
        raise NslError(f"{name} must be {kind}{bound}, got {value!r}")


def to_rgb(image: np.ndarray, bgr: bool = False, out: np.ndarray | None = None) -> np.ndarray:
    """Any frame (grey, grey with a channel axis, 3-channel, 4-channel with alpha; uint8 or not) -> RGB uint8.
    ``out`` (uint8, the result's shape) receives the conversion instead of a new array (a capture's reused frames);
    an RGB frame that needs none is returned as it is."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2RGB, dst=out)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise NslError(f"expected an image of shape (H, W), (H, W, 3) or (H, W, 4), got {image.shape}")
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB if bgr else cv2.COLOR_RGBA2RGB, dst=out)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB, dst=out) if bgr else image


def too_many_pixels(width: int, height: int) -> str | None:
    """Why an image of this size is refused (more than ``MAX_PIXELS``), or None. The same limit everywhere a
    file is decoded: the device, training, calibration, ``nsl data check``."""
    if width * height <= MAX_PIXELS:
        return None
    return (f"{width}x{height} is {width * height / 1e6:.0f} megapixels, more than the {MAX_PIXELS / 1e6:.1f} MP "
            f"an image may have (refused before decoding: downscale it)")


def open_header(source) -> Image.Image:
    """``Image.open``: the header is read, pixels only on ``load()``. Pillow's own warning at ``MAX_PIXELS`` is
    silenced (callers refuse ``too_many_pixels`` themselves); above twice that it raises DecompressionBombError."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return Image.open(source)


def _header(path: Path, data: np.ndarray) -> tuple[int, int, int]:
    """(width, height, EXIF orientation) from the file's header alone (Pillow reads no pixels here)."""
    try:
        with open_header(io.BytesIO(data.tobytes())) as image:
            width, height = image.size
            if too_many_pixels(width, height):
                return width, height, 1
            orientation = header_orientation(image)
    except Image.DecompressionBombError as err:
        raise NslError(f"{path}: {err} (refused before decoding: downscale it)") from None
    except Exception as err:  # Pillow raises many types on a hostile header; none may escape as a traceback
        reason = "unknown format" if "cannot identify" in str(err) else f"{type(err).__name__}: {err}"[:120]
        raise NslError(f"{path}: not a readable image ({reason})") from None
    return width, height, orientation


def header_orientation(image: Image.Image) -> int:
    """The EXIF orientation of an image opened with ``open_header`` (1: stored upright), from the header alone."""
    exif = Image.Exif()  # a PNG's getexif() would decode the whole image to look for a late chunk
    if image.format == "PNG":
        exif.load(image.info.get("exif") or b"")
    else:
        exif = image.getexif()
    orientation = exif.get(EXIF_ORIENTATION, 1)
    return orientation if orientation in _UPRIGHT else 1


def read_image(path: str | Path) -> np.ndarray:
    """Decode an image file to RGB uint8, upright as a viewer shows it (its EXIF orientation applied); a one-line
    error names the file when it cannot be read, or when its header asks for more than ``MAX_PIXELS``."""
    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as err:
        raise NslError(f"{path}: cannot read ({err.strerror or err})") from None
    if data.size == 0:
        raise NslError(f"{path}: empty file (0 bytes)")
    width, height, orientation = _header(path, data)
    if too_many_pixels(width, height):
        raise NslError(f"{path}: {too_many_pixels(width, height)}")
    try:
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error as err:
        raise NslError(f"{path}: not a readable image ({str(err).strip().splitlines()[-1][:120]})") from None
    if image is None:
        raise NslError(f"{path}: not a readable image (corrupt, truncated or not an image format)")
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    rgb = to_rgb(image, bgr=True)
    return _UPRIGHT[orientation](rgb) if orientation != 1 else rgb


def resize(image: np.ndarray, size: int) -> np.ndarray:
    """Resize to ``size`` x ``size``: area averaging when shrinking, bilinear when enlarging."""
    height, width = image.shape[:2]
    if (height, width) == (size, size):
        return image
    shrinking = height * width > size * size
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def apply_color_mode(rgb: np.ndarray, spec: CropSpec) -> np.ndarray:
    """color: unchanged; grey: luminance in all three channels; binary: blurred adaptive threshold (hand white)."""
    if spec.color_mode == "color":
        return rgb
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    if spec.color_mode == "binary":
        if spec.blur > 1:
            grey = cv2.GaussianBlur(grey, (spec.blur | 1, spec.blur | 1), 0)
        grey = cv2.adaptiveThreshold(grey, 255, cv2.ADAPTIVE_THRESH_GAUSSIAN_C, cv2.THRESH_BINARY_INV,
                                     spec.threshold_block, spec.threshold_c)
    return cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB)


def prepare(rgb: np.ndarray, spec: CropSpec) -> np.ndarray:
    """An RGB image (a crop, or a dataset image that is already a crop) -> the classifier's uint8 input."""
    return apply_color_mode(resize(to_rgb(rgb), spec.size), spec)


def expand_box(box, margin: float, square: bool) -> tuple[float, float, float, float]:
    """Grow a box (x0, y0, x1, y1) by ``margin`` of its size on each side, then make it square about its centre."""
    x0, y0, x1, y1 = map(float, box)
    width, height = x1 - x0, y1 - y0
    x0, x1 = x0 - margin * width, x1 + margin * width
    y0, y1 = y0 - margin * height, y1 + margin * height
    if square:
        side = max(x1 - x0, y1 - y0)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        x0, x1, y0, y1 = cx - side / 2, cx + side / 2, cy - side / 2, cy + side / 2
    return x0, y0, x1, y1


def crop(frame: np.ndarray, box) -> np.ndarray:
    """Cut ``box`` (x0, y0, x1, y1, pixels) out of ``frame``; the parts outside the frame are padded black."""
    height, width = frame.shape[:2]
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    if x1 <= x0 or y1 <= y0:
        raise NslError(f"empty crop box {box}")
    pad = ((max(0, -y0), max(0, y1 - height)), (max(0, -x0), max(0, x1 - width)))
    inside = frame[max(0, y0):min(height, y1), max(0, x0):min(width, x1)]
    if any(p for pair in pad for p in pair):
        inside = np.pad(inside, pad + ((0, 0),) * (frame.ndim - 2), mode="constant")
    return inside


def crop_box(box, spec: CropSpec, grow: bool = True) -> tuple[float, float, float, float]:
    """The box the classifier sees for a hand ``box``: grown by ``spec.margin`` and squared as ``spec`` says;
    ``grow=False`` for a box that is already the crop (a fixed region, a whole image): the box as it is."""
    if not grow:
        x0, y0, x1, y1 = map(float, box)
        return x0, y0, x1, y1
    return expand_box(box, spec.margin, spec.square)


def mirrors(spec: CropSpec, side: str) -> bool:
    """Whether the crop of a hand of this handedness (MediaPipe's "Left" / "Right", "" unknown) is mirrored: a
    Left hand when ``spec.mirror_left``, so a left-handed signer's crop shows the same sign made with the right hand
    (the landmark features mirror the same hands, ``nsl.landmarks``)."""
    return spec.mirror_left and is_left(side)


def crop_hand(frame_rgb: np.ndarray, box, spec: CropSpec, grow: bool = True, side: str = "") -> np.ndarray:
    """The device path, also training's: hand box -> its crop (``crop_box``), mirrored when ``mirrors(spec,
    side)`` -> classifier input (``prepare``)."""
    cut = crop(frame_rgb, crop_box(box, spec, grow))
    return prepare(cv2.flip(cut, 1) if mirrors(spec, side) else cut, spec)


def prepare_input(image: np.ndarray, spec: CropSpec, box=None, side: str = "") -> np.ndarray:
    """A decoded dataset image as the classifier's input: the device's crop around ``box`` (the hand's landmark
    box, when the run crops to hands, ``crop=hands``; ``side`` its handedness), else the whole image as framed."""
    return prepare(image, spec) if box is None else crop_hand(image, box, spec, side=side)


def load_input(path: str | Path, spec: CropSpec, box=None, side: str = "") -> np.ndarray:
    """A dataset image file as the classifier's input (``read_image``, then ``prepare_input``)."""
    return prepare_input(read_image(path), spec, box, side)
