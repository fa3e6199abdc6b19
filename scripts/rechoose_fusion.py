"""Choose a finished run's fusion weight again with the current rule (``nsl.fusion.choose_weight``), from the
validation answers the run saved (``fusion_inputs.npz``): what the training stage would write for the same models,
without training them again. Export the run again afterwards (its bundle carries the weight)::

    python scripts/rechoose_fusion.py RUN [RUN ...]

The previous weight is kept in ``fusion.json["rechosen_from"]``. Used for benchmarks/signers (2026-12-02).
"""

import sys
from pathlib import Path

import numpy as np

from nsl.fileio import read_json, write_json
from nsl.fusion import choose_weight, fuse


def rechoose(run: Path) -> tuple[float, float]:
    fusion = read_json(run / "fusion.json")
    if fusion.get("chosen_on") != "val split":
        raise SystemExit(f"{run}: its weight was chosen on {fusion.get('chosen_on')}, not the val split")
    with np.load(run / "fusion_inputs.npz") as answers:
        weight, grid = choose_weight(answers["val_cnn"], answers["val_landmarks"], answers["val_truth"])
        fused = fuse(answers["test_cnn"], answers["test_landmarks"], weight)
        fusion["test"]["fused"]["top1"] = float(np.mean(fused.argmax(axis=1) == answers["test_truth"]))
    before = fusion.get("rechosen_from", {}).get("weight", fusion["weight"])
    fusion.update(weight=weight, val_grid=grid, rechosen_from={"weight": before, "by": "one-standard-error rule"})
    write_json(run / "fusion.json", fusion)
    return before, weight


if __name__ == "__main__":
    for folder in map(Path, sys.argv[1:]):
        old, new = rechoose(folder)
        print(f"{folder}: landmark weight {old:.2f} -> {new:.2f}")
