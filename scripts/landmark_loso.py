"""Choose the landmark model's settings on the TRAINING signers only: leave one signer out (issue 11).

    .venvs/train/bin/python scripts/landmark_loso.py RUN_DIR --hands HANDS.npz --out benchmarks/landmark_loso \
        [--seeds 0,1] [--variants default,mirror,...]

For each variant of the landmark settings and each training signer of RUN_DIR's split (its train + val images, the
run's test signers never used): train on the other training signers' train images, stop early on their val images,
and measure top-1 on every image of the held signer with a hand. The mean over folds and seeds ranks the variants;
the run's held-out test signers are measured only for the variant chosen and the default, after the choice, so
the test set chooses nothing. Writes results.json and README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nsl.env import prepare_tensorflow  # noqa: E402

prepare_tensorflow()

from nsl.fileio import write_json, write_text  # noqa: E402
from nsl.landmarks import HandsTable  # noqa: E402
from nsl.rundir import RunDir  # noqa: E402
from nsl.train.hands import landmark_arrays  # noqa: E402
from nsl.train.landmark_model import predict, train_landmark_model  # noqa: E402

VARIANTS = {
    "default": {},
    "mirror": {"mirror": True},
    "world": {"layout": "xyz21+world"},
    "wider": {"hidden": (256, 128)},
    "dropout 0.4": {"dropout": 0.4},
    "strong augmentation": {"rotation": 25.0, "scale": 0.2, "jitter": 0.03},
    "no augmentation": {"copies": 0},
    "copies 20": {"copies": 20},
    # a second round, from the first round's leaders (still chosen on the training signers only)
    "dropout 0.5": {"dropout": 0.5},
    "dropout 0.4 + strong augmentation": {"dropout": 0.4, "rotation": 25.0, "scale": 0.2, "jitter": 0.03},
    "dropout 0.4 + copies 20": {"dropout": 0.4, "copies": 20},
    # a third round: averaging members trained with different seeds (one model file; issue 11's variance)
    "ensemble 3": {"ensemble": 3},
    "ensemble 5": {"ensemble": 5},
    "ensemble 5 + dropout 0.4 + copies 20": {"ensemble": 5, "dropout": 0.4, "copies": 20},
    "angles": {"layout": "xyz21+angles"},
    "angles + ensemble 5": {"layout": "xyz21+angles", "ensemble": 5},
    "angles + ensemble 5 + dropout 0.4 + copies 20": {"layout": "xyz21+angles", "ensemble": 5, "dropout": 0.4,
                                                      "copies": 20},
    # a fourth round: what differs between people and cameras, as augmentation (2026-12-07)
    "bones 0.1": {"bones": 0.1},
    "tilt 20": {"tilt": 20.0},
    "bones 0.1 + tilt 20": {"bones": 0.1, "tilt": 20.0},
    "tilt 10": {"tilt": 10.0},
    "tilt 30": {"tilt": 30.0},
    "tilt 40": {"tilt": 40.0},
}


def signer_folds(split: dict, pattern: str) -> dict[str, dict]:
    """For each training signer with more than a handful of images: train/val of the others, test = its images."""
    train_side = split["train"] + split["val"]
    signer = {s.path: re.search(pattern, Path(s.path).name).group(1) for s in train_side}
    counts = {g: sum(1 for s in train_side if signer[s.path] == g) for g in set(signer.values())}
    folds = {}
    for held in sorted(g for g, n in counts.items() if n >= 36):
        folds[held] = {"train": [s for s in split["train"] if signer[s.path] != held],
                       "val": [s for s in split["val"] if signer[s.path] != held],
                       "test": [s for s in train_side if signer[s.path] == held]}
    return folds


def top1(options, parts: dict, table: HandsTable, classes: int, seed: int) -> float:
    arrays = landmark_arrays(parts, table, options.layout)
    with tempfile.TemporaryDirectory() as tmp:
        model, _ = train_landmark_model(options, arrays, classes, seed, RunDir(Path(tmp)))
    test = arrays["test"]
    return float((predict(model, test["features"]).argmax(1) == test["labels"]).mean())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--hands", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--pattern", default=r"^(hand\d+)_")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args(argv)
    run = RunDir.open(args.run)
    base, split, classes = run.options().landmarks, run.split(), len(run.labels())
    table = HandsTable.load(args.hands)
    folds = signer_folds(split, args.pattern)
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    for name in args.variants.split(","):
        options = dataclasses.replace(base, **VARIANTS[name])
        scores = {f"{held} seed {seed}": top1(options, parts, table, classes, seed)
                  for held, parts in folds.items() for seed in seeds}
        rows.append({"variant": name, "settings": VARIANTS[name], "loso": scores,
                     "loso_mean": float(np.mean(list(scores.values())))})
        print(f"{name:22s} leave-one-signer-out mean {rows[-1]['loso_mean']:.4f}  {scores}", flush=True)
    chosen = max(rows, key=lambda r: (r["loso_mean"], r["variant"] == "default"))
    held_out = {"train": split["train"], "val": split["val"], "test": split["test"]}
    for row in {id(r): r for r in (chosen, rows[0])}.values():  # after the choice: the run's own test signers
        options = dataclasses.replace(base, **VARIANTS[row["variant"]])
        row["test_signers"] = {f"seed {seed}": top1(options, held_out, table, classes, seed) for seed in seeds}
    result = {"run": str(run.path), "folds": {k: len(v["test"]) for k, v in folds.items()}, "seeds": seeds,
              "chosen": chosen["variant"], "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "results.json", result)
    write_text(args.out / "README.md", render(result))
    print(json.dumps({"chosen": chosen["variant"], "test": chosen.get("test_signers")}))
    return 0


def render(result: dict) -> str:
    lines = ["# Landmark model settings chosen on the training signers (leave one signer out)", "",
             f"Run: `{Path(result['run']).name}` (its split: the test signers are never used to choose). Folds: "
             + ", ".join(f"{k} held out ({n} images)" for k, n in result["folds"].items())
             + f"; seeds {result['seeds']}. Each fold trains on the other training signers' train images, stops "
             "early on their val images and is measured on the held signer's images with a hand.", "",
             "| variant | settings | leave-one-signer-out top-1 (mean) | per fold and seed | test signers (after the choice) |",
             "|---|---|---|---|---|"]
    for row in sorted(result["rows"], key=lambda r: -r["loso_mean"]):
        test = row.get("test_signers")
        lines.append(f"| {row['variant']}{' (chosen)' if row['variant'] == result['chosen'] else ''} | "
                     f"{row['settings'] or 'defaults'} | {row['loso_mean']:.4f} | "
                     + ", ".join(f"{v:.3f}" for v in row["loso"].values()) + " | "
                     + (", ".join(f"{v:.3f}" for v in test.values()) if test else "-") + " |")
    lines += ["", "Test-signer figures: the landmark model alone on the run's held-out signers' images with a hand "
              "(Keras), measured only for the chosen variant and the default.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
