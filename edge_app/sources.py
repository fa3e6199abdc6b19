"""Frame sources: camera, video file, image folder, RTSP/HTTP stream, GStreamer pipeline.

Capture runs on its own thread. A live source (camera, stream, pipeline) always hands over the newest frame:
a slow consumer drops frames instead of building latency, and a source that stops delivering is reopened
with backoff while ``status`` says so. A file source (video, folder) hands over every frame in order and ends
cleanly. Frames arrive as RGB uint8 whatever the source gives (any size, grey, alpha).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from nsl.edge.camera_presets import PRESETS, is_gstreamer_pipeline, require_gstreamer, resolve_source
from nsl.preprocess import read_image, to_rgb
from nsl.errors import NslError
from nsl.fileio import IMAGE_SUFFIXES, is_image_file

log = logging.getLogger(__name__)

STREAM_TIMEOUT_S = 10  # a stream that sends nothing for this long (opening or reading) counts as lost


@dataclass(frozen=True)
class SourceSpec:
    kind: str            # camera | video | folder | stream | gstreamer
    target: object       # camera index or device path, file/folder path, URL, pipeline string
    camera: tuple = ()   # a camera's requested (width, height, fps), None where not asked (--width/--height/--fps)

    @property
    def live(self) -> bool:
        return self.kind in ("camera", "stream", "gstreamer")


@dataclass(frozen=True)
class Frame:
    index: int
    image: np.ndarray    # RGB uint8 (H, W, 3)
    timestamp_ms: int


def parse_source(text: str | int, width: int | None = None, height: int | None = None,
                 fps: float | None = None) -> SourceSpec:
    """``0`` or ``/dev/video0`` -> camera; ``picam``/``csi``/``usb`` presets or ``... ! appsink`` -> GStreamer;
    ``rtsp://``/``http://`` -> stream; a folder -> its images; an image file -> that image; other files -> video.
    ``width``, ``height``, ``fps`` ask a camera (index, device, preset) for that mode; other sources refuse them."""
    camera = _camera_settings(width, height, fps)
    resolved = resolve_source(with_preset_settings(text, *camera) if camera else text)
    if isinstance(resolved, int) or resolved.startswith("/dev/video"):
        return SourceSpec("camera", resolved, camera)
    if camera and not is_preset(text):
        raise NslError(f"--width/--height/--fps: apply to cameras (an index, /dev/videoN, picam, csi, usb); "
                       f"--source {text} is not one (a file or stream keeps its own size)")
    if "://" in resolved:
        return SourceSpec("stream", resolved)
    if is_gstreamer_pipeline(resolved) or " ! " in resolved:
        require_gstreamer(resolved)
        return SourceSpec("gstreamer", resolved)
    path = Path(resolved).expanduser()
    if path.is_dir():
        return SourceSpec("folder", path)
    if path.is_file():
        return SourceSpec("folder" if is_image_file(path) else "video", path)
    raise NslError(f"--source {text}: no such file, folder or camera (use a camera index such as 0, /dev/videoN, "
                   "picam, csi or usb, a video file, a folder of images, an rtsp:// or http:// URL, "
                   "or a GStreamer pipeline)")


def _camera_settings(width, height, fps) -> tuple:
    if all(value is None for value in (width, height, fps)):
        return ()
    for name, value in (("width", width), ("height", height), ("fps", fps)):
        if value is not None and not 0 < value <= (240 if name == "fps" else 8192):
            raise NslError(f"--{name} {value}: expected a positive number (e.g. --width 1280 --height 720 --fps 30)")
    return width, height, fps


def is_preset(text) -> bool:
    return isinstance(text, str) and text.strip().partition(":")[0] in PRESETS


def with_preset_settings(text, width, height, fps):
    """A preset's text with ``width=,height=,fps=`` appended (they win over its own size); others unchanged."""
    if not is_preset(text):
        return text
    extra = ",".join(f"{name}={int(value)}" for name, value in (("width", width), ("height", height), ("fps", fps))
                     if value is not None)
    return f"{text}{',' if ':' in text else ':'}{extra}"


def apply_camera_settings(capture, target, settings: tuple) -> None:
    """Ask an opened camera for a size and rate; a camera picks its nearest mode, so what it chose is logged."""
    props = (cv2.CAP_PROP_FRAME_WIDTH, cv2.CAP_PROP_FRAME_HEIGHT, cv2.CAP_PROP_FPS)
    for prop, value in zip(props, settings):
        if value is not None:
            capture.set(prop, float(value))
    got = [capture.get(prop) for prop in props]
    log.info("camera %s: asked %s, got %gx%g at %g fps", target,
             "x".join("-" if v is None else f"{v:g}" for v in settings), *got)


class FolderReader:
    """The images of a folder (or one image file), sorted by name; unreadable files are skipped and logged, and a
    folder without one readable image fails at start (rather than a run of zero frames that reports success)."""

    fps = 30.0

    def __init__(self, path: Path):
        path = Path(path)
        self.files = ([path] if path.is_file() else
                      sorted(p for p in path.iterdir() if is_image_file(p)))
        if not self.files:
            raise NslError(f"--source {path}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
        self.position, self.first_error = 0, None
        self.pending = self._next()
        if self.pending is None:
            raise NslError(f"--source {path}: none of its {len(self.files)} image(s) can be read "
                           f"(first: {self.first_error})")

    def _next(self) -> np.ndarray | None:
        while self.position < len(self.files):
            path, self.position = self.files[self.position], self.position + 1
            try:
                return read_image(path)
            except NslError as err:
                log.warning("skipping %s", err)
                self.first_error = self.first_error or err
        return None

    def read(self) -> np.ndarray | None:
        if self.pending is None:
            return self._next()
        image, self.pending = self.pending, None
        return image

    def release(self) -> None:
        pass


class FramePool:
    """Reused frame arrays for a capture, so a long run does not allocate two frame-sized arrays a frame (the
    decoded BGR frame and its RGB copy, 900 KB each at 640x480): under that churn glibc's arenas fragment and
    resident memory creeps, and a reopened stream's first frames land in new places (benchmarks/soak/pool).

    An RGB array is handed out again only when nothing but the pool holds it: a frame still held by the tracker,
    a crop's view, the renderer, a sink or a caller keeps its array out of rotation, and a new array is made. The
    pool belongs to the ``FrameSource``, so it outlives the readers a reconnect replaces."""

    def __init__(self, size: int = 8):
        self.size, self.arrays, self.made = size, [], 0
        self.scratch: np.ndarray | None = None   # the BGR frame the capture decodes into
        self._free_refs = _refcounts([np.empty(0, np.uint8)])[0]  # an array only a list holds (measured, not assumed)

    def read(self, capture) -> np.ndarray | None:
        """The capture's next frame as RGB uint8, in a reused array; None when it gives none."""
        ok, image = capture.read(self.scratch)
        if not ok or image is None or not image.size:
            return None
        self.scratch = image
        return to_rgb(image, bgr=True, out=self._unheld(image.shape[:2] + (3,)))

    def _unheld(self, shape: tuple) -> np.ndarray:
        for array, refs in zip(self.arrays, _refcounts(self.arrays)):
            if array.shape == shape and refs == self._free_refs:
                return array
        array = np.empty(shape, np.uint8)
        self.made += 1
        # arrays of another size (the stream changed) and the oldest held ones leave the pool to their holders
        self.arrays = [a for a in self.arrays if a.shape == shape][-(self.size - 1):] + [array]
        return array


def _refcounts(arrays: list) -> list[int]:
    """Each array's reference count, seen from one place, so the count of an unheld array is the same every time."""
    return [sys.getrefcount(array) for array in arrays]


class CaptureReader:
    """An OpenCV capture (camera, video file, stream, pipeline); ``opener`` is cv2.VideoCapture unless a test
    passes a fake (it must take ``read(image)`` as OpenCV's does). Frames come from ``pool``."""

    def __init__(self, spec: SourceSpec, opener: Callable = cv2.VideoCapture, pool: FramePool | None = None):
        self.pool = pool or FramePool()
        target = str(spec.target) if isinstance(spec.target, Path) else spec.target
        if spec.kind == "stream":  # OpenCV's FFmpeg waits 30 s by default, in silence, for a server that sends nothing
            log.info("%s: connecting (giving up after %d s without data)", target, STREAM_TIMEOUT_S)
            timeout_ms = STREAM_TIMEOUT_S * 1000
            self.capture = opener(target, cv2.CAP_ANY, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms,
                                                        cv2.CAP_PROP_READ_TIMEOUT_MSEC, timeout_ms])
        else:
            self.capture = opener(target, cv2.CAP_GSTREAMER) if spec.kind == "gstreamer" else opener(target)
        if not self.capture.isOpened():
            self.capture.release()
            raise NslError(_cannot_open(spec))
        if spec.kind == "camera" and spec.camera:
            apply_camera_settings(self.capture, target, spec.camera)
        fps = float(self.capture.get(cv2.CAP_PROP_FPS) or 0)
        self.fps = fps if 1 <= fps <= 240 else 30.0

    def read(self) -> np.ndarray | None:
        return self.pool.read(self.capture)

    def release(self) -> None:
        self.capture.release()


def _cannot_open(spec: SourceSpec) -> str:
    hints = {"camera": "check the index or device path, that it is connected, and that no other program holds it",
             "stream": f"refused, or nothing received within {STREAM_TIMEOUT_S} s: check the URL and that the stream "
                       "is reachable", "video": "not a readable video file",
             "gstreamer": "check the pipeline; it must end in appsink"}
    return f"--source {spec.target}: cannot open ({hints[spec.kind]})"


def open_reader(spec: SourceSpec, opener: Callable = cv2.VideoCapture, pool: FramePool | None = None):
    return FolderReader(spec.target) if spec.kind == "folder" else CaptureReader(spec, opener, pool)


class FrameSource:
    """A reader on its own thread. ``next_frame(timeout)`` returns the newest frame not yet taken, None on a
    timeout; ``ended`` turns true when a file source is exhausted (or ``stop`` was called)."""

    def __init__(self, spec: SourceSpec, opener: Callable = cv2.VideoCapture, backoff: tuple = (0.5, 10.0)):
        self.spec, self.opener, self.backoff = spec, opener, backoff
        self.status = ""                         # shown on screen while the source is lost
        self.pool = FramePool()                  # outlives the readers a reconnect replaces
        self.reader = self._first_open()
        self.dropped = self.reconnects = 0
        self._delay = backoff[0]
        self._frame: Frame | None = None
        self._cond = threading.Condition()
        self._stopped = self._ended = False
        self._thread = threading.Thread(target=self._run, name="capture", daemon=True)
        self._started = time.monotonic()

    def _first_open(self):
        """The reader; a source that cannot be opened fails at start with a clear message, except a stream,
        which is retried like a lost one (a camera on the network may come up after the device)."""
        try:
            return open_reader(self.spec, self.opener, self.pool)
        except NslError as err:
            if self.spec.kind != "stream":
                raise
            log.warning("%s; retrying as for a lost stream", err)
            return None

    @property
    def ended(self) -> bool:
        with self._cond:
            return self._ended and self._frame is None

    def start(self) -> "FrameSource":
        self._thread.start()
        return self

    def _put(self, frame: Frame) -> None:
        with self._cond:
            if not self.spec.live:  # files: hand over every frame
                self._cond.wait_for(lambda: self._frame is None or self._stopped)
            elif self._frame is not None:
                self.dropped += 1
            self._frame = frame
            self._cond.notify_all()

    def next_frame(self, timeout: float = 1.0) -> Frame | None:
        with self._cond:
            self._cond.wait_for(lambda: self._frame is not None or self._ended, timeout)
            frame, self._frame = self._frame, None
            self._cond.notify_all()
            return frame

    def _timestamp(self, index: int) -> int:
        if self.spec.live:
            return int((time.monotonic() - self._started) * 1000)
        return int(round(index * 1000 / self.reader.fps))

    def _run(self) -> None:
        index = 0
        try:
            while not self._stopped:
                image = self.reader.read() if self.reader else None
                if image is None:
                    if not self.spec.live or not self._reconnect():
                        break
                    continue
                self._delay = self.backoff[0]
                self._put(Frame(index, image, self._timestamp(index)))
                index += 1
        except Exception:  # a crash in the capture thread must end the loop, not hang it
            log.exception("capture thread failed")
        finally:
            with self._cond:
                self._ended = True
                self._cond.notify_all()

    def _reconnect(self) -> bool:
        """Reopen a lost live source, waiting longer after each failure; False when stopped."""
        attempt = 0
        if self.reader:
            self.reader.release()
            self.reader = None
        while not self._stopped:
            attempt += 1
            self.status = f"source lost: reconnecting (attempt {attempt}, next in {self._delay:.1f} s)"
            log.warning("%s: %s", self.spec.target, self.status)
            with self._cond:
                if self._cond.wait_for(lambda: self._stopped, self._delay):
                    return False
            self._delay = min(self._delay * 2, self.backoff[1])  # reset only by a delivered frame
            try:
                self.reader = open_reader(self.spec, self.opener, self.pool)
            except NslError:
                continue
            self.reconnects += 1
            self.status = ""
            log.info("%s: reconnected after %d attempt(s)", self.spec.target, attempt)
            return True
        return False

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        if self.reader:
            self.reader.release()
