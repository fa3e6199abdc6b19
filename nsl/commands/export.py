"""`nsl export`: registered by nsl.cli; the handler imports TensorFlow only when it runs."""

from __future__ import annotations

import argparse

from nsl.export.calibration import DEFAULT_CALIB
from nsl.export.formats import ONNX_CALIBRATIONS, ONNX_WEIGHT_BITS
from nsl.export.ptq import DEFAULT_REMEDY, REMEDIES
from nsl.export.qat import QAT_FALLBACK_EPOCHS, QAT_LR
from nsl.export.verify import MAX_DISTANCE, MAX_DROP, MIN_AGREEMENT

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
                    "images calibration did not use, through the runtime the device uses, and an int8 file that "
                    "does not behave like the float model (--max-drop, --min-agreement, --max-distance) fails "
                    "the export.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", metavar="RUN_DIR", help="run folder made by 'nsl train' (or a .keras file with --data)")
    parser.add_argument("--formats", default="tflite,onnx", help="comma-separated formats: tflite,onnx (default both)")
    parser.add_argument("--int8", action="store_true", help="also full-integer files (uint8 TFLite input, QDQ ONNX)")
    parser.add_argument("--fp16", action="store_true", help="also a float16 TFLite file")
    parser.add_argument("--calib", type=int, default=None, metavar="N",
                        help=f"calibration images, stratified by class from the training split (default: "
                             f"{DEFAULT_CALIB}, or fewer on a small dataset: as many a class as its smallest class "
                             f"has)")
    parser.add_argument("--remedy", choices=REMEDIES, default=DEFAULT_REMEDY,
                        help=f"what is done to the float model before post-training int8 (default {DEFAULT_REMEDY}; "
                             f"docs/QUANTIZATION.md)")
    parser.add_argument("--onnx-calibration", choices=ONNX_CALIBRATIONS, default="minmax",
                        help="onnxruntime's activation-range calibration for the int8 ONNX file (default minmax)")
    parser.add_argument("--onnx-weight-bits", type=int, choices=(7, 8), default=None,
                        help=f"int8 ONNX weight range: 7 (-64..64) or 8 (-127..127) (default {ONNX_WEIGHT_BITS} with "
                             f"--remedy round, else 8: what measured closer to the float model, docs/QUANTIZATION.md)")
    parser.add_argument("--qat", type=int, default=0, metavar="EPOCHS",
                        help="quantization-aware fine-tuning for EPOCHS epochs, then int8 files of that model too")
    parser.add_argument("--qat-lr", type=float, default=QAT_LR, metavar="LR", help=f"QAT learning rate (default {QAT_LR:g})")
    parser.add_argument("--qat-fallback", type=int, default=QAT_FALLBACK_EPOCHS, metavar="EPOCHS",
                        help=f"when a post-training int8 file misses the gate, QAT for EPOCHS epochs, and its int8 "
                             f"file replaces the post-training one when closer to the float model (default "
                             f"{QAT_FALLBACK_EPOCHS}: off; measured worse on real models, docs/QUANTIZATION.md)")
    parser.add_argument("--max-drop", type=float, default=MAX_DROP, metavar="POINTS",
                        help=f"largest top-1 loss of an int8 file against the float model, in points: the export "
                             f"fails when the whole 95%% interval of the paired loss lies above it (default "
                             f"{MAX_DROP:g})")
    parser.add_argument("--min-agreement", type=float, default=MIN_AGREEMENT, metavar="SHARE",
                        help=f"smallest share of gate images whose int8 top-1 is the float model's "
                             f"(default {MIN_AGREEMENT:g})")
    parser.add_argument("--max-distance", type=float, default=MAX_DISTANCE, metavar="TV",
                        help=f"largest mean total-variation distance between int8 and float probabilities "
                             f"(default {MAX_DISTANCE:g})")
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
        qat=args.qat, qat_lr=args.qat_lr, qat_fallback=args.qat_fallback, remedy=args.remedy,
        onnx_calibration=args.onnx_calibration, onnx_weight_bits=args.onnx_weight_bits, max_drop=args.max_drop,
        min_agreement=args.min_agreement, max_distance=args.max_distance, allow_drop=args.allow_drop,
        latency_runs=max(1, args.latency_runs), trust_model=args.trust_model)
    return run_export(options)
