"""`nsl train`, `nsl val` and `nsl compare`: parse, resolve the configuration, delegate (TensorFlow lazily)."""

from __future__ import annotations

import json
from pathlib import Path

from nsl.errors import NslError
from nsl.env import require

FLAG_KEYS = {"data": "data", "weights": "weights", "strategy": "strategy", "project": "project", "name": "name",
             "split_by": "split"}


def _config_from_args(args) -> dict:
    """defaults < --config FILE < key=value < flags."""
    from nsl.config import parse_overrides, resolve

    updates = parse_overrides(args.overrides)
    updates.update({key: getattr(args, flag) for flag, key in FLAG_KEYS.items()
                    if getattr(args, flag, None) is not None})
    config = resolve(args.config, updates)
    if not config.get("data"):
        raise NslError("no dataset given: pass data=FOLDER or --data FOLDER (e.g. one made by 'nsl data synth')")
    return config


def _train(args) -> int:
    if args.resume and (args.overrides or args.config or args.data):
        raise NslError("--resume continues with the run's saved configuration; drop key=value, --config and --data")
    config = None if args.resume else _config_from_args(args)
    require("train", "train")
    from nsl.train.run import resume_run, train_run

    run_dir = resume_run(args.resume) if args.resume else train_run(config)
    print(f"run: {run_dir}\nnext: nsl export {run_dir} --int8")
    return 0


def _val(args) -> int:
    if (Path(args.run_dir) / "metadata.json").is_file():
        from nsl.export.verify import val_bundle_command  # a model bundle: validated by the export side

        return int(val_bundle_command(args) or 0)
    require("train", "val")
    from nsl.train.evaluate import validate_run

    metrics = validate_run(args.run_dir, args.data)
    if args.json:
        print(json.dumps(metrics, indent=2, ensure_ascii=False))
    else:
        print(f"{metrics['source']}: {metrics['n_images']} images, top-1 {metrics['top1']:.4f}, "
              f"top-3 {metrics['top3']:.4f}, macro F1 {metrics['macro_f1']:.4f}")
    return 0


def _compare(args) -> int:
    config = _config_from_args(args)
    require("train", "compare")
    from nsl.train.compare import compare_strategies, comparison_markdown

    result = compare_strategies(config, Path(args.out))
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


def add_commands(commands) -> None:
    """Register `nsl train`, `nsl val`, `nsl compare`."""
    train = commands.add_parser("train", help="train a classifier on a folder of sign images -> RUN_DIR",
                                epilog="e.g. nsl train data=data/synth imgsz=96 weights=none")
    _add_config_arguments(train, "dataset folder (same as data=...)")
    train.add_argument("--project", help="folder of runs (default runs)")
    train.add_argument("--name", help="run name (default exp; a number is appended when taken)")
    train.add_argument("--strategy", choices=("progressive", "single"), help="phases of config, or one phase")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run where it stopped")
    train.set_defaults(func=_train)

    val = commands.add_parser("val", help="evaluate a run's best model (or a model bundle) on its test split")
    val.add_argument("run_dir", metavar="RUN_DIR", help="a run directory of 'nsl train' or a model bundle")
    val.add_argument("--data", help="evaluate on all images of this folder instead of the run's test split")
    val.add_argument("--json", action="store_true", help="print the full metrics as JSON")
    val.set_defaults(func=_val)

    compare = commands.add_parser("compare", help="progressive vs single-phase training on the same split/budget")
    _add_config_arguments(compare, "dataset folder")
    compare.add_argument("--out", required=True, help="folder for the two runs and comparison.md/json")
    compare.set_defaults(func=_compare)
