"""The bad-input corpus (issue 15): hostile and careless inputs over data, config values, bundles, model files and
sources, each generated here, and one table-driven test that runs ``nsl`` on each as a user would (a subprocess)
and asserts what every user mistake must give: a non-zero exit (2, not a signal), one error line naming the thing
at fault as the last line, no traceback, and nothing written or half-written (the case's folder is unchanged and
its temporary folder empty afterwards).

Each case works in its own folder holding copies of a valid dataset (``data``: two classes of 8 x 8 images), a
valid bundle (``bundle``: a tiny TFLite classifier of two labels, tests.hostile) and an image (``photo.png``);
its ``make`` spoils one thing. Cases run in the edge environment unless they name the train one (model files and
the few train-side checks that import TensorFlow).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import pytest

from tests.conftest import env_python, run_nsl
from tests.hostile import png_bomb, read_metadata, restamp, tiny_tflite, write_bundle, write_metadata

HDF5_HEAD = b"\x89HDF\r\n\x1a\n" + bytes(2040)  # what tf_keras's legacy loader recognises as HDF5
RUNTIME_FILES = {".ses"}  # onnxruntime 1.32 writes its telemetry session id into the temp folder on import
APP = ("app", "--model", "{case}/bundle", "--roi", "0,0,8,8", "--headless", "--max-frames", "2")
PREDICT = ("predict", "--model", "{case}/bundle", "--no-detect")


@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...]          # nsl's arguments; {case} is the case's folder
    fault: str                     # the one error line must contain it: the file, key or value at fault
    make: Callable[[Path], object] = lambda case: None
    env: str = "edge"


def _png(path: Path, value: int = 128, side: int = 8) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(cv2.imencode(".png", np.full((side, side, 3), value, np.uint8))[1].tobytes())
    return path


def _file(name: str, data: bytes | str):
    def make(case: Path):
        path = case / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
    return make


def _dataset(folders: dict[str, list[str]], root: str = "bad"):
    """A dataset folder: folder name -> file names (.png files get an image, others text)."""
    def make(case: Path):
        for folder, names in folders.items():
            (case / root / folder).mkdir(parents=True, exist_ok=True)
            for name in names:
                if name.endswith(".png"):
                    _png(case / root / folder / name)
                else:
                    (case / root / folder / name).write_text("not an image")
    return make


def _meta(change: Callable[[dict], object]):
    """Spoil the case's bundle metadata."""
    def make(case: Path):
        metadata = read_metadata(case / "bundle")
        change(metadata)
        write_metadata(case / "bundle", metadata)
    return make


def _model(data: Callable[[bytes], bytes]):
    """Replace the bundle's model file and record its new digest (damaged, but consistently listed)."""
    def make(case: Path):
        path = case / "bundle" / "model_fp32.tflite"
        path.write_bytes(data(path.read_bytes()))
        restamp(case / "bundle")
    return make


def _default(backend: str, name: str):
    return _meta(lambda m: m.update(default_file={backend: name}))


def _listed(name: str, target: Callable[[Path], Path] | None = None, default: bool = True):
    """List ``name`` as the bundle's file (with the real digest of ``target``, default the model)."""
    def make(case: Path):
        metadata = read_metadata(case / "bundle")
        entry = dict(metadata["files"].pop("model_fp32.tflite"))
        source = target(case) if target else case / "bundle" / "model_fp32.tflite"
        entry["sha256"] = hashlib.sha256(source.read_bytes()).hexdigest()
        metadata["files"][name] = entry
        if default:
            metadata["default_file"] = {"tflite": name}
        write_metadata(case / "bundle", metadata)
    return make


def _outside(case: Path) -> Path:
    path = case / "other" / "model.tflite"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(tiny_tflite(classes=2))
    return path


def _symlink_out(case: Path) -> Path:
    outside = _outside(case)
    os.symlink(outside, case / "bundle" / "linked.tflite")
    return outside


def _both(*makes):
    def make(case: Path):
        for step in makes:
            step(case)
    return make


def _run_folder(model: str = "best.keras", head: bytes = HDF5_HEAD):
    """A run folder made as ``nsl train`` makes one, whose ``model`` file is not the native Keras format."""
    def make(case: Path):
        run = case / "run"
        (run / "checkpoints").mkdir(parents=True)
        (run / "config.yaml").write_text(f"data: {case / 'data'}\nlabels: auto\nimgsz: 32\nweights: none\n")
        (run / "labels.json").write_text(json.dumps([{"index": i, "name": str(i), "roman": str(i)} for i in (0, 1)]))
        rows = [f"{p},{p.parent.name},,,{'test' if k % 2 else 'train'}"
                for k, p in enumerate(sorted((case / "data").rglob("*.png")))]
        (run / "split.csv").write_text("path,label,subset,group,split\n" + "\n".join(rows) + "\n")
        (run / "checkpoints" / "state.json").write_text(json.dumps({"phase": 0, "phase_epoch": 1, "epoch": 1}))
        (run / model).write_bytes(head)
    return make


def _bombs(root: Path) -> None:
    """A labelled folder whose every image is a 12000 x 12000 PNG (144 MP, over the limit)."""
    for label in (0, 1):
        (root / str(label)).mkdir(parents=True)
        png_bomb(root / str(label) / "bomb.png", 12000, 12000)


def _not_a_classifier(model: bytes) -> bytes:
    return tiny_tflite(classes=2, input_shape=[1, 192])


def _keras_zip_without_config(case: Path):
    with zipfile.ZipFile(case / "model.keras", "w") as archive:
        archive.writestr("metadata.json", "{}")


CASES = [
    # --- data ---
    Case("data check: missing folder", ("data", "check", "{case}/missing"), "missing: dataset folder not found",
         env="train"),
    Case("data check: empty folder", ("data", "check", "{case}/empty"), "empty: dataset folder is empty",
         lambda case: (case / "empty").mkdir(), env="train"),
    Case("data check: a file, not a folder", ("data", "check", "{case}/photo.png"), "photo.png: not a folder",
         env="train"),
    Case("data check: symlink loop", ("data", "check", "{case}/loop"), "loop: a loop of symbolic links",
         lambda case: os.symlink(case / "loop", case / "loop"), env="train"),
    Case("data check: dangling symlink", ("data", "check", "{case}/link"), "link: a symbolic link to",
         lambda case: os.symlink(case / "nowhere", case / "link"), env="train"),
    Case("data check: class folder without images", ("data", "check", "{case}/bad"), "bad/1: class folder has no "
         "images", _dataset({"0": ["a.png"], "1": ["notes.txt"]}), env="train"),
    Case("data check: images without class folders", ("data", "check", "{case}/bad"), "no class folders found",
         _dataset({".": ["a.png", "b.png"]}), env="train"),
    Case("data check: nsl36 and a named folder", ("data", "check", "{case}/bad"), "class folder 'cat' is not a "
         "number", _dataset({"0": ["a.png"], "cat": ["b.png"]}), env="train"),
    Case("data check: labels file missing", ("data", "check", "{case}/data", "--labels", "{case}/none.csv"),
         "none.csv: labels file not found", env="train"),
    Case("data check: labels file without header", ("data", "check", "{case}/data", "--labels", "{case}/l.csv"),
         "l.csv: a labels file needs a header", _file("l.csv", "0,ka\n1,kha\n"), env="train"),
    Case("data check: labels index not a number", ("data", "check", "{case}/data", "--labels", "{case}/l.csv"),
         "l.csv:3: index 'x' is not an integer", _file("l.csv", "index,name\n0,ka\nx,kha\n"), env="train"),
    Case("data check: labels with a gap", ("data", "check", "{case}/data", "--labels", "{case}/l.csv"),
         "l.csv: label indices must be 0..1 without gaps", _file("l.csv", "index,name\n0,ka\n2,kha\n"), env="train"),
    Case("data check: split file missing", ("data", "check", "{case}/data", "--split", "{case}/split.csv"),
         "split.csv: split file not found", env="train"),
    Case("data synth: into a folder in use", ("data", "synth", "{case}/data"), "data: already exists and is not "
         "empty", env="train"),
    Case("val bundle: only pixel bombs", ("val", "{case}/bundle", "--data", "{case}/bombs", "--no-detect"),
         "none of the 2 data images could be read", lambda case: _bombs(case / "bombs")),
    Case("val bundle: a folder that names no label", ("val", "{case}/bundle", "--data", "{case}/bad"),
         "class folder 'zebra' matches no label", _dataset({"0": ["a.png"], "zebra": ["b.png"]})),
    Case("predict: a pixel bomb", (*PREDICT, "{case}/bomb.png"), "bomb.png: 12000x12000 is 144 megapixels",
         lambda case: png_bomb(case / "bomb.png", 12000, 12000)),
    Case("predict: text named .jpg", (*PREDICT, "{case}/text.jpg"), "text.jpg: not a readable image",
         _file("text.jpg", "hello")),
    Case("predict: a truncated PNG", (*PREDICT, "{case}/cut.png"), "cut.png: not a readable image",
         lambda case: (case / "cut.png").write_bytes((case / "photo.png").read_bytes()[:40])),
    Case("predict: missing image", (*PREDICT, "{case}/missing.jpg"), "missing.jpg: no such image file or folder"),
    Case("predict: folder without images", (*PREDICT, "{case}/empty"), "no images found in",
         lambda case: (case / "empty").mkdir()),
    Case("app: folder of unreadable images", (*APP, "--source", "{case}/bad/0"), "none of its 1 image(s) can be "
         "read", _file("bad/0/x.png", b"\x89PNG\r\n\x1a\nbroken")),
    Case("train: most images unreadable", ("train", "data={case}/bad", "weights=none", "imgsz=32", "epochs=1",
                                           "--project", "{case}/runs"), "of the images cannot be used",
         _dataset({"0": ["a.png", "x.jpg", "y.jpg"], "1": ["b.png", "z.jpg", "w.jpg"]}), env="train"),

    # --- config values (resolved before any environment check: the edge environment answers them) ---
    *[Case(f"config: {item}", ("train", "data={case}/data", item), fault) for item, fault in [
        ("batch=0", "config key 'batch': expected a whole number >= 1, got 0"),
        ("batch=-4", "config key 'batch': expected a whole number >= 1, got -4"),
        ("epochs=abc", "config key 'epochs': expected a whole number >= 1, got 'abc'"),
        ("epochs=0", "config key 'epochs': expected a whole number >= 1, got 0"),
        ("steps_per_epoch=abc", "config key 'steps_per_epoch'"),
        ("workers=abc", "config key 'workers'"),
        ("bacth=4", "unknown config key 'bacth'"),
        ("imgsz=16", "config key 'imgsz'"),
        ("alpha=0", "config key 'alpha'"),
        ("split_ratios=[0.5,0.6,0.1]", "split_ratios"),
        ("color_mode=purple", "config key 'color_mode'"),
        ("crop_margin=5", "config key 'crop_margin'"),
        ("phases=[{name: head}]", "phases"),
        ("mixed_precision=maybe", "config key 'mixed_precision'"),
        ("augment.rotation=abc", "config key 'augment.rotation'"),
        ("weights={case}/missing.h5", "missing.h5"),
        ("labels={case}/missing.csv", "missing.csv"),
    ]],
    Case("config: phases of no epochs", ("train", "data={case}/data", "phases=[{name: a, epochs: 0, lr: 0.1, "
                                                                        "trainable: none}]"), "nothing would train"),
    Case("config: binary with an even block", ("train", "data={case}/data", "color_mode=binary",
                                               "threshold_block=4"), "threshold_block"),
    Case("config: dataset missing", ("train", "data={case}/missing"), "missing"),
    Case("config: config file missing", ("train", "data={case}/data", "--config", "{case}/c.yaml"),
         "c.yaml: config file not found"),
    Case("config: config file not YAML", ("train", "data={case}/data", "--config", "{case}/c.yaml"),
         "c.yaml: not valid YAML", _file("c.yaml", "imgsz: [1, 2\n")),
    Case("config: config file a list", ("train", "data={case}/data", "--config", "{case}/c.yaml"), "c.yaml",
         _file("c.yaml", "- imgsz\n- 96\n")),
    Case("config: --resume with overrides", ("train", "--resume", "{case}/run", "epochs=3"), "--resume continues"),

    # --- bundles ---
    Case("bundle: no metadata.json", (*PREDICT, "{case}/photo.png"), "bundle: not a model bundle",
         lambda case: (case / "bundle" / "metadata.json").unlink()),
    Case("bundle: metadata not JSON", (*PREDICT, "{case}/photo.png"), "metadata.json: not valid JSON",
         _file("bundle/metadata.json", "{schema: 1")),
    Case("bundle: metadata a list", (*PREDICT, "{case}/photo.png"), "metadata.json: bundle schema None",
         _file("bundle/metadata.json", "[1, 2]")),
    Case("bundle: schema 3", (*PREDICT, "{case}/photo.png"), "bundle schema 3 is not supported",
         _meta(lambda m: m.update(schema=3))),
    Case("bundle: files key missing", (*PREDICT, "{case}/photo.png"), "key 'files' is missing",
         _meta(lambda m: m.pop("files"))),
    Case("bundle: files empty", (*PREDICT, "{case}/photo.png"), "'files' lists no model file",
         _meta(lambda m: m["files"].clear())),
    Case("bundle: a name climbing out", (*PREDICT, "{case}/photo.png"), "'../other/model.tflite' is not a file "
         "inside the bundle folder", _listed("../other/model.tflite", _outside)),
    Case("bundle: an absolute name", (*PREDICT, "{case}/photo.png"), "'/etc/passwd' is not a file inside",
         _listed("/etc/passwd")),
    Case("bundle: a symlink out", (*PREDICT, "{case}/photo.png"), "'linked.tflite' is not a file inside",
         _listed("linked.tflite", _symlink_out)),
    Case("bundle: default file not listed", (*PREDICT, "{case}/photo.png"), "default_file['tflite'] = "
         "'extra.tflite' is not one of the files",
         _both(_file("bundle/extra.tflite", tiny_tflite(2)), _default("tflite", "extra.tflite"))),
    Case("bundle: default file a number", (*PREDICT, "{case}/photo.png"), "default_file['tflite'] = 5",
         _meta(lambda m: m.update(default_file={"tflite": 5}))),
    Case("bundle: default file a list", (*PREDICT, "{case}/photo.png"), "'default_file' must map a backend",
         _meta(lambda m: m.update(default_file=["model_fp32.tflite"]))),
    Case("bundle: digest missing", (*PREDICT, "{case}/photo.png"), "['model_fp32.tflite'] has no sha256 digest",
         _meta(lambda m: m["files"]["model_fp32.tflite"].pop("sha256"))),
    Case("bundle: file entry a string", (*PREDICT, "{case}/photo.png"), "has no sha256 digest",
         _meta(lambda m: m["files"].update({"model_fp32.tflite": "model"}))),
    Case("bundle: file changed", (*PREDICT, "{case}/photo.png"), "model_fp32.tflite: sha256 does not match",
         lambda case: (case / "bundle" / "model_fp32.tflite").write_bytes(tiny_tflite(2, seed=5))),
    Case("bundle: listed file missing", (*PREDICT, "{case}/photo.png"), "model_fp32.tflite: listed in "
         "metadata.json but missing", lambda case: (case / "bundle" / "model_fp32.tflite").unlink()),
    Case("bundle: labels a string", (*PREDICT, "{case}/photo.png"), "'labels': expected a non-empty list",
         _meta(lambda m: m.update(labels="ka,kha"))),
    Case("bundle: labels empty", (*PREDICT, "{case}/photo.png"), "'labels': expected a non-empty list",
         _meta(lambda m: m.update(labels=[]))),
    Case("bundle: labels out of order", (*PREDICT, "{case}/photo.png"), "'labels': entry 0 must be",
         _meta(lambda m: m["labels"].reverse())),
    Case("bundle: negative size", (*PREDICT, "{case}/photo.png"), "preprocess: size must be a whole number >= 1, "
         "got -8", _meta(lambda m: m["preprocess"].update(size=-8))),
    Case("bundle: size a word", (*PREDICT, "{case}/photo.png"), "preprocess: size must be a whole number",
         _meta(lambda m: m["preprocess"].update(size="big"))),
    Case("bundle: unknown colour mode", (*PREDICT, "{case}/photo.png"), "color_mode 'sepia'",
         _meta(lambda m: m["preprocess"].update(color_mode="sepia"))),
    Case("bundle: preprocess a list", (*PREDICT, "{case}/photo.png"), "'preprocess' must be a mapping",
         _meta(lambda m: m.update(preprocess=[8]))),
    Case("bundle: more labels than outputs", (*PREDICT, "{case}/photo.png"), "the model has 2 outputs but "
         "metadata.json lists 3 labels", _meta(lambda m: m["labels"].append({"index": 2, "name": "x"}))),
    Case("val bundle: more labels than outputs", ("val", "{case}/bundle", "--data", "{case}/data", "--no-detect"),
         "the model has 2 outputs but metadata.json lists 3 labels",
         _meta(lambda m: m["labels"].append({"index": 2, "name": "x"}))),
    Case("bundle: no such precision", (*PREDICT, "--precision", "int8", "{case}/photo.png"),
         "no cnn tflite int8 file in this bundle"),
    Case("bundle: no such backend", (*PREDICT, "--backend", "onnx", "{case}/photo.png"),
         "no cnn onnx  file in this bundle"),

    # --- model files ---
    Case("model: truncated", (*PREDICT, "{case}/photo.png"), "model_fp32.tflite: not a loadable TFLite model",
         _model(lambda data: data[:len(data) // 2])),
    Case("model: random bytes", (*PREDICT, "{case}/photo.png"), "model_fp32.tflite: not a loadable TFLite model",
         _model(lambda data: np.random.default_rng(0).integers(0, 256, len(data), np.uint8).tobytes())),
    Case("model: zero bytes", (*PREDICT, "{case}/photo.png"), "model_fp32.tflite: not a loadable TFLite model",
         _model(lambda data: b"")),
    Case("model: not an image classifier", (*PREDICT, "{case}/photo.png"), "model_fp32.tflite: not an image "
         "classifier (input (N, 192)", _model(_not_a_classifier)),
    Case("model: an ONNX file that is not one", (*PREDICT, "--backend", "onnx", "{case}/photo.png"),
         "model.onnx: not a loadable ONNX model",
         _both(_file("bundle/model.onnx", "not onnx"), _listed("model.onnx", default=False),
               _default("onnx", "model.onnx"), lambda case: restamp(case / "bundle"))),
    Case("model: a .pb file listed as the model", (*PREDICT, "{case}/photo.png"), "unknown model format '.pb'",
         _both(lambda case: shutil.copy(case / "bundle" / "model_fp32.tflite", case / "bundle" / "model.pb"),
               _listed("model.pb"))),
    Case("model: hand model of random bytes", ("predict", "--model", "{case}/bundle", "{case}/photo.png",
                                               "--hand-model", "{case}/hand.task"),
         "hand.task: MediaPipe cannot load this hand model",
         _file("hand.task", np.random.default_rng(1).integers(0, 256, 4096, np.uint8).tobytes())),
    Case("model: an HDF5 best.keras", ("val", "{case}/run"), "best.keras: an HDF5 (legacy Keras) file",
         _run_folder(), env="train"),
    Case("model: an HDF5 last.keras", ("train", "--resume", "{case}/run"), "last.keras: an HDF5 (legacy Keras)",
         _run_folder("checkpoints/last.keras"), env="train"),
    Case("model: export an HDF5 .keras", ("export", "{case}/model.keras", "--data", "{case}/data", "--labels",
                                          "auto", "--out", "{case}/out"), "model.keras: an HDF5 (legacy Keras)",
         _file("model.keras", HDF5_HEAD), env="train"),
    Case("model: export a zip without config.json", ("export", "{case}/model.keras", "--data", "{case}/data",
                                                     "--labels", "auto", "--out", "{case}/out"),
         "model.keras: not a native Keras model", _keras_zip_without_config, env="train"),

    Case("gate: export agreement as a percentage", ("export", "{case}/model.keras", "--int8", "--min-agreement",
                                                    "98", "--out", "{case}/out"),
         "--min-agreement 98: expected a share between 0 and 1", env="train"),
    Case("gate: val distance above 1", ("val", "{case}/bundle", "--max-distance", "5"),
         "--max-distance 5: expected a share between 0 and 1"),
    Case("gate: a bundle's recorded gate is not numbers", ("val", "{case}/bundle", "--max-drop", "1"),
         "export.gate values must be numbers", _meta(lambda m: m.setdefault("export", {}).update(
             gate={"min_agreement": "most"}))),

    # --- sources and outputs ---
    Case("source: missing video", (*APP, "--source", "{case}/missing.mp4"), "no such file, folder or camera"),
    Case("source: text named .mp4", (*APP, "--source", "{case}/clip.mp4"), "clip.mp4: cannot open (not a "
         "readable video file)", _file("clip.mp4", "not a video")),
    Case("source: no such camera", (*APP, "--source", "/dev/video63"), "--source /dev/video63: cannot open"),
    Case("source: a pipeline without GStreamer", (*APP, "--source", "videotestsrc ! appsink"), "GStreamer"),
    Case("source: bad camera preset", (*APP, "--source", "picam:abc"), "--source picam: unknown option 'abc'"),
    Case("source: folder without images", (*APP, "--source", "{case}/empty"), "no images",
         lambda case: (case / "empty").mkdir()),
    Case("roi: outside the frame", ("app", "--model", "{case}/bundle", "--roi", "5000,5000,100,100", "--headless",
                                    "--source", "{case}/photo.png"), "--roi 5000,5000,100,100: the region lies "
         "outside the 8x8 frame"),
    Case("roi: predict outside the image", ("predict", "--model", "{case}/bundle", "--roi", "50,0,10,10",
                                            "{case}/photo.png"), "--roi 50,0,10,10: the region lies outside"),
    Case("roi: three numbers", (*APP[:3], "--roi", "1,2,3", "--headless", "--source", "{case}/photo.png"),
         "--roi '1,2,3': expected x,y,w,h"),
    Case("roi: zero width", (*APP[:3], "--roi", "0,0,0,10", "--headless", "--source", "{case}/photo.png"),
         "width and height must be positive"),
    Case("output: --json into a folder", (*APP, "--source", "{case}/photo.png", "--json", "{case}/data"),
         "--json {case}/data: cannot write this file (Is a directory)"),
    Case("output: --json into /proc", (*APP, "--source", "{case}/photo.png", "--json", "/proc/nsl/lines.jsonl"),
         "--json /proc/nsl/lines.jsonl: cannot write this file"),
    Case("output: predict --json into a folder", (*PREDICT, "{case}/photo.png", "--json", "{case}/data"),
         "--json {case}/data: cannot write this file"),
    Case("output: a video that is not one", (*APP, "--source", "{case}/photo.png", "--output", "{case}/out.txt"),
         "--output {case}/out.txt: use a .mp4, .avi or .mkv file name"),
]


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> Path:
    """The valid inputs every case starts from: data (2 classes x 2 images), bundle (2 labels), photo.png."""
    root = tmp_path_factory.mktemp("assets")
    for label in (0, 1):
        for k in range(2):
            _png(root / "data" / str(label) / f"{k}.png", 60 + 100 * label + k)
    write_bundle(root / "bundle", classes=2, side=8)
    _png(root / "photo.png", 90)
    return root


def _snapshot(folder: Path) -> dict[str, str]:
    """Every entry under ``folder`` (links as their target, files by content)."""
    entries = {}
    for path in sorted(folder.rglob("*")):
        name = str(path.relative_to(folder))
        if path.is_symlink():
            entries[name] = "-> " + os.readlink(path)
        elif path.is_file():
            entries[name] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            entries[name] = "folder"
    return entries


def test_the_corpus_is_large_and_covers_every_kind_of_input():
    kinds = {case.id.split(":")[0].split(" ")[0] for case in CASES}
    assert len(CASES) >= 50 and len({case.id for case in CASES}) == len(CASES)
    assert {"data", "config", "bundle", "model", "source"} <= kinds


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_one_line_and_leaves_nothing_behind(case, assets, tmp_path):
    folder = tmp_path / "case"
    for name in ("data", "bundle"):
        shutil.copytree(assets / name, folder / name)
    shutil.copy(assets / "photo.png", folder / "photo.png")
    case.make(folder)
    scratch = tmp_path / "tmp"  # the system temp folder of the command
    scratch.mkdir()
    before = _snapshot(folder)
    args = [arg.replace("{case}", str(folder)) for arg in case.args]
    proc = run_nsl(*args, python=env_python(case.env), check=False, timeout=120,
                   env={"TMPDIR": str(scratch), "NSL_CACHE_DIR": str(folder / "cache")})
    report = (f"nsl {' '.join(args)}\nexit {proc.returncode}\nstdout:\n{proc.stdout[-2000:]}\n"
              f"stderr:\n{proc.stderr[-3000:]}")
    assert proc.returncode == 2, report  # a user error: not 0, not 1 (a bug), not negative (a signal)
    assert "Traceback" not in proc.stderr + proc.stdout, report
    lines = proc.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("nsl ") and ": error: " in line]
    assert len(errors) == 1 and lines[-1] == errors[0], report
    assert case.fault.replace("{case}", str(folder)) in errors[0], report
    assert _snapshot(folder) == before, report  # nothing written, nothing half-written, nothing removed
    assert [p.name for p in scratch.iterdir() if p.name not in RUNTIME_FILES] == [], report
