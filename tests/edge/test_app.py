"""End to end: a tiny bundle and a clip made from real photos through the whole loop, both backends."""

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from nsl.edge.app import App, AppOptions, run_app
from nsl.edge.bundle import load_bundle
from nsl.edge.clips import letterbox, write_clip
from nsl.edge.hands import RoiHands, make_hands, parse_roi
from nsl.edge.outputs import JsonLines, read_json_lines
from nsl.edge.predict import predict_images
from nsl.edge.render import Renderer
from nsl.edge.smoothing import HandSmoothers
from nsl.preprocess import crop, crop_box, crop_hand, expand_box, prepare, read_image
from nsl.edge.sources import FrameSource, SourceSpec, parse_source
from nsl.edge.timing import STAGES, StageTimer
from tests.conftest import ROOT, env_python, real_data, run_nsl
from tests.edge.conftest import error_line
from tests.edge.test_sources import FakeCamera

PHOTOS, REPEAT = 12, 3  # 36 frames: enough for tracking and smoothing, a few seconds per run


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A 640x480 video of real NSL photos, each held for a few frames."""
    photos = sorted(p for p in real_data("nsl_consonants").rglob("*") if p.is_file())[:PHOTOS]
    path = tmp_path_factory.mktemp("clip") / "signs.mp4"
    return write_clip((letterbox(read_image(photo)) for photo in photos), path, REPEAT, fps=30)


def _read_lines(path):
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if "frame" in line], [line["summary"] for line in lines if "summary" in line]


@pytest.fixture(scope="module")
def runs(clip, tiny_bundle, hand_model, tmp_path_factory):
    """The clip through both backends (fp32 files, so top-1 is comparable on a barely trained model)."""
    folder = tmp_path_factory.mktemp("runs")
    out = {}
    for backend in ("tflite", "onnx"):
        began = time.perf_counter()
        summary = run_app(AppOptions(model=str(tiny_bundle), source=str(clip), backend=backend, precision="fp32",
                                     hand_model=str(hand_model), headless=True, smooth=3, threshold=0.0,
                                     json=str(folder / f"{backend}.jsonl"),
                                     output=str(folder / f"{backend}.mp4") if backend == "tflite" else None))
        out[backend] = (summary, (time.perf_counter() - began) * 1000, *_read_lines(folder / f"{backend}.jsonl"))
    out["video"] = folder / "tflite.mp4"
    return out


def test_every_frame_yields_a_json_line_with_hands(runs):
    for backend in ("tflite", "onnx"):
        summary, _, frames, summaries = runs[backend]
        assert [f["frame"] for f in frames] == list(range(PHOTOS * REPEAT))
        assert summaries == [summary] and summary["frames"] == PHOTOS * REPEAT
        with_hand = [f for f in frames if f["hands"]]
        # measured 36/36: every photo has a hand (test_hands), and a cut between photos is re-detected on the
        # same frame; 90 % leaves room for a MediaPipe release that misses one photo
        assert len(with_hand) >= 0.9 * len(frames), f"{backend}: hands in {len(with_hand)}/{len(frames)}"
        hand = with_hand[-1]["hands"][0]
        assert set(hand) >= {"box", "label", "text", "confidence", "smoothed", "smoothed_text", "probability"}
        assert set(with_hand[-1]["stage_ms"]) == {*STAGES, "frame"}
        assert summary["hand_tracker"].startswith("MediaPipe VIDEO")


def test_both_backends_agree_on_top1(runs):
    tflite, onnx = runs["tflite"][2], runs["onnx"][2]
    pairs = [(a["label"], b["label"]) for fa, fb in zip(tflite, onnx) for a, b in zip(fa["hands"], fb["hands"])]
    assert len(pairs) >= 0.8 * PHOTOS * REPEAT
    agree = sum(a == b for a, b in pairs) / len(pairs)
    assert agree >= 0.95, f"top-1 agreement {agree:.1%} over {len(pairs)} crops"


def test_summary_stage_timings_add_up_to_the_frame_time(runs):
    for backend in ("tflite", "onnx"):
        summary, measured_ms, _, _ = runs[backend]
        stages = summary["stages_ms"]
        assert sum(stages[name]["mean"] for name in STAGES) == pytest.approx(stages["frame"]["mean"], abs=0.02)
        assert summary["wall_s"] * 1000 == pytest.approx(stages["frame"]["mean"] * summary["frames"], rel=0.01)
        assert summary["wall_s"] * 1000 < measured_ms  # the loop is inside the measured call (which adds setup)
        assert summary["mean_fps"] == pytest.approx(summary["frames"] / summary["wall_s"], rel=0.01)
        assert stages["hands"]["mean"] > 0 and summary["notes_ms"]["classifier_model"]["mean"] > 0


def test_annotated_video_has_every_frame(runs):
    capture = cv2.VideoCapture(str(runs["video"]))
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    capture.release()
    assert count == PHOTOS * REPEAT and not list(runs["video"].parent.glob(".*partial*"))


def test_the_edge_app_never_imports_tensorflow(runs, tiny_bundle, clip):
    assert not [name for name in sys.modules if name == "tensorflow" or name.startswith("tensorflow.")]
    # The edge environment has no TensorFlow to import, so also run the loop (fixed region: no mediapipe
    # there) in the train environment, where an import of tensorflow anywhere below would succeed.
    train_python = env_python("train")
    if subprocess.run([train_python, "-c", "import tensorflow"], capture_output=True).returncode != 0:
        pytest.skip("no train environment with TensorFlow (NSL_TRAIN_PYTHON) to check against")
    script = (
        "import sys\n"
        "from nsl.edge.app import AppOptions, run_app\n"
        "import nsl.commands.edge, nsl.edge.predict, nsl.edge.hands, nsl.edge.hand_model, nsl.edge.render\n"
        f"run_app(AppOptions(model={str(tiny_bundle)!r}, source={str(clip)!r}, roi='100,100,200,200', "
        "headless=True, max_frames=3))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'tf_keras', 'keras')))\n")
    proc = subprocess.run([train_python, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_camera_failing_mid_stream_is_reconnected_by_the_app(tiny_bundle, tmp_path):
    camera = FakeCamera([8, -1, None], shape=(240, 320, 3))
    source = FrameSource(SourceSpec("camera", 0), opener=camera, backoff=(0.05, 0.2))
    summary = run_app(AppOptions(model=str(tiny_bundle), roi="40,40,120,120", headless=True, max_frames=20,
                                 json=str(tmp_path / "out.jsonl")), source=source)
    frames, _ = _read_lines(tmp_path / "out.jsonl")
    assert summary["reconnects"] == 1 and camera.opens == 3
    assert summary["frames"] == 20 and len(frames) == 20
    assert all(len(f["hands"]) == 1 and f["hands"][0]["box"] == [40, 40, 160, 160] for f in frames)
    assert summary["hand_tracker"].startswith("fixed region")


def test_cli_app_streams_json_lines_to_stdout(tiny_bundle, hand_model, clip):
    proc = run_nsl("app", "--model", tiny_bundle, "--source", clip, "--headless", "--json", "-", "--max-frames", 6,
                   "--backend", "onnx", "--hand-model", hand_model, "--show-landmarks")
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [line["frame"] for line in lines[:-1]] == list(range(6)) and "summary" in lines[-1]
    assert "mean" in proc.stderr and "FPS" in proc.stderr  # the summary table goes to stderr


def test_cli_predict_on_stills(tiny_bundle, hand_model, tmp_path):
    folder = real_data("nsl_consonants")
    proc = run_nsl("predict", "--model", tiny_bundle, folder, "--json", "--hand-model", hand_model)
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len({row["path"] for row in rows}) == 35
    assert sum(row["label"] is not None for row in rows) >= 33  # same margin as test_hands
    assert all(len(row["top"]) == 3 for row in rows if row["label"] is not None)
    photo = sorted(folder.rglob("*.jpg"))[0]
    table = run_nsl("predict", "--model", tiny_bundle, photo, "--no-detect").stdout.splitlines()
    height, width = read_image(photo).shape[:2]
    assert len(table) == 2 and table[1].rstrip().endswith(f"0,0,{width},{height}")


def test_cli_errors_are_one_line(tiny_bundle, tmp_path):
    empty = {"NSL_CACHE_DIR": str(tmp_path / "empty-cache")}
    proc = run_nsl("app", "--model", tiny_bundle, "--headless", check=False, env=empty)
    assert proc.returncode == 2
    assert "nsl hand-model build" in error_line(proc) and "nsl hand-model fetch" in error_line(proc)
    proc = run_nsl("app", "--model", tmp_path / "nothing", "--roi", "0,0,10,10", "--headless", check=False)
    assert proc.returncode == 2 and "not a model bundle" in error_line(proc)
    proc = run_nsl("app", "--model", tiny_bundle, "--roi", "0,0,10", "--source", tmp_path, check=False)
    assert proc.returncode == 2 and "--roi" in error_line(proc)
    proc = run_nsl("app", "--model", tiny_bundle, "--roi", "0,0,10,10", "--source", tmp_path / "x.mp4",
                   "--headless", check=False)
    assert proc.returncode == 2 and "no such file, folder or camera" in error_line(proc)
    proc = run_nsl("predict", "--model", tiny_bundle, tmp_path / "missing.jpg", check=False)
    assert proc.returncode == 2 and "no such image file or folder" in error_line(proc)
    damaged = tmp_path / "damaged"
    shutil.copytree(tiny_bundle, damaged)
    model = damaged / json.loads((damaged / "metadata.json").read_text())["default_file"]["tflite"]
    model.write_bytes(model.read_bytes()[:-1] + b"x")
    proc = run_nsl("app", "--model", damaged, "--roi", "0,0,10,10", "--headless", check=False)
    assert proc.returncode == 2 and "sha256" in error_line(proc)


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_sigterm_ends_the_loop_with_a_summary(stop_signal, tiny_bundle, clip, tmp_path):
    """A service manager stops the app with SIGTERM (a user with Ctrl-C): the frame in progress is finished, so
    every counted frame has its JSON line, and the stream ends with the summary."""
    long_clip = tmp_path / "long.avi"
    capture = cv2.VideoCapture(str(clip))
    ok, frame = capture.read()
    capture.release()
    writer = cv2.VideoWriter(str(long_clip), cv2.VideoWriter_fourcc(*"MJPG"), 30, (640, 480))
    for _ in range(600):
        writer.write(frame)
    writer.release()
    cmd = [sys.executable, "-m", "nsl", "app", "--model", str(tiny_bundle), "--source", str(long_clip),
           "--roi", "100,100,300,300", "--headless", "--json", "-"]
    # The rest is read through the same file object: communicate(timeout=...) reads the raw file descriptor and
    # loses the lines readline() has already buffered ahead. stderr goes to a file so no second pipe can fill up.
    with open(tmp_path / "stderr.txt", "w") as stderr:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr, text=True, cwd=ROOT)
        first = proc.stdout.readline()
        proc.send_signal(stop_signal)
        rest = proc.stdout.read()
        proc.wait(timeout=60)
    lines = [json.loads(line) for line in (first + rest).splitlines()]
    assert proc.returncode == 0 and "summary" in lines[-1]
    assert lines[-1]["summary"]["frames"] == len(lines) - 1 < 600


def test_long_runs_keep_bounded_state(tiny_bundle, tmp_path):
    """Hours of frames must not grow memory: every per-frame record lives in a bounded structure."""
    camera = FakeCamera([None], shape=(120, 160, 3))
    app = App.from_options(AppOptions(model=str(tiny_bundle), roi="10,10,100,100", headless=True, max_frames=400,
                                      json=str(tmp_path / "out.jsonl")),
                           source=FrameSource(SourceSpec("camera", 0), opener=camera))
    app.timer = StageTimer(window=100)
    summary = app.run()
    assert summary["frames"] == 400
    assert all(len(values) == 100 for values in app.timer.recent.values())
    assert all(len(values) <= 100 for values in app.timer.notes.values())
    assert len(app.smoothers.smoothers) <= 1 and len(app.labels_seen) <= len(app.bundle.labels) + 2
    assert app.source.dropped >= 0 and len((tmp_path / "out.jsonl").read_text().splitlines()) == 401


class RecordingTracker:
    """A tracker passed through, keeping each frame it was given with the hands it found there."""

    def __init__(self, tracker):
        self.tracker, self.name, self.calls = tracker, tracker.name, []

    def detect(self, frame_rgb, timestamp_ms=None):
        hands = self.tracker.detect(frame_rgb, timestamp_ms)
        self.calls.append((frame_rgb, hands))
        return hands

    def close(self):
        self.tracker.close()


class RecordingClassifier:
    """A classifier passed through, keeping each batch of crops it was given."""

    def __init__(self, classifier):
        self.classifier, self.path, self.backend, self.batches = classifier, classifier.path, classifier.backend, []

    def predict(self, crops):
        self.batches.append(crops)
        return self.classifier.predict(crops)


# How each crop was cut before crop_hand was the one path; the app's crops must stay pixel-identical to these.
BEFORE = {"mediapipe": lambda frame, hand, spec: prepare(crop(frame, expand_box(hand.box, spec.margin, spec.square)),
                                                         spec),
          "roi": lambda frame, hand, spec: prepare(crop(frame, hand.box), spec)}


@pytest.mark.parametrize("kind", ["mediapipe", "roi"])
def test_the_app_classifies_crop_hand_of_each_hand_box(kind, tiny_bundle, hand_model, clip, tmp_path):
    """The app takes its parts; what its classifier gets is crop_hand(frame, hand.box, spec) (the crop training
    will cut too), and the JSON box is crop_box of the same hand."""
    bundle, classifier = load_bundle(tiny_bundle, "tflite", "fp32")
    spec = bundle.crop
    roi = parse_roi("100,80,300,260") if kind == "roi" else None
    tracker = RecordingTracker(make_hands(hand_model, roi, mode="video"))
    classifier = RecordingClassifier(classifier)
    sinks = [JsonLines(tmp_path / "out.jsonl")]
    app = App(FrameSource(parse_source(str(clip))), tracker, classifier, Renderer(), sinks, bundle,
              HandSmoothers(3, threshold=0.0), max_frames=6)
    summary = app.run()
    hands = [(frame, hand) for frame, found in tracker.calls for hand in found]
    assert summary["frames"] == 6 and len(hands) >= 5 and all(hand.grow == (kind != "roi") for _, hand in hands)
    crops = [crop for batch in classifier.batches for crop in batch]
    assert len(crops) == len(hands)
    for given, (frame, hand) in zip(crops, hands):
        expected = crop_hand(frame, hand.box, spec) if hand.grow else crop_hand(frame, hand.box, spec, grow=False)
        assert np.array_equal(given, expected) and np.array_equal(given, BEFORE[kind](frame, hand, spec))
    frames, _ = read_json_lines(tmp_path / "out.jsonl")
    reported = [hand["box"] for frame in frames for hand in frame["hands"]]
    assert reported == [[round(v, 1) for v in crop_box(hand.box, spec, hand.grow)] for _, hand in hands]
    assert summary["hand_tracker"] == tracker.name and summary["backend"] == "tflite"


def test_predict_reports_a_fixed_region_as_its_crop(tiny_bundle):
    bundle, classifier = load_bundle(tiny_bundle, "onnx")
    photo = sorted(real_data("nsl_consonants").rglob("*.jpg"))[0]
    rows = predict_images(bundle, classifier, [photo], RoiHands((10, 20, 110, 140)))
    assert len(rows) == 1 and rows[0]["box"] == [10, 20, 110, 140] and rows[0]["handedness"] == "roi"


def test_cli_predict_classifies_a_phone_photo_upright(tmp_path):
    """A 1500 x 1000 photo stored sideways (EXIF orientation 6): the whole image is its upright 1500 x 1000."""
    from tests.hostile import oriented_copy, write_bundle

    bundle = write_bundle(tmp_path / "bundle", classes=2, side=8)
    photo = sorted(real_data("nsl_numbers").rglob("*_1500px.jpg"))[0]
    portrait = oriented_copy(photo, tmp_path / "portrait.jpg", 6)
    rows = [json.loads(line) for line in run_nsl("predict", "--model", bundle, portrait, "--no-detect", "--json",
                                                 python=env_python("edge")).stdout.splitlines()]
    assert rows[0]["box"] == [0, 0, 1500, 1000]


def test_json_into_a_folder_is_one_line_even_with_the_hand_tracker(tiny_bundle, hand_model, clip, tmp_path):
    """--json naming a folder gave a traceback, then a second one from the landmarker's destructor."""
    proc = run_nsl("app", "--model", tiny_bundle, "--source", clip, "--headless", "--hand-model", hand_model,
                   "--json", tmp_path, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"--json {tmp_path}: cannot write this file (Is a directory)" in error_line(proc)


def _without_timing(records):
    """JSON lines with the fields that vary run to run (wall time, stage times) left out."""
    out = []
    for record in records:
        if "summary" in record:
            record = {key: value for key, value in record["summary"].items()
                      if key not in ("wall_s", "mean_fps", "stages_ms", "notes_ms", "devanagari_font")}
        else:
            record = {key: value for key, value in record.items() if key not in ("time", "stage_ms")}
        out.append(record)
    return out


def test_json_lines_are_the_same_with_and_without_a_devanagari_font(tiny_bundle, clip, tmp_path, monkeypatch):
    """The overlay draws Devanagari or the ascii spelling, but what is written is keyed by class index and carries
    the Devanagari, roman and ascii names whatever fonts the machine has (once "label" was "ka" on one machine
    and "क" on another)."""
    from nsl.edge import render

    any_font = next(iter(sorted(Path(cv2.__file__).parents[1].rglob("DejaVuSans.ttf"))), None)
    if any_font is None:
        pytest.skip("no TrueType font in the environment to stand in for a Devanagari one")
    written = {}
    for case, font in (("font", str(any_font)), ("none", None)):
        monkeypatch.setattr(render, "FONT_PATHS", ())
        monkeypatch.setattr(render, "_fontconfig_devanagari", lambda: None)
        if font:
            monkeypatch.setenv("NSL_FONT", font)
        else:
            monkeypatch.delenv("NSL_FONT", raising=False)
        render.find_devanagari_font.cache_clear()
        summary = run_app(AppOptions(model=str(tiny_bundle), source=str(clip), roi="120,40,400,400", headless=True,
                                     smooth=1, threshold=0.0, json=str(tmp_path / f"{case}.jsonl"),
                                     output=str(tmp_path / f"{case}.mp4")))  # drawn: the overlay's text is used
        assert summary["devanagari_font"] is (font is not None)
        written[case] = [json.loads(line) for line in (tmp_path / f"{case}.jsonl").read_text().splitlines()]
    render.find_devanagari_font.cache_clear()
    assert _without_timing(written["font"]) == _without_timing(written["none"])
    labels = open_bundle_labels(tiny_bundle)
    frame = written["none"][0]
    assert type(frame["label"]) is int and frame["text"] == labels[frame["label"]].name
    assert {"roman", "ascii"} <= set(frame) and {"label", "text", "roman", "ascii", "top"} <= set(frame["hands"][0])
    seen = written["none"][-1]["summary"]["labels_seen"]
    assert sum(row["frames"] for row in seen) == PHOTOS * REPEAT
    assert all(row["name"] == labels[row["index"]].name for row in seen if row["index"] is not None)


def open_bundle_labels(bundle):
    from nsl.edge.bundle import open_bundle

    return open_bundle(bundle).labels
