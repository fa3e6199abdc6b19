"""``export_report.md``: one row per file (accuracy, fidelity, size, latency), the gate, PTQ vs QAT side by side."""

from __future__ import annotations

COLUMNS = ("file", "format", "precision", "size KB", "top-1 %", "top-3 %", "agreement % (95% CI)", "mean distance",
           "max prob diff", "ms 1 thread", "ms all threads")


def _pct(value) -> str:
    return "-" if value is None else f"{value * 100:.2f}"


def _agreement(metrics: dict) -> str:
    figures = metrics.get("fidelity")
    if not figures:
        return _pct(metrics.get("agreement"))
    low, high = figures["agreement_ci95"]
    return f"{figures['agreement'] * 100:.1f} ({low * 100:.1f}-{high * 100:.1f})"


def _row(name: str, entry: dict) -> list[str]:
    m = entry["metrics"]
    distance = (m.get("fidelity") or {}).get("mean_distance")
    return [name, entry["format"], entry["precision"] + (" (QAT)" if entry.get("qat") else ""),
            f"{m['size_bytes'] / 1024:.1f}", _pct(m["top1"]), _pct(m["top3"]), _agreement(m),
            "-" if distance is None else f"{distance:.4f}",
            "-" if m["max_prob_diff"] is None else f"{m['max_prob_diff']:.4f}",
            f"{m['latency_ms_1thread']:.2f}", f"{m['latency_ms_all']:.2f}"]


def _markdown(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def metrics_table(files: dict[str, dict], keras_metrics: dict | None = None) -> str:
    """A markdown table of every file's figures (plus the Keras model's accuracy when given)."""
    rows = [_row(name, entry) for name, entry in files.items()]
    if keras_metrics:
        rows.insert(0, ["(Keras model)", "keras", "fp32", "-", _pct(keras_metrics["top1"]),
                        _pct(keras_metrics["top3"]), "100 (reference)", "0", "0", "-", "-"])
    return _markdown(COLUMNS, rows)


def qat_comparison(files: dict[str, dict]) -> str:
    """PTQ and QAT int8 files of each format side by side ('' when no QAT file was made)."""
    rows = []
    for fmt in ("tflite", "onnx"):
        ptq = next((e for e in files.values() if e["format"] == fmt and e["precision"] == "int8"
                    and not e.get("qat")), None)
        qat = next((e for e in files.values() if e["format"] == fmt and e.get("qat")), None)
        if ptq and qat:
            gain = (qat["metrics"]["top1"] - ptq["metrics"]["top1"]) * 100
            rows.append([fmt, _pct(ptq["metrics"]["top1"]), _pct(qat["metrics"]["top1"]), f"{gain:+.2f}",
                         _pct(ptq["metrics"]["agreement"]), _pct(qat["metrics"]["agreement"])])
    if not rows:
        return ""
    return _markdown(("format", "PTQ top-1 %", "QAT top-1 %", "QAT gain (points)", "PTQ agreement %",
                      "QAT agreement %"), rows)


def _images(images: dict) -> str:
    return f"{sum(images.values())} ({', '.join(f'{count} {name}' for name, count in images.items())})"


def _gate_text(settings: dict, landmarks: dict | None = None) -> list[str]:
    gate, failures = settings.get("gate") or {}, settings.get("gate_failures", [])
    lines = []
    if gate.get("images"):
        lines.append(f"Gate images of the CNN (everything calibration did not use): {_images(gate['images'])}.")
    if (landmarks or {}).get("gate", {}).get("images"):
        lines.append(f"Gate hands of the landmark model (calibrated on every training hand): "
                     f"{_images(landmarks['gate']['images'])}.")
    lines.append(f"Each int8 file must agree with its float model's top-1 on at least "
                 f"{gate.get('min_agreement', 0) * 100:g}% of them, keep the mean total-variation distance of its "
                 f"probabilities within {gate.get('max_distance', 1):g}, and not lose more than "
                 f"{gate.get('max_drop', settings.get('max_drop', 1.0)):g} points of top-1 on them beyond doubt (the "
                 f"whole 95% interval of the paired drop above it). Agreement intervals are Wilson's 95% intervals.")
    result = (f"FAILED, accepted with --allow-drop: {'; '.join(failures)}" if failures
              else "passed (every int8 file behaves like its float model on the gate images)")
    return [" ".join(lines), "", f"int8 gate: {result}."]


def _made_text(settings: dict) -> str:
    calibration = settings.get("calibration") or {}
    made = f"Calibration: {settings.get('calibration_images', 0)} training images, stratified by class"
    made += f" ({calibration['per_class']} a class)." if calibration.get("per_class") else "."
    ptq = settings.get("ptq") or {}
    if ptq.get("remedy", "none") != "none":
        made += (f" Post-training int8 from the float model with remedy '{ptq['remedy']}' (docs/QUANTIZATION.md); "
                 f"ONNX calibration {ptq.get('onnx_calibration', 'minmax')}.")
    if settings.get("qat_epochs"):
        made += f" QAT: {settings['qat_epochs']} epoch(s) at learning rate {settings['qat_lr']:g}."
    fallback = settings.get("qat_fallback")
    if fallback:
        outcome = [f"{old} replaced by {new['by']} (closer to the float model)"
                   for old, new in fallback["replaced"].items()]
        outcome += [f"{old} kept ({new['qat_file']} was no closer)" for old, new in fallback["kept"].items()]
        made += (f" Post-training int8 missed the gate, so QAT ran by itself ({fallback['epochs']} epoch(s)): "
                 + "; ".join(outcome) + ".")
    return made


def render_report(metadata: dict) -> str:
    """The whole report, from the bundle's metadata."""
    settings = metadata.get("export", {})
    n_images = next(iter(metadata["files"].values()))["metrics"]["n_images"] if metadata["files"] else 0
    parts = [f"# Export report: {metadata['source_run']}", "",
             f"Created {metadata['created']} by nsl-edge {metadata['package_version']} "
             f"(commit {metadata['git_commit']}). Every file ran through its device runtime (ai-edge-litert for "
             f".tflite, onnxruntime for .onnx). top-1 and top-3 are on the {n_images} test images; agreement (share "
             f"of images whose top-1 equals the Keras model's) and mean distance (half the L1 distance between the "
             f"probability vectors) on all gate images.", "",
             metrics_table(metadata["files"], metadata.get("keras_metrics")), ""]
    comparison = qat_comparison(metadata["files"])
    if comparison:
        parts += ["## Post-training quantization vs quantization-aware training", "", comparison, ""]
    landmarks = (metadata.get("models") or {}).get("landmarks")
    parts += [_made_text(settings), "", *_gate_text(settings, landmarks), "",
              f"Default files: {', '.join(f'{k}: {v}' for k, v in metadata['default_file'].items())}.", ""]
    return "\n".join(parts)
