"""`nsl compare`: progressive vs single-phase training on the same split and the same total epoch budget.

Both runs are ordinary run directories (OUT/progressive, OUT/single); the single-phase run reuses the first
run's split, and its epoch budget is the sum of the progressive phases' epochs. The table measures, instead of
asserting, what each strategy gives: test accuracy, best validation loss, epoch of the best, the train-val
accuracy gap at that epoch, epochs run and wall time. Written as OUT/comparison.md and OUT/comparison.json.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from nsl.config import updated
from nsl.errors import NslError
from nsl.fileio import write_json, write_text
from nsl.options import Options
from nsl.rundir import RunDir

log = logging.getLogger(__name__)

STRATEGIES = ("progressive", "single")


def strategy_options(options: Options) -> dict[str, Options]:
    """The two runs' options, with the single phase given the progressive phases' total epochs."""
    progressive = updated(options, {"strategy": "progressive"})
    budget = sum(phase.epochs for phase in progressive.hparams.phase_plan())
    single = updated(options, {"strategy": "single", "epochs": None, "single.epochs": budget})
    return {"progressive": progressive, "single": single}


def summarise_run(run_dir: Path, wall_s: float) -> dict:
    """One row of the comparison, from a finished run's history.json and metrics.json."""
    run = RunDir.open(run_dir)
    history, metrics = run.history(), run.metrics()
    scored = [entry for entry in history if "val_loss" in entry]
    best = min(scored, key=lambda entry: entry["val_loss"]) if scored else {}
    gap = best.get("accuracy", float("nan")) - best.get("val_accuracy", float("nan")) if best else None
    return {"run": str(run_dir), "test_top1": metrics["top1"], "test_top3": metrics["top3"],
            "macro_f1": metrics["macro_f1"], "best_val_loss": best.get("val_loss"), "best_epoch": best.get("epoch"),
            "train_val_gap": gap, "epochs_run": len(history),
            "train_s": round(sum(entry["seconds"] for entry in history), 2), "wall_s": round(wall_s, 2)}


def compare_strategies(options: Options, out: str | Path) -> dict:
    """Train both strategies into ``out``; returns (and writes) the comparison."""
    from nsl.train.run import train_run

    out = Path(out)
    taken = [name for name in STRATEGIES if (out / name).exists()]
    if taken:
        raise NslError(f"{out / taken[0]}: already exists; choose another --out folder")
    runs = strategy_options(options)
    rows = {}
    for name in STRATEGIES:
        log.info("compare: training %s", name)
        started = time.perf_counter()
        split_of = out / "progressive" if name == "single" else None
        run_dir = train_run(runs[name], out / name, split_of=split_of)
        rows[name] = summarise_run(run_dir, time.perf_counter() - started)
    model = options.model
    result = {"data": str(options.data.data), "epoch_budget": runs["single"].hparams.single.epochs,
              "backbone": model.backbone, "imgsz": model.imgsz, "weights": model.weights, "runs": rows}
    write_json(out / "comparison.json", result)
    write_text(out / "comparison.md", comparison_markdown(result))
    return result


def _fmt(value, pattern: str) -> str:
    return "-" if value is None else format(value, pattern)


def comparison_markdown(result: dict) -> str:
    lines = [f"# Progressive vs single-phase training", "",
             f"Data `{result['data']}`, {result['backbone']} {result['imgsz']} px, weights `{result['weights']}`, "
             f"the same split, a budget of {result['epoch_budget']} epochs each.", "",
             "| strategy | test top-1 | test top-3 | macro F1 | best val loss | epoch of best | train-val gap "
             "| epochs run | wall time (s) |", "|---|---|---|---|---|---|---|---|---|"]
    for name, row in result["runs"].items():
        lines.append(f"| {name} | {row['test_top1']:.4f} | {row['test_top3']:.4f} | {row['macro_f1']:.4f} | "
                     f"{_fmt(row['best_val_loss'], '.4f')} | {_fmt(row['best_epoch'], 'd')} | "
                     f"{_fmt(row['train_val_gap'], '+.4f')} | {row['epochs_run']} | {row['wall_s']:.1f} |")
    lines += ["", "Train-val gap: training accuracy minus validation accuracy at the epoch of the best validation "
              "loss (training accuracy is measured on augmented images).", ""]
    return "\n".join(lines)
