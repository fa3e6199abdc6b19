"""Per-stage timers of the loop. The stages of a frame add up to its measured time: whatever no stage
covered is "other" (the loop's plumbing). Memory is bounded: means are running sums, percentiles come
from the most recent ``window`` frames."""

from __future__ import annotations

import time
from collections import deque
from contextlib import contextmanager

from nsl.stats import percentiles

STAGES = ("capture", "hands", "crop", "classify", "draw", "other")


class StageTimer:
    """``start()`` once, then per frame: ``with timer.stage("hands"): ...`` and ``timer.end_frame()``.

    Frames are back to back: a frame starts where the previous one ended, so the frame times add up to the
    wall time of the loop. ``note(name, ms)`` records a figure that is not a stage of the main thread (the
    classifier's own inference time on its worker)."""

    def __init__(self, window: int = 3000):
        self.window = window
        self.recent = {name: deque(maxlen=window) for name in (*STAGES, "frame")}
        self.totals = dict.fromkeys((*STAGES, "frame"), 0.0)
        self.notes: dict[str, deque] = {}
        self.note_totals: dict[str, list] = {}
        self.frames = 0
        self.current: dict[str, float] = {}
        self.frame_start = None

    def start(self) -> None:
        self.frame_start = time.perf_counter()
        self.current = {}

    @contextmanager
    def stage(self, name: str):
        began = time.perf_counter()
        try:
            yield
        finally:
            self.current[name] = self.current.get(name, 0.0) + (time.perf_counter() - began) * 1000

    def note(self, name: str, ms: float) -> None:
        self.notes.setdefault(name, deque(maxlen=self.window)).append(ms)
        total = self.note_totals.setdefault(name, [0.0, 0])
        total[0], total[1] = total[0] + ms, total[1] + 1

    def end_frame(self) -> dict[str, float]:
        """Close the current frame; returns its stage milliseconds (with "other" and "frame")."""
        now = time.perf_counter()
        frame_ms = (now - self.frame_start) * 1000
        stages = {name: self.current.get(name, 0.0) for name in STAGES if name != "other"}
        stages["other"] = max(0.0, frame_ms - sum(stages.values()))
        stages["frame"] = frame_ms
        for name, ms in stages.items():
            self.recent[name].append(ms)
            self.totals[name] += ms
        self.frames += 1
        self.frame_start, self.current = now, {}
        return stages

    def live_fps(self, last: int = 30) -> float:
        recent = list(self.recent["frame"])[-last:]
        return 1000 * len(recent) / sum(recent) if recent and sum(recent) > 0 else 0.0

    def summary(self) -> dict:
        """frames, wall seconds, mean FPS, and per stage: mean (all frames) and p50/p90/p99 (recent frames)."""
        def stats(values: deque, mean: float) -> dict:
            p50, p90, p99 = percentiles(values, (50, 90, 99)) if values else (0.0, 0.0, 0.0)
            return {"mean": round(mean, 3), "p50": round(p50, 3), "p90": round(p90, 3), "p99": round(p99, 3)}

        count = max(self.frames, 1)
        wall_s = self.totals["frame"] / 1000
        return {
            "frames": self.frames, "wall_s": round(wall_s, 3),
            "mean_fps": round(self.frames / wall_s, 2) if wall_s > 0 else 0.0,
            "stages_ms": {name: stats(self.recent[name], self.totals[name] / count) for name in (*STAGES, "frame")},
            "notes_ms": {name: stats(values, self.note_totals[name][0] / max(self.note_totals[name][1], 1))
                         for name, values in self.notes.items()},
        }


def format_summary(summary: dict) -> str:
    """The end-of-run summary as text: frames, FPS, a stage table (ms), and the labels seen."""
    lines = [f"frames {summary['frames']}  wall {summary['wall_s']:.1f} s  mean {summary['mean_fps']:.1f} FPS"]
    lines.append(f"{'stage':18s} {'mean':>8s} {'p50':>8s} {'p90':>8s} {'p99':>8s}")
    rows = {**summary["stages_ms"], **{f"({name})": values for name, values in summary.get("notes_ms", {}).items()}}
    for name, values in rows.items():
        lines.append(f"{name:18s} " + " ".join(f"{values[key]:8.2f}" for key in ("mean", "p50", "p90", "p99")))
    seen = summary.get("labels_seen") or []
    if seen:  # by class index, with the Devanagari and the distinct roman: no two classes merge here
        lines.append("labels seen: " + ", ".join(_seen_text(row) for row in seen))
    return "\n".join(lines)


def _seen_text(row: dict) -> str:
    if row.get("index") is None:
        return f"{row['name']} x{row['frames']}"
    return f"{row['index']} {row['name']} ({row['roman']}) x{row['frames']}"
