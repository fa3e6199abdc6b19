"""``nsl capture``: record a signer's crops class by class, with the app's own tracker and crop.

For each class in turn: the class to sign is shown (Devanagari and roman), a countdown runs, then a burst of
``burst`` crops is saved, one every ``every`` frames in which a hand is found; then the next class comes.
Keys (window): space starts the countdown, n / p go to the next / previous class, r discards the last take
of this class and goes back to it, q quits. Headless (``--headless``, a video file or folder as the source)
the countdown starts by itself and the run ends after the last class or with the source. The countdown is
measured on the frames' own clock, so a recorded clip behaves as the camera did.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass

import cv2
import numpy as np

from nsl.edge.capture import CaptureStore, Saved, check_name, default_session
from nsl.edge.hand_model import resolve as resolve_hand_model
from nsl.edge.hands import Confidences, make_hands
from nsl.edge.outputs import Window
from nsl.edge.render import GREEN, GREY, RED, Renderer
from nsl.edge.sources import FrameSource, parse_source
from nsl.errors import NslError
from nsl.labels import load_labels
from nsl.preprocess import CropSpec, crop_box, crop_hand

log = logging.getLogger(__name__)


@dataclass
class CaptureOptions:
    """What ``nsl capture`` is asked to do (one field per command-line option)."""

    out: str
    signer: str
    source: str = "0"
    session: str | None = None       # default: today's date (a rerun the same day resumes it)
    burst: int = 10                  # crops saved per class and take
    every: int = 3                   # frames between two saved crops of a burst
    countdown: float = 3.0           # seconds shown before a burst
    labels: str = "nsl36"
    size: int = 256                  # side of the saved crops (the NSL dataset's images are 256 x 256)
    margin: float = 0.10
    hand_model: str | None = None
    headless: bool = False
    mirror: bool = False             # show the view mirrored (what is saved is never mirrored)
    max_frames: int | None = None
    min_hand_detection_confidence: float = 0.5   # MediaPipe's thresholds, as nsl app
    min_hand_presence_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    width: int | None = None         # camera mode asked for, as nsl app
    height: int | None = None
    fps: float | None = None


class CaptureWindow(Window):
    KEYS = {**Window.KEYS, ord("n"): "next", ord("p"): "previous", ord("r"): "redo", 83: "next", 81: "previous",
            13: "pause"}


class Capture:
    """The loop: frame -> tracker -> (countdown | burst of saved crops) -> drawing -> keys."""

    def __init__(self, options: CaptureOptions, store: CaptureStore, source: FrameSource, tracker, window=None):
        self.options, self.store, self.source, self.tracker, self.window = options, store, source, tracker, window
        self.labels = store.labels
        self.position = store.first_incomplete(options.burst)
        self.renderer = Renderer()
        self.state, self.started_ms, self.last_saved = ("countdown" if window is None else "waiting"), None, None
        self.take: list[Saved] = []
        self.takes: dict[int, list[Saved]] = {}
        self.frames = self.saved = 0
        self.done = False

    @property
    def label(self):
        return self.labels[self.position]

    def _go(self, position: int) -> None:
        self.position = position % len(self.labels)
        self.state = "countdown" if self.window is None else "waiting"
        self.started_ms, self.take = None, []

    def _action(self, action: str | None) -> None:
        if action == "pause" and self.state == "waiting":
            self.state, self.started_ms = "countdown", None
        elif action in ("next", "previous"):
            self._go(self.position + (1 if action == "next" else -1))
        elif action == "redo":
            self.store.discard(self.takes.pop(self.label.index, []) + self.take)
            self._go(self.position)

    def step(self, frame) -> str | None:
        """Track one frame and advance the countdown or the burst; the answer is the key action, if any."""
        hands = self.tracker.detect(frame.image, frame.timestamp_ms)
        hand = max(hands, key=lambda h: h.score) if hands else None
        if self.state == "countdown":
            self.started_ms = frame.timestamp_ms if self.started_ms is None else self.started_ms
            if frame.timestamp_ms - self.started_ms >= self.options.countdown * 1000:
                self.state = "burst"  # last_saved carries over: two saves are always `every` frames apart
        if self.state == "burst" and hand is not None and (
                self.last_saved is None or frame.index - self.last_saved >= self.options.every):
            self.take.append(self.store.save(self.label.index, frame.image, hand))
            self.last_saved, self.saved = frame.index, self.saved + 1
            if len(self.take) >= self.options.burst:
                self._end_take()
        if self.window is None:
            return None
        action = self.window.show(self._draw(frame, hand))
        self._action(action)
        return action

    def _end_take(self) -> None:
        self.takes[self.label.index] = self.take
        self.store.flush()
        log.info("class %d %s (%s): %d crops saved, %d of this signer", self.label.index, self.label.name,
                 self.label.roman, len(self.take), self.store.count(self.label.index, True))
        if self.position == len(self.labels) - 1 and self.window is None:
            self.done = True
        self._go(self.position + 1)

    def _draw(self, frame, hand) -> np.ndarray:
        """The view: mirrored if asked, the crop box, the crop itself in a corner, what to sign, counts, keys."""
        frame_rgb = frame.image
        image = cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR)
        spec = self.store.spec
        if hand is not None:
            x0, y0, x1, y1 = (int(round(v)) for v in crop_box(hand.box, spec))
            cv2.rectangle(image, (x0, y0), (x1, y1), GREEN if self.state == "burst" else GREY, 2)
            side = max(64, image.shape[0] // 4)
            preview = cv2.resize(cv2.cvtColor(crop_hand(frame_rgb, hand.box, spec), cv2.COLOR_RGB2BGR), (side, side))
        if self.options.mirror:
            image = cv2.flip(image, 1)
        if hand is not None:
            image[-side:, -side:] = preview
        label, r = self.label, self.renderer
        r.label_size, r.small_size = int(np.clip(image.shape[0] / 12, 14, 72)), int(np.clip(image.shape[0] / 30, 10, 32))
        sign = f"{label.index} {label.name} {label.roman}" if r.devanagari else f"{label.index} {label.ascii}"
        y = r.text(image, sign, 0, 0, size=r.label_size)[1]
        counts = (f"this signer {self.store.count(label.index, True)}  all {self.store.count(label.index)}  "
                  f"take {len(self.take)}/{self.options.burst}")
        y += r.text(image, counts, 0, y)[1]
        if self.state == "countdown" and self.started_ms is not None:
            remaining = max(0.0, self.options.countdown - (frame.timestamp_ms - self.started_ms) / 1000)
            y += r.text(image, f"{remaining:.0f}", 0, y, background=RED, size=r.label_size)[1]
        elif self.state == "waiting":
            y += r.text(image, "space: start", 0, y)[1]
        r.text(image, "space start  n next  p previous  r redo  q quit", 0, image.shape[0] - r.small_size * 2)
        return image

    def run(self) -> dict:
        self.source.start()
        try:
            while not self.done and (self.options.max_frames is None or self.frames < self.options.max_frames):
                frame = self.source.next_frame(timeout=0.2)
                if frame is None:
                    if self.source.ended:
                        break
                    continue
                self.frames += 1
                if self.step(frame) == "quit":
                    break
        finally:
            self.source.stop()
            self.tracker.close()
            self.store.flush()
            if self.window is not None:
                self.window.close()
        return {**self.store.summary(), "frames": self.frames, "saved": self.saved,
                "hand_tracker": self.tracker.name}


def run_capture(options: CaptureOptions, source: FrameSource | None = None) -> dict:
    """Build the parts ``options`` ask for (``source``: an already-built FrameSource, e.g. a test's) and run."""
    for name in ("burst", "every", "size"):
        if getattr(options, name) < 1:
            raise NslError(f"--{name} {getattr(options, name)}: must be a whole number of at least 1")
    if options.countdown < 0:
        raise NslError(f"--countdown {options.countdown}: seconds, at least 0")
    confidences = Confidences(options.min_hand_detection_confidence, options.min_hand_presence_confidence,
                              options.min_tracking_confidence)
    labels = load_labels(options.labels)
    session = check_name("session", options.session or default_session())
    check_name("signer", options.signer)
    hand_model = resolve_hand_model(options.hand_model)
    source = source or FrameSource(parse_source(options.source, options.width, options.height, options.fps))
    window = None if options.headless else CaptureWindow("nsl capture")
    # the folder last: a mistake above (name, source, display) leaves nothing written
    store = CaptureStore(options.out, labels, options.signer, session, CropSpec(size=options.size,
                                                                                 margin=options.margin))
    tracker = make_hands(hand_model, None, 1, mode="video", confidences=confidences)
    store.table.meta["hand_model"] = hand_model.name
    if options.headless and source.spec.live:
        print("capturing headless from a live source: the countdown starts by itself", file=sys.stderr)
    return Capture(options, store, source, tracker, window).run()
