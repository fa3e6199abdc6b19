"""The app's knobs: MediaPipe's three confidences, the camera's mode, a mirrored view, the top-3 overlay, the timing
panel (with the classifier's own time), a status line on the terminal and JSON logs that rotate."""

import io
import json
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from nsl.edge.app import App, AppOptions
from nsl.edge.hands import Confidences, Hand
from nsl.edge.outputs import JsonLines, StatusLine
from nsl.edge.render import GREEN, Renderer, timing_text
from nsl.edge.sources import CaptureReader, FrameSource, SourceSpec, parse_source
from nsl.errors import NslError
from nsl.labels import load_labels
from tests.conftest import run_nsl
from tests.edge.conftest import error_line
from tests.edge.test_sources import FakeCamera


def test_the_three_confidences_reach_mediapipe_by_its_names_and_are_checked(hand_model):
    from nsl.edge.hands import MediaPipeHands

    assert Confidences(0.3, 0.4, 0.6).as_options() == {"min_hand_detection_confidence": 0.3,
                                                       "min_hand_presence_confidence": 0.4,
                                                       "min_tracking_confidence": 0.6}
    with pytest.raises(NslError, match=r"--min-tracking-confidence 1.5: expected a number from 0 to 1"):
        Confidences(min_tracking_confidence=1.5)
    tracker = MediaPipeHands(hand_model, confidences=Confidences(0.9, 0.9, 0.9))  # MediaPipe accepts them
    tracker.close()


def test_a_confidence_out_of_range_is_one_line_before_any_work(tiny_bundle):
    proc = run_nsl("app", "--model", tiny_bundle, "--source", "0", "--headless",
                   "--min-hand-detection-confidence", "2", check=False)
    assert proc.returncode == 2 and "--min-hand-detection-confidence 2.0: expected a number from 0 to 1" \
        in error_line(proc)


class SettableCamera:
    """A cv2.VideoCapture look-alike that records what it was asked to set and answers with a nearby mode."""

    def __init__(self):
        self.props = {}

    def __call__(self, target, *api):
        return self

    def isOpened(self):
        return True

    def set(self, prop, value):
        self.props[prop] = value
        return True

    def get(self, prop):
        return {cv2.CAP_PROP_FRAME_WIDTH: 1280.0, cv2.CAP_PROP_FRAME_HEIGHT: 720.0}.get(prop, 30.0)

    def release(self):
        pass


def test_camera_width_height_fps_are_asked_of_cameras_only():
    camera = SettableCamera()
    CaptureReader(parse_source("0", 1280, 720, 30), opener=camera)
    assert camera.props == {cv2.CAP_PROP_FRAME_WIDTH: 1280.0, cv2.CAP_PROP_FRAME_HEIGHT: 720.0, cv2.CAP_PROP_FPS: 30.0}
    untouched = SettableCamera()
    CaptureReader(parse_source("0"), opener=untouched)
    assert untouched.props == {}
    with pytest.raises(NslError, match="--width/--height/--fps: apply to cameras"):
        parse_source(__file__, width=640)
    with pytest.raises(NslError, match="--fps 0: expected a positive number"):
        parse_source("0", fps=0)


def test_camera_settings_win_over_a_presets_own_size():
    from nsl.edge.camera_presets import resolve_source
    from nsl.edge.sources import with_preset_settings

    pipeline = resolve_source(with_preset_settings("usb:640x480@15", 1280, 720, 30))
    assert "width=1280,height=720,framerate=30/1" in pipeline
    assert with_preset_settings("0", 1280, 720, 30) == "0"


def _hand_result(labels):
    box = (20.0, 60.0, 70.0, 110.0)
    return SimpleNamespace(hand=Hand(box=box, score=0.9), box=box, text=labels[10].ascii, confidence=0.8, known=True,
                           top=((10, 0.6), (15, 0.3), (0, 0.1)), labels=tuple(labels))


def test_a_mirrored_view_draws_the_frame_and_the_box_mirrored(monkeypatch):
    from nsl.edge import render

    monkeypatch.setattr(render, "find_devanagari_font", lambda: None)
    labels = load_labels("nsl36")
    frame = np.zeros((200, 300, 3), np.uint8)
    frame[:, :10] = 255  # a white strip on the left edge
    plain = Renderer().draw(frame, [_hand_result(labels)], 20.0, {})
    mirrored = Renderer(mirror=True).draw(frame, [_hand_result(labels)], 20.0, {})
    assert (mirrored[150:, -10:] == 255).all() and not (mirrored[150:, :10] == 255).any()
    assert tuple(plain[110, 45]) == GREEN and tuple(mirrored[110, 300 - 45]) == GREEN
    assert tuple(mirrored[110, 45]) != GREEN


def test_the_top3_overlay_lists_three_classes_under_the_label(monkeypatch):
    from nsl.edge import render

    monkeypatch.setattr(render, "find_devanagari_font", lambda: None)
    labels = load_labels("nsl36")
    frame = np.zeros((400, 400, 3), np.uint8)
    without = Renderer().draw(frame, [_hand_result(labels)], 20.0, {})
    top = Renderer(show_top=True).draw(frame, [_hand_result(labels)], 20.0, {})
    below = slice(60, 200), slice(20, 200)
    assert without[below].sum() < top[below].sum()


def test_the_timing_panel_names_the_classifiers_own_time():
    text = timing_text(30.0, {"hands": 11.0, "classify": 0.0, "draw": 1.0, "model": 4.2})
    assert "classify 4.2 (wait 0.0)" in text and "hands 11.0" in text
    assert "classify 0.3 ms" in timing_text(30.0, {"classify": 0.3}).replace("  draw 0.0", "")


class PanelRenderer(Renderer):
    """Keeps what the timing panel was given, and whether it was shown, per frame."""

    def __init__(self):
        super().__init__()
        self.panels = []

    def draw(self, frame_rgb, results, fps, stage_ms, status=""):
        self.panels.append((dict(stage_ms), self.show_timing))
        return super().draw(frame_rgb, results, fps, stage_ms, status)


class KeySink:
    """A window stand-in: answers key t (toggle timing) on the given frames."""

    takes_frames, takes_records = True, False

    def __init__(self, press_on):
        self.press_on, self.count = set(press_on), 0

    def frame(self, image):
        self.count += 1
        return "timing" if self.count in self.press_on else None

    def record(self, record):
        pass

    def close(self, summary=None):
        pass


def test_the_panel_shows_the_model_time_and_key_t_toggles_it(tiny_bundle):
    app = App.from_options(AppOptions(model=str(tiny_bundle), roi="10,10,40,40", headless=True, max_frames=12),
                           source=FrameSource(SourceSpec("camera", 0), opener=FakeCamera([None], shape=(60, 80, 3))))
    app.renderer = PanelRenderer()
    app.sinks = app.frame_sinks = [KeySink(press_on=(3, 6))]
    app.run()
    panels = app.renderer.panels
    assert all(stage.get("model", 0) > 0 for stage, _ in panels[1:])  # the inference itself, not the wait
    shown = [visible for _, visible in panels]
    assert shown[:3] == [True] * 3 and shown[3:6] == [False] * 3 and shown[6:] == [True] * (len(shown) - 6)


def test_a_headless_status_line_shows_fps_and_the_label():
    stream = io.StringIO()
    line = StatusLine(stream, every_s=0.0)
    labels = load_labels("nsl36")
    for frame in range(5):
        line.record({"frame": frame, "label": 10, "text": labels[10].name, "roman": labels[10].roman,
                     "hands": [{"confidence": 0.87}]})
    line.record({"frame": 5, "label": None, "text": "no hand", "hands": []})
    line.close({})
    shown = stream.getvalue()
    assert shown.count("\r") == 6 and shown.endswith("\n")
    assert "frame 4" in shown and "FPS  10 ट (ṭa) 87%" in shown and "no hand" in shown.split("\r")[-1]


def test_status_auto_is_on_only_headless_on_a_terminal(monkeypatch):
    from nsl.edge.outputs import wants_status

    monkeypatch.setattr("sys.stderr", io.StringIO())  # not a terminal
    assert not wants_status(AppOptions(model="x", headless=True))
    assert wants_status(AppOptions(model="x", headless=True, status="on"))
    assert not wants_status(AppOptions(model="x", status="off"))


def test_json_logs_rotate_at_their_size_cap_and_keep_three_backups(tmp_path):
    path = tmp_path / "app.jsonl"
    cap = 0.002  # MB: 2097 bytes
    for run in range(2):
        out = JsonLines(path, max_mb=cap)
        for frame in range(200):
            out.record({"run": run, "frame": frame, "text": "ट", "pad": "x" * 40})
        out.close({"frames": 200})
    files = sorted(tmp_path.iterdir())
    assert [p.name for p in files] == ["app.jsonl", "app.jsonl.1", "app.jsonl.2", "app.jsonl.3"]
    assert all(p.stat().st_size <= cap * 1024 * 1024 + 100 for p in files)  # a closing summary may pass the cap
    for p in files:  # every file holds whole lines
        assert all(json.loads(line) for line in p.read_text(encoding="utf-8").splitlines())
    last = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert last[-1] == {"summary": {"frames": 200}} and last[0]["run"] == 1
    with pytest.raises(NslError, match="--json-max-mb 0: expected a positive size"):
        JsonLines(tmp_path / "x.jsonl", max_mb=0)
