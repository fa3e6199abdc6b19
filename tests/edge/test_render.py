"""Drawing: boxes, labels (Devanagari through Pillow when a font is found, romanised otherwise), HUD."""

import logging
from types import SimpleNamespace

import numpy as np
import pytest

from nsl.edge import render
from nsl.edge.hands import Hand
from nsl.edge.render import GREEN, GREY, Renderer


@pytest.fixture
def no_font(monkeypatch):
    monkeypatch.delenv("NSL_FONT", raising=False)
    monkeypatch.setattr(render, "FONT_PATHS", ())
    monkeypatch.setattr(render, "_fontconfig_devanagari", lambda: None)
    render.find_devanagari_font.cache_clear()
    yield
    render.find_devanagari_font.cache_clear()


def _result(text, known=True):
    box = (100.0, 120.0, 200.0, 220.0)
    landmarks = np.column_stack([np.linspace(110, 190, 21), np.linspace(130, 210, 21)])
    hand = Hand(box=box, score=0.9, landmarks=landmarks)
    return SimpleNamespace(hand=hand, box=box, text=text, confidence=0.87, known=known)


def test_without_a_devanagari_font_labels_are_romanised_and_that_is_logged_once(no_font, caplog):
    with caplog.at_level(logging.WARNING):
        first, second = Renderer(), Renderer()
    assert not first.devanagari and not second.devanagari
    assert caplog.text.count("no Devanagari font found") == 1


def test_frame_shows_box_landmarks_label_and_timings(no_font):
    frame = np.zeros((300, 400, 3), np.uint8)
    image = Renderer(show_landmarks=True).draw(frame, [_result("ka")], fps=25.0, stage_ms={"hands": 11.0},
                                               status="source lost: reconnecting")
    assert image.shape == (300, 400, 3) and not frame.any()  # drawn on a copy
    assert tuple(image[220, 150]) == GREEN  # bottom edge of the box
    assert image[5:30, 5:200].any()  # the FPS line
    assert image[150:200, 120:180].any()  # landmarks inside the box
    assert image[120 - 45:118, 100:160].any()  # the label above the box
    empty = Renderer().draw(frame, [], fps=0.0, stage_ms={})
    grey_pixels = [(drawn == GREY).all(axis=2).sum() for drawn in (empty, image)]
    assert grey_pixels[0] > grey_pixels[1] + 100  # the grey "no hand" box


def test_devanagari_labels_are_shaped_by_pillow():
    font = render.find_devanagari_font()
    if font is None:
        pytest.skip("no Devanagari font on this system (fonts-noto-core, or NSL_FONT=PATH)")
    ksha = render._text_patch(str(font), 28, "क्ष")
    ka_virama, ssa = render._text_patch(str(font), 28, "क्"), render._text_patch(str(font), 28, "ष")
    assert ksha.max() > 0
    # shaped as one conjunct, not KA + VIRAMA + SSA side by side
    assert ksha.shape[1] < ka_virama.shape[1] + ssa.shape[1]
    image = Renderer().draw(np.zeros((300, 400, 3), np.uint8), [_result("क्ष")], fps=1.0, stage_ms={})
    assert image[120 - 45:118, 100:160].any()


def test_the_overlay_says_which_models_named_the_hand(no_font):
    """Beside the confidence: 'cnn+landmarks' when both models answered (fused), the one model otherwise."""
    assert render.models_tag(("cnn", "landmarks")) == " cnn+landmarks" and render.models_tag(()) == ""
    frame = np.zeros((300, 400, 3), np.uint8)
    drawn = {}
    for models in ((), ("cnn",), ("cnn", "landmarks")):
        result = _result("ka")
        result.models = models
        drawn[models] = Renderer().draw(frame, [result], fps=25.0, stage_ms={})
    widths = {models: np.flatnonzero(image[75:118].any(axis=(0, 2))).max() for models, image in drawn.items()}
    assert widths[()] < widths[("cnn",)] < widths[("cnn", "landmarks")]  # the tag grows the label line
