"""The landmark model: a small tf_keras network on normalised hand landmarks (``nsl.landmarks.hand_features``).

    features (float32, 63 or 126) -> [dense, relu, dropout] x len(hidden) -> softmax probabilities

It trains in seconds on a CPU, with landmark-space augmentation of the training hands (rotation about the wrist,
scale, jitter; optionally a tilt out of the image plane, other bone lengths and a mirror), early stopping on validation loss and learning-rate reduction on plateau, and
is saved beside the CNN in the run directory (``landmarks.keras``) with its history and test metrics. Flat and
built from standard layers, so the exporter converts it like the CNN (TFLite and ONNX, float and int8).
"""

from __future__ import annotations

import dataclasses
import logging
import time

import numpy as np

from nsl.labels import Label
from nsl.options import LandmarkOptions
from nsl.rundir import RunDir

log = logging.getLogger(__name__)

INPUT_NAME = "landmarks"
OUTPUT_NAME = "predictions"


def build_landmark_model(options: LandmarkOptions, num_features: int, num_classes: int, prefix: str = ""):
    import tf_keras as keras

    features = keras.Input((num_features,), name=INPUT_NAME, dtype="float32")
    x = features
    for index, units in enumerate(options.hidden):
        x = keras.layers.Dense(units, activation="relu", name=f"{prefix}dense{index + 1}")(x)
        x = keras.layers.Dropout(options.dropout, name=f"{prefix}dropout{index + 1}")(x)
    out = keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name=f"{prefix}{OUTPUT_NAME}")(x)
    return keras.Model(features, out, name="nsl_landmarks")


def average_models(members: list):
    """One flat functional model whose output is the mean of the members' probabilities (the members' trained
    layers, no nested models: the exporter and QAT take it like any other); a single member is returned as is."""
    import tf_keras as keras

    if len(members) == 1:
        return members[0]
    features = keras.Input(members[0].input_shape[1:], name=INPUT_NAME, dtype="float32")
    outputs = []
    for member in members:
        x = features
        for layer in member.layers[1:]:
            x = layer(x)
        outputs.append(x)
    return keras.Model(features, keras.layers.Average(name=OUTPUT_NAME)(outputs), name="nsl_landmarks")


def augment(features: np.ndarray, options: LandmarkOptions, rng: np.random.Generator) -> np.ndarray:
    """``options.copies`` augmented copies of each row (points in groups of 3: x, y, z about the wrist; with
    layout xyz21+angles the shape values are computed again from the moved points, as the device would)."""
    from nsl.landmarks import POINTS, shape_features

    if options.layout == "xyz21+angles":
        moved = augment(features[:, :3 * POINTS], dataclasses.replace(options, layout="xyz21"), rng)
        points = moved.reshape(len(moved), POINTS, 3).astype(np.float64)
        return np.concatenate([moved, shape_features(points)], axis=1).astype(np.float32)
    copies = []
    for _ in range(options.copies):
        points = features.reshape(len(features), features.shape[1] // 3, 3).astype(np.float64)
        draw = int(rng.integers(2**32))  # image and world landmarks of one hand get the same tilt and bones
        points = np.concatenate([_reshape_hand(hand, options, np.random.default_rng(draw))
                                 for hand in np.split(points, points.shape[1] // POINTS, axis=1)], axis=1)
        angle = np.deg2rad(rng.uniform(-options.rotation, options.rotation, len(points)))[:, None]
        x, y = points[..., 0].copy(), points[..., 1].copy()
        points[..., 0] = np.cos(angle) * x - np.sin(angle) * y
        points[..., 1] = np.sin(angle) * x + np.cos(angle) * y
        points *= rng.uniform(1 - options.scale, 1 + options.scale, (len(points), 1, 1))
        points += rng.normal(0.0, options.jitter, points.shape)
        if options.mirror:
            points[rng.random(len(points)) < 0.5, :, 0] *= -1
        copies.append(points.reshape(len(features), -1))
    return np.concatenate(copies).astype(np.float32) if copies else np.zeros((0, features.shape[1]), np.float32)


def _reshape_hand(points: np.ndarray, options: LandmarkOptions, rng: np.random.Generator) -> np.ndarray:
    return _reproportion(_tilt(points, options.tilt, rng), options.bones, rng)


def _tilt(points: np.ndarray, degrees: float, rng: np.random.Generator) -> np.ndarray:
    """Turn each hand about the x and then the y axis through the wrist by up to ``degrees`` (the image landmarks'
    z is depth on the x scale), then scale it back to an x-y reach of 1, as ``hand_features`` would see it."""
    if not degrees:
        return points
    pitch, yaw = (np.deg2rad(rng.uniform(-degrees, degrees, len(points)))[:, None] for _ in range(2))
    x, y, z = points[..., 0], points[..., 1], points[..., 2]
    y, z = np.cos(pitch) * y - np.sin(pitch) * z, np.sin(pitch) * y + np.cos(pitch) * z
    x, z = np.cos(yaw) * x + np.sin(yaw) * z, -np.sin(yaw) * x + np.cos(yaw) * z
    return _unit_reach(np.stack([x, y, z], axis=-1))


def _reproportion(points: np.ndarray, spread: float, rng: np.random.Generator) -> np.ndarray:
    """Another hand's proportions: each bone (wrist -> finger base -> ... -> tip) keeps its direction and has its
    length multiplied by a factor in [1 - spread, 1 + spread]; the joints beyond it move with it."""
    from nsl.landmarks import FINGERS, WRIST

    if not spread:
        return points
    moved = points.copy()
    for finger in FINGERS:
        chain = (WRIST, *finger)
        for parent, child in zip(chain, chain[1:]):
            factor = rng.uniform(1 - spread, 1 + spread, (len(points), 1))
            moved[:, child] = moved[:, parent] + factor * (points[:, child] - points[:, parent])
    return _unit_reach(moved)


def _unit_reach(points: np.ndarray) -> np.ndarray:
    reach = np.linalg.norm(points[..., :2], axis=-1).max(axis=1)
    return points / np.where(reach > 1e-9, reach, 1.0)[:, None, None]


def _history(fit_history, seconds: float) -> list[dict]:
    logs = fit_history.history
    epochs = len(logs.get("loss", []))
    return [{"epoch": i + 1, "phase": "landmarks", "phase_index": 0, "lr": float(logs.get("lr", [0] * epochs)[i]),
             "trainable_params": 0, "seconds": round(seconds / max(epochs, 1), 3),
             **{key: float(logs[key][i]) for key in ("loss", "accuracy", "val_loss", "val_accuracy") if key in logs}}
            for i in range(epochs)]


def train_landmark_model(options: LandmarkOptions, arrays: dict, num_classes: int, seed: int, run: RunDir):
    """Fit ``options.ensemble`` members (seeds ``seed``, ``seed + 1``, ...) on ``arrays['train']`` (+ augmented
    copies), each stopping on ``arrays['val']``, and average them into one model; saves ``landmarks.keras``.
    Returns (model, history): the history is the first member's (the others' lengths are logged)."""
    from nsl.train.checkpoint import save_model

    started = time.perf_counter()
    members, history = [], []
    for index in range(options.ensemble):
        prefix = f"m{index + 1}_" if options.ensemble > 1 else ""
        member, member_history = _fit_member(options, arrays, num_classes, seed + index, prefix)
        members.append(member)
        history = history or member_history
    model = average_models(members)
    log.info("landmark model: %d member(s) trained in %.1f s", len(members), time.perf_counter() - started)
    save_model(model, run.landmark_model)
    return model, history


def _fit_member(options: LandmarkOptions, arrays: dict, num_classes: int, seed: int, prefix: str):
    import tf_keras as keras

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    train, val = arrays["train"], arrays["val"]
    x = np.concatenate([train["features"], augment(train["features"], options, rng)])
    y = np.concatenate([train["labels"]] * (options.copies + 1))
    model = build_landmark_model(options, train["features"].shape[1], num_classes, prefix)
    model.compile(optimizer=keras.optimizers.Adam(options.lr), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    callbacks = [keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=5, min_lr=1e-6)]
    if options.patience:
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_loss", patience=options.patience,
                                                       restore_best_weights=True))
    started = time.perf_counter()
    fitted = model.fit(x, y, validation_data=(val["features"], val["labels"]), epochs=options.epochs,
                       batch_size=options.batch, shuffle=True, callbacks=callbacks, verbose=0)
    history = _history(fitted, time.perf_counter() - started)
    best = min(history, key=lambda e: e.get("val_loss", np.inf)) if history else {}
    log.info("landmark model%s: %d epochs, best val loss %.4f (val accuracy %.3f) at epoch %s, %.1f s",
             f" {prefix.rstrip('_')}" if prefix else "", len(history), best.get("val_loss", np.nan),
             best.get("val_accuracy", np.nan), best.get("epoch"), time.perf_counter() - started)
    return model, history


def predict(model, features: np.ndarray) -> np.ndarray:
    if not len(features):
        return np.zeros((0, int(model.output_shape[-1])), np.float32)
    return np.asarray(model(features.astype(np.float32), training=False), np.float32)


def landmark_metrics(model, arrays: dict, labels: list[Label], split: str = "test") -> dict:
    """Test metrics over the images with a hand, and the device-path top-1 over all (an image without a hand is
    one the landmark model cannot name)."""
    from nsl.train.evaluate import classification_metrics

    part = arrays[split]
    metrics = classification_metrics(predict(model, part["features"]), part["labels"], labels)
    total = metrics["n_images"] + part["without_hand"]
    metrics.update(source=f"{split} split, images with a hand", without_hand=part["without_hand"],
                   top1_all_images=metrics["top1"] * metrics["n_images"] / total if total else 0.0)
    return metrics
