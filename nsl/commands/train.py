"""`nsl train`, `nsl val` and `nsl compare`: parse, resolve and check the options, delegate (TensorFlow lazily).

Options are resolved (``nsl.config.resolve``) before the train environment is even checked, so a wrong value is a
one-line error in any environment and nothing is written."""

from __future__ import annotations

import json
from pathlib import Path

from nsl.errors import NslError
from nsl.env import require

FLAG_KEYS = {"data": "data", "weights": "weights", "strategy": "strategy", "project": "project", "name": "name",
             "split_by": "split"}


def _options_from_args(args):
    """defaults < --config FILE < key=value < flags, checked; needs a dataset."""
    from nsl.config import parse_overrides, resolve

    updates = parse_overrides(args.overrides)
    updates.update({key: getattr(args, flag) for flag, key in FLAG_KEYS.items()
                    if getattr(args, flag, None) is not None})
    options = resolve(args.config, updates)
    if not options.data.data:
        raise NslError("no dataset given: pass data=FOLDER or --data FOLDER (e.g. one made by 'nsl data synth')")
    return options


def _train(args) -> int:
    if args.resume and (args.overrides or args.config or args.data or args.ensure):
        raise NslError("--resume continues with the run's saved configuration; drop key=value, --config, --data "
                       "and --ensure")
    options = None if args.resume else _options_from_args(args)
    require("train", "train")
    from nsl import api

    if args.resume:
        run = api.resume(args.resume, trust_model=args.trust_model)
    else:
        target = Path(options.output.project) / options.output.name
        if args.ensure and (target / "metrics.json").is_file():
            print(f"reusing {target}")
        run = api.train_options(options, ensure=args.ensure, trust_model=args.trust_model)
        if run.path != target:  # the name was taken: say so where the next command is read
            print(f"note: {target} exists, so this run is {run.path} (exist_ok=true reuses a name)")
    print(f"run: {run.path}\nnext: nsl export {run.path} --int8")
    return 0


def _val_device_path(args) -> int:
    """``nsl val BUNDLE --data DIR``: every photo through the device path (hand found, cropped, each model, fusion)."""
    require("edge", "val BUNDLE --data DIR (the device path needs MediaPipe; --no-detect for ready crops)")
    from nsl.edge.bundle import open_bundle, open_checked
    from nsl.edge.evaluate import device_path_metrics, format_device_path
    from nsl.edge.hand_model import resolve
    from nsl.export.images import samples_for_labels

    bundle = open_bundle(args.run_dir)
    for name in bundle.files:  # every file's outputs must be the bundle's labels before anything is measured
        open_checked(bundle, name, threads=1)
    metrics = device_path_metrics(bundle, samples_for_labels(args.data, bundle.labels), resolve(args.hand_model),
                                  args.backend, args.precision)
    print(json.dumps(metrics, indent=2, ensure_ascii=False) if args.json else format_device_path(metrics))
    return 0


def _val_bundle(args) -> int:
    """``nsl val BUNDLE``: every file of a bundle on labelled images (TF-free: runs on a device too)."""
    from nsl.edge.bundle import open_bundle
    from nsl.export.report import metrics_table
    from nsl.export.verify import check_gate, recorded_gate, validate_bundle

    gated = any(value is not None for value in (args.max_drop, args.min_agreement, args.max_distance))
    if args.data and not args.no_detect and not gated:
        return _val_device_path(args)

    gate = None
    if gated:  # the export's gate on request (int8 against the float file); a report otherwise
        gate = recorded_gate(open_bundle(args.run_dir).metadata, max_drop=args.max_drop,
                             min_agreement=args.min_agreement, max_distance=args.max_distance)
    results = validate_bundle(args.run_dir, args.data)
    print(json.dumps(results, indent=2, ensure_ascii=False) if args.json else metrics_table(results))
    if gate is not None:
        check_gate(results, gate, allow_drop=False)
    return 0


def _val(args) -> int:
    if (Path(args.run_dir) / "metadata.json").is_file():
        return _val_bundle(args)
    if args.max_drop is not None or args.min_agreement is not None or args.max_distance is not None:
        raise NslError("--max-drop gates the int8 files of a model bundle; pass a bundle folder (RUN_DIR/bundle)")
    require("train", "val")
    from nsl.train.evaluate import validate_run

    metrics = validate_run(args.run_dir, args.data, args.trust_model)
    if args.json:
        print(json.dumps(metrics, indent=2, ensure_ascii=False))
    else:
        print(f"{metrics['source']}: {metrics['n_images']} images, top-1 {metrics['top1']:.4f}, "
              f"top-3 {metrics['top3']:.4f}, macro F1 {metrics['macro_f1']:.4f}")
    return 0


def _compare(args) -> int:
    options = _options_from_args(args)
    require("train", "compare")
    from nsl.train.compare import compare_strategies, comparison_markdown

    result = compare_strategies(options, Path(args.out))
    print(comparison_markdown(result))
    return 0


def _add_config_arguments(parser, data_help: str) -> None:
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="override any key of nsl/defaults.yaml, e.g. imgsz=96 epochs=2 augment.rotation=3")
    parser.add_argument("--data", help=data_help)
    parser.add_argument("--config", metavar="FILE", help="YAML file of overrides (below key=value and flags)")
    parser.add_argument("--weights", help="imagenet | none | PATH of a Keras weights file of the backbone (offline)")
    parser.add_argument("--split-by", dest="split_by", choices=("stratified", "subset", "grouped"),
                        help="how to split: stratified (default), subset (hold out a background), grouped")


def _add_trust_argument(parser) -> None:
    parser.add_argument("--trust-model", action="store_true",
                        help="load the run's model files even when they are not the native .keras format or need "
                             "code to load (a Lambda layer): that code runs, so only for a run you made or trust")


def add_commands(commands) -> None:
    """Register `nsl train`, `nsl val`, `nsl compare`."""
    train = commands.add_parser("train", help="train a classifier on a folder of sign images -> RUN_DIR",
                                epilog="e.g. nsl train data=data/synth imgsz=96 weights=none")
    _add_config_arguments(train, "dataset folder (same as data=...)")
    train.add_argument("--project", help="folder of runs (default runs)")
    train.add_argument("--name", help="run name (default exp; a number is appended when taken, unless exist_ok=true)")
    train.add_argument("--strategy", choices=("progressive", "single"), help="phases of config, or one phase")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run where it stopped")
    train.add_argument("--ensure", action="store_true",
                       help="make sure PROJECT/NAME is a finished run of these options: reuse it when finished, "
                            "resume it when interrupted, train it otherwise (scripts that may be rerun)")
    _add_trust_argument(train)
    train.set_defaults(func=_train)

    val = commands.add_parser("val", help="evaluate a run's best model (or a model bundle) on its test split")
    val.add_argument("run_dir", metavar="RUN_DIR", help="a run directory of 'nsl train' or a model bundle")
    val.add_argument("--data", help="evaluate on all images of this folder instead of the run's test split")
    val.add_argument("--json", action="store_true", help="print the full metrics as JSON")
    val.add_argument("--no-detect", action="store_true",
                     help="a bundle with --data: the images are ready crops, measure every file as it is (default: "
                          "the device path, MediaPipe finds and crops the hand, each model and the fusion)")
    val.add_argument("--hand-model", default=None, metavar="PATH", help="hand_landmarker.task for the device path")
    val.add_argument("--backend", choices=("tflite", "onnx"), default="tflite", help="device path runtime")
    val.add_argument("--precision", choices=("fp32", "fp16", "int8"), default=None,
                     help="device path: the bundle's file of this precision (default: its default file)")
    val.add_argument("--max-drop", type=float, default=None, metavar="POINTS",
                     help="a bundle: apply the export's int8 gate, with this top-1 drop allowed: fail (exit 2) when "
                          "an int8 file's top-1 is more than POINTS below its float file's beyond its 95%% interval, "
                          "or it agrees with it or stays as close to it less than the bundle's export required "
                          "(default: report only)")
    val.add_argument("--min-agreement", type=float, default=None, metavar="SHARE",
                     help="a bundle: apply the export's int8 gate with this top-1 agreement required (default: the "
                          "bundle's, from its export)")
    val.add_argument("--max-distance", type=float, default=None, metavar="TV",
                     help="a bundle: apply the export's int8 gate with this mean probability distance allowed "
                          "(default: the bundle's)")
    _add_trust_argument(val)
    val.set_defaults(func=_val)

    compare = commands.add_parser("compare", help="progressive vs single-phase training on the same split/budget")
    _add_config_arguments(compare, "dataset folder")
    compare.add_argument("--out", required=True, help="folder for the two runs and comparison.md/json")
    compare.set_defaults(func=_compare)
