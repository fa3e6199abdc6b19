"""The ``soak`` section of ``nsl bench`` (edge environment): the real loop for a long time, memory watched::

    python -m nsl.bench.soak --out soak.json --model BUNDLE --clip VIDEO|DIR [--frames 100000] [--hand-model PATH]

The clip's frames are served, looped, as an MJPEG stream over local HTTP (what a network camera gives) and
``nsl app``'s own ``App`` (real hand tracker, crop, classifier, smoothing; headless) reads it through its
``FrameSource``. Half-way through (or at ``--drops N`` evenly spaced frames), the stream is dropped for
``--drop-seconds`` (the server closes every connection and stops listening) and then restored: the app must
reconnect on its own and go on. The memory step at each reconnect and the slope between drops are reported apart.

Every ``--sample-every`` frames a sink records the process's resident memory (``VmRSS``): the lowest of the readings
taken at each of the ``--window`` frames before, because a frame buffer in flight at the moment of one reading (a
decoded 640x480 frame is 900 KB, and 0, 1 or 2 of them are alive at any instant) is not growth, and a leak raises the
lowest reading as much as any. The result is the least-squares slope of RSS over frames after ``--warmup`` frames,
in KB per 1,000 frames (goal: under 1), the reconnects the app counted, and the frame rate. Beside it: the drift
(medians of the first and last tenth) and the swing (highest minus lowest), because memory that comes and goes moves
one run's slope far more than 1 KB; and what grows, apart: anonymous and file-backed RSS, the C heap in use (glibc),
Python's allocated blocks (the sampler's own taken off).
"""

from __future__ import annotations

import ctypes
import logging
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from nsl.bench.app import make_clip
from nsl.bench.section import run_section, section, section_parser, table
from nsl.edge.app import App, AppOptions
from nsl.edge.outputs import Sink
from nsl.errors import NslError
from nsl.fileio import is_video_file

log = logging.getLogger(__name__)
PACKAGES = ("ai-edge-litert", "onnxruntime", "mediapipe", "opencv-contrib-python", "numpy")
GOAL_KB_PER_1000 = 1.0


def clip_jpegs(clip: Path, work: Path) -> list[bytes]:
    """The frames to loop, JPEG-encoded once: a video's frames, or a folder of photos made into the app section's
    clip first (120 photos letterboxed into 640x480, each held 4 frames)."""
    if not is_video_file(clip):
        clip = make_clip(clip, work / "clip.mp4", 120, 4)
    capture, frames = cv2.VideoCapture(str(clip)), []
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        frames.append(cv2.imencode(".jpg", bgr)[1].tobytes())
    capture.release()
    if not frames:
        raise NslError(f"--clip {clip}: no frames to serve (expected a video or a folder of photos)")
    return frames


class MjpegServer:
    """The looped clip as ``multipart/x-mixed-replace`` JPEGs at up to ``fps`` frames a second on 127.0.0.1.
    ``drop(seconds)`` closes every connection and the listening socket, then listens again on the same port."""

    def __init__(self, frames: list[bytes], fps: float):
        self.frames, self.interval = frames, 1.0 / fps
        self.down = threading.Event()
        self.port = 0
        self.connections = 0
        self._server = self._listen()

    def _listen(self) -> ThreadingHTTPServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (the http.server name)
                owner.connections += 1
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                owner.stream(self.wfile)

            def log_message(self, *args):
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, name="mjpeg", daemon=True).start()
        return server

    def stream(self, out) -> None:
        index, due = 0, time.monotonic()
        try:
            while not self.down.is_set():
                jpeg = self.frames[index % len(self.frames)]
                out.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg) + jpeg + b"\r\n")
                index, due = index + 1, due + self.interval
                time.sleep(max(0.0, due - time.monotonic()))
        except OSError:  # the reader went away
            pass

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream.mjpg"

    def drop(self, seconds: float) -> None:
        self.down.set()
        self._server.shutdown()
        self._server.server_close()
        time.sleep(seconds)
        self.down.clear()
        self._server = self._listen()

    def close(self) -> None:
        self.down.set()
        self._server.shutdown()
        self._server.server_close()


def resident_parts_kb() -> dict[str, int]:
    """Resident memory in KB: all of it (``VmRSS``), the anonymous part (``RssAnon``: heaps, stacks, what a leak
    grows) and the file-backed part (``RssFile``: libraries and mapped model files, paged in as code paths are
    first used); 0 for a field the kernel does not report."""
    fields = dict.fromkeys(("VmRSS", "RssAnon", "RssFile"), 0)
    with open("/proc/self/status") as status:
        for line in status:
            name = line.split(":", 1)[0]
            if name in fields:
                fields[name] = int(line.split()[1])
    return fields


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                     "fsmblks", "uordblks", "fordblks", "keepcost")]


def _mallinfo2():
    """glibc's ``mallinfo2`` (2.33 and later), or None elsewhere (musl, macOS, an older glibc)."""
    try:
        function = ctypes.CDLL(None).mallinfo2
    except (AttributeError, OSError):
        return None
    function.restype = _MallInfo2
    return function


MALLINFO2 = _mallinfo2()


def heap_in_use_kb() -> int | None:
    """Bytes the C heap has handed out and not had back (every arena's ``uordblks`` plus mmapped blocks), in KB:
    what a native leak grows. RSS also holds what the allocator keeps after a free; this does not."""
    if MALLINFO2 is None:
        return None
    info = MALLINFO2()
    return (info.uordblks + info.hblkhd) // 1024


def lowest_readings(readings: list[tuple[dict, int | None]]) -> tuple[dict, int | None]:
    """The lowest of each figure over a window's readings: ((RSS parts), C heap in use or None)."""
    parts = {name: min(rss[name] for rss, _ in readings) for name in readings[-1][0]}
    heaps = [heap for _, heap in readings if heap is not None]
    return parts, (min(heaps) if heaps else None)


class MemorySampler(Sink):
    """A sink of the app: every ``every`` frames, (frame, seconds, RSS KB); at each frame of ``drop_at`` the stream
    drops."""

    takes_records = True

    def __init__(self, every: int, drop_at: list[int], drop, total: int, window: int = 1):
        self.every, self.drop_at, self.drop = every, list(drop_at), drop
        self.window = max(1, min(window, every))
        self.readings: list[tuple[dict, int | None]] = []  # (RSS parts, C heap in use) at the frames of a window
        self.samples: list[tuple[int, float, int]] = []
        self.heap: list[tuple[int, int | None, int]] = []  # (frame, C heap in use KB, Python's allocated blocks)
        self.parts: list[tuple[int, int, int]] = []  # (frame, RssAnon KB, RssFile KB)
        self.instant: list[tuple[int, float, int]] = []  # (frame, seconds, RSS KB of the sample frame's reading alone)
        self.own_blocks = 0  # Python blocks these lists took: taken off the blocks figure, which is the app's
        self.frames = 0
        self.hands = 0
        self.began = time.monotonic()
        self.progress = tqdm(total=total, unit="frame", desc="soak", mininterval=5)

    def record(self, record: dict) -> None:
        self.frames += 1
        self.hands += bool(record["hands"])
        self.progress.update()
        due = self.frames % self.every == 0 or self.frames == 1
        if due or self.frames % self.every > self.every - self.window:
            self.readings.append((resident_parts_kb(), heap_in_use_kb()))
        if due:
            rss, heap = lowest_readings(self.readings)
            instant = self.readings[-1][0]["VmRSS"]
            self.readings.clear()
            blocks = sys.getallocatedblocks() - self.own_blocks
            before = sys.getallocatedblocks()
            self.samples.append((self.frames, time.monotonic() - self.began, rss["VmRSS"]))
            self.heap.append((self.frames, heap, blocks))
            self.parts.append((self.frames, rss["RssAnon"], rss["RssFile"]))
            self.instant.append((self.frames, self.samples[-1][1], instant))
            self.own_blocks += sys.getallocatedblocks() - before
        if self.frames in self.drop_at:
            threading.Thread(target=self.drop, name="drop", daemon=True).start()

    def close(self, summary: dict | None = None) -> None:
        self.progress.close()


def memory_slope(samples: list[tuple[int, float, int]], warmup: int) -> float:
    """KB of resident memory per 1,000 frames after ``warmup`` frames (least squares)."""
    kept = [(frame, kb) for frame, _, kb in samples if frame > warmup]
    if len(kept) < 3:
        raise NslError(f"--frames: too few memory samples after the {warmup}-frame warm-up (need 3, got "
                       f"{len(kept)}); run more frames or sample more often")
    frames, kb = np.array(kept, dtype=float).T
    return float(np.polyfit(frames, kb, 1)[0] * 1000)


def drift(samples: list[tuple[int, float, int]], warmup: int) -> float:
    """KB per 1,000 frames between the medians of the first and the last tenth of the samples after ``warmup``:
    the growth that stays. An allocation that comes and goes (a decoder's buffers at a reconnect, a few MB of a
    runtime's arena) moves the least-squares slope of 10^5 frames by several KB per 1,000 frames wherever it
    falls; it moves this figure only when it is there at the start or at the end."""
    kept = [(frame, kb) for frame, _, kb in samples if frame > warmup]
    tenth = max(1, len(kept) // 10)
    (first_frame, first_kb), (last_frame, last_kb) = (np.median(np.array(part, float), axis=0)
                                                      for part in (kept[:tenth], kept[-tenth:]))
    return float((last_kb - first_kb) / max(last_frame - first_frame, 1) * 1000)


def swing_kb(samples: list[tuple[int, float, int]], warmup: int) -> int:
    """Highest minus lowest sample after ``warmup``: how far memory moves while a run goes on."""
    kept = [kb for frame, _, kb in samples if frame > warmup]
    return int(max(kept) - min(kept)) if kept else 0


def drop_frames(frames: int, drops: int) -> list[int]:
    """The frames at which the stream drops: ``drops`` of them, evenly spaced (one: half-way)."""
    return [frames * k // (drops + 1) for k in range(1, drops + 1)]


def segments(samples: list[tuple[int, float, int]], warmup: int, drop_at: list[int]) -> dict:
    """Memory between the drops apart, and the step at each reconnect: a steady leak shows in every slope, a cost
    of reopening the stream in every step, a one-time allocation in the first step only."""
    bounds = [warmup, *drop_at, float("inf")]
    parts = [[s for s in samples if low < s[0] <= high] for low, high in zip(bounds, bounds[1:])]
    slopes = [memory_slope(part, 0) if len(part) >= 3 else None for part in parts]
    steps = [after[0][2] - before[-1][2] if before and after else None for before, after in zip(parts, parts[1:])]
    return {"slope_before_drop": slopes[0], "slope_after_reconnect": slopes[-1],
            "step_at_reconnect_kb": steps[0] if steps else None, "drop_frames": list(drop_at),
            "slopes_between_drops": slopes, "steps_at_reconnects_kb": steps}


def segments_table(figures: dict) -> dict:
    rows = [[index + 1, frame, step, None if slope is None else round(slope, 2)]
            for index, (frame, step, slope) in enumerate(zip(figures["drop_frames"], figures["steps_at_reconnects_kb"],
                                                              figures["slopes_between_drops"][1:]))]
    before = figures["slopes_between_drops"][0]
    return table("Memory at each drop (the step is the change between the last sample before the drop and the first "
                 f"after it; slopes in KB per 1,000 frames; before the first drop: "
                 f"{'-' if before is None else round(before, 2)})",
                 ["drop", "at frame", "step at the reconnect KB", "slope until the next drop"], rows)


def soak_section(args) -> dict:
    frames = 2000 if args.quick and args.frames is None else (args.frames or 100_000)
    every = args.sample_every or max(1, frames // 200)
    warmup = args.warmup if args.warmup is not None else frames // 10
    if frames < 10 or every < 1 or warmup >= frames:
        raise NslError(f"--frames {frames} / --warmup {warmup}: expected frames >= 10 and warmup < frames")
    with tempfile.TemporaryDirectory(prefix="nsl-soak-") as work:
        server = MjpegServer(clip_jpegs(Path(args.clip), Path(work)), args.fps)
    if not 1 <= args.drops < frames // 2:
        raise NslError(f"--drops {args.drops}: expected 1 to {frames // 2 - 1} for {frames} frames")
    sampler = MemorySampler(every, drop_frames(frames, args.drops), lambda: server.drop(args.drop_seconds), frames,
                            args.window)
    options = AppOptions(model=args.model, source=server.url, backend=args.backend, headless=True,
                         max_frames=frames, hand_model=args.hand_model)
    app = App.from_options(options)
    app.add_sink(sampler)
    try:
        summary = app.run()
    finally:
        server.close()
    return soak_result(sampler, summary, frames, every, warmup, server, args)


def soak_result(sampler: MemorySampler, summary: dict, frames: int, every: int, warmup: int,
                server: MjpegServer, args) -> dict:
    slope = memory_slope(sampler.samples, warmup)
    seconds = sampler.samples[-1][1] if sampler.samples else 0.0
    first_kept = next(kb for frame, _, kb in sampler.samples if frame > warmup)
    rows = [[sampler.frames, round(seconds / 60, 1), round(sampler.frames / max(seconds, 1e-9), 1),
             round(sampler.hands / max(sampler.frames, 1), 3), round(first_kept / 1024, 1),
             round(sampler.samples[-1][2] / 1024, 1), round(slope, 2),
             "pass" if slope < GOAL_KB_PER_1000 else "fail", round(drift(sampler.samples, warmup), 2),
             round(swing_kb(sampler.samples, warmup) / 1024, 2), summary.get("reconnects", 0), server.connections]]
    setting = (f"{args.backend}, {Path(args.model).name}, MJPEG stream of {args.clip} looped at <= {args.fps:g} fps, "
               f"headless; dropped for {args.drop_seconds:g} s at frame(s) {', '.join(map(str, sampler.drop_at))}; "
               f"RSS every {every} frames (the lowest of the {sampler.window} frames before), slope after {warmup} "
               f"frames")
    main = table(f"Soak: {setting}",
                 ["frames", "minutes", "frames/s", "frames with a hand", "RSS after warm-up MB", "RSS at end MB",
                  "slope KB / 1000 frames", f"< {GOAL_KB_PER_1000:g} KB",
                  "drift KB / 1000 frames (first vs last tenth)", "swing after warm-up MB", "reconnects",
                  "stream connections"], rows)
    step = max(1, len(sampler.samples) // 10)
    trace = table("Resident memory over the run", ["frame", "minutes", "RSS MB"],
                  [[f, round(s / 60, 2), round(kb / 1024, 1)] for f, s, kb in sampler.samples[::step]])
    notes = [f"memory slope {slope:.2f} KB per 1,000 frames after warm-up "
             f"({'pass' if slope < GOAL_KB_PER_1000 else 'fail'}: goal < {GOAL_KB_PER_1000:g})",
             f"the stream was dropped {args.drops} time(s) and the app reconnected {summary.get('reconnects', 0)} "
             f"time(s) on its own",
             "drift: the medians of the first and the last tenth of the samples after warm-up, per 1,000 frames "
             "(what stays); swing: highest minus lowest sample (how far memory moves and comes back). A swing of "
             "a few MB moves the slope of one run by several KB per 1,000 frames either way"]
    parts = segments(sampler.samples, warmup, sampler.drop_at)
    growth = growth_table(sampler, warmup)
    raw = {"samples": sampler.samples, "heap_samples": sampler.heap, "rss_parts": sampler.parts,
           "instant_samples": sampler.instant, "window": sampler.window, "summary": summary,
           "frames": frames, "warmup": warmup, "every": every, "segments": parts}
    return section("soak", "Soak: the app loop for a long time, memory watched",
                   [main, segments_table(parts), *([growth] if growth else []), trace], notes, raw, PACKAGES)


def growth_table(sampler: MemorySampler, warmup: int) -> dict | None:
    """Slopes of RSS, of the C heap in use and of Python's allocated blocks, after warm-up, before the first drop
    and after the last reconnect: a leak grows what is in use; an allocator that keeps freed pages grows RSS alone."""
    series = [("resident memory (RSS), KB", sampler.samples)]
    if getattr(sampler, "instant", None) and sampler.window > 1:
        series.append(("RSS of one reading at the sample frame (without the window), KB", sampler.instant))
    parts = getattr(sampler, "parts", [])
    if parts and all(anon for _, anon, _ in parts):
        series += [("anonymous resident (RssAnon: heaps, stacks), KB", [(f, 0.0, a) for f, a, _ in parts]),
                   ("file-backed resident (RssFile: libraries, models), KB",
                    [(f, 0.0, b) for f, _, b in parts])]
    if sampler.heap and all(kb is not None for _, kb, _ in sampler.heap):
        series.append(("C heap in use (glibc mallinfo2), KB", [(f, 0.0, kb) for f, kb, _ in sampler.heap]))
    if sampler.heap:
        series.append(("Python allocated blocks, count", [(f, 0.0, n) for f, _, n in sampler.heap]))
    if len(series) == 1:
        return None
    rows = []
    for name, samples in series:
        kept = [s for s in samples if s[0] > warmup]
        between = segments(samples, warmup, sampler.drop_at)
        rows.append([name, round(kept[0][2]), round(samples[-1][2]), round(memory_slope(samples, warmup), 2),
                     *(None if v is None else round(v, 2) for v in (between["slope_before_drop"],
                                                                   between["slope_after_reconnect"])),
                     round(drift(samples, warmup), 2), swing_kb(samples, warmup)])
    return table("What grows (per 1,000 frames): a leak grows what is in use; memory the allocator keeps after a "
                 "free grows RSS alone", ["measure", "after warm-up", "at end", "slope after warm-up",
                                          "slope before the first drop", "slope after the last reconnect",
                                          "drift (first vs last tenth)", "swing after warm-up"], rows)


def parse_args(argv):
    parser = section_parser("soak", "the app loop on a looped stream for many frames, resident memory sampled")
    parser.add_argument("--model", required=True, metavar="BUNDLE", help="model bundle (nsl export)")
    parser.add_argument("--clip", required=True, metavar="VIDEO|DIR", help="frames to loop (a video or photos)")
    parser.add_argument("--hand-model", default=None, metavar="PATH", help="hand_landmarker.task")
    parser.add_argument("--backend", default="tflite", choices=("tflite", "onnx"))
    parser.add_argument("--frames", type=int, default=None, metavar="N", help="frames through the loop (100000)")
    parser.add_argument("--sample-every", type=int, default=None, metavar="N", help="frames between RSS samples")
    parser.add_argument("--window", type=int, default=25, metavar="N",
                        help="each sample is the lowest of the readings at the N frames before it (default 25; 1: "
                             "one reading): frame buffers in flight at one instant are not growth")
    parser.add_argument("--fps", type=float, default=90.0, help="the stream's frame rate cap")
    parser.add_argument("--drop-seconds", type=float, default=3.0, help="how long the stream stays down")
    parser.add_argument("--drops", type=int, default=1, metavar="N",
                        help="times the stream is dropped, evenly spaced (default 1: half-way); several tell a "
                             "cost of every reconnect from a one-time one")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return run_section("soak", parse_args, soak_section, argv)


if __name__ == "__main__":
    sys.exit(main())
