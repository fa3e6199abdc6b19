"""Ready-made camera sources for the boards: the Pi camera, the Jetson CSI camera and USB (V4L2) cameras.

Each preset is a GStreamer pipeline ending in ``appsink`` with BGR frames, the form
``cv2.VideoCapture(pipeline, cv2.CAP_GSTREAMER)`` opens. ``resolve_source`` turns what a user types after
``--source`` into what OpenCV opens:

    0, 1, ...                      camera index (int)
    picam[:OPTIONS]                Raspberry Pi camera through libcamera (libcamerasrc)
    csi[:OPTIONS]                  Jetson CSI camera through nvarguscamerasrc + nvvidconv
    usb[:OPTIONS]                  USB camera through v4l2src (MJPEG by default)
    anything else                  returned unchanged (a file, a folder, a URL, a raw GStreamer pipeline)

OPTIONS are comma-separated: a size ``1280x720`` or ``1280x720@30`` and ``key=value`` pairs
(width, height, fps, flip; csi also takes id=SENSOR; usb takes device=/dev/video2 and format=mjpeg|raw), e.g.
``csi:1280x720@60,flip=rotate-180,id=1``. Flip names are the same for every camera (``FLIPS``).

OpenCV's pip wheels are built without GStreamer; pipelines need an OpenCV with it (Raspberry Pi OS:
``python3-opencv``; JetPack's OpenCV). ``opencv_has_gstreamer()`` tells which one is installed.
"""

from __future__ import annotations

import logging
import re

from nsl.errors import NslError

log = logging.getLogger(__name__)

# One flip vocabulary for the user; each GStreamer element numbers its methods differently.
FLIPS = ("none", "clockwise", "rotate-180", "counterclockwise", "horizontal", "vertical")
_VIDEOFLIP_METHOD = {"none": 0, "clockwise": 1, "rotate-180": 2, "counterclockwise": 3,
                     "horizontal": 4, "vertical": 5}
_NVVIDCONV_FLIP = {"none": 0, "counterclockwise": 1, "rotate-180": 2, "clockwise": 3,
                   "horizontal": 4, "vertical": 6}

APPSINK = "video/x-raw,format=BGR ! appsink drop=true max-buffers=1 sync=false"


def _check(width: int, height: int, fps: int, flip: str) -> None:
    if min(width, height, fps) <= 0:
        raise NslError(f"camera size/fps must be positive, got {width}x{height}@{fps}: use e.g. 640x480@30")
    if flip not in FLIPS:
        raise NslError(f"unknown camera flip '{flip}': use one of {', '.join(FLIPS)}")


def picam_pipeline(width: int = 640, height: int = 480, fps: int = 30, flip: str = "none") -> str:
    """Raspberry Pi camera (any libcamera sensor, the first one) as BGR frames.

    A second camera is chosen by its name (``libcamerasrc camera-name=...``, names from
    ``rpicam-hello --list-cameras``); pass such a pipeline as the source text itself.
    """
    _check(width, height, fps, flip)
    parts = ["libcamerasrc", f"video/x-raw,width={width},height={height},framerate={fps}/1"]
    if flip != "none":
        parts.append(f"videoflip method={_VIDEOFLIP_METHOD[flip]}")
    parts += ["videoconvert", APPSINK]
    return " ! ".join(parts)


def csi_pipeline(width: int = 640, height: int = 480, fps: int = 30, flip: str = "none", camera: int = 0,
                 capture_width: int = 1280, capture_height: int = 720) -> str:
    """Jetson CSI camera (nvarguscamerasrc): capture in a sensor mode, scale and flip on the VIC (nvvidconv)."""
    _check(width, height, fps, flip)
    _check(capture_width, capture_height, fps, "none")
    if width > capture_width or height > capture_height:  # never capture smaller than what is asked for
        capture_width, capture_height = width, height
    return " ! ".join([
        f"nvarguscamerasrc sensor-id={camera}",
        f"video/x-raw(memory:NVMM),width={capture_width},height={capture_height},format=NV12,framerate={fps}/1",
        f"nvvidconv flip-method={_NVVIDCONV_FLIP[flip]}",
        f"video/x-raw,width={width},height={height},format=BGRx",
        "videoconvert", APPSINK])


def usb_pipeline(width: int = 640, height: int = 480, fps: int = 30, flip: str = "none",
                 device: str = "/dev/video0", fmt: str = "mjpeg") -> str:
    """USB camera through V4L2; MJPEG reaches 30 fps at 640x480+ on USB 2 where raw YUYV often cannot."""
    _check(width, height, fps, flip)
    if fmt not in ("mjpeg", "raw"):
        raise NslError(f"unknown usb camera format '{fmt}': use format=mjpeg or format=raw")
    caps = f"width={width},height={height},framerate={fps}/1"
    parts = [f"v4l2src device={device}"]
    parts += [f"image/jpeg,{caps}", "jpegdec"] if fmt == "mjpeg" else [f"video/x-raw,{caps}"]
    if flip != "none":
        parts.append(f"videoflip method={_VIDEOFLIP_METHOD[flip]}")
    parts += ["videoconvert", APPSINK]
    return " ! ".join(parts)


PRESETS = {"picam": picam_pipeline, "csi": csi_pipeline, "usb": usb_pipeline}
_SIZE = re.compile(r"^(\d+)x(\d+)(?:@(\d+))?$")
_INT_KEYS = {"width", "height", "fps", "id"}
_KEYS = {"picam": {"width", "height", "fps", "flip"}, "csi": _INT_KEYS | {"flip"},
         "usb": {"width", "height", "fps", "flip", "device", "format"}}


def parse_options(name: str, text: str) -> dict:
    """``1280x720@30,flip=rotate-180`` -> keyword arguments of the preset ``name``."""
    kwargs: dict = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        size = _SIZE.match(item)
        if size:
            kwargs["width"], kwargs["height"] = int(size[1]), int(size[2])
            if size[3]:
                kwargs["fps"] = int(size[3])
            continue
        key, sep, value = item.partition("=")
        if not sep or key not in _KEYS[name]:
            raise NslError(f"--source {name}: unknown option '{item}'; use WIDTHxHEIGHT[@FPS] or "
                           f"{', '.join(f'{k}=...' for k in sorted(_KEYS[name]))}")
        if key in _INT_KEYS:
            if not value.isdigit():
                raise NslError(f"--source {name}: {key} must be a whole number, got '{value}'")
            value = int(value)
        kwargs[{"id": "camera", "format": "fmt"}.get(key, key)] = value
    return kwargs


def resolve_source(text: str | int) -> str | int:
    """What ``--source`` means: a camera index, a preset's pipeline, or the text unchanged (file, URL, pipeline)."""
    if isinstance(text, int):
        return text
    text = text.strip()
    if text.isdigit():
        return int(text)
    name, _, options = text.partition(":")
    if name not in PRESETS:
        return text
    pipeline = PRESETS[name](**parse_options(name, options))
    log.info("camera preset %s -> %s", name, pipeline)
    return pipeline


def is_gstreamer_pipeline(source: str | int) -> bool:
    """True for a GStreamer pipeline string (what must be opened with cv2.CAP_GSTREAMER)."""
    return isinstance(source, str) and "appsink" in source and " ! " in source


def opencv_has_gstreamer() -> bool:
    """Whether the installed OpenCV can open GStreamer pipelines (the pip wheels cannot)."""
    import cv2

    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GStreamer:"):
            return "YES" in line
    return False


def require_gstreamer(source: str | int) -> None:
    """Raise a one-line error when ``source`` is a pipeline and this OpenCV was built without GStreamer."""
    if is_gstreamer_pipeline(source) and not opencv_has_gstreamer():
        raise NslError("this OpenCV was built without GStreamer (the pip wheels are), so camera pipelines cannot "
                       "open: use a camera index or a USB device (--source 0), or an OpenCV with GStreamer "
                       "(see docker/README.md, 'Cameras')")
