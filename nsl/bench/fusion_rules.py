"""Fusion rules judged on people the models never saw, from finished runs' saved answers (numpy only)::

    python -m nsl.bench.fusion_rules --out rules.json --judge hand1,hand2,hand3 RUN [RUN ...]

Each run keeps both models' probabilities on its validation and test photos (``fusion_inputs.npz``). Every rule
below chooses a landmark weight from the run's validation answers alone, as training does; the fused answer at that
weight is then scored on the run's test photos whose group (as the run's split recorded it, from ``group_pattern``
or ``group_file``) is one of ``--judge``. Give runs trained on some training signers and held out on the others
(leave one signer out), and judge on those others only: a rule is then chosen without a look at the real test
signers, whose answers may sit in the same files but are not read. The weight that would have been best on the
judged photos is shown beside the rules as a ceiling, not as a rule.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from nsl.bench.section import run_section, section, section_parser, table
from nsl.errors import NslError
from nsl.fusion import GRID, _scores, choose_weight, fuse
from nsl.rundir import RunDir

RULES = {
    "one SE (Wald), not below either model alone (the default)":
        lambda val: choose_weight(*val, error="wald", floor_alone=True)[0],
    "one SE (Wald)": lambda val: choose_weight(*val, error="wald", floor_alone=False)[0],
    "one SE (Agresti-Coull), not below either model alone":
        lambda val: choose_weight(*val, error="agresti_coull", floor_alone=True)[0],
    "one SE (Agresti-Coull)": lambda val: choose_weight(*val, error="agresti_coull", floor_alone=False)[0],
    "best validation top-1 (ties: lower log-loss)": lambda val: _best_top1(*val),
    "fixed 0.5": lambda val: 0.5,
}


def _best_top1(cnn: np.ndarray, landmarks: np.ndarray, truth: np.ndarray) -> float:
    scored = [(_scores(fuse(cnn, landmarks, w), truth), w) for w in GRID]
    return max(scored, key=lambda item: (item[0][0], -item[0][1], -abs(item[1] - 0.5)))[1]


def judged_answers(run: RunDir, judge: set[str]) -> tuple[tuple, tuple]:
    """(val answers, test answers on the judged groups' photos): each (cnn, landmarks, truth)."""
    if not run.fusion_inputs_file.is_file():
        raise NslError(f"{run.path}: no {run.FUSION_INPUTS} (a run with both models, trained by this version)")
    test_samples = run.split()["test"]
    keep = np.array([sample.group in judge for sample in test_samples], bool)
    if not keep.any():
        raise NslError(f"{run.path}: none of its {len(test_samples)} test photos is in --judge "
                       f"{','.join(sorted(judge))} (groups of its split: "
                       f"{', '.join(sorted({s.group for s in test_samples})) or 'none'})")
    with np.load(run.fusion_inputs_file, allow_pickle=False) as data:
        if len(data["test_truth"]) != len(keep):
            raise NslError(f"{run.path}: {run.FUSION_INPUTS} holds {len(data['test_truth'])} test answers, its "
                           f"split {len(keep)} photos (the run was changed after training)")
        val = tuple(data[f"val_{key}"] for key in ("cnn", "landmarks", "truth"))
        test = tuple(data[f"test_{key}"][keep] for key in ("cnn", "landmarks", "truth"))
    return val, test


def top1(answers: tuple, weight: float) -> float:
    cnn, landmarks, truth = answers
    return _scores(fuse(cnn, landmarks, weight), truth)[0]


def judge_run(run: RunDir, judge: set[str]) -> dict:
    val, test = judged_answers(run, judge)
    rules = {name: (weight := rule(val), top1(test, weight)) for name, rule in RULES.items()}
    ceiling = max(GRID, key=lambda w: top1(test, w))
    return {"run": run.path.name, "n_val": len(val[2]), "n_judged": len(test[2]), "rules": rules,
            "cnn": top1(test, 0.0), "landmarks": top1(test, 1.0), "ceiling": (ceiling, top1(test, ceiling))}


def rules_section(args) -> dict:
    judge = set(args.judge.split(","))
    results = [judge_run(RunDir(Path(path)), judge) for path in args.runs]
    columns = ["rule", *(r["run"] for r in results), "mean"]
    rows = [[name, *(f"{r['rules'][name][1]:.1%} (w {r['rules'][name][0]:.2f})" for r in results),
             f"{np.mean([r['rules'][name][1] for r in results]):.1%}"] for name in RULES]
    for name, key in (("CNN alone", "cnn"), ("landmarks alone (no hand: the CNN)", "landmarks")):
        rows.append([name, *(f"{r[key]:.1%}" for r in results), f"{np.mean([r[key] for r in results]):.1%}"])
    rows.append(["ceiling: the best weight on the judged photos (not a rule)",
                 *(f"{r['ceiling'][1]:.1%} (w {r['ceiling'][0]:.2f})" for r in results),
                 f"{np.mean([r['ceiling'][1] for r in results]):.1%}"])
    caption = (f"Fused top-1 on the held-out signers {', '.join(sorted(judge))} of each run (photos: "
               f"{', '.join(str(r['n_judged']) for r in results)}), each rule's weight chosen on that run's "
               f"validation split ({', '.join(str(r['n_val']) for r in results)} photos)")
    notes = ["Only the photos of --judge are scored; the runs' other test photos are not read."]
    return section("fusion_rules", "Fusion rules judged on signers the models did not see",
                   [table(caption, columns, rows)], notes, {"runs": results}, ("numpy",))


def parse_args(argv):
    parser = section_parser("fusion_rules", "fusion weight rules judged on held-out signers, from saved answers")
    parser.add_argument("runs", nargs="+", metavar="RUN", help="finished runs with both models")
    parser.add_argument("--judge", required=True, help="comma-separated groups whose test photos are scored")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return run_section("fusion_rules", parse_args, rules_section, argv)


if __name__ == "__main__":
    sys.exit(main())
