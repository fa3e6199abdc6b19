"""Cross-layer equalisation (Nagel et al. 2019, "Data-Free Quantization"), bounded so ReLU6 stays exact.

For each producer -> BatchNorm -> ReLU(6) -> consumer chain, scale producer channel c up by s_c (BatchNorm gamma
and beta) and the consumer's input channel c down by s_c. ReLU commutes with a positive scale; ReLU6 does only
while the channel stays under 6, so s_c is bounded by the channel's largest value on the calibration images
(``6 / (margin * max_c)``), and the float model is unchanged wherever a channel stays under ``margin`` times its
calibration maximum (the paper replaces ReLU6 by ReLU instead, which changes the float model). Every channel
then spans the activation's int8 range, instead of a few using all of it. Measured on asl_36 it did not help
(docs/QUANTIZATION.md); it stays as ``--remedy cle`` for models where activation ranges are the problem.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from nsl.export.layers import as_list, batches, inbound, is_conv, relu_bound, used_once

log = logging.getLogger(__name__)

MAX_SCALE = 256.0      # a channel is never scaled up more than this (near-dead channels)
CLE_MARGIN = 1.0       # head-room kept above each channel's calibration maximum

@dataclass(frozen=True)
class Chain:
    """producer (conv) -> bn -> act (ReLU) -> [padding] -> consumer (conv), each output used once."""

    producer: object
    bn: object
    act: object
    consumer: object


def find_chains(model) -> list[Chain]:
    """Every conv -> BatchNorm -> ReLU(6) -> (ZeroPadding) -> conv chain whose middle tensors feed nothing else."""
    import tf_keras as keras

    chains = []
    for consumer in model.layers:
        if not is_conv(consumer):
            continue
        act = inbound(consumer)
        if isinstance(act, keras.layers.ZeroPadding2D) and used_once(act):
            act = inbound(act)
        if act is None or relu_bound(act) is None or not used_once(act):
            continue
        bn = inbound(act)
        if not isinstance(bn, keras.layers.BatchNormalization) or not used_once(bn) or not bn.scale or not bn.center:
            continue
        producer = inbound(bn)
        if producer is not None and is_conv(producer) and used_once(producer):
            chains.append(Chain(producer, bn, act, consumer))
    return chains


def channel_max(model, layers, images: np.ndarray) -> list[np.ndarray]:
    """Per-channel maximum of each layer's output over ``images`` (float model, inference mode)."""
    import tf_keras as keras

    probe = keras.Model(model.inputs, [layer.output for layer in layers])
    highest = [None] * len(layers)
    for batch in batches(images):
        for i, out in enumerate(as_list(probe(batch, training=False))):
            value = np.max(np.asarray(out), axis=(0, 1, 2))
            highest[i] = value if highest[i] is None else np.maximum(highest[i], value)
    return highest


def _scale_consumer(consumer, scale: np.ndarray) -> None:
    """Divide the consumer's input channel c by scale[c] (its kernel is [kh, kw, in, out or multiplier])."""
    weights = consumer.get_weights()
    weights[0] = weights[0] / scale[None, None, :, None]
    consumer.set_weights(weights)


def _scale_batchnorm(bn, scale: np.ndarray) -> None:
    gamma, beta, mean, var = bn.get_weights()
    bn.set_weights([gamma * scale, beta * scale, mean, var])


def equalization_scales(highest: np.ndarray, bound: float, margin: float = CLE_MARGIN,
                        max_scale: float = MAX_SCALE) -> np.ndarray:
    """s_c per channel: the largest scale that keeps a channel of calibration maximum ``highest`` (times
    ``margin``) under the ReLU's ``bound``; 1 for channels that reach the bound (clipped) or never fire."""
    scale = np.ones_like(highest, dtype=np.float64)
    if not np.isfinite(bound):  # plain ReLU: fill the range of the tensor's largest channel
        bound = float(np.max(highest)) if np.max(highest) > 0 else 1.0
    live = (highest > 0) & (highest * margin < bound)
    scale[live] = np.minimum(bound / (highest[live] * margin), max_scale)
    return np.maximum(scale, 1.0).astype(np.float32)


def equalize(model, images: np.ndarray, margin: float = CLE_MARGIN) -> dict:
    """Cross-layer equalisation in place (see the module text); returns what it did."""
    chains = find_chains(model)
    if not chains:
        return {"chains": 0, "median_scale": None, "max_scale": None}
    highest = channel_max(model, [chain.act for chain in chains], images)
    scales = []
    for chain, top in zip(chains, highest):
        scale = equalization_scales(top, relu_bound(chain.act), margin)
        _scale_batchnorm(chain.bn, scale)
        _scale_consumer(chain.consumer, scale)
        scales.append(scale)
    every = np.concatenate(scales)
    log.info("cross-layer equalisation: %d conv pairs, channel scales median %.2f, max %.1f", len(chains),
             float(np.median(every)), float(every.max()))
    return {"chains": len(chains), "median_scale": round(float(np.median(every)), 3),
            "max_scale": round(float(every.max()), 3)}
