"""Which layers each phase trains; BatchNorm never learns in a fine-tuned backbone."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tf_keras as keras

from nsl.config import resolve, updated
from nsl.options import Phase
from nsl.errors import ConfigError
from nsl.train.model import backbone_layers, build_classifier
from nsl.train.phases import apply_phase
from nsl.train.trainer import compile_for_phase

HEAD = {"pool", "dropout", "predictions"}


@pytest.fixture(scope="module")
def model():
    return build_classifier(resolve(overrides={"imgsz": 32, "weights": "none", "alpha": 0.35}).model, 4)


def _trainable_names(model) -> set[str]:
    return {layer.name for layer in model.layers if layer.trainable and layer.weights}


def _is_bn(layer) -> bool:
    return isinstance(layer, keras.layers.BatchNormalization)


@pytest.mark.parametrize("spec", ["none", 140, "block_15_expand", 0.25, "all"])
def test_phase_trains_exactly_the_configured_layers(model, spec):
    layers = backbone_layers(model)
    start = {"none": len(layers), 140: 139, "all": 0, 0.25: len(layers) - math.ceil(0.25 * len(layers)),
             "block_15_expand": [layer.name for layer in layers].index("block_15_expand")}[spec]
    expected = {layer.name for layer in layers[start:] if layer.weights and not _is_bn(layer)} | {"predictions"}
    trainable_params = apply_phase(model, Phase("p", 1, 1e-3, spec))
    assert _trainable_names(model) == expected
    assert trainable_params == sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert not any(layer.trainable for layer in layers if _is_bn(layer))


def test_bad_trainable_specs_are_config_errors(model):
    for spec in ("block_99_nope", 1000, 1.5):
        with pytest.raises(ConfigError):
            apply_phase(model, Phase("p", 1, 1e-3, spec))


def test_batchnorm_stays_frozen_while_the_backbone_trains(model):
    """The keras transfer-learning guide's check: an unfrozen phase leaves BN weights and statistics alone."""
    apply_phase(model, Phase("full", 1, 1e-2, "all"))
    compile_for_phase(model, 1e-2)
    bn_layers = [layer for layer in backbone_layers(model) if _is_bn(layer)]
    conv = model.get_layer("Conv1")
    before_bn = [w.copy() for layer in bn_layers for w in layer.get_weights()]  # gamma, beta, mean, var
    before_conv = conv.get_weights()[0].copy()
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (16, 32, 32, 3)).astype("float32") * rng.uniform(0.2, 1, (16, 1, 1, 1))
    model.fit(images.astype("float32"), rng.integers(0, 4, 16), epochs=2, batch_size=8, verbose=0)
    after_bn = [w for layer in bn_layers for w in layer.get_weights()]
    assert all(np.array_equal(a, b) for a, b in zip(before_bn, after_bn))
    assert not np.array_equal(before_conv, conv.get_weights()[0]), "the unfrozen convolutions should learn"


def test_phase_plan_defaults_and_single():
    default = resolve()
    assert list(default.hparams.phase_plan()) == [Phase("single", 40, 1e-4, "all")]  # single is the default
    config = updated(default, {"strategy": "progressive"})
    assert [(p.name, p.epochs, p.lr, p.trainable) for p in config.hparams.phase_plan()] == [
        ("head", 3, 1e-3, "none"), ("top", 3, 1e-4, 140), ("full", 4, 1e-5, "all")]
    single = updated(config, {"strategy": "single"}).hparams.phase_plan()
    assert list(single) == [Phase("single", 40, 1e-4, "all")]
    total = {n: [p.epochs for p in updated(config, {"epochs": n}).hparams.phase_plan()] for n in (2, 7, 10, 50)}
    assert total == {2: [1, 1, 1], 7: [2, 2, 3], 10: [3, 3, 4], 50: [15, 15, 20]}  # the recipe's 3:3:4, each >= 1
    per_phase = updated(config, {"epochs": 2, "epochs_mode": "per_phase"}).hparams.phase_plan()
    assert [p.epochs for p in per_phase] == [2, 2, 2]
    assert [p.epochs for p in updated(config, {"epochs": 5, "strategy": "single"}).hparams.phase_plan()] == [5]
    with pytest.raises(ConfigError, match=r"phases\[0\]"):
        updated(config, {"phases": [{"epochs": 1, "lr": 1e-3, "trainble": "all"}]})


def test_a_config_that_gives_phases_means_progressive(tmp_path):
    """phases= without strategy= is a progressive recipe (as before single became the default); strategy wins."""
    phases = "[{name: head, epochs: 2, lr: 0.001, trainable: none}]"
    assert resolve(overrides=[f"phases={phases}"]).hparams.strategy == "progressive"
    assert resolve(overrides=[f"phases={phases}", "strategy=single"]).hparams.strategy == "single"
    config = tmp_path / "recipe.yaml"
    config.write_text(f"phases: {phases}\n", encoding="utf-8")
    assert [p.name for p in resolve(config).hparams.phase_plan()] == ["head"]
