"""``export_report.md``: one row per file (accuracy, agreement, size, latency) and PTQ vs QAT side by side."""

from __future__ import annotations

COLUMNS = ("file", "format", "precision", "size KB", "top-1 %", "top-3 %", "agreement %", "max prob diff",
           "ms 1 thread", "ms all threads")


def _pct(value) -> str:
    return "-" if value is None else f"{value * 100:.2f}"


def _row(name: str, entry: dict) -> list[str]:
    m = entry["metrics"]
    return [name, entry["format"], entry["precision"] + (" (QAT)" if entry.get("qat") else ""),
            f"{m['size_bytes'] / 1024:.1f}", _pct(m["top1"]), _pct(m["top3"]), _pct(m["agreement"]),
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
                        _pct(keras_metrics["top3"]), "100.00", "0", "-", "-"])
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


def render_report(metadata: dict) -> str:
    """The whole report, from the bundle's metadata."""
    settings = metadata.get("export", {})
    gate_failures, max_drop = settings.get("gate_failures", []), settings.get("max_drop", 1.0)
    n_images = next(iter(metadata["files"].values()))["metrics"]["n_images"] if metadata["files"] else 0
    parts = [f"# Export report: {metadata['source_run']}", "",
             f"Created {metadata['created']} by nsl-edge {metadata['package_version']} "
             f"(commit {metadata['git_commit']}). Evaluated on {n_images} test images through each file's device "
             f"runtime (ai-edge-litert for .tflite, onnxruntime for .onnx); agreement = share of images whose "
             f"top-1 equals the Keras model's.", "",
             metrics_table(metadata["files"], metadata.get("keras_metrics")), ""]
    comparison = qat_comparison(metadata["files"])
    if comparison:
        parts += ["## Post-training quantization vs quantization-aware training", "", comparison, ""]
    gate = (f"FAILED, accepted with --allow-drop: {'; '.join(gate_failures)}" if gate_failures
            else f"passed (every int8 file within {max_drop:g} points of the float model's top-1)")
    made = f"Calibration: {settings.get('calibration_images', 0)} training images, stratified by class."
    if settings.get("qat_epochs"):
        made += f" QAT: {settings['qat_epochs']} epoch(s) at learning rate {settings['qat_lr']:g}."
    parts += [made, "", f"Accuracy gate: {gate}.", "",
              f"Default files: {', '.join(f'{k}: {v}' for k, v in metadata['default_file'].items())}.", ""]
    return "\n".join(parts)
