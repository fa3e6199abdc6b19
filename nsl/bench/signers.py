"""The ``signers`` section of ``nsl bench`` (train environment): how the CNN, the landmark model and their fusion
name the signs of people the models never saw, through the device path, against a random split::

    python -m nsl.bench.signers --out signers.json --data asl_36 --hands HANDS.npz [--weights H5] [--seeds 0,1]

For each split (``signers``: grouped by ``--group-pattern``, ``--test-groups`` held out; ``random``: stratified) and
seed, one run of the default recipe (``models`` and ``crop`` auto: both models and the device's hand crops, as a
hands file is given; ``--crop image``: the CNN trains on whole photos; ``nsl.train.run.ensure_run``: a rerun
reuses it) and its bundle
(``nsl export --int8``, TFLite), then every test photo through the device path of that bundle: the hand MediaPipe
found in it (the hands file, made by ``nsl data hands`` with the app's own tracker in IMAGE mode, padded as
``nsl predict``), ``crop_hand`` for the CNN, ``hand_features`` for the landmark model, the bundle's fusion rule; a
photo without a hand is named by the CNN alone, and counts as a miss for the landmark model. Peer row: what a
MediaPipe user builds in an afternoon, the same landmark features into a logistic regression (numpy, L2).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
import logging
import sys
from pathlib import Path

import numpy as np

from nsl.bench.section import run_section, section, section_parser, table
from nsl.env import prepare_tensorflow
from nsl.errors import NslError
from nsl.fileio import user_cache_dir

log = logging.getLogger(__name__)

PACKAGES = ("tensorflow", "tf_keras", "ai-edge-litert", "numpy")
KINDS = ("cnn", "landmarks", "fused")
# ASL fingerspelling signs made with one handshape, told apart by context or motion, not by a still photo of the
# hand: a model that cannot tell them apart is right on about half of their photos, whatever it learns.
ONE_HANDSHAPE = (("0", "o"), ("2", "v"), ("6", "w"))


def parse_args(argv):
    parser = section_parser("signers", "unseen signers vs a random split: CNN, landmarks, fused, device path")
    parser.add_argument("--data", required=True, help="labelled photos whose file names name the signer")
    parser.add_argument("--hands", required=True, help="the dataset's hands file (nsl data hands DATA --out FILE)")
    parser.add_argument("--weights", default="none", help="backbone weights: Keras no-top file, imagenet or none")
    parser.add_argument("--labels", default="auto", help="nsl36 | auto (folder names, default) | labels CSV")
    parser.add_argument("--seeds", default="0,1", help="comma-separated seeds (default 0,1)")
    parser.add_argument("--splits", default="signers,random", help="signers,random (default both)")
    parser.add_argument("--group-pattern", default=r"^(hand\d+)_", help="signer in the file name (regex)")
    parser.add_argument("--test-groups", default="hand4,hand5", help="signers held out as the test set")
    parser.add_argument("--imgsz", type=int, default=128, help="CNN input size (default 128)")
    parser.add_argument("--epochs", type=int, help="CNN epochs (epochs=N; default: the default recipe's)")
    parser.add_argument("--patience", type=int, help="early stopping patience (default: the default recipe's)")
    parser.add_argument("--fusion-on", default="val", choices=("val", "groups"),
                        help="where the fusion weight is chosen (landmarks.fusion_on; default val, the default; "
                             "groups: on training signers out of fold, the validation split's choice measured beside "
                             "it, three times the training)")
    parser.add_argument("--crop", default="auto", choices=("auto", "hands", "image"),
                        help="what the CNN trains on (crop; default auto, the default: hands, as a hands file is "
                             "given). The device path always crops the hand the tracker finds, as the app does")
    parser.add_argument("--cache", help="runs and bundles, reused by a rerun (default bench/signers, user cache)")
    return parser.parse_args(argv)


def run_options(args, split: str, seed: int):
    from nsl.config import resolve

    updates = {"data": args.data, "labels": args.labels, "hands": args.hands, "models": "auto", "crop": args.crop,
               "imgsz": args.imgsz, "weights": args.weights, "seed": seed, "tensorboard": False,
               "landmarks.fusion_on": args.fusion_on}  # the rest: the defaults (the recipe a user gets)
    updates.update({key: value for key, value in (("epochs", args.epochs), ("patience", args.patience))
                    if value is not None})
    if split == "signers":
        updates.update({"split": "grouped", "group_pattern": args.group_pattern,
                        "split_test_groups": args.test_groups.split(",")})
    if args.quick:
        updates.update({"epochs": 1, "steps_per_epoch": 2, "landmarks.epochs": 5, "alpha": 0.35,
                        "weights": "none"})
    return resolve(overrides=updates)


def trained_bundle(options, cache: Path) -> Path:
    """The run of ``options`` (reused, resumed or trained) and its int8 TFLite bundle (exported when missing)."""
    from nsl.config import to_dict
    from nsl.export.exporter import ExportOptions, run_export
    from nsl.rundir import RunDir
    from nsl.train.run import ensure_run

    key = hashlib.sha256(json.dumps(to_dict(options), sort_keys=True, default=str).encode()).hexdigest()[:10]
    run = RunDir(ensure_run(options, cache / key))
    if not (run.default_bundle / "metadata.json").is_file():
        per_class = Counter(s.label for s in run.split()["train"])
        calib = min(256, min(per_class.values()) * len(run.labels()))  # every class evenly, as calibration wants
        run_export(ExportOptions(path=str(run.path), out=str(run.default_bundle), force=True, formats=("tflite",),
                                 int8=True, calib=calib, allow_drop=True, latency_runs=3))
    return run.default_bundle


def device_path(bundle_path: Path, options, precision: str) -> dict:
    """Top-1 of each kind over the run's test photos, through the bundle's ``precision`` files."""
    from nsl.edge.bundle import open_bundle
    from nsl.edge.recognizer import Recognizer
    from nsl.fusion import fuse
    from nsl.landmarks import HandsTable
    from nsl.preprocess import crop_hand, prepare, read_image
    from nsl.rundir import RunDir

    bundle = open_bundle(bundle_path)
    run = RunDir(Path(bundle.metadata["source_run"]))
    table = HandsTable.load(options.data.hands)
    recognizers = {kind: Recognizer.open(bundle, "tflite", precision, None, kind) for kind in KINDS}
    other = (run.fusion() or {}).get("val_split_choice")  # the weight the validation split would have chosen
    right, found, test = {kind: 0 for kind in (*KINDS, *(["fused (val-split weight)"] if other else []))}, 0, \
        run.split()["test"]
    names, mistakes = [label.name for label in run.labels()], {kind: [] for kind in KINDS}
    for sample in test:
        row = table.row_for(Path(sample.path).resolve())
        image = read_image(sample.path)
        hand = _hand(table, row) if row is not None and table.found[row] else None
        crop = crop_hand(image, hand.box, bundle.crop, side=hand.handedness) if hand else prepare(image, bundle.crop)
        found += hand is not None
        answers = {}
        for kind, recognizer in recognizers.items():
            probs, answered = recognizer.predict(crop[None], [hand or _hand(None, None)])
            answers[kind] = probs[0] if answered[0] else None
            answer = int(np.argmax(probs[0])) if answered[0] else None
            right[kind] += answer == sample.label
            if answer != sample.label:
                mistakes[kind].append([names[sample.label], "-" if answer is None else names[answer]])
        if other:
            lm = answers["landmarks"] if answers["landmarks"] is not None else np.full_like(answers["cnn"], np.nan)
            fused = fuse(answers["cnn"][None], lm[None], other["weight"])
            right["fused (val-split weight)"] += int(np.argmax(fused[0])) == sample.label
    return {"top1": {kind: n / len(test) for kind, n in right.items()}, "n_images": len(test),
            "hand_found": found / len(test), "fusion_weight": bundle.fusion["weight"], "mistakes": mistakes,
            "classes": names, **({"val_split_weight": other["weight"]} if other else {})}


def _hand(table, row):
    from nsl.edge.hands import Hand

    if table is None:
        return Hand(box=(0, 0, 1, 1), score=1.0)
    return Hand(box=tuple(table.box[row]), score=float(table.handedness_score[row]), handedness=str(table.handedness[row]),
                landmarks=table.landmarks[row], world=table.world[row])


def logistic_baseline(run_path: Path, l2: float = 1e-3, steps: int = 3000, lr: float = 0.5) -> float:
    """Softmax regression (gradient descent, L2) on the run's landmark features: top-1 over all test photos."""
    from nsl.rundir import RunDir
    from nsl.train.hands import load_arrays

    arrays = load_arrays(RunDir(run_path))
    x, y = arrays["train"]["features"].astype(np.float64), arrays["train"]["labels"]
    classes = int(max(y.max(), arrays["test"]["labels"].max(initial=0)) + 1)
    w, b, onehot = np.zeros((x.shape[1], classes)), np.zeros(classes), np.eye(classes)[y]
    for _ in range(steps):
        logits = x @ w + b
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        w -= lr * (x.T @ (p - onehot) / len(x) + l2 * w)
        b -= lr * (p - onehot).mean(0)
    test = arrays["test"]
    right = int(((test["features"] @ w + b).argmax(1) == test["labels"]).sum()) if len(test["labels"]) else 0
    return right / (len(test["labels"]) + test["without_hand"])


def signers_section(args) -> dict:
    prepare_tensorflow()
    from nsl.train.hands import with_auto_resolved

    if not Path(args.hands).is_file():
        raise NslError(f"--hands {args.hands}: no such file (make it with 'nsl data hands {args.data} --out FILE' in "
                       f"the edge environment)")
    cache = Path(args.cache) if args.cache else user_cache_dir() / "bench" / "signers"
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    results, recipe = [], "-"
    for split in [s.strip() for s in args.splits.split(",") if s.strip()]:
        for seed in seeds:
            options = with_auto_resolved(run_options(args, split, seed))  # as the run records them
            recipe = recipe_text(options)
            bundle = trained_bundle(options, cache)
            for precision in ("fp32", "int8"):
                figures = device_path(bundle, options, precision)
                results.append({"split": split, "seed": seed, "precision": precision, **figures})
            results.append({"split": split, "seed": seed, "precision": "fp64", "n_images": figures["n_images"],
                            "top1": {"logistic regression (landmarks)": logistic_baseline(bundle.parent)},
                            "hand_found": figures["hand_found"]})
    return render(results, args, recipe)


def recipe_text(options) -> str:
    """How the CNN trained, in words (``single 40 epochs, patience 5, crop=hands``)."""
    hparams = options.hparams
    phases = "+".join(str(p.epochs) for p in hparams.phase_plan())
    return f"{hparams.strategy} {phases} epochs, patience {hparams.patience}, crop={options.preprocess.crop}"


def render(results: list[dict], args, recipe: str) -> dict:
    rows, summary = [], {}
    for r in results:
        for kind, value in r["top1"].items():
            rows.append([r["split"], r["seed"], kind, r["precision"], round(value, 4), r["n_images"],
                         round(r["hand_found"], 3)])
            summary.setdefault((r["split"], kind, r["precision"]), []).append(value)
    means = [[split, kind, precision, round(float(np.mean(v)), 4), round(float(np.std(v)), 4), len(v)]
             for (split, kind, precision), v in summary.items()]
    what = (f"{Path(args.data).name}: signers = held-out {args.test_groups} (grouped by {args.group_pattern}), "
            f"random = stratified; MobileNetV2 {args.imgsz} px, {recipe}, models=both; device path (the hand "
            f"crop the app cuts) through the bundle's TFLite files")
    notes = [what + ".",
             "A random split puts photos of the same signers (and sessions) on both sides: it flatters every model. "
             "The signers rows are the honest figure.",
             "Landmarks and the logistic regression cannot name a photo where no hand was found: it counts as a miss; "
             "fused falls back to the CNN there."]
    weights = [[r["split"], r["seed"], r["fusion_weight"], r.get("val_split_weight", "-")]
               for r in results if r["precision"] == "int8"]
    if any(r.get("val_split_weight") is not None for r in results):
        notes.append(f"fused: the bundle's landmark weight, chosen with landmarks.fusion_on={args.fusion_on}; "
                     "'fused (val-split weight)': the weight the validation split (images of the training signers, "
                     "landmarks.fusion_on=val, the default) chose in the same run, applied to the same device-path "
                     "answers of the same models.")
    confusions = mistake_rows(results, "fused", "int8")
    pairs = pair_rows(results, "int8")
    if pairs:
        notes.append("One handshape: the test photos of " + ", ".join("/".join(p) for p in ONE_HANDSHAPE) + " show "
                     "the same hand (ASL tells them apart by context), so a still-image model is right on about half "
                     "of them at best. 'top-1, those pairs merged' counts an answer within the pair as right: a "
                     "diagnostic of where the remaining errors lie, not a score (the top-1 column is the figure).")
    if confusions:
        notes.append("Mistakes: every wrong answer of the fused int8 files on the signers split, over all seeds "
                     "('-': no answer). Classes whose signs share one handshape in a still photo (in ASL: 0/o, 2/v, "
                     "6/w; z and j are motions photographed at one point) cap what any still-image model can score.")
    return section("signers", "Unseen signers: CNN, landmarks and fusion through the device path",
                   [table("mean over seeds (top-1)", ["split", "model", "precision", "top-1 mean", "sd", "seeds"],
                          means),
                    table("per seed", ["split", "seed", "model", "precision", "top-1", "test photos", "hand found"],
                          rows),
                    table("fusion weights (landmark weight)", ["split", "seed", "bundle's weight",
                                                               "val-split choice"], weights),
                    *([table("errors within one-handshape pairs, signers split, int8, mean over seeds",
                             ["model", "top-1", "errors a seed", "of them within a pair", "top-1, those pairs merged",
                              "seeds"], pairs)] if pairs else []),
                    *([table("mistakes of the fused int8 answer, signers split, all seeds",
                             ["true class", "answered", "times", "seeds"], confusions)] if confusions else [])],
                   notes, {"results": results}, packages=PACKAGES)


def mistake_rows(results: list[dict], kind: str, precision: str) -> list[list]:
    """(true class, answer, times, seeds) of ``kind``'s wrong answers on the signers split, most frequent first."""
    counted: dict[tuple, list] = {}
    for r in results:
        if r["split"] == "signers" and r["precision"] == precision:
            for truth, answer in r.get("mistakes", {}).get(kind, []):
                counted.setdefault((truth, answer), []).append(r["seed"])
    return [[truth, answer, len(seeds), ", ".join(str(s) for s in sorted(set(seeds)))]
            for (truth, answer), seeds in sorted(counted.items(), key=lambda item: (-len(item[1]), item[0]))]


def pair_rows(results: list[dict], precision: str) -> list[list]:
    """Per model kind, over the seeds of the signers split: top-1, errors a seed, how many of them name the other
    class of a one-handshape pair (``ONE_HANDSHAPE``), and top-1 with those counted right. Empty when the classes
    hold no such pair."""
    runs = [r for r in results if r["split"] == "signers" and r["precision"] == precision and "classes" in r]
    pairs = [set(p) for p in ONE_HANDSHAPE if runs and set(p) <= set(runs[0]["classes"])]
    if not pairs:
        return []
    rows = []
    for kind in KINDS:
        errors = [r["mistakes"][kind] for r in runs]
        within = [sum({truth, answer} in pairs for truth, answer in e) for e in errors]
        merged = [r["top1"][kind] + w / r["n_images"] for r, w in zip(runs, within)]
        rows.append([kind, round(float(np.mean([r["top1"][kind] for r in runs])), 4),
                     round(float(np.mean([len(e) for e in errors])), 2), round(float(np.mean(within)), 2),
                     round(float(np.mean(merged)), 4), len(runs)])
    return rows


def main(argv=None) -> int:
    return run_section("signers", parse_args, signers_section, argv)


if __name__ == "__main__":
    sys.exit(main())
