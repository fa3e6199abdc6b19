"""The validation gate: every file through the runtime the device uses, on labelled images.

Figures per file: top-1, top-3, agreement of top-1 with a reference (the Keras model at export; the bundle's
float file of the same format in ``nsl val BUNDLE``), the largest probability difference from it, size and
single-image latency (batch 1, one thread and all threads). An int8 file whose top-1 is more than
``max_drop`` points below the float model fails the gate.

TF-free (numpy, OpenCV and the runtimes): ``nsl val BUNDLE --data DIR`` runs this module in the edge env.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np

from nsl.edge.classifier import open_classifier
from nsl.errors import NslError

log = logging.getLogger(__name__)

BATCH = 32
LATENCY_RUNS = 20


class GateError(NslError):
    """An int8 file lost more accuracy than allowed."""


def topk_accuracy(probs: np.ndarray, labels: np.ndarray, k: int) -> float:
    k = min(k, probs.shape[1])
    top = np.argsort(-probs, axis=1)[:, :k]
    return float(np.mean(np.any(top == labels[:, None], axis=1)))


def predict_all(classifier, images: np.ndarray, batch: int = BATCH) -> np.ndarray:
    return np.concatenate([classifier.predict(images[i:i + batch]) for i in range(0, len(images), batch)])


def latency_ms(path: Path, image: np.ndarray, threads: int, runs: int = LATENCY_RUNS) -> float:
    """Median wall time of one single-image call (after two warm-up calls), in milliseconds."""
    classifier = open_classifier(path, threads)
    batch = image[None]
    for _ in range(2):
        classifier.predict(batch)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        classifier.predict(batch)
        times.append(time.perf_counter() - start)
    return round(float(np.median(times)) * 1000, 3)


def probability_metrics(probs: np.ndarray, labels: np.ndarray, reference: np.ndarray | None) -> dict:
    """top1, top3, and against ``reference`` probabilities: top-1 agreement and largest difference."""
    metrics = {"top1": topk_accuracy(probs, labels, 1), "top3": topk_accuracy(probs, labels, 3),
               "agreement": None, "max_prob_diff": None, "n_images": int(len(labels))}
    if reference is not None:
        metrics["agreement"] = float(np.mean(probs.argmax(1) == reference.argmax(1)))
        metrics["max_prob_diff"] = float(np.max(np.abs(probs - reference)))
    return metrics


def evaluate_file(path: Path, images: np.ndarray, labels: np.ndarray, reference: np.ndarray | None = None,
                  latency_runs: int = LATENCY_RUNS) -> tuple[dict, np.ndarray]:
    """(metrics, probabilities) of one model file on ``images`` through its own runtime."""
    probs = predict_all(open_classifier(path), images)
    metrics = probability_metrics(probs, labels, reference)
    metrics["size_bytes"] = path.stat().st_size
    metrics["latency_ms_1thread"] = latency_ms(path, images[0], 1, latency_runs)
    metrics["latency_ms_all"] = latency_ms(path, images[0], os.cpu_count() or 1, latency_runs)
    log.info("%-24s top1 %.4f  top3 %.4f  agreement %s  %.1f KB  %.2f / %.2f ms", path.name, metrics["top1"],
             metrics["top3"], _fmt(metrics["agreement"]), metrics["size_bytes"] / 1024,
             metrics["latency_ms_1thread"], metrics["latency_ms_all"])
    return metrics, probs


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def gate_failures(files: dict[str, dict], float_top1: dict[str, float], max_drop: float) -> list[str]:
    """One line per int8 file whose top-1 is more than ``max_drop`` points below its float reference."""
    failures = []
    for name, entry in files.items():
        reference = float_top1.get(entry["format"])
        if entry["precision"] != "int8" or reference is None:
            continue
        drop = (reference - entry["metrics"]["top1"]) * 100
        if drop > max_drop:
            failures.append(f"{name}: top-1 {entry['metrics']['top1'] * 100:.2f}% is {drop:.2f} points below "
                            f"float {reference * 100:.2f}% (allowed {max_drop:g})")
    return failures


def check_gate(files: dict[str, dict], float_top1: dict[str, float], max_drop: float, allow_drop: bool) -> list[str]:
    """Raise GateError naming the files and figures unless ``allow_drop``; returns the failures either way."""
    failures = gate_failures(files, float_top1, max_drop)
    for line in failures:
        log.warning("accuracy gate: %s", line)
    if failures and not allow_drop:
        raise GateError(f"accuracy gate failed: {'; '.join(failures)} (retrain, try --qat EPOCHS or a larger "
                        f"--calib, or pass --allow-drop to accept it)")
    return failures


def _source_test_split(bundle) -> list:
    """Without --data: the test split of the run the bundle was exported from, when it is on this machine."""
    from nsl.rundir import RunDir

    run = RunDir(Path(bundle.metadata.get("source_run", "")))
    if not run.split_file.is_file():
        raise NslError(f"{bundle.path}: pass --data DIR (a labelled image folder); the source run's split "
                       f"{run.split_file} is not on this machine")
    return run.split()["test"]


def validate_bundle(path: str | Path, data: str | Path | None = None) -> dict[str, dict]:
    """Every CNN file of a bundle on a labelled folder (``data``, its images as ready crops), or on the source run's
    test split: each file's metadata entry with the measured ``metrics``; int8 files are compared with the float
    file of their format. (The landmark files are measured through the device path: nsl.edge.evaluate.)"""
    from nsl.edge.bundle import open_bundle, open_checked
    from nsl.export.images import load_images, samples_for_labels

    bundle = open_bundle(Path(path))
    for name in bundle.files:  # every file's outputs must be the bundle's labels, or its figures mean nothing
        open_checked(bundle, name, threads=1)
    samples = samples_for_labels(data, bundle.labels) if data else _source_test_split(bundle)
    images, labels = load_images(samples, bundle.crop, what="validation images")
    results: dict[str, dict] = {}
    references: dict[str, np.ndarray] = {}
    crops = {name: entry for name, entry in bundle.files.items() if entry.get("model", "cnn") == "cnn"}
    for name, entry in sorted(crops.items(), key=lambda item: item[1]["precision"] != "fp32"):
        metrics, probs = evaluate_file(bundle.path / name, images, labels, references.get(entry["format"]))
        if entry["precision"] == "fp32":
            references[entry["format"]] = probs
        results[name] = {**entry, "metrics": metrics}
    return results


def float_top1(results: dict[str, dict]) -> dict[str, float]:
    """Top-1 of each format's float file: the reference of the gate in ``nsl val BUNDLE``."""
    return {e["format"]: e["metrics"]["top1"] for e in results.values() if e["precision"] == "fp32"}
