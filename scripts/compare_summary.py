"""Summarise several `nsl compare` folders (one per weights setting and seed) into one README, JSON and PNG.

    python scripts/compare_summary.py OUT_DIR... --out benchmarks/compare_asl36 [--command "..."]

Reads each folder's comparison.json and the two runs' history.json; groups by weights, input size and epoch
budget; per seed and mean ± sd
(sample sd) of every figure, the paired difference progressive - single per seed, and a verdict computed from
those numbers (no figure here is typed by hand). Validation curves of both strategies go to val_curves.png.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nsl.errors import NslError  # noqa: E402
from nsl.fileio import read_json, write_json, write_text  # noqa: E402
from nsl.rundir import RunDir  # noqa: E402

FIGURES = [("test_top1", "test top-1", ".3f"), ("test_top3", "test top-3", ".3f"), ("macro_f1", "macro F1", ".3f"),
           ("best_val_loss", "best val loss", ".3f"), ("best_epoch", "epoch of best", ".0f"),
           ("epochs_run", "epochs run", ".0f"), ("wall_s", "wall time (s)", ".0f")]
STRATEGIES = ("progressive", "single")


def weights_tag(weights: str) -> str:
    return "none (random init)" if weights == "none" else f"ImageNet (`{Path(weights).name}`)"


def load(folders: list[Path]) -> list[dict]:
    entries = []
    for folder in folders:
        path = folder / "comparison.json"
        if not path.is_file():
            raise NslError(f"{folder}: no comparison.json (run 'nsl compare --out {folder}' first)")
        result = read_json(path)
        config = _config_of(RunDir(folder / "progressive").config_file)
        seed = int(config["seed"])
        plan = folder / "progressive" / "plan.json"  # the phases as run (epochs=N deals a budget over them)
        phases = read_json(plan)["phases"] if plan.is_file() else config["phases"]
        result["recipe"] = ", ".join(f"{p['name']} {p['epochs']} epochs at {p['lr']:g} (trainable: {p['trainable']})"
                                     for p in phases)
        curves = {name: RunDir(Path(result["runs"][name]["run"])).history() for name in STRATEGIES}
        entries.append({"folder": str(folder), "seed": seed, **result, "curves": curves,
                        "split": config["split"], "test_groups": config.get("split_test_groups"),
                        "crop": config.get("crop", "image")})
    return entries


def _config_of(config_path: Path) -> dict:
    import yaml

    return yaml.safe_load(config_path.read_text(encoding="utf-8"))


def group_label(entry: dict) -> str:
    return f"weights {weights_tag(entry['weights'])}, {entry['imgsz']} px, {entry['epoch_budget']} epochs"


def mean_sd(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def group_table(entries: list[dict]) -> list[str]:
    header = "| strategy | seed | " + " | ".join(label for _, label, _ in FIGURES) + " |"
    lines = [header, "|" + "---|" * (len(FIGURES) + 2)]
    for name in STRATEGIES:
        for entry in sorted(entries, key=lambda e: e["seed"]):
            row = entry["runs"][name]
            lines.append(f"| {name} | {entry['seed']} | " + " | ".join(
                "-" if row[key] is None else format(row[key], fmt) for key, _, fmt in FIGURES) + " |")
        cells = []
        for key, _, fmt in FIGURES:
            mean, sd = mean_sd([float(e["runs"][name][key]) for e in entries if e["runs"][name][key] is not None])
            cells.append(f"**{mean:{fmt}} ± {sd:{fmt}}**")
        lines.append(f"| **{name}** | mean ± sd | " + " | ".join(cells) + " |")
    return lines


def verdict(entries: list[dict]) -> dict:
    """Paired differences (progressive - single) of test top-1 and best val loss, and what they support."""
    top1 = [e["runs"]["progressive"]["test_top1"] - e["runs"]["single"]["test_top1"] for e in entries]
    loss = [e["runs"]["progressive"]["best_val_loss"] - e["runs"]["single"]["best_val_loss"] for e in entries]
    n_test = max(1, min(_test_size(e) for e in entries))
    mean, sd = mean_sd(top1)
    wins = sum(d > 0 for d in top1), sum(d < 0 for d in top1)
    if len(top1) > 1 and sd > 0:
        sem = sd / len(top1) ** 0.5
        clear = abs(mean) > 2 * sem and (wins[0] == len(top1) or wins[1] == len(top1))
    else:
        clear = False
    leader = "progressive" if mean > 0 else "single" if mean < 0 else "neither"
    text = (f"test top-1 progressive - single: {mean:+.3f} ± {sd:.3f} over {len(top1)} seed(s) "
            f"(progressive ahead in {wins[0]}, single in {wins[1]}); best val loss difference "
            f"{statistics.fmean(loss):+.3f}. ")
    chance = 1 / _classes(entries[0])
    means = {name: statistics.fmean(e["runs"][name]["test_top1"] for e in entries) for name in STRATEGIES}
    if max(means.values()) < 2 * chance:
        text += f"Both strategies are at chance level (1/{_classes(entries[0])} = {chance:.3f}): nothing was learnt. "
    if len(top1) < 2:
        text += "One seed only: no estimate of the noise."
    elif clear:
        text += f"{leader} is ahead on every seed and the mean difference exceeds twice its standard error."
    else:
        text += f"The difference is within the noise of these seeds (one test photo is {1 / n_test:.3f} of top-1)."
    return {"top1_diff": top1, "val_loss_diff": loss, "mean_top1_diff": mean, "sd_top1_diff": sd,
            "wins_progressive": wins[0], "wins_single": wins[1], "clear": clear, "leader": leader, "text": text}


def _classes(entry: dict) -> int:
    return len(RunDir(Path(entry["runs"]["progressive"]["run"])).labels())


def _test_size(entry: dict) -> int:
    metrics = RunDir(Path(entry["runs"]["progressive"]["run"])).metrics()
    return int(metrics.get("n_images") or 0)


def plot_curves(groups: dict[str, list[dict]], out: Path) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(2, len(groups))
    rows = -(-len(groups) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.5 * cols, 4 * rows), squeeze=False)
    colours = {"progressive": "tab:blue", "single": "tab:orange"}
    for ax in axes.flat[len(groups):]:
        ax.axis("off")
    for ax, (label, entries) in zip(axes.flat, groups.items()):
        for name in STRATEGIES:
            for i, entry in enumerate(entries):
                history = entry["curves"][name]
                ax.plot([h["epoch"] for h in history], [h["val_accuracy"] for h in history], color=colours[name],
                        alpha=0.7, label=name if i == 0 else None)
        ax.set_title(f"validation accuracy, {label.replace('`', '')}", fontsize=8)
        ax.set_xlabel("epoch (one line per seed)")
        ax.set_ylim(0, 1)
        ax.legend()
    fig.tight_layout()
    path = out / "val_curves.png"
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    tmp.replace(path)
    return path


def still_improving(groups: dict[str, list[dict]]) -> str:
    """'N of M runs' whose best validation loss came in their last epoch."""
    rows = [entry["runs"][name] for entries in groups.values() for entry in entries for name in STRATEGIES]
    last = sum(row["best_epoch"] == row["epochs_run"] for row in rows)
    return f"{last} of the {len(rows)} runs"


def stopped_early(groups: dict[str, list[dict]]) -> str:
    """'N of the M runs' that ran fewer epochs than their budget ('' when none did)."""
    rows = [(entry, name) for entries in groups.values() for entry in entries for name in STRATEGIES]
    short = [f"{name} seed {entry['seed']} ({entry['weights'] if entry['weights'] == 'none' else 'ImageNet'})"
             for entry, name in rows if entry["runs"][name]["epochs_run"] < entry["epoch_budget"]]
    return f"{len(short)} of the {len(rows)} runs ({', '.join(short)})" if short else ""


def budget_note(groups: dict[str, list[dict]]) -> str:
    budgets = {entries[0]["epoch_budget"] for entries in groups.values()}
    if len(budgets) > 1:
        return ("Groups with the same weights and input size but different budgets show how the ranking moves "
                "with the budget; only those pairs isolate it.")
    return ("A longer budget may rank the strategies differently: docs/TRAINING.md has one 20-epoch run at 128 px "
            "(ImageNet weights, one seed) in which the single phase came out ahead.")


BN_FIX_COMMIT = "1f504f9"  # "BatchNorm momentum 0.9 when the backbone starts from random weights"


def bn_fix_note(groups: dict[str, list[dict]]) -> str:
    """Caveat on the weights-none rows: measured with the BatchNorm fix or not, and what the fixed runs show.

    Runs made before the fix have no ``bn_momentum`` key in their saved config.yaml (the key came with it).
    Returns '' when no group starts from random weights."""
    none = [entry for entries in groups.values() for entry in entries if entry["weights"] == "none"]
    if not none:
        return ""
    bug = ("the Keras MobileNets' BatchNorm momentum 0.999 left the moving statistics at their initial values, so "
           "validation and test could sit at chance whatever the training did")
    runs = [Path(entry["runs"][name]["run"]) for entry in none for name in STRATEGIES]
    if not all("bn_momentum" in (_config_of(RunDir(run).config_file) or {}) for run in runs):  # as saved, raw
        return (f"- **The weights-none runs predate commit {BN_FIX_COMMIT}** (BatchNorm momentum 0.9 from random "
                f"weights): {bug}. Their figures are not valid; delete those run folders and rerun.")
    chance = 1 / _classes(none[0])
    top1 = max(statistics.fmean(e["runs"][name]["test_top1"] for e in none) for name in STRATEGIES)
    train_acc = max(h["accuracy"] for e in none for name in STRATEGIES for h in e["curves"][name])
    budget = "/".join(str(b) for b in sorted({e["epoch_budget"] for e in none}))
    note = (f"- The weights-none rows were remeasured after commit {BN_FIX_COMMIT} (BatchNorm momentum 0.9 from "
            f"random weights): the none figures published before it (both strategies at chance) were measured "
            f"with a bug, {bug}. ")
    if top1 < 2 * chance:
        note += (f"With the fix they are still at chance, and so is training accuracy (at most {train_acc:.3f} in "
                 f"any epoch of any run): with {budget} epochs at these learning rates random weights learn nothing, "
                 f"bug or not; the at-chance result stands.")
    else:
        note += (f"With the fix they learn (best mean test top-1 {top1:.3f}, chance {chance:.3f}): the earlier "
                 f"at-chance figures were the bug's.")
    return note


def render(groups: dict[str, list[dict]], verdicts: dict[str, dict], command: str, machine: str) -> str:
    first = next(iter(groups.values()))[0]
    n_test = _test_size(first)
    grouped = first.get("split") == "grouped" and first.get("test_groups")
    lines = ["# Progressive vs single-phase training on real photos (asl_36)" + (
                 f": unseen signers ({', '.join(first['test_groups'])} held out)" if grouped else ""), "",
             f"`nsl compare` on `{Path(first['data']).name}`: {first['backbone']} 1.0, batch 32; within one "
             "comparison both strategies get the same split and the same epoch budget. Progressive = the phases "
             "below (the dataset authors' recipe by default: head, then layers 140+, then all layers); single = "
             "all layers from the start at 1e-4 with dropout 0.5. Early stopping (patience 5) on validation loss "
             "and the best weights restored, as in `nsl train`.", "",
             *[f"- {label}: progressive = {entries[0]['recipe']}." for label, entries in groups.items()], "",
             f"Machine: {machine}. Generated {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}.", "",
             "## Result", ""]
    clear = {label: v["leader"] for label, v in verdicts.items() if v["clear"]}
    if len(set(clear.values())) > 1:
        lines += ["No single winner: the strategy ahead on every seed changes with the setting ("
                  + "; ".join(f"{leader} with {label}" for label, leader in clear.items()) + ").", ""]
    for label, verdict_ in verdicts.items():
        lines.append(f"- **{label}**: {verdict_['text']}")
    for label, entries in groups.items():
        lines += ["", f"## {label[0].upper()}{label[1:]}", "", *group_table(entries)]
    lines += ["", "![validation accuracy per epoch](val_curves.png)", "",
              "## Caveats", "",
              *(_split_caveats(first, n_test) if grouped else [
              f"- Small data: 36 classes x 10 photos (5 signers); a stratified 70/15/15 split gives 252 training, "
              f"54 validation and {n_test} test photos, so one test photo moves top-1 by {1 / max(n_test, 1):.3f}. "
              "Per-seed figures are noisy; read the mean ± sd (sample sd over seeds) and the per-seed sign.",
              "- Each seed draws a different random split of the photos and a different initialisation and "
              "augmentation; within a seed both strategies use the same split. Photos of one signer land in "
              "train and test alike (the split is random, not by signer), so these figures say nothing about "
              "unseen signers."]),
              "- The photos are American fingerspelling (hand on black), not the NSL dataset: this compares "
              "training strategies on real photos, it is not an NSL accuracy figure.",
              f"- Short budgets: {still_improving(groups)} had their best "
              "validation loss in their last epoch, i.e. were still improving when the budget ran out (see the "
              "curves). " + budget_note(groups),
              *([note] if (note := bn_fix_note(groups)) else []),
              *([f"- Early stopping (patience 5 on validation loss) ended {stopped} before the budget."]
                if (stopped := stopped_early(groups)) else []),
              "- Wall times are on a shared machine (other jobs ran beside some runs) and include the first "
              "epochs' graph tracing; they compare the strategies only roughly.", "",
              "## Regenerate", "", "```", command, "```", "",
              "Runs are kept (not committed) under the folders listed in `results.json`; the script reuses "
              "finished compares, so rerunning it rebuilds this page only.", ""]
    return "\n".join(lines)


def _split_caveats(first: dict, n_test: int) -> list[str]:
    return [f"- Grouped by signer: the test set is every photo of {', '.join(first['test_groups'])} ({n_test} "
            f"photos, one photo = {1 / max(n_test, 1):.3f} of top-1), people no training photo shows; the other "
            "signers' photos are split stratified into train and validation, so validation (early stopping) sees "
            "the training signers. Each seed draws its own train/validation split and initialisation; both "
            f"strategies of a seed share them. The CNN sees `crop={first.get('crop', 'image')}`.",
            "- This is the figure that matters for a new user's signers; the random-split comparison "
            "(benchmarks/compare_asl36) flatters both strategies."]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path, help="nsl compare --out folders")
    parser.add_argument("--out", type=Path, required=True, help="folder for README.md, results.json, val_curves.png")
    parser.add_argument("--command", default="", help="the command that regenerates the page")
    args = parser.parse_args(argv)
    try:
        entries = load(args.folders)
    except NslError as err:
        print(f"compare_summary: error: {err}", file=sys.stderr)
        return 2
    groups: dict[str, list[dict]] = {}
    for entry in entries:
        groups.setdefault(group_label(entry), []).append(entry)
    verdicts = {label: verdict(group) for label, group in groups.items()}
    args.out.mkdir(parents=True, exist_ok=True)
    machine = f"{platform.machine()}, {_cores()} CPU cores, Python {platform.python_version()}, CPU only"
    plot_curves(groups, args.out)
    write_text(args.out / "README.md", render(groups, verdicts, args.command, machine))
    write_json(args.out / "results.json", {
        "machine": machine, "verdicts": verdicts,
        "runs": [{key: value for key, value in e.items() if key != "curves"} for e in entries]})
    print(f"wrote {args.out / 'README.md'}")
    return 0


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


if __name__ == "__main__":
    sys.exit(main())
