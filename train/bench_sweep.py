"""The ``sweep`` section of ``nsl bench``: the classifier's input size against accuracy, latency and file size.

For each size: train the recipe (progressive, the default 3+3+4 epochs or ``--epochs`` per phase) on the same
labelled folder into ``CACHE/<key>_<size>px`` (key: data, weights, recipe), export it with ``--int8``
(export.exporter, TFLite only), then measure the int8 TFLite file's single-image latency now, at one thread and
all threads (median of repeats). Finished runs and bundles are reused, so a rerun costs only the latency runs.
Accuracy is the test split's (the export's own check); a small test split makes it noisy, and the notes say so.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np

from nsl.bench_section import median, positive, section, table
from nsl.env import prepare_tensorflow
from nsl.errors import NslError
from nsl.fileio import read_json

log = logging.getLogger(__name__)

DEFAULT_SIZES = (96, 128, 160, 224)
QUICK_SIZES = (32, 48)
QUICK_RECIPE = {"strategy": "single", "epochs": 1, "steps_per_epoch": 2, "alpha": 0.35, "patience": 0}
INT8 = "model_int8.tflite"
FP32 = "model_fp32.tflite"


def parse_sizes(text: str | None, quick: bool) -> list[int]:
    if text is None:
        return list(QUICK_SIZES if quick else DEFAULT_SIZES)
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        sizes = []
    if not sizes or any(size < 32 for size in sizes):
        raise NslError(f"--sizes {text!r}: expected comma-separated input sizes of 32 px or more, e.g. 96,128,160")
    return list(dict.fromkeys(sizes))


def cache_key(config: dict) -> str:
    """Changes with what makes a run: data, weights, labels, recipe (not the size: that is in the folder name)."""
    keys = ("data", "weights", "labels", "backbone", "alpha", "batch", "phases", "epochs", "steps_per_epoch",
            "seed", "augment", "color_mode", "split_ratios", "patience")
    text = json.dumps({key: config.get(key) for key in keys}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def trained_run(config: dict, run_dir: Path) -> Path:
    """A finished run in ``run_dir``: reused, resumed when interrupted, else trained."""
    from nsl.train.run import resume_run, train_run

    if (run_dir / "metrics.json").is_file():
        log.info("sweep: reusing %s", run_dir)
        return run_dir
    if (run_dir / "checkpoints" / "state.json").is_file() and (run_dir / "checkpoints" / "last.keras").is_file():
        log.info("sweep: resuming %s", run_dir)
        return resume_run(run_dir)
    shutil.rmtree(run_dir, ignore_errors=True)
    log.info("sweep: training %s", run_dir)
    return train_run(config, run_dir)


def exported_bundle(run_dir: Path, train_images: int) -> dict:
    """The int8 bundle of a run (run_dir/bundle), exported when missing; returns its metadata."""
    from nsl.export.calibration import DEFAULT_CALIB
    from nsl.export.exporter import ExportOptions, run_export

    bundle = run_dir / "bundle"
    if not (bundle / "metadata.json").is_file():
        log.info("sweep: exporting %s", run_dir)
        run_export(ExportOptions(path=str(run_dir), out=str(bundle), force=True, formats=("tflite",), int8=True,
                                 calib=min(DEFAULT_CALIB, train_images), allow_drop=True))
    return read_json(bundle / "metadata.json")


def latencies(path: Path, size: int, runs: int, repeats: int) -> dict:
    """Median single-image latency (ms) at 1 thread and all threads: each repeat a median of ``runs`` calls."""
    from nsl.export.verify import latency_ms

    image = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    threads = os.cpu_count() or 1
    one = [latency_ms(path, image, 1, runs) for _ in range(repeats)]
    every = [latency_ms(path, image, threads, runs) for _ in range(repeats)]
    return {"ms_1thread": one, "ms_all": every, "threads_all": threads}


def measure_size(base: dict, size: int, cache: Path, runs: int, repeats: int, train_images: int) -> dict:
    import tf_keras as keras

    config = {**base, "imgsz": size}
    run_dir = trained_run(config, cache / f"{cache_key(base)}_{size}px")
    keras.backend.clear_session()
    metadata = exported_bundle(run_dir, train_images)
    history = read_json(run_dir / "history.json")
    files = metadata["files"]
    row = {"imgsz": size, "run": str(run_dir), "epochs_run": len(history),
           "train_s": round(sum(entry["seconds"] for entry in history), 1),
           "keras_top1": metadata["keras_metrics"]["top1"], "int8_top1": files[INT8]["metrics"]["top1"],
           "int8_top3": files[INT8]["metrics"]["top3"], "test_images": files[INT8]["metrics"]["n_images"],
           "int8_size_bytes": files[INT8]["size_bytes"], "fp32_size_bytes": files[FP32]["size_bytes"],
           "int8_latency": latencies(run_dir / "bundle" / INT8, size, runs, repeats),
           "fp32_latency": latencies(run_dir / "bundle" / FP32, size, runs, repeats)}
    keras.backend.clear_session()
    return row


def sweep_section(args) -> dict:
    from nsl.train.bench import base_config, data_and_weights

    sizes = parse_sizes(args.sizes, args.quick)
    data, weights = data_and_weights(args)
    runs = positive(args.runs, 30, 5, args.quick, "runs")
    repeats = positive(args.repeats, 3, 2, args.quick, "repeats")
    extra = dict(QUICK_RECIPE) if args.quick else {}
    if args.epochs is not None:
        extra["epochs"] = positive(args.epochs, 1, 1, False, "epochs")
    base = base_config(args, data, weights, sizes[0], **extra)
    prepare_tensorflow()
    from nsl.train.run import load_data, set_up_tensorflow

    set_up_tensorflow(base)
    labels, split = load_data(base)  # checks the data before anything is trained
    cache = Path(args.cache).expanduser() if args.cache else Path(__file__).resolve().parents[1] / ".cache/bench/sweep"
    cache.mkdir(parents=True, exist_ok=True)
    rows = [measure_size(base, size, cache, runs, repeats, len(split["train"])) for size in sizes]
    return render_sweep(base, data, weights, len(labels), split, rows, runs, repeats)


def _ms(latency: dict, key: str) -> float:
    return round(median(latency[key]), 2)


def render_sweep(base, data, weights, classes, split, rows, runs, repeats) -> dict:
    threads = rows[0]["int8_latency"]["threads_all"]
    columns = ["input px", "Keras top-1", "int8 TFLite top-1", "int8 top-3", "int8 p50 ms (1 thread)",
               f"int8 p50 ms ({threads} threads)", "fp32 p50 ms (1 thread)", "int8 size KB", "epochs run",
               "train s"]
    body = [[r["imgsz"], round(r["keras_top1"], 3), round(r["int8_top1"], 3), round(r["int8_top3"], 3),
             _ms(r["int8_latency"], "ms_1thread"), _ms(r["int8_latency"], "ms_all"),
             _ms(r["fp32_latency"], "ms_1thread"), round(r["int8_size_bytes"] / 1024, 1), r["epochs_run"],
             r["train_s"]] for r in rows]
    from nsl.train.phases import phases_from_config

    recipe = (f"{base['strategy']} " + "+".join(str(p.epochs) for p in phases_from_config(base)) + " epochs"
              + (f" of {base['steps_per_epoch']} steps" if base.get("steps_per_epoch") else ""))
    n_test = rows[0]["test_images"]
    caption = (f"MobileNetV2 {base['alpha']} on {data.name} ({classes} classes), {recipe}, weights "
               f"{Path(weights).name if weights not in ('none', 'imagenet') else weights}")
    notes = [f"Data: {data} - train/val/test {len(split['train'])}/{len(split['val'])}/{len(split.get('test', []))} "
             f"images. Accuracy is on the {n_test} test images (one image = {1 / max(n_test, 1):.3f} of top-1): "
             "a small test split makes these accuracies noisy, so read differences of a few points as noise.",
             f"Latency: one image (batch 1) through ai-edge-litert, the median of {runs} calls after 2 warm-up "
             f"calls, then the median over {repeats} repeats, measured now on this machine; the runs and bundles "
             f"are cached under {Path(rows[0]['run']).parent} and reused by a rerun.",
             "Train seconds are the runs' own (when they were trained, possibly in an earlier bench run)."]
    raw = {"rows": rows, "recipe": recipe, "weights": weights, "data": str(data)}
    return section("sweep", "Input-size sweep (classifier)", [table(caption, columns, body)], notes, raw,
                   packages=("tensorflow", "ai-edge-litert"))
