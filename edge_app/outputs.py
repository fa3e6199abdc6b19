"""Where the loop's results go (its sinks): JSON lines, an annotated video file, a window with keys.

Each is a ``Sink``: ``frame(image_bgr)`` gets the drawn frame (sinks with ``takes_frames``; the loop draws nothing
when none has it) and may answer a key action, ``record(dict)`` a frame's JSON record (sinks with
``takes_records``), and ``close(summary)`` ends the run (``summary`` None after an error). ``make_sinks`` builds
them for ``nsl app``."""

from __future__ import annotations

import json
import logging
import os
import queue
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from nsl.errors import NslError

log = logging.getLogger(__name__)


class Sink:
    """One output of the loop; every hook does nothing unless the output overrides it."""

    takes_frames = False             # True: the loop draws each frame for this sink
    takes_records = False            # True: the loop makes each frame's JSON record for this sink

    def frame(self, image_bgr: np.ndarray) -> str | None:
        """A drawn frame; the answer is a key action (quit, pause, snapshot) or None."""
        return None

    def record(self, record: dict) -> None:
        """A frame's JSON record (docs/ARCHITECTURE.md, "Edge app")."""

    def close(self, summary: dict | None = None) -> None:
        """The run is over: ``summary`` when it ended normally, None after an error."""


class JsonLines(Sink):
    """One JSON object per line to a file or ``-`` (stdout), flushed per line so a reader can follow it and
    a crash leaves only whole lines. As a sink: a line per frame record, then ``{"summary": ...}``.

    ``max_mb``: when the file reaches this size it is rotated as Python's logging does (FILE -> FILE.1 -> ...
    FILE.3, the oldest dropped), so a service's log stays under (BACKUPS + 1) x max_mb; stdout is never rotated
    (the service manager's journal keeps it)."""

    takes_records = True
    BACKUPS = 3

    def __init__(self, target: str | Path, max_mb: float | None = None):
        if max_mb is not None and not max_mb > 0:
            raise NslError(f"--json-max-mb {max_mb}: expected a positive size in MB (e.g. 50)")
        self.max_bytes = int(max_mb * 1024 * 1024) if max_mb else None
        self.to_stdout = str(target) == "-"
        self.path = None if self.to_stdout else Path(target).expanduser()
        if self.to_stdout:
            self.stream = sys.stdout
        else:
            path = self.path
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                if self.max_bytes and path.is_file() and path.stat().st_size:  # a restarted service keeps its log
                    self._shift()
                self.stream = open(path, "w", encoding="utf-8")
            except OSError as err:  # a folder, /proc, a read-only mount, no permission
                raise NslError(f"--json {target}: cannot write this file ({err.strerror or err}); "
                               f"name a file in a writable folder, or - for stdout") from None

    def write(self, record: dict) -> None:
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
        if self.max_bytes and not self.to_stdout and self.stream.tell() + len(line.encode()) > self.max_bytes \
                and self.stream.tell() > 0:
            self._rotate()
        self.stream.write(line)
        self.stream.flush()

    def _rotate(self) -> None:
        self.stream.close()
        self._shift()
        self.stream = open(self.path, "w", encoding="utf-8")

    def _shift(self) -> None:
        """FILE -> FILE.1, FILE.1 -> FILE.2, ..., the oldest dropped."""
        for number in range(self.BACKUPS, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{number}")
            newer = self.path.with_name(f"{self.path.name}.{number - 1}") if number > 1 else self.path
            if newer.exists():
                os.replace(newer, older)

    def record(self, record: dict) -> None:
        self.write(record)

    def close(self, summary: dict | None = None) -> None:
        if summary is not None:
            self.write({"summary": summary})
        if not self.to_stdout:
            self.stream.close()


def read_json_lines(path: str | Path) -> tuple[list[dict], dict]:
    """What ``JsonLines`` wrote for ``nsl app --json FILE``: the frame records and the closing summary ({} when
    the run ended before writing one)."""
    records = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    frames = [record for record in records if "summary" not in record]
    summary = next((record["summary"] for record in records if "summary" in record), {})
    return frames, summary


class VideoRecorder(Sink):
    """Annotated frames to a video file. It is written under a temporary name and renamed when closed, so a
    finished file is always whole (an interrupted one stays as ``.NAME.partial.EXT``).

    Encoding runs on its own thread behind a short queue: the loop hands a frame over and goes on (encoding a
    640x480 mp4 frame costs about a millisecond, most of the drawing stage); when the encoder falls behind, the
    hand-over waits rather than dropping a recorded frame."""

    QUEUE = 4
    takes_frames = True

    def __init__(self, path: str | Path, fps: float):
        self.path = Path(path).expanduser()
        if self.path.suffix.lower() not in (".mp4", ".avi", ".mkv"):
            raise NslError(f"--output {self.path}: use a .mp4, .avi or .mkv file name")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.partial = self.path.with_name(f".{self.path.stem}.partial{self.path.suffix}")
        self.fps, self.writer, self.size = fps, None, None
        self.frames: queue.Queue = queue.Queue(maxsize=self.QUEUE)
        self.thread: threading.Thread | None = None
        self.error: Exception | None = None

    def write(self, image_bgr: np.ndarray) -> None:
        if self.writer is None:
            self._open(image_bgr)
        if self.error:
            raise NslError(f"--output {self.path}: writing failed ({self.error})")
        self.frames.put(image_bgr)

    def frame(self, image_bgr: np.ndarray) -> None:
        self.write(image_bgr)

    def _open(self, first: np.ndarray) -> None:
        self.size = (first.shape[1], first.shape[0])
        fourcc = cv2.VideoWriter_fourcc(*("mp4v" if self.path.suffix.lower() == ".mp4" else "MJPG"))
        self.writer = cv2.VideoWriter(str(self.partial), fourcc, self.fps, self.size)
        if not self.writer.isOpened():
            raise NslError(f"--output {self.path}: OpenCV cannot write this video file")
        self.thread = threading.Thread(target=self._encode, name="record", daemon=True)
        self.thread.start()

    def _encode(self) -> None:
        while (image_bgr := self.frames.get()) is not None:
            try:
                if (image_bgr.shape[1], image_bgr.shape[0]) != self.size:  # a folder of images of mixed sizes
                    image_bgr = cv2.resize(image_bgr, self.size, interpolation=cv2.INTER_AREA)
                self.writer.write(image_bgr)
            except Exception as err:  # kept for the loop's next write or close: a thread cannot raise to it
                self.error = err

    def close(self, summary: dict | None = None) -> None:
        if self.writer is None:
            return
        self.frames.put(None)
        self.thread.join()
        self.writer.release()
        if self.error:
            raise NslError(f"--output {self.path}: writing failed ({self.error}); the partial file is {self.partial}")
        os.replace(self.partial, self.path)
        log.info("wrote %s", self.path)


class Window(Sink):
    """An OpenCV window; ``show`` returns the action of the key pressed: quit, pause, snapshot or None."""

    takes_frames = True
    KEYS = {ord("q"): "quit", 27: "quit", ord(" "): "pause", ord("s"): "snapshot", ord("t"): "timing"}

    def __init__(self, title: str = "nsl"):
        if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise NslError("no display to open a window on (DISPLAY is not set): run with --headless")
        self.title = title
        cv2.namedWindow(title, cv2.WINDOW_NORMAL)

    def show(self, image_bgr: np.ndarray, wait_ms: int = 1) -> str | None:
        cv2.imshow(self.title, image_bgr)
        return self.KEYS.get(cv2.waitKey(wait_ms) & 0xFF)

    def frame(self, image_bgr: np.ndarray) -> str | None:
        return self.show(image_bgr)

    def wait_while_paused(self, image_bgr: np.ndarray) -> str | None:
        """Show the paused frame until space (resume), q (quit) or s (snapshot, stays paused)."""
        while True:
            action = self.show(image_bgr, 50)
            if action in ("quit", "pause"):
                return action
            if action == "snapshot":
                save_snapshot(image_bgr)

    def close(self, summary: dict | None = None) -> None:
        cv2.destroyWindow(self.title)


def make_sinks(json: str | None = None, output: str | None = None, fps: float = 30.0,
               window: bool = True, json_max_mb: float | None = None, status: bool = False) -> list[Sink]:
    """The sinks of ``nsl app --json FILE|- --output VIDEO`` (and a window unless headless, a status line when
    asked). Frames go to the recorder before the window; the JSON lines come last, so they carry the summary
    once the others closed."""
    lines = JsonLines(json, json_max_mb) if json else None
    recorder = VideoRecorder(output, fps) if output else None
    screen = Window() if window else None
    line = StatusLine() if status else None
    return [sink for sink in (recorder, screen, line, lines) if sink is not None]


class StatusLine(Sink):
    """One line on the terminal (stderr), rewritten in place about twice a second: frames/s and the label shown.
    The loop makes a frame's record for it as for the JSON lines."""

    takes_records = True

    def __init__(self, stream=None, every_s: float = 0.5):
        self.stream, self.every_s = stream or sys.stderr, every_s
        self.times: list[float] = []
        self.last_shown, self.width = 0.0, 0

    def record(self, record: dict) -> None:
        now = time.monotonic()
        self.times = [t for t in self.times if now - t < 2.0] + [now]
        if now - self.last_shown < self.every_s:
            return
        self.last_shown = now
        fps = (len(self.times) - 1) / (self.times[-1] - self.times[0]) if len(self.times) > 1 else 0.0
        label = record.get("text", "")
        if record.get("label") is not None:
            label = f"{record['label']} {record['text']} ({record['roman']}) {record['hands'][0]['confidence']:.0%}"
        text = f"frame {record['frame']}  {fps:5.1f} FPS  {label}"
        self.stream.write("\r" + text.ljust(self.width))
        self.stream.flush()
        self.width = len(text)

    def close(self, summary: dict | None = None) -> None:
        if self.width:
            self.stream.write("\n")
            self.stream.flush()


def wants_status(options) -> bool:
    """``--status auto``: a status line when headless on a terminal and stderr is not where the JSON goes."""
    if options.status not in ("auto", "on", "off"):
        raise NslError(f"--status {options.status!r}: expected auto, on or off")
    if options.status != "auto":
        return options.status == "on"
    return bool(options.headless and sys.stderr.isatty())


def save_snapshot(image_bgr: np.ndarray, folder: str | Path = ".") -> Path:
    path = Path(folder) / time.strftime("nsl-snapshot-%Y%m%d-%H%M%S.png")
    if not cv2.imwrite(str(path), image_bgr):
        raise NslError(f"{path}: cannot write the snapshot")
    log.info("snapshot saved to %s", path)
    return path
