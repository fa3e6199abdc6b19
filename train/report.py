"""The human-readable end of a run: report.md, training_curves.png (phase boundaries marked) and
confusion_matrix.png. matplotlib with the Agg backend (no display needed)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from nsl.fileio import atomic_path, write_text
from nsl.labels import Label
from nsl.options import Options
from nsl.rundir import RunDir

log = logging.getLogger(__name__)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")


def phase_boundaries(history: list[dict]) -> list[tuple[int, str]]:
    """(first epoch, phase name) of each phase that ran, in order."""
    starts, previous = [], None
    for entry in history:
        if entry["phase_index"] != previous:
            starts.append((entry["epoch"], entry["phase"]))
            previous = entry["phase_index"]
    return starts


def loss_upper_limit(series: list[list[float]]) -> float | None:
    """The top of the loss axis: None (matplotlib's own) unless a spike would flatten the rest. Each series
    (train, val) drops its largest value; the axis ends at 3 x the largest value left, when something lies above
    (a falling curve's first epoch does not: it is kept whole)."""
    rest = []
    for values in series:
        finite = sorted(v for v in values if np.isfinite(v))
        rest += finite[:-1]
    everything = [v for values in series for v in values if np.isfinite(v)]
    if len(rest) < 2 or max(rest) <= 0:
        return None
    upper = 3 * max(rest)
    return upper if max(everything) > upper else None


def plot_training_curves(history: list[dict], path: Path) -> None:
    """Loss (its axis clipped above a lone spike), accuracy and the learning rate per epoch, phases marked."""
    plt = _pyplot()
    epochs = [entry["epoch"] for entry in history]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for ax, metric in zip(axes, ("loss", "accuracy")):
        series = []
        for prefix, style in (("", "-o"), ("val_", "-s")):
            values = [entry.get(prefix + metric, np.nan) for entry in history]
            series.append(values)
            ax.plot(epochs, values, style, markersize=3, label=f"{'val' if prefix else 'train'} {metric}")
        if metric == "loss":
            _clip_spikes(ax, epochs, series)
        for order, (start, name) in enumerate(phase_boundaries(history)):
            ax.axvline(start - 0.5, color="grey", linestyle="--", linewidth=0.8)
            height = 0.99 - 0.06 * (order % 3)  # staggered: one-epoch phases sit side by side
            ax.annotate(name, (start - 0.4, height), xycoords=("data", "axes fraction"), va="top", fontsize=8)
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.legend(fontsize=8)
    _plot_lr(axes[2], history)
    _save(fig, path)
    plt.close(fig)


def _clip_spikes(ax, epochs: list, series: list[list[float]]) -> None:
    upper = loss_upper_limit(series)
    if upper is None:
        return
    ax.set_ylim(0, upper)
    values = [v for line in series for v in line if np.isfinite(v)]
    spikes = sorted({epoch for line in series for epoch, v in zip(epochs, line) if np.isfinite(v) and v > upper})
    ax.plot(spikes, [upper] * len(spikes), "^", color="red", markersize=6, clip_on=False,
            label=f"above the axis (max {max(values):.3g})")


def _plot_lr(ax, history: list[dict]) -> None:
    """The learning rate each epoch trained with (log scale): the phases' steps and any schedule within them."""
    points = [(entry["epoch"], entry["lr"]) for entry in history if entry.get("lr")]
    if points:
        ax.plot(*zip(*points), "-o", markersize=3, color="tab:green")
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_title("learning rate")


def plot_confusion(confusion: list[list[int]], labels: list[Label], path: Path) -> None:
    plt = _pyplot()
    matrix = np.asarray(confusion, dtype=float)
    rows = matrix.sum(axis=1, keepdims=True)
    normalised = np.divide(matrix, rows, out=np.zeros_like(matrix), where=rows > 0)
    side = max(5.0, 0.22 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(side, side))
    image = ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    ticks = range(len(labels))
    family = devanagari_font_family()
    names = tick_names(labels, family is not None)
    font = {"fontfamily": family} if family else {}
    ax.set_xticks(ticks, names, rotation=90, fontsize=7, **font)
    ax.set_yticks(ticks, names, fontsize=7, **font)
    _cell_counts(ax, matrix, normalised)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("confusion matrix (row-normalised, test)")
    fig.colorbar(image, ax=ax, fraction=0.046)
    _save(fig, path)
    plt.close(fig)


def devanagari_font_family() -> str | None:
    """A font with Devanagari that matplotlib can use: ``NSL_FONT``, else an installed one whose name says
    Devanagari (the training Docker image installs fonts-noto-core); None when there is none."""
    from matplotlib import font_manager

    wanted = os.environ.get("NSL_FONT")
    candidates = [wanted] if wanted and Path(wanted).is_file() else []
    candidates += sorted(f.fname for f in font_manager.fontManager.ttflist if "devanagari" in f.name.lower())
    for candidate in candidates:
        font_manager.fontManager.addfont(candidate)
        return font_manager.FontProperties(fname=candidate).get_name()
    return None


def tick_names(labels: list[Label], devanagari: bool) -> list[str]:
    """Tick labels keyed by class index: with a Devanagari font the Devanagari, else the ISO 15919 roman
    (distinct: ट 'ṭa', त 'ta'), which the default font draws."""
    return [f"{label.index} {label.name if devanagari else label.roman}" for label in labels]


def _cell_counts(ax, matrix: np.ndarray, normalised: np.ndarray) -> None:
    """The count of every non-empty cell, white on dark cells."""
    size = max(4, min(9, 240 // max(len(matrix), 1)))
    for (row, column), count in np.ndenumerate(matrix):
        if count:
            ax.text(column, row, f"{int(count)}", ha="center", va="center", fontsize=size,
                    color="white" if normalised[row, column] > 0.5 else "black")


def _phase_rows(history: list[dict], phases) -> list[str]:
    rows = ["| phase | epochs run / planned | lr | backbone trainable | trainable parameters |", "|---|---|---|---|---|"]
    for index, phase in enumerate(phases):
        ran = [entry for entry in history if entry["phase_index"] == index]
        params = ran[0]["trainable_params"] if ran else "-"
        rows.append(f"| {phase.name} | {len(ran)} / {phase.epochs} | {phase.lr:g} | {phase.trainable} | {params} |")
    return rows


def report_markdown(run_dir: Path, options: Options, history: list[dict], metrics: dict, labels: list[Label],
                    phases) -> str:
    best = min((e for e in history if "val_loss" in e), key=lambda e: e["val_loss"], default=None)
    worst = sorted(metrics["per_class"], key=lambda c: c["recall"])[:5]
    model = options.model
    lines = [f"# Training report: {run_dir.name}", "",
             f"- data: `{options.data.data}`; {len(labels)} classes; split {options.data.split}",
             f"- model: {model.backbone} (alpha {model.alpha}), {model.imgsz} px, weights "
             f"`{model.weights}`; strategy {options.hparams.strategy}",
             f"- epochs run: {len(history)}; wall time {sum(e['seconds'] for e in history):.0f} s", ""]
    lines += _phase_rows(history, phases) + [""]
    if best:
        lines.append(f"Best validation loss {best['val_loss']:.4f} at epoch {best['epoch']} ({best['phase']}); "
                     f"val accuracy there {best.get('val_accuracy', float('nan')):.4f}.")
    lines += ["", f"## Test ({metrics.get('source', 'test split')}, {metrics['n_images']} images)", "",
              "| top-1 | top-3 | macro F1 |", "|---|---|---|",
              f"| {metrics['top1']:.4f} | {metrics['top3']:.4f} | {metrics['macro_f1']:.4f} |", "",
              "Lowest recall: " + ", ".join(f"{c['name']} ({c['roman']}) {c['recall']:.2f}" for c in worst), "",
              "![training curves](training_curves.png)", "", "![confusion matrix](confusion_matrix.png)", "",
              f"Next: `nsl export {run_dir} --int8`", ""]
    return "\n".join(lines)


def fusion_lines(fusion: dict | None, options: Options) -> list[str]:
    """The report's section on the models of a models=both run (empty otherwise)."""
    if not fusion:
        return []
    test = fusion["test"]
    how = (f"split={options.data.split}" + (f", test groups {', '.join(options.data.split_test_groups)}"
                                            if options.data.split_test_groups else ""))
    return ["## Models (test split, " + how + ")", "",
            "| model | top-1 | images |", "|---|---|---|",
            *[f"| {name} | {test[name]['top1']:.4f} | {test[name]['n_images']} |" for name in ("fused", "cnn",
                                                                                            "landmarks")],
            "", f"Fused: log-linear, landmark weight {fusion['weight']:.2f} chosen on the {fusion['chosen_on']} (of the "
                f"weights within one standard error of the best top-1 there, the nearest 0.5); a hand was found in "
                f"{fusion['test_hand_found']:.0%} of the test images (the CNN answers alone where none was). "
                f"Landmarks: images with a hand only.", *_val_choice_lines(fusion)]


def _val_choice_lines(fusion: dict) -> list[str]:
    other = fusion.get("val_split_choice")
    if not other:
        return [""]
    return ["", f"The validation split (images of the training groups) would have chosen weight "
                f"{other['weight']:.2f}: fused test top-1 {other['test_top1']:.4f}.", ""]


def environment_lines(record: dict | None) -> list[str]:
    """The report's block on where the run trained (RUN_DIR/environment.json, the last session)."""
    if not record:
        return []
    from nsl.train.distribute import summary_lines

    return ["## Environment (environment.json)", "", *[f"- {line}" for line in summary_lines(record)], "", ""]


def write_report(run: RunDir, options: Options, history: list[dict], metrics: dict, labels: list[Label],
                 phases, fusion: dict | None = None) -> Path:
    if history:
        plot_training_curves(history, run.curves_png)
    plot_confusion(metrics["confusion_matrix"], labels, run.confusion_png)
    text = report_markdown(run.path, options, history, metrics, labels, phases)
    head, _, tail = text.partition("## Test")
    text = head + "\n".join(environment_lines(run.environment())) + "## Test" + tail
    if fusion:
        head, _, tail = text.partition("## Test")
        text = head + "\n".join(fusion_lines(fusion, options)) + "\n## Test" + tail
    return write_text(run.report_file, text)
