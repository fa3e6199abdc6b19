"""The ``training`` section of ``nsl bench`` (train environment), and what the ``sweep`` section shares with it::

    python -m nsl.bench.training --out training.json [--data DIR] [--weights PATH|imagenet|none] [--imgsz 224] [--quick]

The real ``tf.data`` training pipeline of nsl.train.pipeline (decode with the device's own crop function, cache,
shuffle, augmentation) iterated alone, first epoch (files decoded) and cached epochs; then training steps of the
classifier with the backbone frozen (head only) and unfrozen (all layers) on that same pipeline, so the notes can
say which one limits training. Every figure is the median over repeats after warm-up. The section JSON is
described in docs/ARCHITECTURE.md ("Benchmarks").

Data: ``--data``, else ``$NSL_REAL_DATA/asl_36``; weights: ``--weights``, else
``$NSL_WEIGHTS/mobilenet_v2_1.0_224_no_top.h5`` when present (not with ``--quick``), else ``none``.

Every use of nsl.config and nsl.train is in ``base_options``, ``settings``, ``load_split``, ``model_and_dataset``,
``with_decoder``, ``time_pipeline`` and ``time_training`` (nothing else here reads the configuration).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

from nsl.bench.section import positive, run_section, section, section_parser, table
from nsl.env import prepare_tensorflow
from nsl.errors import NslError
from nsl.stats import median

log = logging.getLogger(__name__)

DATA_SUBFOLDER = "asl_36"                            # under $NSL_REAL_DATA
WEIGHTS_FILE = "mobilenet_v2_1.0_224_no_top.h5"      # under $NSL_WEIGHTS
PACKAGES = ("tensorflow", "tf_keras", "numpy")
CACHED_IMAGES = 512  # images per timed cached-pipeline measurement (whole passes)
QUICK = {"imgsz": 48, "alpha": 0.35, "batch": 8, "steps": 3}  # --quick: a smoke run on tiny images


def train_parser(name: str, description: str) -> argparse.ArgumentParser:
    """The options of both training sections: the data, the weights, the labels and the batch size."""
    parser = section_parser(name, description)
    parser.add_argument("--data", help=f"labelled image folder (default $NSL_REAL_DATA/{DATA_SUBFOLDER})")
    parser.add_argument("--weights", help="backbone weights: a Keras no-top file, imagenet or none "
                                          f"(default $NSL_WEIGHTS/{WEIGHTS_FILE} when present, else none)")
    parser.add_argument("--labels", default="auto", help="nsl36 | auto (folder names, default) | labels CSV")
    parser.add_argument("--batch", type=int, help="batch size (default 32; --quick 8)")
    return parser


def parse_args(argv):
    parser = train_parser("training", "input pipeline images/s alone, and training images/s with the backbone "
                                      "frozen/unfrozen")
    parser.add_argument("--imgsz", type=int, help="input size (default 224; --quick 48)")
    parser.add_argument("--steps", type=int, help="timed steps per mode (default 8; --quick 3)")
    parser.add_argument("--mixed-precision", default="auto", choices=("auto", "on", "off"),
                        help="dtype policy as nsl train's mixed_precision (default auto: mixed_float16 on a GPU)")
    parser.add_argument("--decoders", default="tensorflow,python",
                        help="first-epoch pipeline figures for these decoders (data.decode), the first one used for "
                             "everything else (default tensorflow,python: before and after issue 13, same run)")
    return parser.parse_args(argv)


def data_and_weights(args) -> tuple[Path, str]:
    """The data folder and the weights setting, checked (one-line errors)."""
    if args.data:
        data = Path(args.data).expanduser()
    elif os.environ.get("NSL_REAL_DATA"):
        data = Path(os.environ["NSL_REAL_DATA"]).expanduser() / DATA_SUBFOLDER
    else:
        raise NslError("no data: pass --data DIR (a labelled image folder) or set NSL_REAL_DATA to the folder "
                       f"holding {DATA_SUBFOLDER}/")
    if not data.is_dir():
        hint = "" if args.data else f" (the default $NSL_REAL_DATA/{DATA_SUBFOLDER} is absent: pass --data DIR)"
        raise NslError(f"--data {data}: no such folder{hint}")
    weights = args.weights
    if weights is None:
        shared = Path(os.environ["NSL_WEIGHTS"]).expanduser() / WEIGHTS_FILE if os.environ.get("NSL_WEIGHTS") else None
        weights = str(shared) if shared is not None and shared.is_file() and not args.quick else "none"
    elif weights not in ("imagenet", "none") and not Path(weights).is_file():
        raise NslError(f"--weights {weights}: no such file (a Keras no-top weights file, imagenet or none)")
    return data.resolve(), weights


# --- every call into nsl.config and nsl.train ------------------------------------------------------------------

def base_options(args, data: Path, weights: str, imgsz: int, **extra):
    """The run's resolved configuration (nsl.config.resolve) for ``data``/``weights``/``imgsz`` and ``extra``."""
    from nsl.config import resolve

    updates = {"data": str(data), "weights": weights, "labels": args.labels, "imgsz": imgsz,
               "batch": positive(args.batch, 32, QUICK["batch"], args.quick, "batch"), "tensorboard": False}
    if args.quick:
        updates["alpha"] = QUICK["alpha"]
    return resolve(overrides={**updates, **extra})


def settings(options) -> dict:
    """What the benchmarks report of the options, as plain values (all they read of them)."""
    from nsl.config import get

    plain = {key: get(options, key) for key in ("imgsz", "batch", "alpha", "backbone", "weights", "data", "strategy",
                                                "steps_per_epoch")}
    return {**plain, "phase_epochs": [phase.epochs for phase in options.hparams.phase_plan()],
            "freeze_bn": options.model.frozen_bn}


def load_split(options) -> tuple[list, dict, dict]:
    """TensorFlow set up and placed as for the run (strategy, dtype policy: nsl.train.distribute), then (labels,
    split) of its data and the run's environment record."""
    from nsl.train.distribute import Placement
    from nsl.train.run import load_data
    from nsl.train.trainer import set_up_tensorflow

    set_up_tensorflow(options.hparams)
    placement = Placement.make(options.hparams)
    labels, split = load_data(options)
    return labels, split, placement


def model_and_dataset(config, train: list, classes: int, placement):
    """The classifier of the run (under the run's strategy) and its repeating training dataset (global batch)."""
    from nsl.train.model import build_classifier
    from nsl.train.pipeline import make_dataset

    with placement.strategy.scope():
        model = build_classifier(config.model, classes)
    return model, make_dataset(train, config, training=True, repeat=True, batch=placement.global_batch)


def with_decoder(config, decoder: str):
    from nsl.config import updated

    return updated(config, {"decode": decoder})


def time_pipeline(samples, config, repeats: int, warmup: int) -> dict:
    """Images/s of the training pipeline alone: first epoch (decode) and cached epochs, medians of repeats."""
    import tensorflow as tf

    from nsl.train.pipeline import make_dataset

    first, cached, checks = [], [], []
    for index in range(warmup + repeats):
        start = time.perf_counter()
        dataset = make_dataset(samples, config, training=True)  # a new in-memory cache: decoding again
        checks.append(time.perf_counter() - start)  # the header pass choosing each file's decoder
        rates = []
        # the first pass decodes and fills the cache; the cached figure spans passes of >= CACHED_IMAGES images
        # so a small split's per-pass costs (iterator, shuffle buffer) do not dominate it
        for passes in (1, max(1, -(-CACHED_IMAGES // max(len(samples), 1)))):
            start = time.perf_counter()  # counted inside the graph: no Python per batch, as when fit() consumes it
            count = int(dataset.repeat(passes).reduce(0, lambda total, batch: total + tf.shape(batch[0])[0]))
            rates.append(images_per_second(count, time.perf_counter() - start))
        if index >= warmup:
            first.append(rates[0])
            cached.append(rates[1])
    return {"first_epoch": first, "cached": cached, "images_per_epoch": len(samples), "decoder": config.data.decode,
            "setup_s": checks}


def time_training(model, dataset, config, trainable: str, steps: int, warmup: int, placement) -> dict:
    """Images/s of training steps with ``trainable`` ('none': backbone frozen, 'all': unfrozen)."""
    from nsl.options import Phase
    from nsl.train.phases import apply_phase
    from nsl.train.trainer import compile_for_phase

    params = apply_phase(model, Phase(trainable, 1, 1e-4, trainable), config.model.frozen_bn)
    with placement.strategy.scope():
        compile_for_phase(model, 1e-4)
    timer = _StepTimer()
    model.fit(dataset, epochs=1, steps_per_epoch=warmup + steps, callbacks=[timer.callback], verbose=0)
    batch = placement.global_batch
    rates = [batch / s for s in timer.step_seconds()[warmup:]]
    return {"images_per_s": rates, "trainable_params": int(params)}

# ---------------------------------------------------------------------------------------------------------------


def images_per_second(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("nan")


class _StepTimer:
    """Wall time of every training step (batch end to batch end, so waiting for data counts)."""

    def __init__(self):
        import tf_keras as keras

        timer = self

        class Callback(keras.callbacks.Callback):
            def on_train_batch_begin(self, batch, logs=None):
                if batch == 0:
                    timer.stamps.append(time.perf_counter())

            def on_train_batch_end(self, batch, logs=None):
                timer.stamps.append(time.perf_counter())

        self.stamps: list[float] = []
        self.callback = Callback()

    def step_seconds(self) -> list[float]:
        return [b - a for a, b in zip(self.stamps, self.stamps[1:])]


def training_section(args) -> dict:
    """The ``training`` section: pipeline alone, then frozen and unfrozen training steps on it."""
    prepare_tensorflow()  # before anything imports TensorFlow
    data, weights = data_and_weights(args)
    imgsz = positive(args.imgsz, 224, QUICK["imgsz"], args.quick, "imgsz", minimum=32)
    steps = positive(args.steps, 8, QUICK["steps"], args.quick, "steps")
    repeats = positive(args.repeats, 3, 2, args.quick, "repeats")
    warmup = positive(args.warmup, 2, 1, args.quick, "warmup")
    decoders = [d.strip() for d in args.decoders.split(",") if d.strip()]
    if not decoders or any(d not in ("tensorflow", "python") for d in decoders):
        raise NslError(f"--decoders {args.decoders}: expected tensorflow, python or both, comma-separated")
    config = base_options(args, data, weights, imgsz, mixed_precision=args.mixed_precision, decode=decoders[0])
    labels, split, placement = load_split(config)
    environment = placement.record(config.hparams)
    train, plain = split["train"], settings(config)
    log.info("training bench: %s, %d training images, %d px, batch %d, weights %s, %s, %s", data, len(train), imgsz,
             plain["batch"], weights, environment["dtype_policy"], environment["strategy"])
    pipelines = {d: time_pipeline(train, with_decoder(config, d), repeats, min(warmup, 1)) for d in decoders}
    model, dataset = model_and_dataset(config, train, len(labels), placement)
    modes = {name: time_training(model, dataset, config, trainable, steps, warmup, placement)
             for name, trainable in (("frozen", "none"), ("unfrozen", "all"))}
    result = render_training(plain, data, weights, len(labels), pipelines[decoders[0]], modes, steps, warmup,
                             repeats, environment)
    for decoder in decoders[1:]:
        other = pipelines[decoder]
        result["tables"][0]["rows"].append([f"input pipeline, first epoch, decode={decoder}",
                                            round(median(other["first_epoch"]), 1), "-"])
        result["raw"][f"pipeline_{decoder}"] = other
        result["notes"].append(f"The first pipeline rows use decode={decoders[0]}; the decode={decoder} row is the "
                               "same pipeline with that decoder, measured in this run (same files, same cores).")
    return result


def render_training(plain, data, weights, classes, pipeline, modes, steps, warmup, repeats,
                    environment=None) -> dict:
    first, cached = median(pipeline["first_epoch"]), median(pipeline["cached"])
    frozen, unfrozen = median(modes["frozen"]["images_per_s"]), median(modes["unfrozen"]["images_per_s"])
    what = (f"MobileNetV2 {plain['alpha']} at {plain['imgsz']} px, batch {plain['batch']}, {classes} classes, "
            f"{pipeline['images_per_epoch']} training images of {data.name}")
    rows = [["input pipeline, first epoch (read + prepare + augment)", round(first, 1), "-"],
            ["input pipeline, cached epochs (augment)", round(cached, 1), "-"],
            ["training, backbone frozen (head only)", round(frozen, 1), modes["frozen"]["trainable_params"]],
            ["training, backbone unfrozen (all layers)", round(unfrozen, 1), modes["unfrozen"]["trainable_params"]]]
    bn_state = ("kept frozen in inference mode (freeze_bn auto, pretrained weights)" if plain["freeze_bn"]
                else "training too (freeze_bn auto, random weights)")
    notes = [f"{what}; weights {weights}.",
             f"Medians: pipeline over {repeats} passes (each a fresh dataset: decode, then a cached pass); training "
             f"over {steps} steps per mode after {warmup} warm-up steps (tracing).",
             f"Unfrozen: every layer trainable, BatchNorm {bn_state}, as nsl train does with these "
             "weights. Frozen: the head only.",
             bottleneck_note(first, cached, frozen, unfrozen) + " When training, the pipeline and the model share "
             "the same cores, so each rate here is an upper bound for that stage."]
    raw = {"config": {k: plain[k] for k in ("imgsz", "batch", "alpha", "backbone", "weights", "data")},
           "pipeline": pipeline, "training": modes, "environment": environment}
    if environment:
        notes.insert(1, f"Dtype policy {environment['dtype_policy']}, {environment['strategy']} with "
                        f"{environment['replicas']} replica(s), global batch {environment['global_batch']}.")
    return section("training", "Training throughput", [table(what, ["what", "images/s", "trainable params"], rows)],
                   notes, raw, packages=PACKAGES)


def bottleneck_note(first: float, cached: float, frozen: float, unfrozen: float) -> str:
    """Which stage limits training, from the measured rates (both share the same cores when training)."""
    parts = []
    for name, rate in (("frozen", frozen), ("unfrozen", unfrozen)):
        if cached < rate:
            parts.append(f"with the backbone {name} the input pipeline is the bottleneck even when cached "
                         f"({cached:.0f} < {rate:.0f} images/s)")
        elif first < rate:
            parts.append(f"with the backbone {name} the first epoch is pipeline-bound ({first:.0f} < {rate:.0f} "
                         f"images/s), later epochs model-bound (cache {cached / rate:.1f}x faster)")
        else:
            parts.append(f"with the backbone {name} the model is the bottleneck (the pipeline feeds "
                         f"{first / rate:.1f}x its rate uncached, {cached / rate:.1f}x cached)")
    return "Bottleneck: " + "; ".join(parts) + "."


def main(argv=None) -> int:
    return run_section("training", parse_args, training_section, argv)


if __name__ == "__main__":
    sys.exit(main())
