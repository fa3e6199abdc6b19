"""Test-set evaluation of a classifier: top-1/top-3 accuracy, macro F1, per-class precision and recall, and the
confusion matrix (rows: true class, columns: predicted), written to ``metrics.json``."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from nsl.fileio import write_json
from nsl.labels import Label
from nsl.options import Options
from nsl.rundir import RunDir
from nsl.samples import Sample

log = logging.getLogger(__name__)


def predict_samples(model, samples: list[Sample], options: Options) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities (N, classes) and true labels (N,) of the readable ``samples``, through the eval pipeline."""
    from nsl.train.pipeline import make_dataset

    probs, labels = [], []
    batches = make_dataset(samples, options, training=False, cache=False)
    total = -(-len(samples) // options.hparams.batch)
    for images, batch_labels in tqdm(batches, total=total, desc="evaluating", unit="batch", leave=False,
                                     disable=not sys.stderr.isatty()):
        probs.append(model(images, training=False).numpy())
        labels.append(batch_labels.numpy())
    return np.concatenate(probs).astype(np.float32), np.concatenate(labels).astype(np.int64)


def classification_metrics(probs: np.ndarray, labels: np.ndarray, class_labels: list[Label]) -> dict:
    """Metrics of predictions ``probs`` (N, C) against true ``labels`` (N,)."""
    num_classes = len(class_labels)
    predicted = probs.argmax(axis=1)
    top3 = np.argsort(-probs, axis=1)[:, :3]
    confusion = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    true_pos = np.diag(confusion).astype(float)
    support, predicted_count = confusion.sum(axis=1), confusion.sum(axis=0)
    precision = np.divide(true_pos, predicted_count, out=np.zeros(num_classes), where=predicted_count > 0)
    recall = np.divide(true_pos, support, out=np.zeros(num_classes), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(num_classes), where=denom > 0)
    present = support > 0
    per_class = [{"index": label.index, "name": label.name, "roman": label.roman, "precision": round(float(p), 4),
                  "recall": round(float(r), 4), "f1": round(float(f), 4), "support": int(s)}
                 for label, p, r, f, s in zip(class_labels, precision, recall, f1, support)]
    return {
        "n_images": int(len(labels)),
        "top1": float((predicted == labels).mean()) if len(labels) else 0.0,
        "top3": float((top3 == labels[:, None]).any(axis=1).mean()) if len(labels) else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "per_class": per_class,
        "confusion_matrix": confusion.tolist(),
    }


def evaluate(model, samples: list[Sample], options: Options, class_labels: list[Label],
             out: str | Path | None = None, source: str = "test split") -> dict:
    """Evaluate ``model`` on ``samples``; write ``out`` (metrics.json) when given."""
    probs, labels = predict_samples(model, samples, options)
    metrics = {"source": source, **classification_metrics(probs, labels, class_labels)}
    skipped = len(samples) - metrics["n_images"]
    if skipped:
        metrics["unreadable"] = skipped
    log.info("%s: top-1 %.4f, top-3 %.4f, macro F1 %.4f on %d images", source, metrics["top1"], metrics["top3"],
             metrics["macro_f1"], metrics["n_images"])
    if out is not None:
        write_json(out, metrics)
    return metrics


def validate_run(run_dir: str | Path, data: str | Path | None = None, trust_model: bool = False) -> dict:
    """`nsl val RUN_DIR [--data DIR]`: the run's best model on its test split, or on every image of ``data``."""
    from nsl.dataset import load_for_training
    from nsl.errors import DataError
    from nsl.train.model import load_classifier
    from nsl.train.trainer import set_up_tensorflow

    run = RunDir.open(run_dir)
    options, labels = run.options(), run.labels()
    set_up_tensorflow(options.hparams)
    model = load_classifier(run.require_model(), trust_model)
    if data is None:
        samples, source = run.test_samples()
        source = source.split(" (")[0]
    else:
        index = load_for_training(Path(data).expanduser().resolve(), options.data.labels,
                                  options.data.max_bad_fraction)
        samples, source = index.samples, str(data)
        beyond = [s for s in samples if s.label >= len(labels)]
        if beyond:
            raise DataError(f"{data}: class {beyond[0].label} ({beyond[0].path}) is not one of the run's "
                            f"{len(labels)} classes; use a folder with the run's classes")
    return evaluate(model, samples, options, labels, source=source)
