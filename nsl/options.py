"""The options of a training run, as frozen dataclasses: what to read, how to prepare a crop, what to build and how
to train it (MediaPipe Model Maker keeps ModelOptions apart from HParams in the same way).

Every field declares its kind (``nsl.fields``) and its one-line help; ``nsl.config.resolve`` fills them from the
defaults, a ``--config`` file, ``key=value`` and flags, and checks every value once, before anything is written.
Keys are flat on the command line (``imgsz=96``) except two nested groups (``augment.rotation=3``,
``single.epochs=20``). Cross-key rules (an ImageNet width multiplier, an odd threshold block) are checked in
``__post_init__``, so an ``Options`` object that exists is valid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nsl.errors import ConfigError
from nsl.fields import (Bool, Choice, ChoiceOrPath, Float, FolderName, Fractions, Int, Kind, ListOf, Pattern, Text,
                        group, opt, path_exists)

SPLITS = ("stratified", "subset", "grouped")
COLOR_MODES = ("color", "grey", "binary")
STRATEGIES = ("progressive", "single")
# name -> width multipliers that have ImageNet weights (nsl.train.backbones builds them; the names are the contract)
BACKBONE_ALPHAS = {
    "mobilenet_v2": (0.35, 0.5, 0.75, 1.0, 1.3, 1.4),
    "mobilenet_v3_small": (0.75, 1.0),
    "mobilenet_v3_large": (0.75, 1.0),
    "efficientnet_b0": (1.0,),
}
MIN_IMGSZ = 32


@dataclass(frozen=True)
class Phase:
    """One phase of progressive training; ``trainable``: none | all | layer index | layer name | fraction (0-1)."""

    name: str
    epochs: int
    lr: float
    trainable: Any = "none"


PHASE_FIELDS = ("name", "epochs", "lr", "trainable")


def _trainable(key: str, value: Any) -> Any:
    if isinstance(value, bool):
        return "all" if value else "none"
    if isinstance(value, int):
        if value < 0:
            raise ConfigError(f"config key '{key}': a layer index must be >= 0, got {value}")
        return value
    if isinstance(value, float):
        if not 0.0 < value <= 1.0:
            raise ConfigError(f"config key '{key}': a fraction of layers must be in (0, 1], got {value}")
        return value
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise ConfigError(f"config key '{key}': expected none, all, a layer index, a fraction or a layer name, got {value!r}")


@dataclass(frozen=True)
class Phases(Kind):
    """A non-empty list of {name, epochs, lr, trainable}."""

    def convert(self, key: str, value: Any) -> tuple[Phase, ...]:
        if not isinstance(value, (list, tuple)) or not value:
            raise ConfigError(f"config key '{key}': expected a non-empty list of {{name, epochs, lr, trainable}}, "
                              f"got {value!r}")
        return tuple(self._phase(f"{key}[{i}]", i, item) for i, item in enumerate(value))

    @staticmethod
    def _phase(key: str, index: int, item: Any) -> Phase:
        if isinstance(item, Phase):
            return item
        if not isinstance(item, dict):
            raise ConfigError(f"config key '{key}': expected a mapping {{name, epochs, lr, trainable}}, got {item!r}")
        unknown = set(item) - set(PHASE_FIELDS)
        if unknown:
            raise ConfigError(f"config key '{key}': unknown field(s) {', '.join(sorted(unknown))} "
                              f"(fields: {', '.join(PHASE_FIELDS)})")
        if "epochs" not in item or "lr" not in item:
            raise ConfigError(f"config key '{key}': needs 'epochs' and 'lr', got {item!r}")
        epochs = Int(low=0).parse(f"{key}.epochs", item["epochs"])
        lr = Float(low=0.0, low_open=True).parse(f"{key}.lr", item["lr"])
        name = Text().parse(f"{key}.name", item.get("name", f"phase{index + 1}"))
        return Phase(name, epochs, lr, _trainable(f"{key}.trainable", item.get("trainable", "none")))

    def expected(self) -> str:
        return "a list of {name, epochs, lr, trainable}"

    def label(self) -> str:
        return "list of phases"


@dataclass(frozen=True)
class DataOptions:
    """What to read and how to split it."""

    data: str | None = opt(None, Text(nullable=True), "dataset folder: published NSL layout, class folders, or a "
                                                      "folder of TFRecords")
    labels: str = opt("nsl36", ChoiceOrPath(values=("nsl36", "auto"), what="labels CSV"),
                      "nsl36 | auto (class folder names) | path to a labels CSV (index,name,roman)")
    split: str = opt("stratified", Choice(values=SPLITS),
                     "stratified | subset (hold out a whole background type) | grouped (near-duplicates kept together)")
    split_ratios: tuple = opt((0.70, 0.15, 0.15), Fractions(), "train/val/test fractions")
    holdout_subset: str = opt("Random Background", Text(), "subset held out as test when split=subset")
    group_hash_distance: int = opt(6, Int(low=0, high=64), "perceptual-hash Hamming distance under which frames "
                                                           "count as one group (split=grouped)")
    max_bad_fraction: float = opt(0.05, Float(low=0.0, high=1.0), "share of unreadable images tolerated (skipped "
                                                                  "and listed) before the run stops")
    cache: bool = opt(True, Bool(), "cache decoded, resized images (in memory, or under cache_dir)")
    cache_dir: str | None = opt(None, Text(nullable=True), "folder for an on-disk cache of the prepared images "
                                                          "(data larger than memory; reused by later runs over the "
                                                          "same files); null = in memory")
    decode: str = opt("tensorflow", Choice(values=("tensorflow", "python")),
                      "tensorflow (JPEG/PNG decoded by TensorFlow in parallel, pixel for pixel the device's; files "
                      "with an EXIF turn or another format go through Python) | python (every file by the "
                      "device's read_image)")
    hands: str = opt("auto", ChoiceOrPath(values=("auto", "none"), what="hands file"),
                     "hand landmarks of the dataset ('nsl data hands DATA', edge environment): auto (the file that "
                     "command keeps for DATA, if there is one) | none | path of a hands file")
    group_pattern: str | None = opt(None, Pattern(nullable=True),
                                    "split=grouped by a regular expression on the file name (its first group, else "
                                    "the whole match), e.g. '^(hand\\d+)_' for one group per signer; null = "
                                    "group_file, else near-duplicate frames")
    group_file: str | None = opt(None, Text(nullable=True), "split=grouped by a CSV of path,group (paths relative "
                                                            "to the dataset folder)")
    split_test_groups: tuple | None = opt(None, ListOf(item=Text(), nullable=True),
                                          "split=grouped: the groups held out as the test set (the others are dealt "
                                          "to train and val); null = dealt by split_ratios")

    def __post_init__(self):
        for key in ("group_pattern", "group_file", "split_test_groups"):
            if getattr(self, key) is not None and self.split != "grouped":
                raise ConfigError(f"config key '{key}': needs split=grouped, got split={self.split}")
        if self.group_pattern is not None and self.group_file is not None:
            raise ConfigError("config key 'group_file': give group_pattern or group_file, not both")


@dataclass(frozen=True)
class PreprocessOptions:
    """How a crop is prepared, on the device exactly as in training (the bundle records it)."""

    crop: str = opt("auto", Choice(values=("auto", "image", "hands")),
                    "what the CNN sees: auto (hands when the dataset has a hands file, else image; measured: "
                    "docs/TRAINING.md) | image (the dataset's own framing) | hands (the crop the device cuts around "
                    "the hand MediaPipe finds, from the hands file; images without a hand stay whole)")
    color_mode: str = opt("color", Choice(values=COLOR_MODES), "crop preprocessing shared with the device: color | "
                                                               "grey | binary")
    threshold_block: int = opt(11, Int(low=3), "adaptive-threshold block size for color_mode=binary (odd)")
    threshold_c: int = opt(2, Int(), "adaptive-threshold constant for color_mode=binary")
    blur: int = opt(5, Int(low=0), "Gaussian blur kernel before thresholding (odd, 0 = none)")
    crop_margin: float = opt(0.10, Float(low=0.0, high=2.0), "margin added to each side of the hand box on the "
                                                             "device, as a fraction of its size")
    crop_square: bool = opt(True, Bool(), "make the hand box square before cropping")
    crop_mirror: bool = opt(True, Bool(), "mirror the crop of a hand MediaPipe calls Left, so the CNN always sees a "
                                          "right hand, as the landmark features do (a left-handed signer then signs "
                                          "like the right-handed ones)")

    def __post_init__(self):
        if self.color_mode == "binary" and self.threshold_block % 2 == 0:
            raise ConfigError(f"config key 'threshold_block': expected an odd number >= 3 for color_mode=binary, "
                              f"got {self.threshold_block}")


@dataclass(frozen=True)
class AugmentOptions:
    """Sign-safe augmentation (no horizontal flip unless asked: it changes the signing hand)."""

    rotation: float = opt(5.0, Float(low=0.0, high=180.0), "max rotation, degrees")
    zoom: float = opt(0.10, Float(low=0.0, high=0.9), "max zoom in/out, fraction")
    shift: float = opt(0.10, Float(low=0.0, high=0.9), "max shift, fraction of the size")
    brightness: float = opt(0.15, Float(low=0.0, high=1.0), "max brightness change, fraction of 255")
    contrast: float = opt(0.15, Float(low=0.0, high=1.0), "max contrast change, fraction")
    hflip: bool = opt(False, Bool(), "horizontal flip")


@dataclass(frozen=True)
class ModelOptions:
    """What to build."""

    models: str = opt("auto", Choice(values=("auto", "cnn", "landmarks", "both")),
                      "what the run trains: auto (both when the dataset has a hands file, else cnn) | cnn (the image "
                      "classifier) | landmarks (a model on hand landmarks, needs a hands file) | both (and the rule "
                      "that fuses them, chosen on the validation split)")
    backbone: str = opt("mobilenet_v2", Choice(values=tuple(BACKBONE_ALPHAS)), " | ".join(BACKBONE_ALPHAS))
    alpha: float = opt(1.0, Float(low=0.0, low_open=True), "width multiplier (MobileNets)")
    imgsz: int = opt(224, Int(low=MIN_IMGSZ), "square input size of the classifier, pixels")
    weights: str = opt("imagenet", ChoiceOrPath(values=("imagenet", "none"), what="Keras weights file"),
                       "imagenet | none | path to a Keras weights file of the backbone (offline machines)")
    dropout: float = opt(0.2, Float(low=0.0, high=1.0, high_open=True), "dropout before the classifier")
    freeze_bn: str = opt("auto", Choice(values=("auto", "true", "false")),
                         "BatchNorm while the backbone trains: auto (frozen, in inference mode, for pretrained "
                         "weights; trained for weights=none) | true | false")
    bn_momentum: float | None = opt(None, Float(low=0.0, high=1.0, low_open=True, high_open=True, nullable=True),
                                    "BatchNorm moving-average momentum; null = auto: 0.9 for weights=none (the "
                                    "backbones' 0.999 needs thousands of steps to settle from random weights), the "
                                    "backbone's own otherwise")

    def __post_init__(self):
        alphas = BACKBONE_ALPHAS[self.backbone]
        if not self.backbone.startswith("mobilenet") and self.alpha != 1.0:
            raise ConfigError(f"config key 'alpha': {self.backbone} has no width multiplier (use alpha=1.0)")
        if self.weights == "imagenet" and self.alpha not in alphas:
            raise ConfigError(f"config key 'alpha': ImageNet weights of {self.backbone} exist for alpha "
                              f"{', '.join(map(str, alphas))}, not {self.alpha:g} (or use weights=none)")

    @property
    def pretrained(self) -> bool:
        return self.weights != "none"

    @property
    def frozen_bn(self) -> bool:
        """BatchNorm frozen (inference mode) while the backbone trains: auto -> unless from random weights."""
        return self.pretrained if self.freeze_bn == "auto" else self.freeze_bn == "true"

    @property
    def momentum(self) -> float | None:
        """The BatchNorm momentum to set, or None to keep the backbone's own (0.999 in the Keras MobileNets).

        From random weights the moving statistics start at mean 0, variance 1 and must catch up with the real ones;
        at 0.999 that takes thousands of steps, and until then inference (validation, export) sees constant outputs
        while training accuracy climbs. ``auto`` (null) uses 0.9 for weights=none and keeps pretrained statistics.
        """
        if self.bn_momentum is None:
            return None if self.pretrained else 0.9
        return self.bn_momentum


@dataclass(frozen=True)
class LandmarkOptions:
    """The landmark model (models=landmarks|both): a small network on normalised hand landmarks (nsl.landmarks)."""

    layout: str = opt("xyz21", Choice(values=("xyz21", "xyz21+world", "xyz21+angles")),
                      "features: xyz21 (21 image landmarks, 63 values) | xyz21+world (and the 21 world landmarks) | "
                      "xyz21+angles (and 29 pose-free shape values: joint bends, finger spreads, fingertip distances)")
    hidden: tuple = opt((128, 64), ListOf(item=Int(low=1)), "units of the hidden layers")
    dropout: float = opt(0.4, Float(low=0.0, high=1.0, high_open=True), "dropout after each hidden layer")
    epochs: int = opt(60, Int(low=1), "maximum epochs (each over the training hands and their augmented copies)")
    lr: float = opt(1.0e-3, Float(low=0.0, low_open=True), "learning rate (Adam)")
    batch: int = opt(32, Int(low=1), "batch size")
    patience: int = opt(15, Int(low=0), "early stopping on validation loss (0 = off)")
    copies: int = opt(20, Int(low=0), "augmented copies of each training hand per epoch")
    rotation: float = opt(15.0, Float(low=0.0, high=180.0), "max in-plane rotation about the wrist, degrees")
    scale: float = opt(0.10, Float(low=0.0, high=0.9), "max scale change, fraction")
    jitter: float = opt(0.02, Float(low=0.0, high=1.0), "Gaussian noise on each coordinate (hand size = 1)")
    tilt: float = opt(0.0, Float(low=0.0, high=60.0),
                      "max out-of-plane rotation about the x and y axes (through the landmarks' depth), degrees: "
                      "the hand seen from another camera angle")
    bones: float = opt(0.0, Float(low=0.0, high=0.5),
                       "max change of each bone's length, fraction: another person's hand proportions")
    mirror: bool = opt(False, Bool(), "also mirror hands (x -> -x): makes the model blind to which hand signs")
    ensemble: int = opt(5, Int(low=1, high=16), "members trained with seeds seed, seed+1, ... and averaged into one "
                        "model (one file in the bundle; each member costs its training time and about 10 k weights)")
    fusion_on: str = opt("val", Choice(values=("val", "groups")),
                         "models=both: where the fusion weight is chosen: val (the validation split) | groups (each "
                         "model's answers on training groups it did not see: the run trains fusion_folds extra "
                         "pairs of models, each without some of the groups; needs split=grouped by named groups)")
    fusion_folds: int = opt(2, Int(low=2), "fusion_on=groups: how many folds the training groups are dealt into")


@dataclass(frozen=True)
class SingleOptions:
    """The single-phase baseline (strategy=single)."""

    epochs: int = opt(40, Int(low=1), "maximum epochs")
    lr: float = opt(1.0e-4, Float(low=0.0, low_open=True), "learning rate")
    dropout: float = opt(0.5, Float(low=0.0, high=1.0, high_open=True), "stronger dropout of the baseline")


EPOCHS_MODES = ("total", "per_phase")


def split_budget(total: int, weights: list[int]) -> tuple[int, ...]:
    """``total`` epochs dealt in proportion to ``weights`` (a recipe's phase epochs) by largest remainder; a phase
    with weight 0 stays off, every other gets at least 1 (so the sum exceeds ``total`` only when ``total`` is below
    the number of phases). All weights 0: equal shares."""
    weights = list(weights) if any(weights) else [1] * len(weights)
    active = [i for i, w in enumerate(weights) if w > 0]
    quotas = {i: total * weights[i] / sum(weights) for i in active}
    shares = {i: int(q) for i, q in quotas.items()}
    for i in sorted(active, key=lambda i: (shares[i] - quotas[i], i))[:total - sum(shares.values())]:
        shares[i] += 1
    for i in active:  # every phase at least one epoch, taken from the largest phase while it can spare one
        if shares[i] == 0:
            shares[i] = 1
            largest = max(active, key=lambda j: shares[j])
            if shares[largest] > 1 and sum(shares.values()) > total:
                shares[largest] -= 1
    return tuple(shares.get(i, 0) for i in range(len(weights)))


DEFAULT_PHASES = (Phase("head", 3, 1.0e-3, "none"), Phase("top", 3, 1.0e-4, 140), Phase("full", 4, 1.0e-5, "all"))


@dataclass(frozen=True)
class HParams:
    """How to train."""

    strategy: str = opt("single", Choice(values=STRATEGIES),
                        "single (one phase, everything trainable: single.epochs/lr/dropout; measured ahead on unseen "
                        "signers, docs/TRAINING.md) | progressive (the phases below; a config that gives phases and "
                        "no strategy means progressive)")
    phases: tuple = opt(DEFAULT_PHASES, Phases(), "progressive recipe of the dataset authors (strategy=progressive); "
                                                  "trainable: none | all | layer index | layer name | fraction (0-1) "
                                                  "of top layers")
    single: SingleOptions = group(SingleOptions, "the single-phase recipe (strategy=single, the default)", prefix=True)
    epochs: int | None = opt(None, Int(low=1, nullable=True), "epochs of the whole run: split over the phases in "
                                                              "the recipe's proportion (rounded, each phase >= 1), or "
                                                              "the single phase's; null = the phases' own epochs")
    epochs_mode: str = opt("total", Choice(values=EPOCHS_MODES),
                           "how epochs is meant: total (the run's budget) | per_phase (every phase runs epochs, as "
                           "runs saved before this key meant it)")
    batch: int = opt(32, Int(low=1), "batch size per replica (one GPU or the CPU: the batch)")
    seed: int = opt(42, Int(low=0), "seed of the split, the initialisation and the augmentation")
    patience: int = opt(5, Int(low=0), "early stopping on validation loss, across all phases (0 = off)")
    plateau_patience: int = opt(2, Int(low=0), "epochs without improvement before the learning rate is reduced "
                                               "within a phase")
    plateau_factor: float = opt(0.5, Float(low=0.0, high=1.0, low_open=True, high_open=True),
                                "learning-rate reduction factor on plateau")
    label_smoothing: float = opt(0.0, Float(low=0.0, high=1.0, high_open=True), "label smoothing of the loss")
    class_weights: str = opt("auto", Choice(values=("auto", "none", "balanced")),
                             "auto (balanced when classes are imbalanced) | none | balanced")
    steps_per_epoch: int | None = opt(None, Int(low=1, nullable=True), "limit batches per epoch (tests, quick "
                                                                       "looks); null = the whole split")
    mixed_precision: str = opt("auto", Choice(values=("auto", "on", "off")), "auto (on a GPU) | on | off")
    tensorboard: bool = opt(True, Bool(), "write TensorBoard logs into RUN_DIR/tensorboard")
    workers: int | None = opt(None, Int(low=1, nullable=True), "intra-op threads; null = all cores")
    scale_lr: bool = opt(True, Bool(), "with N replicas (GPUs, workers) the global batch is N x batch: multiply "
                                       "every learning rate by N too (linear scaling rule)")

    @property
    def dropout_override(self) -> float | None:
        """The single-phase baseline trains with its own, stronger dropout."""
        return self.single.dropout if self.strategy == "single" else None

    def phase_plan(self) -> tuple[Phase, ...]:
        """The phases to run: ``phases`` (progressive) or one phase of everything (single); ``epochs`` overrides."""
        if self.strategy == "single":
            return (Phase("single", self.epochs or self.single.epochs, self.single.lr, "all"),)
        if self.epochs is None:
            return self.phases
        if self.epochs_mode == "per_phase":
            return tuple(Phase(p.name, self.epochs, p.lr, p.trainable) for p in self.phases)
        shares = split_budget(self.epochs, [p.epochs for p in self.phases])
        return tuple(Phase(p.name, n, p.lr, p.trainable) for p, n in zip(self.phases, shares))

    def __post_init__(self):
        if self.strategy == "progressive" and not any(p.epochs for p in self.phase_plan()):
            raise ConfigError("config key 'phases': every phase has 0 epochs, so nothing would train "
                              "(give a phase epochs >= 1, or epochs=N)")


@dataclass(frozen=True)
class OutputOptions:
    """Where the run goes."""

    project: str = opt("runs", Text(), "folder that holds runs")
    name: str = opt("exp", FolderName(), "run name; a number is appended when it exists (exp2, exp3, ...) unless "
                                         "exist_ok")
    exist_ok: bool = opt(False, Bool(), "reuse project/name when it exists: its earlier results (and bundle) are "
                                        "replaced by this run's")


@dataclass(frozen=True)
class Options:
    """Everything ``nsl train`` is told; one group per concern."""

    data: DataOptions = group(DataOptions, "data")
    preprocess: PreprocessOptions = group(PreprocessOptions, "crop preprocessing (shared with the device)")
    augment: AugmentOptions = group(AugmentOptions, "sign-safe augmentation (no horizontal flip unless asked: it "
                                                    "changes the signing hand)", prefix=True)
    model: ModelOptions = group(ModelOptions, "model")
    landmarks: LandmarkOptions = group(LandmarkOptions, "landmark model (models=landmarks|both)", prefix=True)
    hparams: HParams = group(HParams, "training")
    output: OutputOptions = group(OutputOptions, "output")

    @property
    def crop(self):
        """The device's crop preprocessing (``nsl.preprocess.CropSpec``) these options train with."""
        from nsl.preprocess import CropSpec

        p = self.preprocess
        return CropSpec(size=self.model.imgsz, color_mode=p.color_mode, margin=p.crop_margin, square=p.crop_square,
                        blur=p.blur, threshold_block=p.threshold_block, threshold_c=p.threshold_c,
                        mirror_left=p.crop_mirror)

    def check_paths(self) -> "Options":
        """The files a new run reads exist (a saved run's options are not re-checked: files may have moved)."""
        if self.data.data is not None:
            path_exists("data", self.data.data, "dataset folder")
        if self.data.group_file is not None:
            path_exists("group_file", self.data.group_file, "group CSV")
        if self.data.hands not in ("auto", "none"):
            path_exists("hands", self.data.hands, "hands file (make it with 'nsl data hands DATA')")
        if self.data.labels not in ("nsl36", "auto"):
            path_exists("labels", self.data.labels, "labels CSV")
        if self.model.weights not in ("imagenet", "none"):
            path_exists("weights", self.model.weights, "weights file (use weights=imagenet, none or a Keras .h5 "
                                                       "weights file of the backbone)")
        return self
