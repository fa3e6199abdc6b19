"""The summary of scripts/gpu_check.sh: OUT/gpu_check.json and OUT/gpu_check.md from what the check wrote.

    python scripts/gpu_check_summary.py OUT

Reads OUT/bench_training.json (the training section of nsl bench), OUT/run/ (history.json with each epoch's end
time, environment.json, split.csv), OUT/stages.jsonl (start and end of each step) and OUT/gpu_samples.csv
(nvidia-smi every 0.5 s; absent on a machine without a GPU, and then every figure is labelled CPU). The goals of
issue 13 are judged only on figures measured on a GPU; on the CPU they read "not measured on a GPU".
"""

from __future__ import annotations

import csv
import json
import statistics
import sys
from datetime import datetime
from pathlib import Path

PIPELINE_MARGIN = 1.5        # the pipeline must deliver 1.5x what the model consumes
RUN_LIMIT_S = 600            # the default progressive run within 10 minutes
UTILISATION_GOAL = 80.0      # % during the unfrozen phases


def read_stages(path: Path) -> dict[str, dict[str, float]]:
    stages: dict[str, dict[str, float]] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            event = json.loads(line)
            stages.setdefault(event["stage"], {})[event["event"]] = float(event["time"])
    return stages


def read_samples(path: Path) -> list[tuple[float, float]]:
    """(unix time, GPU utilisation %) of every nvidia-smi sample (its timestamps are local time)."""
    if not path.is_file():
        return []
    samples = []
    for row in csv.reader(path.read_text().splitlines()):
        try:
            when = datetime.strptime(row[0].strip(), "%Y/%m/%d %H:%M:%S.%f").timestamp()
            samples.append((when, float(row[2])))
        except (ValueError, IndexError):
            continue
    return samples


def utilisation(samples, windows) -> float | None:
    """Mean GPU utilisation over the samples inside any of ``windows`` [(start, end), ...]."""
    inside = [u for t, u in samples if any(a <= t <= b for a, b in windows)]
    return round(statistics.fmean(inside), 1) if inside else None


def median(values) -> float | None:
    return round(statistics.median(values), 1) if values else None


def summarise(out: Path) -> dict:
    bench = json.loads((out / "bench_training.json").read_text())
    run = out / "run"
    history = json.loads((run / "history.json").read_text())
    environment = json.loads((run / "environment.json").read_text())
    stages = read_stages(out / "stages.jsonl")
    samples = read_samples(out / "gpu_samples.csv")
    on_gpu = any("GPU" in d["device"] for d in environment["devices"]) and bool(samples)
    raw = bench["raw"]
    first, cached = median(raw["pipeline"]["first_epoch"]), median(raw["pipeline"]["cached"])
    frozen = median(raw["training"]["frozen"]["images_per_s"])
    unfrozen = median(raw["training"]["unfrozen"]["images_per_s"])
    least = min(e["trainable_params"] for e in history)
    epochs = [{"epoch": e["epoch"], "phase": e["phase"], "seconds": e["seconds"],
               "unfrozen": e["trainable_params"] > least,
               "gpu_utilisation": utilisation(samples, [(e["ended"] - e["seconds"], e["ended"])])} for e in history]
    unfrozen_windows = [(e["ended"] - e["seconds"], e["ended"]) for e in history if e["trainable_params"] > least]
    run_wall = stages["run"]["end"] - stages["run"]["start"]
    figures = {
        "device": "GPU" if on_gpu else "CPU",
        "pipeline_first_epoch_images_per_s": first,
        "pipeline_cached_images_per_s": cached,
        "training_frozen_images_per_s": frozen,
        "training_unfrozen_images_per_s": unfrozen,
        "pipeline_margin_first_epoch": round(first / unfrozen, 2) if unfrozen else None,
        "pipeline_margin_cached": round(cached / unfrozen, 2) if unfrozen else None,
        "run_wall_s": round(run_wall, 1),
        "run_epochs": len(history),
        "epoch_seconds_mean": round(statistics.fmean(e["seconds"] for e in history), 1),
        "gpu_utilisation_bench": utilisation(samples, [(stages["bench"]["start"], stages["bench"]["end"])]),
        "gpu_utilisation_unfrozen_epochs": utilisation(samples, unfrozen_windows),
        "gpu_utilisation_run": utilisation(samples, [(stages["run"]["start"], stages["run"]["end"])]),
        "data_wall_s": round(stages["data"]["end"] - stages["data"]["start"], 1),
        "bench_wall_s": round(stages["bench"]["end"] - stages["bench"]["start"], 1),
        "check_wall_s": round(stages["run"]["end"] - stages["data"]["start"], 1),
    }
    return {"figures": figures, "epochs": epochs, "goals": goals(figures, on_gpu),
            "bound": bound(figures), "environment": environment, "bench_notes": bench["notes"],
            "settings": raw["config"], "samples": len(samples)}


def goals(f: dict, on_gpu: bool) -> list[dict]:
    def judged(name: str, value, met: bool) -> dict:
        if not on_gpu:
            return {"goal": name, "value": value, "status": "not measured on a GPU (this run was on the CPU)"}
        return {"goal": name, "value": value, "status": "met" if met else "not met"}

    margin = min(f["pipeline_margin_first_epoch"] or 0, f["pipeline_margin_cached"] or 0)
    utilisation_value = f["gpu_utilisation_unfrozen_epochs"]
    return [judged(f"input pipeline >= {PIPELINE_MARGIN}x the unfrozen training rate (first epoch and cached)",
                   margin, margin >= PIPELINE_MARGIN),
            judged(f"default progressive run under {RUN_LIMIT_S // 60} minutes", f["run_wall_s"],
                   f["run_wall_s"] < RUN_LIMIT_S),
            judged(f"GPU utilisation above {UTILISATION_GOAL:.0f} % in the unfrozen phases", utilisation_value,
                   utilisation_value is not None and utilisation_value > UTILISATION_GOAL)]


def bound(f: dict) -> str:
    """Which side bounds the step, from the rates measured apart (and the utilisation where sampled)."""
    rate, first, cached = f["training_unfrozen_images_per_s"], f["pipeline_first_epoch_images_per_s"], \
        f["pipeline_cached_images_per_s"]
    util = f["gpu_utilisation_unfrozen_epochs"]
    if cached < rate:
        side = f"the input pipeline, even cached ({cached:g} < {rate:g} images/s unfrozen)"
    elif first < rate:
        side = (f"the input pipeline in the first epoch ({first:g} < {rate:g} images/s), the model in cached "
                f"epochs ({cached:g} >= {rate:g})")
    else:
        side = f"the model ({rate:g} images/s unfrozen; the pipeline gives {first:g} first epoch, {cached:g} cached)"
    if util is not None:
        side += f"; GPU utilisation in the unfrozen epochs {util:g} %"
    return side


def markdown(summary: dict) -> str:
    f, env = summary["figures"], summary["environment"]
    label = f["device"]
    devices = ", ".join(f"{d['name']}" + (f" ({d['memory_mib']} MiB)" if d.get("memory_mib") else "")
                        for d in env["devices"])
    lines = [f"# GPU check ({label} run)", ""]
    if label == "CPU":
        lines += ["**This run was on the CPU: it proves the script, not the GPU. No figure below is a GPU figure.**",
                  ""]
    lines += [f"Devices: {devices}. TensorFlow {env['tensorflow']} (CUDA build {env['cuda_build'] or '-'}, cuDNN "
              f"{env['cudnn_build'] or '-'}); {env['strategy']}, {env['replicas']} replica(s), global batch "
              f"{env['global_batch']}, dtype policy {env['dtype_policy']}. Settings: {summary['settings']}.", "",
              "| figure | value |", "|---|---|"]
    names = {"pipeline_first_epoch_images_per_s": "input pipeline alone, first epoch (images/s)",
             "pipeline_cached_images_per_s": "input pipeline alone, cached (images/s)",
             "training_frozen_images_per_s": "training, backbone frozen (images/s)",
             "training_unfrozen_images_per_s": "training, backbone unfrozen (images/s)",
             "run_wall_s": "default progressive run, wall time (s)", "run_epochs": "epochs run",
             "epoch_seconds_mean": "epoch wall time, mean (s, validation included)",
             "gpu_utilisation_bench": "GPU utilisation during the bench (%)",
             "gpu_utilisation_unfrozen_epochs": "GPU utilisation, unfrozen epochs (%)",
             "gpu_utilisation_run": "GPU utilisation, whole run (%)", "check_wall_s": "the whole check (s)"}
    lines += [f"| {text} | {'-' if f[key] is None else f[key]} |" for key, text in names.items()]
    lines += ["", "| epoch | phase | seconds | unfrozen | GPU % |", "|---|---|---|---|---|"]
    lines += [f"| {e['epoch']} | {e['phase']} | {e['seconds']} | {'yes' if e['unfrozen'] else 'no'} | "
              f"{'-' if e['gpu_utilisation'] is None else e['gpu_utilisation']} |" for e in summary["epochs"]]
    lines += ["", f"Bound: {summary['bound']}.", "", "| goal (issue 13) | value | status |", "|---|---|---|"]
    lines += [f"| {g['goal']} | {g['value']} | {g['status']} |" for g in summary["goals"]]
    lines += ["", "Bench notes:", *[f"- {note}" for note in summary["bench_notes"]], ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    out = Path((argv or sys.argv[1:])[0])
    summary = summarise(out)
    (out / "gpu_check.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    (out / "gpu_check.md").write_text(markdown(summary), encoding="utf-8")
    print(f"gpu_check: {out / 'gpu_check.md'} ({summary['figures']['device']} run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
