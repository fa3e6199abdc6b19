"""Label smoothing per hand, and stage timings that add up to the frame time."""

import time

import numpy as np
import pytest

from nsl.edge.smoothing import HandSmoothers, LabelSmoother
from nsl.edge.timing import STAGES, StageTimer, format_summary
from nsl.errors import NslError


def _probs(index, p=0.8, classes=4):
    row = np.full(classes, (1 - p) / (classes - 1), np.float32)
    row[index] = p
    return row


def test_majority_outvotes_a_single_odd_frame():
    smoother = LabelSmoother(window=5, method="majority", threshold=0.5)
    outputs = [smoother.update(_probs(i)) for i in (2, 2, 2, 1, 2)]
    assert [o.index for o in outputs] == [2, 2, 2, 2, 2]
    assert outputs[-1].confidence == pytest.approx((0.8 * 4 + 0.2 / 3) / 5)


def test_exponential_average_and_threshold():
    smoother = LabelSmoother(window=3, method="ema", threshold=0.6)  # alpha 0.5
    assert smoother.update(_probs(0, 0.9)).index == 0
    changed = smoother.update(_probs(1, 0.9))  # halfway between: 0.475 each, below the threshold
    assert changed.index is None and changed.confidence == pytest.approx(0.5 * 0.9 + 0.5 * 0.1 / 3)
    assert smoother.update(_probs(1, 0.9)).index == 1
    assert LabelSmoother(window=1, threshold=0.9).update(_probs(3, 0.8)).index is None  # unknown


def test_each_hand_has_its_own_history_and_old_ones_are_forgotten():
    smoothers = HandSmoothers(window=5, threshold=0.0, max_age=3)
    for frame in range(3):
        assert smoothers.update(0, _probs(1), frame).index == 1
        assert smoothers.update(1, _probs(2), frame).index == 2
    smoothers.prune(10)
    assert smoothers.smoothers == {}
    for bad in ({"window": 0}, {"method": "median"}, {"threshold": 1.5}):
        with pytest.raises(NslError):
            HandSmoothers(**bad)


def test_stages_add_up_to_the_frame_time_and_memory_is_bounded():
    timer = StageTimer(window=5)
    began = time.perf_counter()
    timer.start()
    for _ in range(8):
        for name in ("capture", "hands", "classify"):
            with timer.stage(name):
                time.sleep(0.002)
        time.sleep(0.001)  # plumbing outside any stage
        frame = timer.end_frame()
        assert sum(frame[name] for name in STAGES) == pytest.approx(frame["frame"])
        assert frame["other"] >= 0.5
    elapsed_ms = (time.perf_counter() - began) * 1000
    timer.note("classifier_model", 1.5)
    summary = timer.summary()
    stages = summary["stages_ms"]
    assert summary["frames"] == 8 and len(timer.recent["frame"]) == 5
    assert sum(stages[name]["mean"] for name in STAGES) == pytest.approx(stages["frame"]["mean"], abs=0.01)
    assert timer.totals["frame"] <= elapsed_ms  # frames are back to back within the loop
    assert summary["wall_s"] * 1000 == pytest.approx(timer.totals["frame"], abs=1)
    assert summary["wall_s"] * 1000 == pytest.approx(stages["frame"]["mean"] * 8, abs=1)
    assert summary["mean_fps"] == pytest.approx(8 / summary["wall_s"], rel=1e-2)
    assert summary["notes_ms"]["classifier_model"]["mean"] == 1.5
    assert "(classifier_model)" in format_summary(summary)
