"""The ``sweep`` section of ``nsl bench`` (train environment): the classifier's input size against accuracy,
latency and file size::

    python -m nsl.bench.sweep --out sweep.json [--data DIR] [--weights PATH|imagenet|none] [--sizes 96,128,160,224]
                              [--cache DIR] [--quick]

For each size: train the recipe (progressive, the authors' 3+3+4 epochs or ``--epochs`` in all) on the same
labelled folder into ``CACHE/<key>_<size>px`` (key: data, weights, recipe; ``CACHE`` is ``--cache``, else
``bench/sweep`` in the user cache: ``NSL_CACHE_DIR``, else ``$XDG_CACHE_HOME/nsl``, else ``~/.cache/nsl``), export
it with ``--int8`` (nsl.export.exporter, TFLite only, no QAT fallback), then measure the int8 TFLite file's
single-image latency now, at one thread and all threads (median of repeats). Finished runs and bundles are reused,
so a rerun costs only the latency runs. Accuracy is the test split's (the export's own check); a small test split
makes it noisy, and the notes say so. Agreement with the Keras model is the export's, on its gate images.
Data and weights default as in the ``training`` section (nsl.bench.training).

Every use of nsl.config, nsl.train and nsl.export (and of a run folder's layout) is in ``sized_options``,
``cache_key``, ``trained_run``, ``run_history``, ``exported_bundle`` and ``latencies`` here, and in nsl.bench.training's ``base_options``, ``settings`` and
``load_split``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
from pathlib import Path

import numpy as np

from nsl.bench.section import positive, run_section, section, table
from nsl.bench.training import base_options, data_and_weights, load_split, settings, train_parser
from nsl.env import prepare_tensorflow
from nsl.errors import NslError
from nsl.fileio import read_json, user_cache_dir
from nsl.stats import median

log = logging.getLogger(__name__)

DEFAULT_SIZES = (96, 128, 160, 224)
QUICK_SIZES = (32, 48)
QUICK_RECIPE = {"strategy": "single", "epochs": 1, "steps_per_epoch": 2, "alpha": 0.35, "patience": 0}
INT8 = "model_int8.tflite"
FP32 = "model_fp32.tflite"


def parse_args(argv):
    parser = train_parser("sweep", "a short training per input size, int8 TFLite accuracy, latency and size")
    parser.add_argument("--sizes", help="comma-separated input sizes (default 96,128,160,224)")
    parser.add_argument("--epochs", type=int, help="epochs of each run, split over the recipe's phases (default: "
                                                   "the recipe's 3+3+4)")
    parser.add_argument("--cache", help="folder of the runs and bundles, reused by a rerun "
                                        "(default bench/sweep in the user cache, NSL_CACHE_DIR or ~/.cache/nsl)")
    return parser.parse_args(argv)


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


# --- every call into nsl.config, nsl.train and nsl.export (besides nsl.bench.training's) --------------------------

def sized_options(base, size: int):
    """The options ``base`` at input size ``size``."""
    from nsl.config import updated

    return updated(base, {"imgsz": size})


def cache_key(options) -> str:
    """Changes with what makes a run: every option but the size (that is in the folder name) and the output."""
    from nsl.config import to_dict

    plain = {key: value for key, value in to_dict(options).items() if key not in ("imgsz", "project", "name")}
    return hashlib.sha256(json.dumps(plain, sort_keys=True, default=str).encode()).hexdigest()[:10]


def trained_run(options, run_dir: Path) -> Path:
    """A finished run in ``run_dir``: reused, resumed when interrupted, else trained (nsl.train.run.ensure_run)."""
    from nsl.rundir import RunDir
    from nsl.train.run import ensure_run

    run = RunDir(run_dir)
    log.info("sweep: %s %s", "reusing" if run.is_finished else "resuming" if run.can_resume else "training", run_dir)
    return ensure_run(options, run_dir)


def run_history(run_dir: Path) -> list[dict]:
    """The finished run's per-epoch history (each entry with its ``seconds``)."""
    from nsl.rundir import RunDir

    return RunDir(run_dir).history()


def exported_bundle(run_dir: Path) -> tuple[Path, dict]:
    """The int8 bundle of a run (run_dir/bundle), exported when missing -> (its folder, its metadata)."""
    from nsl.export.exporter import ExportOptions, run_export

    from nsl.rundir import RunDir

    bundle = RunDir(run_dir).default_bundle
    if not (bundle / "metadata.json").is_file():
        log.info("sweep: exporting %s", run_dir)
        run_export(ExportOptions(path=str(run_dir), out=str(bundle), force=True, formats=("tflite",), int8=True,
                                 qat_fallback=0, allow_drop=True))
    return bundle, read_json(bundle / "metadata.json")


def latencies(path: Path, size: int, runs: int, repeats: int) -> dict:
    """Median single-image latency (ms) at 1 thread and all threads: each repeat a median of ``runs`` calls."""
    from nsl.export.verify import latency_ms

    image = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    threads = os.cpu_count() or 1
    one = [latency_ms(path, image, 1, runs) for _ in range(repeats)]
    every = [latency_ms(path, image, threads, runs) for _ in range(repeats)]
    return {"ms_1thread": one, "ms_all": every, "threads_all": threads}

# ---------------------------------------------------------------------------------------------------------------


def measure_size(base, size: int, cache: Path, runs: int, repeats: int) -> dict:
    import tf_keras as keras

    run_dir = trained_run(sized_options(base, size), cache / f"{cache_key(base)}_{size}px")
    keras.backend.clear_session()
    bundle, metadata = exported_bundle(run_dir)
    history = run_history(run_dir)
    files = metadata["files"]
    row = {"imgsz": size, "run": str(run_dir), "epochs_run": len(history),
           "train_s": round(sum(entry["seconds"] for entry in history), 1),
           "keras_top1": metadata["keras_metrics"]["top1"], "int8_top1": files[INT8]["metrics"]["top1"],
           "int8_top3": files[INT8]["metrics"]["top3"], "test_images": files[INT8]["metrics"]["n_images"],
           "int8_agreement": files[INT8]["metrics"]["agreement"],
           "gate_images": (files[INT8]["metrics"].get("fidelity") or {}).get("n_images"),
           "int8_size_bytes": files[INT8]["size_bytes"], "fp32_size_bytes": files[FP32]["size_bytes"],
           "int8_latency": latencies(bundle / INT8, size, runs, repeats),
           "fp32_latency": latencies(bundle / FP32, size, runs, repeats)}
    keras.backend.clear_session()
    return row


def sweep_section(args) -> dict:
    prepare_tensorflow()  # before anything imports TensorFlow
    sizes = parse_sizes(args.sizes, args.quick)
    data, weights = data_and_weights(args)
    runs = positive(args.runs, 30, 5, args.quick, "runs")
    repeats = positive(args.repeats, 3, 2, args.quick, "repeats")
    extra = dict(QUICK_RECIPE) if args.quick else {"strategy": "progressive"}  # the recipe the sweep has measured
    if args.epochs is not None:
        extra["epochs"] = positive(args.epochs, 1, 1, False, "epochs")
    base = base_options(args, data, weights, sizes[0], **extra)
    labels, split, _ = load_split(base)  # checks the data before anything is trained
    cache = Path(args.cache).expanduser() if args.cache else user_cache_dir() / "bench" / "sweep"
    cache.mkdir(parents=True, exist_ok=True)
    rows = [measure_size(base, size, cache, runs, repeats) for size in sizes]
    return render_sweep(settings(base), data, weights, len(labels), split, rows, runs, repeats)


def _ms(latency: dict, key: str) -> float:
    return round(median(latency[key]), 2)


def render_sweep(plain, data, weights, classes, split, rows, runs, repeats) -> dict:
    threads = rows[0]["int8_latency"]["threads_all"]
    columns = ["input px", "Keras top-1", "int8 TFLite top-1", "int8 agreement with Keras", "int8 top-3",
               "int8 p50 ms (1 thread)",
               f"int8 p50 ms ({threads} threads)", "fp32 p50 ms (1 thread)", "int8 size KB", "epochs run",
               "train s"]
    body = [[r["imgsz"], round(r["keras_top1"], 3), round(r["int8_top1"], 3),
             None if r.get("int8_agreement") is None else round(r["int8_agreement"], 3), round(r["int8_top3"], 3),
             _ms(r["int8_latency"], "ms_1thread"), _ms(r["int8_latency"], "ms_all"),
             _ms(r["fp32_latency"], "ms_1thread"), round(r["int8_size_bytes"] / 1024, 1), r["epochs_run"],
             r["train_s"]] for r in rows]
    recipe = (f"{plain['strategy']} " + "+".join(map(str, plain["phase_epochs"])) + " epochs"
              + (f" of {plain['steps_per_epoch']} steps" if plain["steps_per_epoch"] else ""))
    n_test = rows[0]["test_images"]
    caption = (f"MobileNetV2 {plain['alpha']} on {data.name} ({classes} classes), {recipe}, weights "
               f"{Path(weights).name if weights not in ('none', 'imagenet') else weights}")
    notes = [f"Data: {data} - train/val/test {len(split['train'])}/{len(split['val'])}/{len(split.get('test', []))} "
             f"images. Accuracy is on the {n_test} test images (one image = {1 / max(n_test, 1):.3f} of top-1): "
             "a small test split makes these accuracies noisy, so read differences of a few points as noise. "
             f"Agreement (share of images whose int8 top-1 is the Keras model's) is on the export's "
             f"{rows[0].get('gate_images')} gate images (every image calibration did not use).",
             f"Latency: one image (batch 1) through ai-edge-litert, the median of {runs} calls after 2 warm-up "
             f"calls, then the median over {repeats} repeats, measured now on this machine; the runs and bundles "
             f"are cached under {Path(rows[0]['run']).parent} and reused by a rerun.",
             "Train seconds are the runs' own (when they were trained, possibly in an earlier bench run)."]
    raw = {"rows": rows, "recipe": recipe, "weights": weights, "data": str(data)}
    return section("sweep", "Input-size sweep (classifier)", [table(caption, columns, body)], notes, raw,
                   packages=("tensorflow", "ai-edge-litert"))


def main(argv=None) -> int:
    return run_section("sweep", parse_args, sweep_section, argv)


if __name__ == "__main__":
    sys.exit(main())
