"""Post-training quantisation remedies, applied to a copy of the float Keras model before the int8 conversion.

Why (docs/QUANTIZATION.md): in ImageNet's MobileNetV2 the BatchNorm folded into a convolution multiplies some
channels by up to 50 (channels whose ImageNet variance was tiny), and the int8 converters round those folded
kernels to 127 steps per output channel. Rounding only ``expanded_conv_depthwise``'s weights (9 a channel,
activations left float) changed a fine-tuned 96 px model's answer on 18 % of 108 photos, all weights together
on 21 %. With the remedy every layer's int8 error is at its rounding floor; what is left is the activations'
rounding, summed over the network.

- ``adaptive_rounding`` ('round', the default; Nagel et al. 2020, "Up or Down? Adaptive Rounding"): every
  folded weight is rounded up or down so that the layer's output error over the calibration activations is
  least (not each weight to its nearest step), and what error is left on average comes out of the BatchNorm's
  beta. The float kernel is then moved onto that int8 grid, so the converter's own rounding reproduces it.
- ``correct_bias`` ('bias'; Nagel et al. 2019, "Data-Free Quantization", empirical bias correction, weight
  term): nearest rounding, with the mean of its error over the calibration activations taken out of beta.

Cross-layer equalisation (Nagel et al. 2019) was tried too, bounded so ReLU6 stays exact: on the fine-tuned asl_36
runs it did not help (alone 81.2 % agreement against 81.1 % for no remedy; with adaptive rounding 85.0 % against
88.8 % without it), so it was removed; its rows stay in docs/QUANTIZATION.md.
- ``zero_dead_channels`` (with every remedy): kernels of 1e-19 set to 0, see there.

The copy keeps the float model's graph (only weights change), so it converts and runs like the original.
"""

from __future__ import annotations

import logging

import numpy as np

from nsl.export.layers import (as_list, batches, conv_bn_pairs, fake_quant_per_channel, folded, input_probe,
                               levels_for)

log = logging.getLogger(__name__)

REMEDIES = ("none", "bias", "round")
DEFAULT_REMEDY = "round"


def _conv_error(conv, inputs, delta: np.ndarray):
    """conv(inputs, delta) with the layer's own strides, padding and dilation, averaged per output channel."""
    import tensorflow as tf
    import tf_keras as keras

    strides, dilation, padding = conv.strides, conv.dilation_rate, conv.padding.upper()
    if isinstance(conv, keras.layers.DepthwiseConv2D):
        out = tf.nn.depthwise_conv2d(inputs, delta, strides=(1, *strides, 1), padding=padding, dilations=dilation)
    else:
        out = tf.nn.conv2d(inputs, delta, strides=strides, padding=padding, dilations=dilation)
    return tf.reduce_mean(out, axis=(0, 1, 2)).numpy()


def correct_bias(model, images: np.ndarray, levels: int = 127) -> dict:
    """Empirical bias correction of every conv followed by BatchNorm, in place; returns what it did."""
    import tf_keras as keras

    pairs = conv_bn_pairs(model)
    if not pairs:
        return {"layers": 0, "max_shift": None}
    deltas = []
    for conv, bn in pairs:
        kernel, _ = folded(conv, bn)
        depthwise = isinstance(conv, keras.layers.DepthwiseConv2D)  # one output channel per (in, mult) pair
        flat = kernel.reshape(*kernel.shape[:2], -1) if depthwise else kernel
        deltas.append((fake_quant_per_channel(flat, -1, levels) - flat).reshape(kernel.shape).astype(np.float32))
    probe = input_probe(model, [conv for conv, _ in pairs])
    sums, count = [0.0] * len(pairs), 0
    for batch in batches(images):
        for i, ((conv, _), delta, x) in enumerate(zip(pairs, deltas, as_list(probe(batch, training=False)))):
            sums[i] = sums[i] + _conv_error(conv, x, delta) * len(batch)
        count += len(batch)
    shifts = []
    for (conv, bn), total in zip(pairs, sums):
        error = (total / count).astype(np.float32)
        gamma, beta, mean, var = bn.get_weights()
        bn.set_weights([gamma, beta - error, mean, var])
        shifts.append(float(np.max(np.abs(error))))
    log.info("bias correction: %d conv layers, largest shift %.4f", len(pairs), max(shifts))
    return {"layers": len(pairs), "max_shift": round(max(shifts), 5)}


def _patches(conv, inputs):
    """The conv's input patches: [M, taps, C] for a depthwise conv, [M, kh * kw * C] for a conv."""
    import tensorflow as tf
    import tf_keras as keras

    kh, kw = conv.kernel_size
    patches = tf.image.extract_patches(inputs, sizes=(1, kh, kw, 1), strides=(1, *conv.strides, 1),
                                       rates=(1, *conv.dilation_rate, 1), padding=conv.padding.upper())
    channels = inputs.shape[-1]
    if isinstance(conv, keras.layers.DepthwiseConv2D):
        return tf.reshape(patches, (-1, kh * kw, channels))
    return tf.reshape(patches, (-1, kh * kw * channels))


def _moments(model, convs, images: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(E[x], E[x x^T]) of each conv's input patches over ``images``: [C, taps] and [C, taps, taps] for a
    depthwise conv (one patch per channel), [d] and [d, d] for a conv."""
    import tensorflow as tf

    probe = input_probe(model, convs)
    firsts, seconds, count = [0.0] * len(convs), [0.0] * len(convs), [0] * len(convs)
    for batch in batches(images):
        for i, (conv, x) in enumerate(zip(convs, as_list(probe(batch, training=False)))):
            patches = _patches(conv, x)
            if patches.shape.rank == 3:
                first = tf.transpose(tf.reduce_sum(patches, axis=0))
                second = tf.einsum("mkc,mlc->ckl", patches, patches)
            else:
                first, second = tf.reduce_sum(patches, axis=0), tf.linalg.matmul(patches, patches, transpose_a=True)
            firsts[i] = firsts[i] + first.numpy().astype(np.float64)
            seconds[i] = seconds[i] + second.numpy().astype(np.float64)
            count[i] += int(patches.shape[0])
    return [(first / n, second / n) for first, second, n in zip(firsts, seconds, count)]


def round_to_minimise(weights: np.ndarray, moment: np.ndarray, levels: int = 127,
                      max_steps: int | None = None) -> np.ndarray:
    """Per-channel int8 rounding of ``weights`` [channels, d] that minimises the mean squared output error
    e^T G e (e = rounded - weights, G = ``moment``: [d, d] shared or [channels, d, d]) over up/down choices.

    Greedy: from round-to-nearest, flip the one weight per channel (to its other grid neighbour) that lowers the
    error most, until none does. A channel's largest weight stays put, so its int8 scale (max|w| / 127) and the
    converter's own rounding of the result are unchanged: the converters reproduce these integers exactly.
    """
    top = np.max(np.abs(weights), axis=1, keepdims=True)
    step = np.where(top > 0, top / levels, 1.0)
    exact = weights / step
    q = np.round(exact)
    frozen = np.abs(weights) >= top  # the largest weight sets the scale
    moment = np.broadcast_to(moment, (weights.shape[0], *moment.shape[-2:])) if moment.ndim == 2 else moment
    err = (q - exact) * step
    grad = np.einsum("cij,cj->ci", moment, err)
    diag = np.einsum("cii->ci", moment)
    for _ in range(max_steps or weights.shape[1]):
        direction = np.where(q > exact, -1.0, 1.0)  # the other neighbour of each weight
        delta = direction * step
        gain = 2 * delta * grad + delta ** 2 * diag  # change of e^T G e for that flip
        gain[frozen] = np.inf
        best = np.argmin(gain, axis=1)
        rows = np.nonzero(gain[np.arange(len(best)), best] < -1e-12 * (1 + np.abs(grad).max()))[0]
        if not len(rows):
            break
        cols = best[rows]
        change = delta[rows, cols]
        q[rows, cols] += direction[rows, cols]
        frozen[rows, cols] = True  # each weight moves at most once (stays within floor/ceil)
        grad[rows] += change[:, None] * moment[rows, :, cols]
    return q * step


def adaptive_rounding(model, images: np.ndarray, levels: int = 127) -> dict:
    """Choose up or down for every BatchNorm-folded conv weight (see ``round_to_minimise``), in place: the
    float kernel is moved onto the int8 grid the converters will use, so their rounding is the chosen one."""
    import tf_keras as keras

    pairs = conv_bn_pairs(model)
    if not pairs:
        return {"layers": 0}
    moments = _moments(model, [conv for conv, _ in pairs], images)
    shifts = []
    for (conv, bn), (mean, moment) in zip(pairs, moments):
        kernel, factor = folded(conv, bn)
        if isinstance(conv, keras.layers.DepthwiseConv2D):  # per (in, mult) output channel, the taps as d
            taps, channels, mult = kernel.shape[0] * kernel.shape[1], kernel.shape[2], kernel.shape[3]
            flat = kernel.reshape(taps, channels * mult).T
            mean, moment = np.repeat(mean, mult, axis=0), np.repeat(moment, mult, axis=0)
            unfold = factor.reshape(channels, mult)
        else:
            flat = kernel.reshape(-1, kernel.shape[-1]).T
            unfold = factor
        rounded = round_to_minimise(flat, moment, levels)
        error = np.sum((rounded - flat) * mean, axis=1)  # what is left on average: out of beta
        rounded = rounded.T.reshape(kernel.shape)
        weights = conv.get_weights()
        weights[0] = np.where(unfold == 0, weights[0], rounded / np.where(unfold == 0, 1.0, unfold)).astype(np.float32)
        conv.set_weights(weights)
        gamma, beta, moving_mean, var = bn.get_weights()
        bn.set_weights([gamma, (beta - error).astype(np.float32), moving_mean, var])
        shifts.append(float(np.max(np.abs(error))))
    log.info("adaptive rounding: %d conv layers, largest bias shift %.4f", len(pairs), max(shifts))
    return {"layers": len(pairs), "max_shift": round(max(shifts), 5)}


def zero_dead_channels(model, relative: float = 1e-6) -> dict:
    """Set to exactly 0 the BatchNorm-folded kernels of output channels whose weights are negligible (below
    ``relative`` times the layer's largest channel; ImageNet's MobileNetV2 has such dead filters, 1e-19).

    Their contribution is nothing in float, but an int8 converter derives the channel's weight scale from them:
    onnxruntime then cannot fit the channel's bias into int32 at that scale and clamps it (a constant channel
    loses its value). An all-zero channel gets scale 1 and keeps its bias."""
    import tf_keras as keras

    zeroed = 0
    for conv, bn in conv_bn_pairs(model):
        kernel, _ = folded(conv, bn)
        depthwise = isinstance(conv, keras.layers.DepthwiseConv2D)
        flat = kernel.reshape(*kernel.shape[:2], -1) if depthwise else kernel.reshape(-1, kernel.shape[-1])
        top = np.max(np.abs(flat.reshape(-1, flat.shape[-1])), axis=0)
        dead = top < relative * top.max()
        if dead.any():
            weights = conv.get_weights()
            weights[0] = np.where(dead.reshape(kernel.shape[2:]) if depthwise else dead, 0.0, weights[0])
            conv.set_weights(weights)
            zeroed += int(dead.sum())
    return {"channels": zeroed}


def remedied_copy(model, images: np.ndarray, remedy: str, weight_bits: int = 8):
    """(a copy of ``model`` with ``remedy`` applied for int8 weights of ``weight_bits`` bits (8: -127..127;
    7: -64..64, onnxruntime's reduce_range), a record of it for metadata)."""
    import tf_keras as keras

    if remedy not in REMEDIES:
        raise ValueError(f"unknown PTQ remedy {remedy!r} (choose from {', '.join(REMEDIES)})")
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    record = {"remedy": remedy}
    if remedy != "none":
        record["dead_channels_zeroed"] = zero_dead_channels(copy)["channels"]
    if remedy == "round":
        record["adaptive_rounding"] = adaptive_rounding(copy, images, levels_for(weight_bits))
    if remedy == "bias":
        record["bias_correction"] = correct_bias(copy, images, levels_for(weight_bits))
    return copy, record


def remedied_savedmodels(model, calibration: np.ndarray | None, remedy: str, formats, onnx_weight_bits: int,
                         work) -> tuple[dict[int, object], dict]:
    """The SavedModels post-training int8 files are converted from, one per weight grid the ``formats`` use
    (TFLite 8 bits, ONNX ``onnx_weight_bits``), each the float model with ``remedy`` for that grid; none for
    remedy 'none' or without calibration images (the float SavedModel then serves). -> (them, metadata record)"""
    from nsl.export.converters import to_savedmodel

    record = {"remedy": remedy, "onnx_weight_bits": onnx_weight_bits, "tflite_weights": "per-channel, 8 bits"}
    if calibration is None or remedy == "none":
        return {}, record
    saved = {}
    for weight_bits in sorted({8 if fmt == "tflite" else onnx_weight_bits for fmt in formats}):
        copy, record[f"{weight_bits}_bit"] = remedied_copy(model, calibration, remedy, weight_bits)
        saved[weight_bits] = to_savedmodel(copy, work / f"ptq_{weight_bits}bit_saved_model")
    return saved, record
