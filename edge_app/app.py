"""The live loop over its parts: capture -> tracker.detect -> crop_hand -> classify -> smooth -> render -> sinks.

The classifier runs on a worker thread as a two-stage pipeline: while it classifies the crops of frame N, the
main thread captures and tracks frame N+1; frame N is then smoothed, drawn and written. Every frame is
classified and its results stay together; the slower of the two stages (normally the hand tracker) sets the
frame rate. All state is bounded (deques, pruned per-hand smoothers), so hours of running do not grow memory.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from nsl.edge.allocator import limit_arenas
from nsl.edge.bundle import Bundle, open_bundle
from nsl.edge.recognizer import Recognizer
from nsl.edge.hand_model import resolve as resolve_hand_model
from nsl.edge.hands import Box, Confidences, Hand, Tracker, make_hands, parse_roi
from nsl.edge.outputs import Sink, Window, make_sinks, save_snapshot, wants_status
from nsl.edge.render import Renderer
from nsl.edge.smoothing import NO_HAND, UNKNOWN, HandSmoothers
from nsl.edge.sources import Frame, FrameSource, parse_source
from nsl.edge.timing import StageTimer
from nsl.preprocess import crop_box, crop_hand

log = logging.getLogger(__name__)

TOP_K = 3  # classes per hand in the JSON lines and the overlay's top-3


def _no_label(text: str) -> dict:
    """The label fields of a frame without a known sign ("unknown", "no hand")."""
    return {"index": None, "name": text, "roman": text, "ascii": text}


@dataclass
class AppOptions:
    """What ``nsl app`` is asked to do (one field per command-line option)."""

    model: str
    source: str = "0"
    backend: str = "tflite"
    precision: str | None = None
    threads: int | None = None
    hands: int = 1
    roi: str | None = None
    smooth: int = 5
    smooth_method: str = "majority"
    threshold: float = 0.5
    hand_model: str | None = None
    headless: bool = False
    json: str | None = None
    output: str | None = None
    max_frames: int | None = None
    show_landmarks: bool = False
    model_kind: str | None = None   # cnn | landmarks | fused (default: fused when the bundle has both models)
    min_hand_detection_confidence: float = 0.5   # MediaPipe HandLandmarker's thresholds (nsl.edge.hands.Confidences)
    min_hand_presence_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    width: int | None = None        # camera mode asked for (cameras and presets only)
    height: int | None = None
    fps: float | None = None
    mirror: bool = False            # mirrored view (window, recording); tracking and classification unchanged
    show_top: bool = False          # the overlay lists each hand's top-3
    hide_timing: bool = False       # start with the timing panel off (key t toggles it)
    status: str = "auto"            # one live status line on the terminal: auto (headless on a terminal) | on | off
    json_max_mb: float | None = None  # rotate the JSON file at this size (FILE.1 .. FILE.3 kept)

    def confidences(self) -> Confidences:
        return Confidences(self.min_hand_detection_confidence, self.min_hand_presence_confidence,
                           self.min_tracking_confidence)


@dataclass(frozen=True)
class HandResult:
    """One hand of one frame, classified: this frame's top-1 and the smoothed label shown."""

    hand: Hand
    box: Box                # the crop the classifier saw (nsl.preprocess.crop_box): reported and drawn
    index: int              # top-1 of this frame's crop
    probability: float      # its probability
    smoothed: int | None    # smoothed label, None below the threshold
    confidence: float       # confidence of the smoothed label
    text: str               # what is shown: the smoothed label, or "unknown"
    top: tuple = ()         # this frame's three most probable classes: ((index, probability), ...)
    labels: tuple = ()      # the bundle's labels, for the overlay's top-3 (nsl.labels.Label)
    models: tuple = ()      # the models that answered for this hand: ("cnn",), ("landmarks",) or both

    @property
    def known(self) -> bool:
        return self.smoothed is not None


@dataclass
class Step:
    """A frame in flight: tracked, its crops submitted to the classifier."""

    frame: Frame
    hands: list[Hand]
    boxes: list[Box]        # where each hand's crop was cut
    job: Future | None      # -> (probabilities, models that answered each hand, model ms)


class App:
    """The loop over its parts, in the order a frame meets them: ``source`` -> ``tracker.detect`` ->
    ``crop_hand`` -> ``classifier`` (on the worker thread) -> ``smoothers`` -> ``renderer`` -> ``sinks``.

    ``classifier``: a ``Recognizer`` (``predict(crops, hands) -> (probabilities, models that answered)``) or a
    plain classifier (``predict(uint8 crops) -> probabilities``), with ``.path`` and ``.backend``;
    ``bundle``: the labels and the crop the classifier expects. ``from_options`` builds all for ``nsl app``."""

    def __init__(self, source: FrameSource, tracker: Tracker, classifier, renderer: Renderer,
                 sinks: Sequence[Sink], bundle: Bundle, smoothers: HandSmoothers, max_frames: int | None = None):
        self.source, self.tracker, self.classifier, self.renderer = source, tracker, classifier, renderer
        self.sinks, self.frame_sinks, self.record_sinks = [], [], []
        self.window: Window | None = None  # the status and pause screen
        for sink in sinks:
            self.add_sink(sink)
        self.bundle, self.smoothers, self.max_frames = bundle, smoothers, max_frames
        self.timer = StageTimer()
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="classify")
        self.stop = threading.Event()  # set by SIGTERM / the first Ctrl-C: the loop ends at a frame boundary
        self.labels_seen: Counter = Counter()
        self.last_image: np.ndarray | None = None

    def add_sink(self, sink: Sink) -> None:
        """One more output (closed after the others), in the lists the loop reads: drawn frames, records, window."""
        self.sinks.append(sink)
        if sink.takes_frames:
            self.frame_sinks.append(sink)
        if sink.takes_records:
            self.record_sinks.append(sink)
        if isinstance(sink, Window) and self.window is None:
            self.window = sink

    @classmethod
    def from_options(cls, options: AppOptions, source: FrameSource | None = None) -> "App":
        """The parts ``options`` ask for (``source``: an already-built FrameSource, e.g. a test's fake camera)."""
        limit_arenas()  # before the runtimes and the app start their threads: resident memory stays flat
        roi = parse_roi(options.roi) if options.roi else None
        confidences = options.confidences()
        hand_model = None if roi else resolve_hand_model(options.hand_model)  # cheap checks first
        # the classifier runs beside the hand tracker: by default it gets half the cores, the tracker the rest
        # (all cores for both slowed tracking by half on 2 cores with onnxruntime's spinning threads)
        threads = options.threads or max(1, (os.cpu_count() or 2) // 2)
        bundle = open_bundle(options.model)
        classifier = Recognizer.open(bundle, options.backend, options.precision, threads, options.model_kind)
        smoothers = HandSmoothers(options.smooth, options.smooth_method, options.threshold)
        renderer = Renderer(options.show_landmarks, options.mirror, options.show_top, not options.hide_timing)
        source = source or FrameSource(parse_source(options.source, options.width, options.height, options.fps))
        sinks = make_sinks(options.json, options.output, getattr(source.reader, "fps", 30.0), not options.headless,
                           json_max_mb=options.json_max_mb, status=wants_status(options))
        tracker = make_hands(hand_model, roi, options.hands, mode="video",  # last: nothing left to fail after it
                             confidences=confidences)
        log.info("model %s (%s, %d threads), hands: %s, source: %s", classifier.path.name, classifier.backend,
                 threads, tracker.name, options.source)
        return cls(source, tracker, classifier, renderer, sinks, bundle, smoothers, options.max_frames)

    def _classify(self, crops: list[np.ndarray], hands: list[Hand]) -> tuple[np.ndarray, list, float]:
        began = time.perf_counter()
        if isinstance(self.classifier, Recognizer):
            probs, answered = self.classifier.predict(np.stack(crops), hands)
        else:
            probs, answered = self.classifier.predict(np.stack(crops)), [("cnn",)] * len(crops)
        return probs, answered, (time.perf_counter() - began) * 1000

    def _track(self, frame: Frame) -> Step:
        """Find the hands, cut their crops and hand them to the classifier's worker."""
        with self.timer.stage("hands"):
            hands = self.tracker.detect(frame.image, frame.timestamp_ms)
        with self.timer.stage("crop"):
            spec = self.bundle.crop
            boxes = [crop_box(hand.box, spec, hand.grow) for hand in hands]
            crops = [crop_hand(frame.image, hand.box, spec, hand.grow, hand.handedness) for hand in hands]
        with self.timer.stage("classify"):
            job = self.worker.submit(self._classify, crops, hands) if crops else None
        return Step(frame, hands, boxes, job)

    def _label_text(self, index: int | None) -> str:
        return UNKNOWN if index is None else self.bundle.labels[index].display(self.renderer.devanagari)

    def _smooth(self, step: Step, probs: np.ndarray, answered: list) -> list[HandResult]:
        results = []
        for hand, box, row, models in zip(step.hands, step.boxes, probs, answered):
            order = np.argsort(row)[::-1][:TOP_K]
            top = tuple((int(i), float(row[i])) for i in order)
            smoothed = self.smoothers.update(hand.track_id, row, step.frame.index)
            results.append(HandResult(hand, box, top[0][0], top[0][1], smoothed.index, smoothed.confidence,
                                      self._label_text(smoothed.index), top, tuple(self.bundle.labels),
                                      tuple(models)))
        self.smoothers.prune(step.frame.index)
        return results

    def _render(self, step: Step, results: list[HandResult]) -> str | None:
        """Draw the frame for the sinks that take frames; the answer is the first key action one gave."""
        if not self.frame_sinks:  # headless without a recording: nobody sees a drawing
            return None
        stage_ms = {name: values[-1] for name, values in self.timer.recent.items() if values}
        model = self.timer.notes.get("classifier_model")
        if model:  # the classifier's own inference on its worker, beside the loop's wait for it
            stage_ms["model"] = model[-1]
        image = self.renderer.draw(step.frame.image, results, self.timer.live_fps(), stage_ms, self.source.status)
        self.last_image = image
        actions = [sink.frame(image) for sink in self.frame_sinks]
        action = next((action for action in actions if action), None)
        if action == "snapshot":
            save_snapshot(image)
        elif action == "timing":
            self.renderer.show_timing = not self.renderer.show_timing
        return action

    def _complete(self, step: Step) -> str | None:
        """Collect the classification of ``step``, smooth, draw, close the frame's timing and write its line."""
        with self.timer.stage("classify"):
            probs, answered, model_ms = step.job.result() if step.job else (np.zeros((0, 1), np.float32), [], None)
        if model_ms is not None:
            self.timer.note("classifier_model", model_ms)
        results = self._smooth(step, probs, answered)
        with self.timer.stage("draw"):
            action = self._render(step, results)
        stage_ms = self.timer.end_frame()
        self.labels_seen.update([result.smoothed if result.known else UNKNOWN for result in results] or [NO_HAND])
        if self.record_sinks:
            record = self._record(step, results, answered, stage_ms)
            for sink in self.record_sinks:
                sink.record(record)
        return action

    def _record(self, step: Step, results: list[HandResult], answered: list, stage_ms: dict) -> dict:
        labels = self.bundle.labels
        first = results[0].smoothed if results else None
        shown = labels[first].fields() if first is not None else _no_label(UNKNOWN if results else NO_HAND)
        return {
            "time": round(time.time(), 3), "frame": step.frame.index, "timestamp_ms": step.frame.timestamp_ms,
            "label": first, "text": shown["name"], "roman": shown["roman"], "ascii": shown["ascii"],
            "hands": [{"track": r.hand.track_id, "box": [round(v, 1) for v in r.box],
                       "handedness": r.hand.handedness, "score": round(r.hand.score, 3),
                       "label": r.index, "text": labels[r.index].name, "roman": labels[r.index].roman,
                       "ascii": labels[r.index].ascii, "probability": round(r.probability, 4),
                       "top": [[index, round(p, 4)] for index, p in r.top], "smoothed": r.smoothed,
                       "smoothed_text": UNKNOWN if r.smoothed is None else labels[r.smoothed].name,
                       "smoothed_roman": UNKNOWN if r.smoothed is None else labels[r.smoothed].roman,
                       "confidence": round(r.confidence, 4), "models": list(models)}
                      for r, models in zip(results, answered)],
            "stage_ms": {name: round(ms, 3) for name, ms in stage_ms.items()},
        }

    def _show_status(self) -> str | None:
        """While a live source is lost: keep the window alive with the last frame and the status."""
        if not self.window or self.last_image is None:
            return None
        image = self.last_image.copy()
        self.renderer.text(image, self.source.status or "waiting for frames", 4, image.shape[0] - 48)
        return self.window.show(image, 30)

    def _pause(self) -> str | None:
        action = self.window.wait_while_paused(self.last_image)
        self.timer.start()  # the pause is not part of any frame's time
        return action

    def _loop(self) -> None:
        """capture -> track and crop (frame N+1) while classifying frame N -> complete frame N."""
        limit = self.max_frames
        pending, tracked, action = None, 0, None
        while action != "quit" and not self.stop.is_set() and (limit is None or tracked < limit):
            with self.timer.stage("capture"):
                frame = self.source.next_frame(timeout=0.2)
            if frame is None:
                if self.source.ended:
                    break
                action = self._show_status()
                continue
            step, tracked = self._track(frame), tracked + 1
            action = self._complete(pending) if pending else None
            pending = step
            if action == "pause":
                action = self._pause()
        if pending:
            self._complete(pending)

    def run(self) -> dict:
        """Run until the source ends, ``max_frames`` frames, q, Ctrl-C or SIGTERM; returns the summary."""
        self.source.start()
        self.timer.start()
        with _stop_on_signals(self.stop):
            try:
                self._loop()
            except KeyboardInterrupt:  # a second Ctrl-C: at once, even mid-frame
                log.info("interrupted: stopping now")
            except BaseException:
                self.close(ended=False)
                raise
            return self.close()

    def summary(self) -> dict:
        summary = self.timer.summary()
        summary.update({
            "labels_seen": self._labels_seen(), "dropped_frames": self.source.dropped,
            "reconnects": self.source.reconnects, "backend": self.classifier.backend,
            "model_file": self.classifier.path.name, "hand_tracker": self.tracker.name,
            "model_kind": getattr(self.classifier, "kind", "cnn"),
            "model_files": getattr(self.classifier, "files", [self.classifier.path.name]),
            "devanagari_font": self.renderer.devanagari})
        return summary

    def _labels_seen(self) -> list[dict]:
        """Frames per shown label, keyed by class index (None: unknown / no hand), most frequent first."""
        labels = self.bundle.labels
        return [{**(labels[key].fields() if isinstance(key, int) else _no_label(key)), "frames": count}
                for key, count in self.labels_seen.most_common()]

    def close(self, ended: bool = True) -> dict | None:
        """Stop the inputs, then close the sinks with the summary (none when the run did not end normally: an
        error); returns it."""
        self.source.stop()
        self.worker.shutdown(wait=True)
        self.tracker.close()
        summary = None
        if ended:
            if self.stop.is_set():
                log.info("stop requested: stopped after the frame in progress")
            summary = self.summary()
        for sink in self.sinks:
            sink.close(summary)
        return summary


@contextmanager
def _stop_on_signals(stop: threading.Event):
    """A service manager's SIGTERM and the first Ctrl-C set ``stop``: the loop finishes the frame in progress,
    so every counted frame has its JSON line and the summary follows. (Raising from the handler instead could
    land between a frame's timing and its line.) A second Ctrl-C interrupts at once."""
    def request_stop(signum, frame):
        if signum == signal.SIGINT and stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_app(options: AppOptions, source: FrameSource | None = None) -> dict:
    """Run the loop with ``options`` (``source``: an already-built FrameSource, e.g. a test's fake camera)."""
    return App.from_options(options, source).run()
