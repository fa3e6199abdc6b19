"""The ``app`` section of ``nsl bench`` (edge environment): the real loop (``nsl app`` in a child process) on a
recorded clip::

    python -m nsl.bench.app --out app.json --model BUNDLE --clip VIDEO|DIR [--hand-model PATH]

Each backend's default file runs headless (nothing drawn) and drawing into a video (``--output``, so the draw
stage is measured), each ``--repeats`` times, interleaved. From each run's JSON lines, after the first
``--warmup`` frames: frames/s (frames / their summed time), per-stage p50/p90 and the loop's own share; from
its summary: the classifier's inference time (on its worker, overlapped with tracking); from ``wait4``: the
child's peak resident memory. Every figure is the median over the repeats.

"Outside the two models" is, per frame, capture + crop + draw + other: the main thread's time that is neither
the hand tracker (the ``hands`` stage) nor waiting for the classifier (``classify``). The classifier's own
time runs beside tracking, so it costs a frame only where it outlasts it (the ``classify`` wait).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from nsl.bench.section import positive, run_section, sample, section, section_parser, table
from nsl.edge.bundle import open_bundle
from nsl.edge.clips import letterbox, write_clip
from nsl.edge.outputs import read_json_lines
from nsl.edge.predict import collect_images
from nsl.edge.timing import STAGES as LOOP_STAGES
from nsl.errors import NslError
from nsl.fileio import VIDEO_SUFFIXES, is_video_file
from nsl.preprocess import read_image
from nsl.stats import median, percentiles

PACKAGES = ("ai-edge-litert", "onnxruntime", "mediapipe", "opencv-contrib-python", "numpy")
STAGES = (*LOOP_STAGES, "frame")
GOAL_MS = 3.0


def make_clip(folder: Path, out: Path, images: int, frames_per_image: int) -> Path:
    """A 640x480 mp4 of photos from ``folder`` (spread over it), each held ``frames_per_image`` frames."""
    paths = sample(collect_images([folder]), images)
    return write_clip((letterbox(read_image(path)) for path in paths), out, frames_per_image)


def clip_info(path: Path) -> dict:
    capture = cv2.VideoCapture(str(path))
    info = {"frames": int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), "width": int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
            "height": int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))}
    capture.release()
    if info["frames"] <= 0:
        raise NslError(f"--clip {path}: not a readable video (no frames)")
    return info


def run_app_once(model: str, clip: Path, backend: str, draw: bool, hand_model: str | None, work: Path) -> dict:
    """One ``nsl app`` run in a child process -> its frame lines, summary and peak resident memory (MB)."""
    lines_path = work / "frames.jsonl"
    cmd = [sys.executable, "-m", "nsl", "app", "--model", model, "--source", str(clip), "--backend", backend,
           "--headless", "--json", str(lines_path)]
    if draw:
        cmd += ["--output", str(work / "annotated.mp4")]
    if hand_model:
        cmd += ["--hand-model", hand_model]
    with open(work / "stderr.txt", "w+b") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
    if proc.returncode != 0:
        last = (stderr.strip().splitlines() or ["no message"])[-1]
        if proc.returncode == 2:
            raise NslError(last.split(": error: ", 1)[-1])
        raise RuntimeError(f"nsl app exited {proc.returncode}: {last}")
    frames, summary = read_json_lines(lines_path)
    if not summary:
        raise RuntimeError(f"nsl app wrote no summary to {lines_path}")
    return {"frames": frames, "summary": summary, "peak_rss_mb": usage.ru_maxrss / 1024}


def run_figures(run: dict, warmup: int) -> dict:
    """The figures of one run, from its frames after the first ``warmup``."""
    frames = run["frames"][warmup:] or run["frames"]
    stage = {name: [f["stage_ms"].get(name, 0.0) for f in frames] for name in STAGES}
    outside = [f["stage_ms"]["frame"] - f["stage_ms"]["hands"] - f["stage_ms"]["classify"] for f in frames]
    model = run["summary"].get("notes_ms", {}).get("classifier_model", {})
    figures = {"fps": 1000 * len(frames) / sum(stage["frame"]), "frames": len(frames),
               "hand_found": sum(1 for f in frames if f["hands"]) / len(frames),
               "peak_rss_mb": run["peak_rss_mb"], "outside_mean": float(np.mean(outside)),
               "outside_p50": percentiles(outside)[0], "model_p50": model.get("p50"), "model_p90": model.get("p90"),
               "model_file": run["summary"]["model_file"]}
    for name, values in stage.items():
        figures[f"{name}_p50"], figures[f"{name}_p90"] = percentiles(values)
    return figures


def _clip(args, work: Path, quick: bool) -> tuple[Path, str]:
    if args.clip is None:
        raise NslError("the app section needs --clip VIDEO (or a folder of photos to make one from)")
    path = Path(args.clip)
    if path.is_dir():
        images, per_image = (8, 3) if quick else (60, 5)
        made = make_clip(path, work / "clip.mp4", images, per_image)
        return made, f"made from up to {images} photos of {path}, {per_image} frames each"
    if not path.is_file() or not is_video_file(path):
        raise NslError(f"--clip {path}: expected a video file ({', '.join(VIDEO_SUFFIXES)}) or a folder of photos")
    return path, path.name


def app_section(args) -> dict:
    repeats = positive(args.repeats, 3, 1, args.quick, "repeats")
    warmup = positive(args.warmup, 10, 3, args.quick, "warmup", minimum=0)
    bundle = open_bundle(args.model)
    with tempfile.TemporaryDirectory(prefix="nsl-bench-app-") as tmp:
        work = Path(tmp)
        clip, origin = _clip(args, work, args.quick)
        info = clip_info(clip)
        if info["frames"] <= warmup:
            raise NslError(f"--clip {args.clip}: {info['frames']} frames, not more than --warmup {warmup}")
        configs = [(backend, draw) for backend in ("tflite", "onnx") for draw in (False, True)]
        figures: dict[tuple, list[dict]] = {config: [] for config in configs}
        with tqdm(total=len(configs) * repeats, desc="app", unit="run", file=sys.stderr, disable=None) as progress:
            for _ in range(repeats):
                for backend, draw in configs:
                    run = run_app_once(str(bundle.path), clip, backend, draw, args.hand_model, work)
                    figures[(backend, draw)].append(run_figures(run, warmup))
                    progress.update()
    med = {config: {key: (median([f[key] for f in runs]) if key != "model_file" else runs[0][key])
                    for key in runs[0]} for config, runs in figures.items()}
    return _app_result(med, figures, configs, repeats, warmup, origin, info, bundle)


def _ms(value) -> str:
    return "no" if value is None else f"{value:.1f} ms"


def _app_result(med, figures, configs, repeats, warmup, origin, info, bundle) -> dict:
    setting = (f"{info['width']}x{info['height']} clip ({origin}, {info['frames']} frames); median of {repeats} "
               f"run(s) per row, first {warmup} frames of each run excluded")
    name = {False: "headless", True: "drawing + video"}
    rows1 = [[b, med[(b, d)]["model_file"], name[d], med[(b, d)]["fps"], med[(b, d)]["frame_p50"],
              med[(b, d)]["frame_p90"], med[(b, d)]["peak_rss_mb"], med[(b, d)]["hand_found"]] for b, d in configs]
    loop = table(f"nsl app, full loop: {setting}",
                 ["backend", "model file", "output", "frames/s", "frame p50 ms", "frame p90 ms", "peak RSS MB",
                  "frames with a hand"], rows1)
    rows2 = []
    for b, d in configs:
        m = med[(b, d)]
        rows2.append([b, name[d], *[m[f"{s}_{q}"] for s in STAGES for q in ("p50",)], m["model_p50"]])
    stages = table(f"Per-stage p50 ms (main thread; the stages add up to the frame): {setting}. "
                   "classifier model = the inference itself, on the worker thread, overlapped with tracking",
                   ["backend", "output", *STAGES, "classifier model"], rows2)
    rows3 = []
    for b, d in configs:
        m = med[(b, d)]
        bound = "hand tracker" if (m["model_p50"] or 0) <= m["hands_p50"] else "classifier"
        rows3.append([b, name[d], m["frame_p50"], m["hands_p50"], m["model_p50"], m["classify_p50"],
                      m["outside_mean"], m["outside_p50"], "pass" if m["outside_mean"] < GOAL_MS else "fail", bound])
    goal = table(f"Time outside the two models per frame (capture + crop + draw + other = frame - hands - classify "
                 f"wait), goal < {GOAL_MS:g} ms on the mean; which model bounds the frame rate: {setting}",
                 ["backend", "output", "frame p50", "hand tracker p50", "classifier model p50", "classify wait p50",
                  "outside models mean", "outside models p50", f"< {GOAL_MS:g} ms", "frame rate bound by"], rows3)
    p90s = table(f"Per-stage p90 ms: {setting}", ["backend", "output", *STAGES, "classifier model"],
                 [[b, name[d], *[med[(b, d)][f"{s}_p90"] for s in STAGES], med[(b, d)]["model_p90"]]
                  for b, d in configs])
    notes = [f"{b}, {name[d]}: {r[8]} ({r[6]:.2f} ms a frame outside the models, mean); the frame rate is bound "
             f"by the {r[9]} ({r[3]:.1f} ms hand tracking vs {_ms(r[4])} classifier inference, p50)"
             for (b, d), r in zip(configs, rows3)]
    notes.append("capture is the wait for the capture thread's next decoded frame; draw is zero headless (nothing "
                 "is drawn when nobody sees it); with a video the draw stage includes encoding the mp4")
    raw = {"bundle": str(bundle.path), "repeats": repeats, "warmup_frames": warmup, "clip": info,
           "runs": [{"backend": b, "drawing": d, "figures": figures[(b, d)]} for b, d in configs]}
    return section("app", "App loop on a recorded clip", [loop, stages, p90s, goal], notes, raw, PACKAGES)


def parse_args(argv):
    parser = section_parser("app", "the full loop on a recorded clip, per backend, headless and drawing")
    parser.add_argument("--model", required=True, metavar="BUNDLE", help="model bundle (nsl export)")
    parser.add_argument("--clip", default=None, metavar="VIDEO|DIR",
                        help="recorded clip (a video, or a folder of photos made into a 640x480 clip)")
    parser.add_argument("--hand-model", default=None, metavar="PATH", help="hand_landmarker.task")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return run_section("app", parse_args, app_section, argv)


if __name__ == "__main__":
    sys.exit(main())
