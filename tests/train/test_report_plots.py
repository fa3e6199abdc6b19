"""The report's plots: Devanagari ticks when a font exists (distinct roman otherwise), counts in the confusion
matrix's cells, a learning-rate trace, and a loss axis that one spike cannot flatten."""

from pathlib import Path

import matplotlib
import numpy as np
import pytest

from nsl.labels import load_labels
from nsl.train import report


@pytest.fixture
def figures(monkeypatch):
    kept = []
    monkeypatch.setattr(report, "_save", lambda fig, path: kept.append(fig))
    return kept


def _history():
    lrs = [1e-3] * 3 + [1e-4] * 3 + [1e-5] * 2
    loss = [1.2, 0.9, 0.8, 40.0, 0.6, 0.5, 0.45, 0.4]  # a lone spike at epoch 4
    return [{"epoch": i + 1, "phase": f"p{i // 3}", "phase_index": i // 3, "lr": lr, "loss": l,
             "val_loss": l * 1.1 if i != 3 else 0.7, "accuracy": 0.5, "val_accuracy": 0.4}
            for i, (lr, l) in enumerate(zip(lrs, loss))]


def test_one_spike_does_not_flatten_the_loss_axis_and_the_lr_is_traced(figures, tmp_path):
    report.plot_training_curves(_history(), tmp_path / "curves.png")
    loss_ax, _, lr_ax = figures[0].axes
    top = loss_ax.get_ylim()[1]
    assert 1.2 <= top < 5  # the other epochs keep their detail
    assert any("above the axis (max 40)" in text.get_text() for text in loss_ax.get_legend().get_texts())
    assert lr_ax.get_yscale() == "log" and lr_ax.get_title() == "learning rate"
    assert list(lr_ax.lines[0].get_ydata()) == [entry["lr"] for entry in _history()]
    falling = [[2.13, 1.04, 0.53, 0.44, 0.26], [1.5, 0.89, 0.58, 0.48, 0.39]]  # a measured tiny run's first epochs
    assert report.loss_upper_limit(falling) is None  # a falling curve is not a spike: matplotlib's own axis


def test_confusion_cells_carry_counts_and_ticks_are_distinct_without_a_font(figures, monkeypatch, tmp_path):
    monkeypatch.setattr(report, "devanagari_font_family", lambda: None)
    labels = load_labels("nsl36")[:16]
    confusion = np.diag(np.arange(1, 17))
    confusion[10, 15] = 3  # ट taken for त
    report.plot_confusion(confusion.tolist(), labels, tmp_path / "cm.png")
    ax = figures[0].axes[0]
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks[10] == "10 ṭa" and ticks[15] == "15 ta" and len(set(ticks)) == 16
    cells = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts}
    assert cells[(10, 15)] == "3" and cells[(15, 15)] == "16" and (0, 1) not in cells
    assert all(name.split(" ", 1)[1] for name in report.tick_names(load_labels("nsl36"), False))
    assert len(set(report.tick_names(load_labels("nsl36"), False))) == 36


def test_ticks_use_a_devanagari_font_when_one_exists(figures, monkeypatch, tmp_path):
    """NSL_FONT (or an installed font named Devanagari, as in the training image) is used for the ticks."""
    font = next(iter(sorted(Path(matplotlib.get_data_path()).rglob("DejaVuSans.ttf"))))
    monkeypatch.setenv("NSL_FONT", str(font))
    family = report.devanagari_font_family()
    assert family == "DejaVu Sans"
    labels = load_labels("nsl36")[:3]
    report.plot_confusion(np.eye(3, dtype=int).tolist(), labels, tmp_path / "cm.png")
    ticks = figures[0].axes[0].get_xticklabels()
    assert [t.get_text() for t in ticks] == ["0 क", "1 ख", "2 ग"]
    assert ticks[0].get_fontfamily() == [family]
