"""The layer graph of a flat tf_keras classifier, as the post-training remedies (nsl.export.ptq)
walk it: who feeds whom, the conv -> BatchNorm pairs, the BatchNorm-folded kernels the int8 converters see, and
their per-channel int8 rounding."""

from __future__ import annotations

import numpy as np

BATCH = 8

def inbound(layer):
    """The one layer feeding ``layer`` (None when it has several inputs or several call sites)."""
    nodes = layer._inbound_nodes
    if len(nodes) != 1:
        return None
    inbound = nodes[0].inbound_layers
    if isinstance(inbound, (list, tuple)):
        return inbound[0] if len(inbound) == 1 else None
    return inbound


def used_once(layer) -> bool:
    return len(layer._outbound_nodes) == 1


def is_conv(layer) -> bool:
    import tf_keras as keras

    return isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)) and \
        not isinstance(layer, keras.layers.Conv2DTranspose)


def conv_bn_pairs(model) -> list:
    """(conv, BatchNorm) for every bias-free conv whose only consumer is a BatchNorm with a beta."""
    import tf_keras as keras

    pairs = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization) and layer.center:
            conv = inbound(layer)
            if conv is not None and is_conv(conv) and used_once(conv) and not conv.use_bias:
                pairs.append((conv, layer))
    return pairs


def input_probe(model, layers):
    import tf_keras as keras

    return keras.Model(model.inputs, [layer.input for layer in layers])


def as_list(outputs) -> list:
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


def batches(images: np.ndarray):
    """``images`` in float32 batches of ``BATCH``."""
    for start in range(0, len(images), BATCH):
        yield images[start:start + BATCH].astype(np.float32)


def folded(conv, bn) -> tuple[np.ndarray, np.ndarray]:
    """(BatchNorm-folded kernel in the conv's own layout, fold factor per output channel)."""
    import tf_keras as keras

    gamma, _, _, var = bn.get_weights()
    factor = gamma / np.sqrt(var + bn.epsilon)
    kernel = conv.get_weights()[0]
    if isinstance(conv, keras.layers.DepthwiseConv2D):  # [kh, kw, in, mult]: output channel = in * mult + m
        return kernel * factor.reshape(kernel.shape[2], kernel.shape[3]), factor
    return kernel * factor, factor


def fake_quant_per_channel(kernel: np.ndarray, axis: int = -1, levels: int = 127) -> np.ndarray:
    """Symmetric per-channel rounding of a kernel as the int8 converters do it (scale = max|w| / levels)."""
    reduce = tuple(i for i in range(kernel.ndim) if i != axis % kernel.ndim)
    top = np.max(np.abs(kernel), axis=reduce, keepdims=True)
    step = np.where(top > 0, top / levels, 1.0)
    return np.round(kernel / step) * step


def levels_for(weight_bits: int) -> int:
    """The largest int8 step count a converter uses for weights of that many bits (127 or 64)."""
    return {8: 127, 7: 64}[weight_bits]
