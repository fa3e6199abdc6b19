"""Measure int8 fidelity remedies on finished runs: the table behind docs/QUANTIZATION.md.

    python scripts/quant_study.py RUN_DIR... --variants tflite/none,tflite/round,onnx/none --out results.json
    python scripts/quant_study.py --render results.json          # the markdown tables, from the saved figures

Each variant is FORMAT/REMEDY[/OPTION...]: FORMAT tflite | onnx | qat (QAT int8 TFLite, OPTION epochs=N);
REMEDY one of nsl.export.ptq.REMEDIES; OPTIONs w7 | w8 (weight bits, default 8; the remedy targets that grid),
per-tensor (TFLite weights one scale per tensor), percentile |
entropy (onnxruntime's calibrators), distill (QAT towards the float model's probabilities), calib=all | calib=N (per class) | calib=aug (the default images plus two
augmented copies of each). Every int8 file is compared with the run's Keras model through its own runtime on
the run's validation + test images (the same images for every variant of a run, whatever the calibration) and,
where the calibration left them unused, on the remaining training images (reported apart). Figures already in
``--out`` are kept, so a rerun measures only what is missing. scripts/quant_study.sh runs the whole study.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

log = logging.getLogger("quant_study")


def parse_variant(text: str) -> dict:
    fmt, remedy, *options = text.split("/")
    spec = {"name": text, "fmt": fmt, "remedy": remedy, "per_channel": True, "method": "minmax", "calib": None,
            "epochs": 1, "bits": 8, "target": "labels"}
    for option in options:
        if option == "per-tensor":
            spec["per_channel"] = False
        elif option in ("percentile", "entropy"):
            spec["method"] = option
        elif option.startswith("calib="):
            spec["calib"] = option.split("=", 1)[1]
        elif option == "distill":
            spec["target"] = "float"
        elif option in ("w7", "w8"):
            spec["bits"] = int(option[1])
        elif option.startswith("epochs="):
            spec["epochs"] = int(option.split("=", 1)[1])
        else:
            raise SystemExit(f"unknown variant option {option!r} in {text!r}")
    return spec


class RunStudy:
    """One run: its model, split, Keras reference on the fixed held-out images, and the converted files."""

    def __init__(self, run_dir: Path, work: Path):
        from nsl.export.verify import load_gate_images
        from nsl.rundir import RunDir
        from nsl.train.model import load_classifier

        self.run = RunDir.open(run_dir)
        self.options = self.run.options()
        self.split = self.run.split()
        self.classes = len(self.run.labels())
        self.model = load_classifier(self.run.best_model)
        self.work = work / self.run.name
        self.work.mkdir(parents=True, exist_ok=True)
        self.heldout = load_gate_images({"test": self.split["test"], "val": self.split["val"]}, self.options.crop,
                                        self.options.data.data)
        self.reference = self.keras(self.heldout.images)
        self._saved: dict[tuple, Path] = {}

    def keras(self, images: np.ndarray) -> np.ndarray:
        from nsl.export.verify import predict_all

        class Keras:
            def predict(_, batch):
                return np.asarray(self.model(batch.astype(np.float32), training=False), np.float32)

        return predict_all(Keras(), images)

    def calibration(self, calib: str | None) -> tuple[list, np.ndarray]:
        from nsl.export.calibration import calibration_images, stratified_sample

        train, seed = self.split["train"], self.options.hparams.seed
        size = len(train) if calib == "all" else int(calib) * self.classes if calib and calib.isdigit() else None
        chosen = stratified_sample(train, min(size, len(train)) if size else None, self.classes, seed)
        images = calibration_images(chosen, self.options.crop, self.options.data.data)
        if calib == "aug":
            images = np.concatenate([images, *augmented(images, self.options, 2)])
        return chosen, images

    def saved_model(self, remedy: str, calib: str | None, images: np.ndarray, bits: int) -> tuple[Path, dict]:
        from nsl.export.converters import to_savedmodel
        from nsl.export.ptq import remedied_copy
        from nsl.export.verify import fidelity

        key = (remedy, calib, bits if remedy != "none" else 8)
        if key not in self._saved:
            model, record = remedied_copy(self.model, images, remedy, key[2])
            float_copy = predict_copy(model, self.heldout.images)
            record["float_copy"] = short(fidelity(float_copy, self.reference, self.heldout.labels))
            folder = to_savedmodel(model, self.work / f"sm_{'_'.join(map(str, key))}")
            self._saved[key] = (folder, record)
        return self._saved[key]

    def build(self, spec: dict) -> tuple[Path, list, dict]:
        from nsl.export.converters import onnx_from_savedmodel, tflite_int8
        from nsl.export.onnx_quant import quantize_onnx

        chosen, images = self.calibration(spec["calib"])
        stem = spec["name"].replace("/", "_").replace("=", "-").replace("+", "-")
        if spec["fmt"] == "qat":
            return self.build_qat(spec, chosen, images, stem)
        saved, record = self.saved_model(spec["remedy"], spec["calib"], images, spec["bits"])
        record = {**record, "calibration_images": len(images)}
        if spec["fmt"] == "tflite":
            return tflite_int8(saved, self.work / f"{stem}.tflite", images, spec["per_channel"]), chosen, record
        float_onnx = saved.with_suffix(".onnx")
        if not float_onnx.is_file():
            onnx_from_savedmodel(saved, float_onnx)
        path = quantize_onnx(float_onnx, self.work / f"{stem}.onnx", images, spec["method"], spec["per_channel"],
                             spec["bits"])
        return path, chosen, record

    def build_qat(self, spec: dict, chosen: list, images: np.ndarray, stem: str):
        from nsl.export.converters import tflite_int8
        from nsl.export.qat import qat_savedmodel

        saved = qat_savedmodel(self.model, self.split["train"], self.options, spec["epochs"], images,
                               self.work / f"qat_{stem}", target=spec["target"])
        return tflite_int8(saved, self.work / f"{stem}.tflite", images), chosen, {"qat_epochs": spec["epochs"]}

    def measure(self, spec: dict) -> dict:
        from nsl.edge.classifier import open_classifier
        from nsl.export.verify import fidelity, load_gate_images, predict_all

        start = time.perf_counter()
        path, chosen, record = self.build(spec)
        classifier = open_classifier(path)
        probs = predict_all(classifier, self.heldout.images)
        row = {"run": self.run.name, "variant": spec["name"], "size_bytes": path.stat().st_size, **record,
               "heldout": short(fidelity(probs, self.reference, self.heldout.labels))}
        used = {sample.path for sample in chosen}
        unused = [s for s in self.split["train"] if s.path not in used]
        if unused:
            extra = load_gate_images({"train": unused}, self.options.crop, self.options.data.data)
            row["train_unused"] = short(fidelity(predict_all(classifier, extra.images), self.keras(extra.images),
                                                 extra.labels))
        row["seconds"] = round(time.perf_counter() - start, 1)
        return row


def predict_copy(model, images: np.ndarray) -> np.ndarray:
    return np.concatenate([np.asarray(model(images[i:i + 32].astype(np.float32), training=False))
                           for i in range(0, len(images), 32)])


def augmented(images: np.ndarray, options, copies: int) -> list[np.ndarray]:
    """``copies`` passes of the trainer's own augmentation over ``images`` (uint8 again)."""
    from nsl.train.pipeline import augmenter

    augment = augmenter(options.augment, options.hparams.seed)
    return [np.clip(np.asarray(augment(images.astype(np.float32), training=True)), 0, 255).astype(np.uint8)
            for _ in range(copies)]


def short(figures: dict) -> dict:
    keys = ("n_images", "agreement", "agreement_ci95", "mean_distance", "top1", "reference_top1", "top1_drop")
    return {key: figures[key] for key in keys}


def measure_runs(run_dirs: list[Path], variants: list[str], out: Path) -> list[dict]:
    rows = json.loads(out.read_text()) if out.is_file() else []
    done = {(row["run"], row["variant"]) for row in rows}
    with tempfile.TemporaryDirectory(prefix="quant-study-") as work:
        for run_dir in run_dirs:
            todo = [v for v in variants if (Path(run_dir).name, v) not in done]
            if not todo:
                continue
            study = RunStudy(Path(run_dir), Path(work))
            for variant in todo:
                row = study.measure(parse_variant(variant))
                log.info("%s %s: agreement %.3f distance %.3f drop %+.1f (%.0f s)", row["run"], variant,
                         row["heldout"]["agreement"], row["heldout"]["mean_distance"], row["heldout"]["top1_drop"],
                         row["seconds"])
                rows.append(row)
                out.write_text(json.dumps(rows, indent=1))
    return rows


BEFORE = {"TFLite": "tflite/none", "ONNX": "onnx/none"}                 # what nsl export did before issue 12
AFTER = {"TFLite": "tflite/round/calib=all", "ONNX": "onnx/round/w7/calib=all"}  # its defaults now (asl_36)


def _cell(row: dict | None) -> str:
    if row is None:
        return "-"
    f = row["heldout"]
    low, high = f["agreement_ci95"]
    return f"{f['agreement'] * 100:.1f} ({low * 100:.0f}-{high * 100:.0f}) / {f['mean_distance']:.3f} / {f['top1_drop']:+.1f}"


def render_before_after(rows: list[dict]) -> str:
    """Per run: the Keras top-1 and, per format, agreement (95% interval) / mean distance / top-1 drop, before
    and after."""
    by = {(row["run"], row["variant"]): row for row in rows}
    runs = sorted({row["run"] for row in rows}, key=run_order)
    header = ["run", "images", "Keras top-1 %"] + [f"{fmt} {when}" for fmt in BEFORE for when in ("before", "after")]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for run in runs:
        any_row = by.get((run, BEFORE["TFLite"])) or next(row for row in rows if row["run"] == run)
        cells = [run.replace("prog_", ""), str(any_row["heldout"]["n_images"]),
                 f"{any_row['heldout']['reference_top1'] * 100:.1f}"]
        for fmt in BEFORE:
            cells += [_cell(by.get((run, BEFORE[fmt]))), _cell(by.get((run, AFTER[fmt])))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_variants(rows: list[dict]) -> str:
    """Per variant: mean agreement / distance / top-1 drop over the runs, and every run's agreement."""
    runs = sorted({row["run"] for row in rows}, key=run_order)
    variants = list(dict.fromkeys(row["variant"] for row in rows))
    by = {(row["run"], row["variant"]): row for row in rows}
    header = ["variant", "runs", "mean agreement %", "min agreement %", "mean distance", "mean top-1 drop (points)",
              *[run.replace("prog_", "") for run in runs]]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for variant in variants:
        got = [by[(run, variant)] for run in runs if (run, variant) in by]
        agreement = [row["heldout"]["agreement"] for row in got]
        cells = [f"{by[(run, variant)]['heldout']['agreement'] * 100:.1f}" if (run, variant) in by else "-"
                 for run in runs]
        lines.append("| " + " | ".join([variant, str(len(got)), f"{np.mean(agreement) * 100:.1f}",
                                        f"{np.min(agreement) * 100:.1f}",
                                        f"{np.mean([r['heldout']['mean_distance'] for r in got]):.3f}",
                                        f"{np.mean([r['heldout']['top1_drop'] for r in got]):+.1f}", *cells]) + " |")
    return "\n".join(lines)


def render(rows: list[dict]) -> str:
    return "\n\n".join([
        "Before / after (agreement % with the Keras model, 95% Wilson interval / mean total-variation distance / "
        "top-1 drop in points, on each run's validation + test photos)", render_before_after(rows),
        "Every variant (mean over the runs it was measured on; agreement per run)", render_variants(rows)])


def run_order(name: str) -> tuple:
    parts = name.split("_")
    return (parts[1] if len(parts) > 1 else "", int(parts[-1].rstrip("px")) if parts[-1].endswith("px") else 0)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="*", type=Path)
    parser.add_argument("--variants", default="tflite/none,onnx/none")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/quantization/results.json"))
    parser.add_argument("--render", type=Path, metavar="RESULTS", help="print the tables of a results file")
    args = parser.parse_args(argv)
    if args.render:
        print(render(json.loads(args.render.read_text())))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    from nsl.env import prepare_tensorflow

    prepare_tensorflow()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    rows = measure_runs(args.runs, args.variants.split(","), args.out)
    print(render(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
