"""`nsl data synth` and `nsl data check`.

`nsl data check` exits 0 when it could read the folder, even when it found problems (they are listed as
warnings, and training skips unusable files); `--strict` makes any warning exit 1, for scripts and CI.
A folder that cannot be read as a dataset at all (missing, empty, a class without images) exits 2 with
one line, like every other user error.
"""

from __future__ import annotations

import json

from nsl.env import missing_modules, require, require_data_tools


def _register_tfrecords_if_possible() -> None:
    """Where TensorFlow is installed, let ``nsl.dataset`` read TFRecord folders (the train stage registers its
    reader on import); elsewhere such a folder is a one-line error naming the train environment."""
    if not missing_modules("train"):
        import nsl.train  # noqa: F401


def _synth(args) -> int:
    require_data_tools("data synth")  # either environment: no TensorFlow
    from nsl.synth import synthesize

    out = synthesize(args.out, classes=args.classes, per_class=args.per_class, size=args.size, seed=args.seed,
                     force=args.force)
    print(f"dataset: {out}\nnext: nsl data check {out}   or   nsl train data={out}")
    return 0


def _check(args) -> int:
    require_data_tools("data check")  # either environment; TFRecords only where TensorFlow is
    _register_tfrecords_if_possible()
    from nsl.datacheck import check_dataset, format_report

    report = check_dataset(args.folder, labels=args.labels, split_file=args.split, distance=args.distance,
                           workers=args.workers)
    print(json.dumps(report, indent=2, ensure_ascii=False) if args.json else format_report(report))
    return 1 if args.strict and report["warnings"] else 0


def _add_synth(verbs) -> None:
    parser = verbs.add_parser("synth", help="write a deterministic synthetic dataset in the published layout",
                              description="Drawn hands, one finger configuration per class, on plain and "
                                          "cluttered backgrounds: OUT/Plain Background/<class>/*.jpg and "
                                          "OUT/Random Background/<class>/*.jpg. Same arguments, same files.")
    parser.add_argument("out", help="output folder (must be absent or empty unless --force)")
    parser.add_argument("--classes", type=int, default=36, help="number of classes (default 36)")
    parser.add_argument("--per-class", type=int, default=20, help="images per class in each subset (default 20)")
    parser.add_argument("--size", type=int, default=128, help="image side, pixels (default 128)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--force", action="store_true", help="replace OUT when it is not empty")
    parser.set_defaults(func=_synth)


def _add_check(verbs, defaults: dict) -> None:
    parser = verbs.add_parser("check", help="report classes, unusable files, colour modes, sizes and duplicates",
                              description="Classes and counts per subset, unreadable / zero-byte / non-image "
                                          "files, colour vs grey vs binary images, image sizes, exact and "
                                          "near-duplicate images and, with --split, duplicates across the "
                                          "split. Exit 0 with warnings; --strict exits 1 when there are any.")
    parser.add_argument("folder", help="dataset folder: published layout, class folders, or TFRecords")
    parser.add_argument("--split", help="a split file (RUN_DIR/split.csv) to check for train/test leakage")
    parser.add_argument("--labels", default=defaults["labels"],
                        help=f"nsl36 | auto (folder names) | labels CSV (default {defaults['labels']})")
    parser.add_argument("--distance", type=int, default=defaults["group_hash_distance"],
                        help="largest pHash distance of near-duplicates, bits of 64 "
                             f"(default {defaults['group_hash_distance']})")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--strict", action="store_true", help="exit 1 when any problem is found")
    parser.add_argument("--workers", type=int, default=4, help="reading threads (default 4)")
    parser.set_defaults(func=_check)


def _hands(args) -> int:
    require("edge", "data hands")
    from nsl.edge.dataset_hands import collect_hands, format_summary
    from nsl.edge.hand_model import resolve

    out, _, summary = collect_hands(args.folder, resolve(args.hand_model), args.out, args.margin,
                                    not args.no_square, args.force)
    if args.json:
        print(json.dumps({"hands_file": str(out), **summary}, indent=2, ensure_ascii=False))
    else:
        print(f"{format_summary(out, summary)}\nnext: nsl train data={args.folder} hands={out}")
    return 0


def _add_hands(verbs, defaults: dict) -> None:
    parser = verbs.add_parser("hands", help="find the hand in every image (MediaPipe, as the device) -> hands file",
                              description="One pass of the app's hand finder (IMAGE mode, padded as nsl predict) "
                                          "over a dataset: per image the 21 image and world landmarks, handedness, "
                                          "the landmark box and the crop box the app would cut. Written as one .npz "
                                          "(the train environment reads it with numpy); a rerun redoes only "
                                          "changed images. Edge environment.")
    parser.add_argument("folder", help="dataset folder: published layout or class folders")
    parser.add_argument("--out", help="hands file to write (default: the user cache, one per dataset folder)")
    parser.add_argument("--hand-model", default=None, metavar="PATH", help="hand_landmarker.task (default: cache)")
    parser.add_argument("--margin", type=float, default=defaults["crop_margin"],
                        help=f"crop margin of the recorded crop boxes (default {defaults['crop_margin']})")
    parser.add_argument("--no-square", action="store_true", help="record crop boxes that are not made square")
    parser.add_argument("--force", action="store_true", help="redo every image")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(func=_hands)


def add_commands(commands) -> None:
    """Register `nsl data synth` and `nsl data check`."""
    from nsl.config import load_defaults

    parser = commands.add_parser("data", help="synthetic data and dataset checks",
                                 description="Make a synthetic dataset or check a dataset folder.")
    verbs = parser.add_subparsers(dest="data_command", metavar="VERB")
    _add_synth(verbs)
    defaults = load_defaults()
    _add_check(verbs, defaults)
    _add_hands(verbs, defaults)
    parser.set_defaults(func=lambda args: parser.print_help() or 0)

