"""The demo's closing table: accuracy of the Keras model and of each exported file, sizes, classifier latency,
and the app's frames per second. Reads only what the stages wrote (metrics.json, metadata.json, app JSON lines).
Usage: python scripts/demo_summary.py RUN_DIR BUNDLE_DIR APP_JSONL [APP_JSONL ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

from nsl.edge.outputs import read_json_lines
from nsl.fileio import read_json
from nsl.rundir import RunDir


def read_app_log(jsonl: Path) -> tuple[dict, int, int]:
    """The app's closing summary, and how many frames had a hand out of all frames."""
    frames, summary = read_json_lines(jsonl)
    return summary, len(frames), sum(bool(frame.get("hands")) for frame in frames)


def pct(value) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def main(run_dir: str, bundle_dir: str, *app_logs: str) -> int:
    metrics = RunDir(Path(run_dir)).metrics()
    meta = read_json(Path(bundle_dir, "metadata.json"))
    rows = [("Keras model (best.keras)", pct(metrics["top1"]), pct(metrics["top3"]), "-", "-", "-")]
    for name, info in meta["files"].items():
        figures = info.get("metrics", {})
        rows.append((name, pct(figures.get("top1")), pct(figures.get("top3")), pct(figures.get("agreement")),
                     f"{info['size_bytes'] / 1e6:.2f} MB", f"{figures.get('latency_ms_1thread', 0):.1f} ms"))
    header = ("model", "test top-1", "test top-3", "agrees w/ Keras", "size", "latency (1 thread)")
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    print(f"\nTest split: {metrics['n_images']} images, {len(meta['labels'])} classes")
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)))
    for log in app_logs:
        summary, frames, with_hand = read_app_log(Path(log))
        if summary:
            stages = ", ".join(f"{k} {v['p50']:.1f}" for k, v in summary.get("stages_ms", {}).items())
            print(f"\n{Path(log).stem} ({summary.get('hand_tracker', '?')}): {frames} frames, hand in {with_hand}, "
                  f"{summary['mean_fps']:.1f} FPS; per-stage p50 ms: {stages}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
