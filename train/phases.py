"""What is trainable in each phase of training.

A phase is ``{name, epochs, lr, trainable}``; ``trainable`` says which backbone layers learn:
``none`` (head only), ``all``, a layer index N (the backbone's layers N and up, counted as in the standalone
Keras application whose input layer is index 0: MobileNetV2's ``140`` is the dataset authors' "layers 140+"),
a layer name (that layer and all after it), or a fraction 0-1 (that share of the backbone's top layers).
BatchNormalization layers never learn: frozen, they also run in inference mode (keras transfer-learning guide).
The head (pooling, dropout, dense) always learns.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass

from nsl.errors import ConfigError
from nsl.train.model import backbone_layers


@dataclass(frozen=True)
class Phase:
    name: str
    epochs: int
    lr: float
    trainable: object = "none"


def phases_from_config(config: dict) -> list[Phase]:
    """The phases to run: config['phases'] (strategy progressive) or config['single'] (strategy single)."""
    strategy = config["strategy"]
    epochs = config.get("epochs")
    if strategy == "single":
        single = config["single"]
        return [Phase("single", int(epochs if epochs is not None else single["epochs"]), float(single["lr"]), "all")]
    if strategy != "progressive":
        raise ConfigError(f"config key 'strategy': expected progressive or single, got {strategy!r}")
    if not isinstance(config["phases"], list) or not config["phases"]:
        raise ConfigError("config key 'phases': expected a non-empty list of {name, epochs, lr, trainable}")
    return [_parse_phase(i, item, epochs) for i, item in enumerate(config["phases"])]


def _parse_phase(index: int, item, epochs_override) -> Phase:
    key = f"config key 'phases[{index}]'"
    if not isinstance(item, dict):
        raise ConfigError(f"{key}: expected a mapping {{name, epochs, lr, trainable}}, got {item!r}")
    unknown = set(item) - {"name", "epochs", "lr", "trainable"}
    if unknown:
        raise ConfigError(f"{key}: unknown field(s) {', '.join(sorted(unknown))} (fields: name, epochs, lr, trainable)")
    try:
        epochs = int(epochs_override if epochs_override is not None else item["epochs"])
        lr = float(item["lr"])
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"{key}: needs a whole number 'epochs' and a number 'lr', got {item!r}") from None
    if epochs < 0 or lr <= 0:
        raise ConfigError(f"{key}: epochs must be >= 0 and lr > 0, got epochs={epochs}, lr={lr}")
    return Phase(str(item.get("name", f"phase{index + 1}")), epochs, lr, item.get("trainable", "none"))


def trainable_layers(model, spec) -> list:
    """The backbone layers that ``spec`` makes trainable (before BatchNorm is taken out)."""
    layers = backbone_layers(model)
    if spec is None or spec == "none" or spec is False:
        return []
    if spec == "all" or spec is True:
        return layers
    if isinstance(spec, int):
        if not 0 <= spec <= len(layers):
            raise ConfigError(f"phase trainable: layer index {spec} is outside the backbone (0..{len(layers)})")
        return layers[max(spec - 1, 0):]
    if isinstance(spec, float):
        if not 0.0 < spec <= 1.0:
            raise ConfigError(f"phase trainable: a fraction must be in (0, 1], got {spec}")
        return layers[len(layers) - math.ceil(spec * len(layers)):]
    names = [layer.name for layer in layers]
    if isinstance(spec, str) and spec in names:
        return layers[names.index(spec):]
    close = difflib.get_close_matches(str(spec), names, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise ConfigError(f"phase trainable: {spec!r} is not none, all, a layer index, a fraction or a layer name{hint}")


def apply_phase(model, phase: Phase, freeze_bn: bool = True) -> int:
    """Set ``trainable`` on every layer for ``phase``; returns the number of trainable parameters.
    ``freeze_bn`` False lets BatchNorm layers of the chosen part train too (a backbone trained from scratch).

    The caller must compile the model afterwards (Keras reads ``trainable`` at compile time).
    """
    import tf_keras as keras

    chosen = {id(layer) for layer in trainable_layers(model, phase.trainable)}
    model.trainable = True
    for layer in backbone_layers(model):
        is_bn = isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = id(layer) in chosen and not (is_bn and freeze_bn)
    return count_trainable_params(model)


def freeze_bn_setting(config: dict) -> bool:
    """config 'freeze_bn': auto -> frozen unless the backbone starts from random weights (weights=none)."""
    setting = str(config.get("freeze_bn", "auto")).lower()
    if setting not in ("auto", "true", "false"):
        raise ConfigError(f"config key 'freeze_bn': expected auto, true or false, got {setting!r}")
    return str(config["weights"]) != "none" if setting == "auto" else setting == "true"


def count_trainable_params(model) -> int:
    return int(sum(int(w.shape.num_elements()) for w in model.trainable_weights))
