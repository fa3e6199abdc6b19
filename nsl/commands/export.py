"""`nsl export`: registered by nsl.cli; the handler imports TensorFlow only when it runs."""

from __future__ import annotations

import argparse

from nsl.export.calibration import DEFAULT_CALIB
from nsl.export.qat import QAT_LR

EXAMPLES = """examples:
  nsl export runs/exp --int8                       float + int8 TFLite and ONNX in runs/exp/bundle
  nsl export runs/exp int8=true                    the same, as key=value (every flag is a key)
  nsl export runs/exp --int8 --qat 2 --fp16        also QAT int8 files and a float16 TFLite
  nsl export model.keras --data images/ --labels auto --int8   a model the trainer did not make"""


def add_commands(commands) -> None:
    """Register `nsl export`."""
    parser = commands.add_parser(
        "export", help="trained run -> model bundle (TFLite/ONNX, float and int8) with an accuracy gate",
        description="Convert a trained run (or a .keras file) into a model bundle: every file is checked on the "
                    "test split through the runtime the device uses, and an int8 file that loses more than "
                    "--max-drop points of top-1 fails the export.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", metavar="RUN_DIR", help="run folder made by 'nsl train' (or a .keras file with --data)")
    parser.add_argument("--formats", default="tflite,onnx", help="comma-separated formats: tflite,onnx (default both)")
    parser.add_argument("--int8", action="store_true", help="also full-integer files (uint8 TFLite input, QDQ ONNX)")
    parser.add_argument("--fp16", action="store_true", help="also a float16 TFLite file")
    parser.add_argument("--calib", type=int, default=DEFAULT_CALIB, metavar="N",
                        help=f"calibration images, stratified by class from the training split (default {DEFAULT_CALIB})")
    parser.add_argument("--qat", type=int, default=0, metavar="EPOCHS",
                        help="quantization-aware fine-tuning for EPOCHS epochs, then int8 files of that model too")
    parser.add_argument("--qat-lr", type=float, default=QAT_LR, metavar="LR", help=f"QAT learning rate (default {QAT_LR:g})")
    parser.add_argument("--max-drop", type=float, default=1.0, metavar="POINTS",
                        help="largest top-1 loss of an int8 file against the float model, in points (default 1.0)")
    parser.add_argument("--allow-drop", action="store_true", help="write the bundle even when the gate fails")
    parser.add_argument("--out", metavar="BUNDLE_DIR", help="output folder (default RUN_DIR/bundle)")
    parser.add_argument("--force", action="store_true", help="replace an existing bundle")
    parser.add_argument("--data", metavar="DIR", help="labelled images for a .keras file (calibration and validation)")
    parser.add_argument("--labels", default="nsl36", help="labels of a .keras file: nsl36 | auto | CSV (default nsl36)")
    parser.add_argument("--latency-runs", type=int, default=20, metavar="N", help="timed calls per latency figure")
    parser.add_argument("--trust-model", action="store_true",
                        help="load a model that is not the native .keras format, or needs code to load (a Lambda "
                             "layer): it can run that code, so only for a file you made or trust")
    parser.set_defaults(func=export_command)


def export_command(args) -> int:
    from nsl.export.report import metrics_table

    out, metadata = export_bundle(args)
    print(metrics_table(metadata["files"], metadata["keras_metrics"]))
    print(f"\nbundle: {out}\nnext:   nsl app model={out}    (or: nsl val {out} data=DIR)")
    return 0


def export_bundle(args):
    """The resolved settings (a namespace of the export keys) -> (bundle folder, metadata); ``nsl.api.export``."""
    from nsl.env import require

    require("train", "export")
    from nsl.export.exporter import ExportOptions, run_export
    from nsl.export.formats import parse_formats

    options = ExportOptions(
        path=args.path, data=args.data, labels=args.labels, out=args.out, force=args.force,
        formats=tuple(parse_formats(args.formats)), fp16=args.fp16, int8=args.int8, calib=args.calib,
        qat=args.qat, qat_lr=args.qat_lr, max_drop=args.max_drop, allow_drop=args.allow_drop,
        latency_runs=max(1, args.latency_runs), trust_model=args.trust_model)
    return run_export(options)
