"""The classifier graph: flat (no nested Model), pixels 0..255 in, softmax out; backbones; weights files."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import tf_keras as keras

from nsl.config import resolve
from nsl.errors import NslError
from tests.conftest import WEIGHTS_DIR, run_nsl
from nsl.train.model import backbone_layers, build_classifier

SHARED_WEIGHTS = WEIGHTS_DIR / "mobilenet_v2_1.0_224_no_top.h5"


def _options(**extra):
    return resolve(overrides={"imgsz": 48, "weights": "none", "alpha": 0.35, **extra})


def _config(**extra):
    return _options(**extra).model


def test_flat_graph_takes_pixels_and_gives_probabilities():
    model = build_classifier(_config(), 5)
    assert not any(isinstance(layer, keras.Model) for layer in model.layers), "a nested Model breaks QAT"
    assert model.input_shape == (None, 48, 48, 3) and model.output_shape == (None, 5)
    assert model.layers[1].name == "rescale"  # MobileNetV2 wants -1..1: the model rescales 0..255 itself
    probs = model(np.random.default_rng(0).uniform(0, 255, (2, 48, 48, 3)).astype("float32")).numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_backbone_layer_indices_match_the_standalone_application():
    """Phase index 140 must mean what the dataset authors meant: base_model.layers[140:]."""
    model = build_classifier(_config(), 5)
    standalone = keras.applications.MobileNetV2((48, 48, 3), alpha=0.35, include_top=False, weights=None)
    assert [layer.name for layer in backbone_layers(model)] == [layer.name for layer in standalone.layers[1:]]


@pytest.mark.parametrize("name", ["mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0"])
def test_other_backbones_build_flat_and_normalise_themselves(name):
    model = build_classifier(_config(backbone=name, alpha=1.0, imgsz=32), 3)
    assert "rescale" not in [layer.name for layer in model.layers]
    assert not any(isinstance(layer, keras.Model) for layer in model.layers)
    assert model.output_shape == (None, 3)


@pytest.mark.skipif(not SHARED_WEIGHTS.is_file(), reason=f"ImageNet weights file not found at {SHARED_WEIGHTS}")
def test_weights_path_loads_the_file():
    model = build_classifier(_config(alpha=1.0, imgsz=96, weights=str(SHARED_WEIGHTS)), 4)
    with h5py.File(SHARED_WEIGHTS, "r") as handle:
        group = handle["Conv1"] if "Conv1" in handle else handle["model_weights"]["Conv1"]
        kernel = np.asarray(group["Conv1"]["kernel:0"])
    np.testing.assert_array_equal(model.get_layer("Conv1").get_weights()[0], kernel)


def test_weights_file_that_does_not_fit_is_a_one_line_error(tmp_path):
    other = tmp_path / "v3_small.h5"
    donor = build_classifier(_config(backbone="mobilenet_v3_small", alpha=1.0), 3)
    keras.Model(donor.input, donor.get_layer("pool").input).save_weights(other)
    for path in (other, tmp_path / "missing.h5"):
        with pytest.raises(NslError) as err:
            build_classifier(_config(weights=str(path)), 5)
        assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_cli_bad_weights_file_and_unknown_key_are_one_line_errors(tmp_path, synth_data):
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not a weights file")
    proc = run_nsl("train", f"data={synth_data}", "imgsz=48", f"weights={junk}", f"--project={tmp_path}",
                   check=False)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("nsl train: error:")]
    assert len(lines) == 1 and str(junk) in lines[0] and "Traceback" not in proc.stderr, proc.stderr
    proc = run_nsl("train", f"data={synth_data}", "imgsiz=64", check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("nsl train: error: command line: unknown config key 'imgsiz' "
                                   "(did you mean 'imgsz'?)")


def test_mixed_precision_model_is_saved_as_float32():
    """On a GPU the model trains in mixed_float16; best.keras must still be a plain float32 graph."""
    from nsl.train.run import float32_copy
    from nsl.train.trainer import use_mixed_precision

    config = _options(mixed_precision="on")
    try:
        assert use_mixed_precision("on") == "mixed_float16"
        mixed = build_classifier(config.model, 4)
        assert mixed.get_layer("Conv1").compute_dtype == "float16"
        assert mixed.get_layer("predictions").compute_dtype == "float32"
        clean = float32_copy(mixed, config, 4)
    finally:
        use_mixed_precision("off")
    assert all(layer.compute_dtype == "float32" for layer in clean.layers if layer.weights)
    images = np.random.default_rng(0).uniform(0, 255, (2, 48, 48, 3)).astype("float32")
    np.testing.assert_allclose(clean(images).numpy(), mixed(images).numpy(), atol=2e-2)


def _bn_momenta(model) -> set[float]:
    return {layer.momentum for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)}


def test_batchnorm_momentum_settles_fast_from_random_weights():
    """From random weights the Keras MobileNets' 0.999 leaves the moving statistics at their initial values for
    thousands of steps: a demo run on 2,016 images then validated at exactly chance while training accuracy rose."""
    assert _bn_momenta(build_classifier(_config(), 5)) == {0.9}
    assert _bn_momenta(build_classifier(_config(bn_momentum=0.95), 5)) == {0.95}
    with pytest.raises(NslError, match="bn_momentum"):
        build_classifier(_config(bn_momentum=1.5), 5)


@pytest.mark.skipif(not SHARED_WEIGHTS.is_file(), reason=f"no ImageNet weights file at {SHARED_WEIGHTS}")
def test_pretrained_backbones_keep_their_batchnorm_momentum():
    model = build_classifier(_config(imgsz=96, alpha=1.0, weights=str(SHARED_WEIGHTS)), 5)
    assert _bn_momenta(model) == {0.999}


def test_a_landmark_ensemble_is_one_flat_model_that_averages_its_members(tmp_path):
    """landmarks.ensemble=3: three members trained with seeds 5, 6, 7, averaged into one flat model (what the
    exporter converts) whose answer is the mean of the members' answers; ensemble=1 is the single model."""
    import dataclasses

    from nsl.options import LandmarkOptions
    from nsl.rundir import RunDir
    from nsl.train.landmark_model import train_landmark_model

    rng = np.random.default_rng(0)
    centres = rng.normal(0, 1, (3, 63))
    labels = np.repeat(np.arange(3), 8)
    part = lambda: {"features": (centres[labels] + rng.normal(0, 0.3, (24, 63))).astype("float32"), "labels": labels}
    arrays = {"train": part(), "val": part()}
    options = dataclasses.replace(LandmarkOptions(), ensemble=3, epochs=3, copies=1, hidden=(8,))
    model, history = train_landmark_model(options, arrays, 3, 5, RunDir(tmp_path))
    assert not any(isinstance(layer, keras.Model) for layer in model.layers), "a nested Model breaks QAT"
    members = [name for name in (layer.name for layer in model.layers) if name.endswith("_predictions")]
    assert members == ["m1_predictions", "m2_predictions", "m3_predictions"] and model.output_names == ["predictions"]
    x, saved = arrays["val"]["features"], keras.models.load_model(tmp_path / "landmarks.keras")
    each = keras.Model(saved.input, [saved.get_layer(name).output for name in members])(x)
    np.testing.assert_allclose(model(x).numpy(), saved(x).numpy(), rtol=1e-6)
    np.testing.assert_allclose(model(x).numpy(), np.mean([p.numpy() for p in each], axis=0), rtol=1e-5, atol=1e-6)
    assert len({float(p.numpy()[0, 0]) for p in each}) == 3, "members with different seeds must differ"
    assert history and (tmp_path / "landmarks.keras").is_file()
    single, _ = train_landmark_model(dataclasses.replace(options, ensemble=1), arrays, 3, 5, RunDir(tmp_path / "one"))
    assert [layer.name for layer in single.layers][-1] == "predictions" and len(single.layers) == 4


def test_augmenting_the_angle_layout_moves_the_points_and_recomputes_the_shape_values():
    import dataclasses

    from nsl.landmarks import hand_features
    from nsl.options import LandmarkOptions
    from nsl.train.landmark_model import augment

    rng = np.random.default_rng(1)
    hands = rng.uniform(100, 300, (4, 21, 3))
    features = hand_features(hands, ["Right"] * 4, layout="xyz21+angles")
    options = dataclasses.replace(LandmarkOptions(), layout="xyz21+angles", copies=3, jitter=0.0)
    moved = augment(features, options, np.random.default_rng(0))
    assert moved.shape == (12, 92) and moved.dtype == np.float32
    assert not np.allclose(moved[:4, :63], features[:, :63], atol=1e-3)  # rotated and scaled
    np.testing.assert_allclose(moved[:4, 63:82], features[:, 63:82], atol=1e-5)  # bends and spreads: pose-free


def test_tilt_and_bones_make_other_views_and_other_hands_that_the_device_would_normalise_alike():
    """tilt turns the hand out of the image plane, bones changes each bone's length but not its direction; both
    come back at the x-y reach of 1 that hand_features gives every hand, and neither happens when set to 0."""
    import dataclasses

    from nsl.landmarks import FINGERS, WRIST, hand_features
    from nsl.options import LandmarkOptions
    from nsl.train.landmark_model import augment

    rng = np.random.default_rng(3)
    features = hand_features(rng.uniform(100, 300, (6, 21, 3)), ["Right", "Left"] * 3)
    still = dataclasses.replace(LandmarkOptions(), copies=1, rotation=0.0, scale=0.0, jitter=0.0)
    np.testing.assert_allclose(augment(features, still, np.random.default_rng(0)), features, atol=1e-6)
    before = features.reshape(6, 21, 3)
    for change in ({"tilt": 30.0}, {"bones": 0.2}):
        moved = augment(features, dataclasses.replace(still, **change), np.random.default_rng(0)).reshape(6, 21, 3)
        np.testing.assert_allclose(np.linalg.norm(moved[..., :2], axis=-1).max(axis=1), 1.0, atol=1e-5)
        assert np.abs(moved - before).max() > 0.02
    bones = [(a, b) for finger in FINGERS for a, b in zip((WRIST, *finger), finger)]
    vectors = [np.stack([points[:, b] - points[:, a] for a, b in bones], axis=1) for points in (before, moved)]
    lengths = [np.linalg.norm(v, axis=-1, keepdims=True) for v in vectors]  # moved: the last change, bones
    np.testing.assert_allclose(vectors[1] / lengths[1], vectors[0] / lengths[0], atol=1e-5)  # same directions
    ratio = (lengths[1] / lengths[0])[..., 0]
    ratio /= np.median(ratio, axis=1, keepdims=True)  # the reach is normalised again: compare proportions
    assert ratio.std() > 0.03 and ratio.max() < 1.2 / 0.8 + 1e-6
