"""The landmark side of a run (``models=landmarks|both``): its inputs when the run starts, and when the CNN (if any)
has finished, the landmark model, its test metrics and, with both models, the fusion weight chosen on the
validation split and every model's test figures (``fusion.json``; ``metrics.json`` gains ``by_model``).
"""

from __future__ import annotations

import logging

import numpy as np

from nsl.errors import DataError
from nsl.fileio import read_json, write_json
from nsl.fusion import choose_weight, fuse
from nsl.labels import Label
from nsl.options import Options
from nsl.rundir import RunDir

log = logging.getLogger(__name__)


def landmark_inputs(options: Options, split: dict, labels: list[Label]) -> dict | None:
    """The features of every split, or None when the run trains no landmark model (or, with models=both, cannot:
    too few hands; said in one warning, the CNN still trains)."""
    from nsl.train.hands import landmark_arrays, load_hands, too_few_hands

    if options.model.models == "cnn":
        return None
    arrays = landmark_arrays(split, load_hands(options), options.landmarks.layout)
    reason = too_few_hands(arrays, len(labels))
    if reason and options.model.models == "landmarks":
        raise DataError(f"{options.data.data}: cannot train the landmark model: {reason}")
    if reason:
        log.warning("landmark model skipped: %s; the run trains the CNN alone", reason)
        return None
    log.info("landmark features (%s): train/val/test %s hands; without a hand %s", options.landmarks.layout,
             "/".join(str(len(arrays[n]["labels"])) for n in ("train", "val", "test")),
             "/".join(str(arrays[n]["without_hand"]) for n in ("train", "val", "test")))
    return arrays


def _aligned(arrays: dict, name: str, samples: list, probs: np.ndarray) -> np.ndarray:
    """Landmark probabilities in the order of ``samples`` (NaN rows where no hand was found)."""
    out = np.full((len(samples), probs.shape[1] if len(probs) else 0), np.nan, np.float32)
    row_of = {str(p): i for i, p in enumerate(arrays[name]["paths"])}
    for i, sample in enumerate(samples):
        if sample.path in row_of:
            out[i] = probs[row_of[sample.path]]
    return out


def finish_landmarks(run: RunDir, options: Options, labels: list[Label], split: dict, cnn_model=None) -> dict:
    """Train and evaluate the landmark model; with a CNN, choose the fusion weight on val and measure all three on
    test. Returns the landmark (or fused) summary."""
    from nsl.train.hands import load_arrays
    from nsl.train.landmark_model import landmark_metrics, train_landmark_model

    arrays = load_arrays(run)
    model, history = train_landmark_model(options.landmarks, arrays, len(labels), options.hparams.seed, run)
    if cnn_model is None:  # a landmark-only run: its history is the run's
        run.write_history(history)
    else:
        write_json(run.landmark_history_file, history)
    metrics = landmark_metrics(model, arrays, labels)
    write_json(run.landmark_metrics_file, metrics)
    log.info("landmark model, test: top-1 %.4f on %d images with a hand (%d without)", metrics["top1"],
             metrics["n_images"], metrics["without_hand"])
    if cnn_model is None:
        return metrics
    return _fuse(run, options, labels, split, cnn_model, model, arrays)


def _fuse(run, options, labels, split, cnn_model, landmark_model, arrays) -> dict:
    from nsl.train.evaluate import classification_metrics, predict_samples
    from nsl.train.landmark_model import predict

    figures = {}
    for name in ("val", "test"):
        samples = split[name]
        cnn, truth = predict_samples(cnn_model, samples, options)
        if len(truth) != len(samples):
            raise DataError(f"{name} split: {len(samples) - len(truth)} image(s) could not be read for fusion")
        lm = _aligned(arrays, name, samples, predict(landmark_model, arrays[name]["features"]))
        figures[name] = (cnn, lm, truth)
    weight, grid = choose_weight(*figures["val"])
    cnn, lm, truth = figures["test"]
    has_hand = ~np.isnan(lm).any(axis=1)
    by_model = {"cnn": classification_metrics(cnn, truth, labels),
                "fused": classification_metrics(fuse(cnn, lm, weight), truth, labels)}
    by_model["landmarks"] = classification_metrics(lm[has_hand], truth[has_hand], labels)
    summary = {"rule": "log_linear", "weight": weight, "chosen_on": "val split", "val_grid": grid,
               "test": {k: {"top1": v["top1"], "n_images": v["n_images"]} for k, v in by_model.items()},
               "test_hand_found": float(has_hand.mean()) if len(has_hand) else 0.0}
    write_json(run.fusion_file, summary)
    metrics = read_json(run.metrics_file)
    metrics["by_model"] = summary["test"]
    write_json(run.metrics_file, metrics)
    log.info("fusion: landmark weight %.2f (chosen on val); test top-1 cnn %.4f, landmarks %.4f (images with a "
             "hand), fused %.4f", weight, by_model["cnn"]["top1"], by_model["landmarks"]["top1"],
             by_model["fused"]["top1"])
    return summary
