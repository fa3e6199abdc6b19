"""Read a model bundle (made by ``nsl export``) and open its classifier: what the device calls.

    bundle, classifier = load_bundle("runs/exp/bundle", backend="tflite", precision="int8", threads=4)
    probs = classifier.predict(crops)        # crops: uint8 (N, H, W, 3) from nsl.preprocess.prepare
    bundle.labels[probs[0].argmax()].name    # Devanagari

Every file listed in ``metadata.json`` is checked against its sha256 before anything runs, and the label count
against the model's output size. The layout is described in docs/ARCHITECTURE.md. numpy and runtimes only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from nsl.edge.classifier import BACKENDS, open_classifier
from nsl.preprocess import CropSpec
from nsl.errors import NslError
from nsl.fileio import sha256_of
from nsl.labels import Label, labels_from_dicts

SCHEMA = 1              # a bundle with the CNN only (what every earlier version reads)
SCHEMAS = (1, 2)        # 2: also a landmark model (models.landmarks) and the fusion rule (fusion)
METADATA_FILE = "metadata.json"
MODEL_KINDS = ("cnn", "landmarks")
PRECISIONS = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class Bundle:
    """A verified bundle: its folder, the parsed metadata, labels and the crop preprocessing it expects."""

    path: Path
    metadata: dict
    labels: list[Label]
    crop: CropSpec

    @property
    def files(self) -> dict[str, dict]:
        return self.metadata["files"]

    def has(self, model: str) -> bool:
        """Whether the bundle holds a file of ``model`` ('cnn' | 'landmarks')."""
        return any(entry.get("model", "cnn") == model for entry in self.files.values())

    @property
    def fusion(self) -> dict | None:
        """The rule that combines the CNN and the landmark model (chosen on the validation split at export)."""
        return self.metadata.get("fusion")

    @property
    def feature_layout(self) -> str | None:
        """The landmark features the landmark model takes (nsl.landmarks), None without one."""
        section = self.metadata.get("models", {}).get("landmarks")
        return section["features"]["layout"] if section else None

    def file_for(self, backend: str, precision: str | None = None, model: str = "cnn") -> str:
        """The file name of ``model`` for a backend and precision (None: the bundle's default file)."""
        if backend not in BACKENDS:
            raise NslError(f"backend {backend!r}: expected one of {', '.join(BACKENDS)}")
        if precision is not None and precision not in PRECISIONS:
            raise NslError(f"precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
        if precision is None:
            defaults = (self.metadata.get("default_file", {}) if model == "cnn"
                        else self.metadata.get("models", {}).get(model, {}).get("default_file", {}))
            name = defaults.get(backend) if isinstance(defaults, dict) else None
            if name:
                if name not in self.files:  # only listed (and so digest-checked, inside the bundle) files run
                    raise NslError(f"{self.path / METADATA_FILE}: default file {name!r} of {model} is not listed in "
                                   f"'files' (a damaged bundle; re-export it)")
                return name
        matches = [name for name, entry in self.files.items() if entry.get("format") == backend
                   and entry.get("model", "cnn") == model
                   and (precision is None or entry.get("precision") == precision)]
        if not matches:
            have = ", ".join(f"{e.get('model', 'cnn')} {e.get('format')} {e.get('precision')}"
                             for e in self.files.values())
            raise NslError(f"{self.path}: no {model} {backend} {precision or ''} file in this bundle (it has: {have})")
        return sorted(matches, key=lambda name: ("qat" in name, name))[0]




def is_bundle(path: str | Path) -> bool:
    return (Path(path) / METADATA_FILE).is_file()


def read_metadata(path: str | Path) -> dict:
    """Parse and check ``metadata.json`` of a bundle folder (or the file itself)."""
    path = Path(path)
    meta_path = path if path.name == METADATA_FILE else path / METADATA_FILE
    if not meta_path.is_file():
        raise NslError(f"{path}: not a model bundle (no {METADATA_FILE}; make one with 'nsl export RUN_DIR')")
    try:
        metadata = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise NslError(f"{meta_path}: not valid JSON ({err})") from None
    if not isinstance(metadata, dict) or metadata.get("schema") not in SCHEMAS:
        found = metadata.get("schema") if isinstance(metadata, dict) else None
        raise NslError(f"{meta_path}: bundle schema {found!r} is not supported (this version reads schemas "
                       f"{', '.join(map(str, SCHEMAS))}; re-export the bundle with this version of nsl)")
    for key in ("labels", "input", "preprocess", "files"):
        if key not in metadata:
            raise NslError(f"{meta_path}: key '{key}' is missing (a damaged bundle; re-export it)")
    check_file_list(meta_path, metadata)
    return metadata


def check_file_list(meta_path: Path, metadata: dict) -> None:
    """``files`` is a non-empty mapping of names inside the bundle folder, each with a sha256, and every
    ``default_file`` is one of them: nothing the metadata names is opened, hashed or run unless it is listed,
    inside the folder and checked against its digest. Checked before any file is touched, so a tampered
    name learns nothing about the files outside."""
    files, defaults = metadata["files"], metadata.get("default_file", {})
    if not isinstance(files, dict) or not files:
        raise NslError(f"{meta_path}: 'files' lists no model file (a damaged bundle; re-export it)")
    for name, entry in files.items():
        inside_bundle(meta_path, name)
        digest = entry.get("sha256") if isinstance(entry, dict) else None
        if not (isinstance(digest, str) and len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)):
            raise NslError(f"{meta_path}: files[{name!r}] has no sha256 digest (a damaged bundle; re-export it)")
    if not isinstance(defaults, dict):
        raise NslError(f"{meta_path}: 'default_file' must map a backend to a file name, got {defaults!r:.60}")
    for backend, name in defaults.items():
        if not isinstance(name, str) or name not in files:
            raise NslError(f"{meta_path}: default_file[{backend!r}] = {name!r:.80} is not one of the files listed "
                           f"with a digest in 'files' (a damaged or tampered bundle; re-export it)")


def inside_bundle(meta_path: Path, name) -> str:
    """``name`` when it is a relative path that stays inside the bundle folder (symlinks resolved)."""
    folder = meta_path.parent
    bad = not isinstance(name, str) or not name or "\0" in name or Path(name).is_absolute() or ".." in Path(name).parts
    if not bad:
        try:
            bad = not (folder / name).resolve().is_relative_to(folder.resolve())
        except (OSError, RuntimeError):  # a symlink loop
            bad = True
    if bad:
        raise NslError(f"{meta_path}: file name {name!r:.80} is not a file inside the bundle folder (a tampered "
                       f"bundle; re-export it)")
    return name


def verify_files(path: Path, files: dict[str, dict]) -> None:
    """Every listed file exists and has its recorded sha256; a one-line error names the first that does not."""
    for name, entry in files.items():
        file_path = path / inside_bundle(path / METADATA_FILE, name)
        if not file_path.is_file():
            raise NslError(f"{file_path}: listed in {METADATA_FILE} but missing (copy the whole bundle folder)")
        if sha256_of(file_path) != entry.get("sha256"):
            raise NslError(f"{file_path}: sha256 does not match {METADATA_FILE} (the file was changed or damaged "
                           f"in transit; copy it again from the exported bundle)")


def open_bundle(path: str | Path) -> Bundle:
    """Read and verify a bundle (metadata, sha256 of every file) without opening a classifier."""
    path = Path(path)
    path = path.parent if path.name == METADATA_FILE else path
    metadata = read_metadata(path)
    verify_files(path, metadata["files"])
    meta_path = path / METADATA_FILE
    preprocess = metadata["preprocess"]
    if not isinstance(preprocess, dict):
        raise NslError(f"{meta_path}: 'preprocess' must be a mapping of crop settings, got {preprocess!r:.60}")
    try:
        crop = CropSpec.from_dict(preprocess)
    except NslError as err:
        raise NslError(f"{meta_path}: preprocess: {err}") from None
    return Bundle(path, metadata, labels_from_dicts(metadata["labels"], f"{meta_path}: 'labels'"), crop)


def open_model(bundle: Bundle, backend: str = "tflite", precision: str | None = None, threads: int | None = None,
               model: str = "cnn"):
    """The classifier of one of the bundle's models, its output size checked against the labels."""
    name = bundle.file_for(backend, precision, model)
    classifier = open_classifier(bundle.path / name, threads)
    if model == "cnn" and classifier.input_size is None:
        raise NslError(f"{bundle.path / name}: not an image classifier (input (N, "
                       f"{', '.join(map(str, classifier.input_shape))}); a bundle's CNN takes (N, H, W, 3) crops)")
    if classifier.num_classes != len(bundle.labels):
        raise NslError(f"{bundle.path / name}: the model has {classifier.num_classes} outputs but "
                       f"{METADATA_FILE} lists {len(bundle.labels)} labels (re-export the bundle)")
    return classifier


def load_bundle(path: str | Path, backend: str = "tflite", precision: str | None = None,
                threads: int | None = None):
    """-> (Bundle, Classifier) for ``backend`` ('tflite' | 'onnx') and ``precision`` (None: the default file)."""
    bundle = open_bundle(path)
    name = bundle.file_for(backend, precision)
    return bundle, open_checked(bundle, name, threads)


def open_checked(bundle: Bundle, name: str, threads: int | None = None):
    """The classifier of one listed file, refused when its output size is not the bundle's label count."""
    classifier = open_classifier(bundle.path / name, threads)
    if classifier.num_classes != len(bundle.labels):
        raise NslError(f"{bundle.path / name}: the model has {classifier.num_classes} outputs but "
                       f"{METADATA_FILE} lists {len(bundle.labels)} labels (re-export the bundle)")
    return classifier
