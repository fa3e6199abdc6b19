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


def landmark_inputs(options: Options, split: dict, labels: list[Label], min_hands: int | None = None) -> dict | None:
    """The features of every split, or None when the run trains no landmark model (or, with models=both, cannot:
    too few hands; said in one warning, the CNN still trains). ``min_hands``: training hands a class needs (default
    MIN_HANDS_PER_CLASS; a fusion fold takes 1, since it only answers, and is never exported)."""
    from nsl.train.hands import MIN_HANDS_PER_CLASS, landmark_arrays, load_hands, too_few_hands

    if options.model.models == "cnn":
        return None
    arrays = landmark_arrays(split, load_hands(options), options.landmarks.layout)
    reason = too_few_hands(arrays, len(labels), MIN_HANDS_PER_CLASS if min_hands is None else min_hands)
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


def finish_landmarks(run: RunDir, options: Options, labels: list[Label], split: dict, cnn_model=None,
                     train_fold=None) -> dict:
    """Train and evaluate the landmark model; with a CNN, choose the fusion weight on val and measure all three on
    test (or, with landmarks.fusion_on=groups, on the answers of fold runs made by ``train_fold``: see
    nsl.train.fusion_folds). Returns the landmark (or fused) summary."""
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
    return _fuse(run, options, labels, split, cnn_model, model, arrays, train_fold)


def _fuse(run, options, labels, split, cnn_model, landmark_model, arrays, train_fold) -> dict:
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
    _save_inputs(run, figures)
    val_weight, val_grid = choose_weight(*figures["val"])
    weight, grid, chosen_on = val_weight, val_grid, "val split"
    if options.landmarks.fusion_on == "groups" and train_fold is not None:
        from nsl.train.fusion_folds import out_of_fold

        folds = out_of_fold(run, options, labels, split, train_fold)
        if folds is not None:
            (weight, grid), chosen_on = choose_weight(*folds[0]), folds[1]
    cnn, lm, truth = figures["test"]
    has_hand = ~np.isnan(lm).any(axis=1)
    by_model = {"cnn": classification_metrics(cnn, truth, labels),
                "fused": classification_metrics(fuse(cnn, lm, weight), truth, labels)}
    by_model["landmarks"] = classification_metrics(lm[has_hand], truth[has_hand], labels)
    summary = {"rule": "log_linear", "weight": weight, "chosen_on": chosen_on, "val_grid": grid,
               "test": {k: {"top1": v["top1"], "n_images": v["n_images"]} for k, v in by_model.items()},
               "test_hand_found": float(has_hand.mean()) if len(has_hand) else 0.0}
    if chosen_on != "val split":  # what the validation split would have chosen, measured on the same test images
        summary["val_split_choice"] = {"weight": val_weight, "val_grid": val_grid, "test_top1": classification_metrics(
            fuse(cnn, lm, val_weight), truth, labels)["top1"]}
    write_json(run.fusion_file, summary)
    metrics = read_json(run.metrics_file)
    metrics["by_model"] = summary["test"]
    write_json(run.metrics_file, metrics)
    log.info("fusion: landmark weight %.2f (chosen on the %s); test top-1 cnn %.4f, landmarks %.4f (images with a "
             "hand), fused %.4f", weight, chosen_on, by_model["cnn"]["top1"], by_model["landmarks"]["top1"],
             by_model["fused"]["top1"])
    return summary


def _save_inputs(run: RunDir, figures: dict) -> None:
    """Each model's probabilities (NaN rows: no hand) and the truth on val and test, for the fusion folds and for
    anyone who wants to try another rule on the same answers."""
    from nsl.fileio import atomic_path

    with atomic_path(run.fusion_inputs_file) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, **{f"{name}_{key}": value for name, (cnn, lm, truth) in figures.items()
                                       for key, value in (("cnn", cnn), ("landmarks", lm), ("truth", truth))})
