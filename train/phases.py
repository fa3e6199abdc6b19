"""What is trainable in each phase of training.

A phase (``nsl.options.Phase``, checked when the options are resolved) is ``{name, epochs, lr, trainable}``; ``trainable`` says which backbone layers learn:
``none`` (head only), ``all``, a layer index N (the backbone's layers N and up, counted as in the standalone
Keras application whose input layer is index 0: MobileNetV2's ``140`` is the dataset authors' "layers 140+"),
a layer name (that layer and all after it), or a fraction 0-1 (that share of the backbone's top layers).
BatchNormalization layers never learn: frozen, they also run in inference mode (keras transfer-learning guide).
The head (pooling, dropout, dense) always learns.
"""

from __future__ import annotations

import difflib
import math

from nsl.errors import ConfigError
from nsl.options import Phase
from nsl.train.model import backbone_layers


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


def count_trainable_params(model) -> int:
    return int(sum(int(w.shape.num_elements()) for w in model.trainable_weights))
