import dataclasses

import pytest

from nsl import config as cfg
from nsl.config import KEYS, load_defaults, render_defaults, resolve, save_config, to_dict, updated
from nsl.errors import ConfigError
from nsl.options import Options
from tests.conftest import ROOT


def test_defaults_follow_the_authors_recipe():
    config = load_defaults()
    assert [(p["epochs"], p["lr"], p["trainable"]) for p in config["phases"]] == [
        (3, 1e-3, "none"), (3, 1e-4, 140), (4, 1e-5, "all")]
    assert config["split_ratios"] == [0.70, 0.15, 0.15] and config["seed"] == 42
    assert config["augment"]["hflip"] is False


def test_overrides_beat_file_beat_defaults(tmp_path):
    cfg_file = tmp_path / "my.yaml"
    cfg_file.write_text("imgsz: 96\nbatch: 8\naugment: {rotation: 2}\n")
    options = resolve(cfg_file, ["batch=4", "augment.hflip=true", "weights=none", "dropout=0"])
    assert options.model.imgsz == 96 and options.hparams.batch == 4
    assert to_dict(options)["augment"] == {**load_defaults()["augment"], "rotation": 2.0, "hflip": True}
    assert options.model.weights == "none"
    assert options.model.dropout == 0.0 and isinstance(options.model.dropout, float)


def test_unknown_key_suggests_the_closest(tmp_path):
    with pytest.raises(ConfigError, match="unknown config key 'imgsize'.*did you mean 'imgsz'"):
        resolve(overrides=["imgsize=96"])
    with pytest.raises(ConfigError, match="augment.rotate.*did you mean 'augment.rotation'"):
        resolve(overrides=["augment.rotate=3"])


@pytest.mark.parametrize("item, message", [
    ("batch=big", "expected a whole number"), ("batch=2.5", "expected a whole number"),
    ("cache=maybe", "expected true or false"), ("split_ratios=0.7", "expected 3 fractions"), ("epochs", "key=value")])
def test_bad_values_give_one_line_errors(item, message):
    with pytest.raises(ConfigError, match=message) as err:
        resolve(overrides=[item])
    assert "\n" not in str(err.value)


def test_bad_config_file_is_named(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("imgsz: [1, 2\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        resolve(bad)
    with pytest.raises(ConfigError, match="missing.yaml: config file not found"):
        resolve(tmp_path / "missing.yaml")


def test_resolved_config_round_trips(tmp_path):
    options = resolve(overrides=["imgsz=64", "mixed_precision=on", "augment.zoom=0"])
    save_config(options, tmp_path / "config.yaml")
    assert resolve(tmp_path / "config.yaml") == options


# Every value a user may mistype, with the key the one-line error must name. All of these used to pass the
# config layer and fail (or silently misbehave) deep inside training; now they fail before a run folder exists.
BAD_VALUES = [
    ("epochs=abc", "epochs"), ("epochs=0", "epochs"), ("imgsz=-5", "imgsz"), ("imgsz=16", "imgsz"),
    ("split=foo", "split"), ("batch=0", "batch"), ("batch=-4", "batch"), ("steps_per_epoch=abc", "steps_per_epoch"),
    ("workers=abc", "workers"), ("workers=0", "workers"), ("seed=-1", "seed"), ("strategy=random", "strategy"),
    ("backbone=resnet", "backbone"), ("alpha=0.3", "alpha"), ("alpha=0", "alpha"), ("freeze_bn=maybe", "freeze_bn"),
    ("bn_momentum=2", "bn_momentum"), ("dropout=1.5", "dropout"), ("label_smoothing=1", "label_smoothing"),
    ("class_weights=equal", "class_weights"), ("mixed_precision=fast", "mixed_precision"),
    ("cache=maybe", "cache"), ("tensorboard=2", "tensorboard"), ("split_ratios=[0.8,0.3,0.1]", "split_ratios"),
    ("group_hash_distance=-1", "group_hash_distance"), ("max_bad_fraction=2", "max_bad_fraction"),
    ("color_mode=sepia", "color_mode"), ("threshold_block=1", "threshold_block"),
    ("crop_margin=-0.1", "crop_margin"), ("blur=-1", "blur"), ("augment.rotation=-1", "augment.rotation"),
    ("augment.hflip=sometimes", "augment.hflip"), ("single.epochs=0", "single.epochs"), ("single.lr=0", "single.lr"),
    ("patience=-1", "patience"), ("plateau_factor=0", "plateau_factor"), ("name=a/b", "name"),
    ("phases=[{name: a}]", "phases[0]"), ("phases=[{epochs: 1, lr: 1e-3, trainble: all}]", "phases[0]"),
    ("phases=[{epochs: x, lr: 1e-3}]", "phases[0].epochs"), ("phases=[{epochs: 0, lr: 1e-3}]", "phases"),
    ("weights=/no/such/file.h5", "weights"), ("labels=/no/such/labels.csv", "labels"),
]


@pytest.mark.parametrize("item, key", BAD_VALUES)
def test_every_bad_value_names_its_key(item, key):
    with pytest.raises(ConfigError) as err:
        resolve(overrides=[item])
    message = str(err.value)
    assert f"'{key}'" in message and "\n" not in message, message


def test_bad_values_fail_at_the_command_line_before_a_run_folder_exists(tmp_path, capsys):
    """The same table through the `nsl train` command line (in this, the edge, environment: options are checked
    before TensorFlow is needed): one line, exit 2, and the project folder is never made."""
    from nsl.cli import main

    data, project = tmp_path / "data", tmp_path / "runs"
    data.mkdir()
    for item, key in BAD_VALUES:
        code = main(["train", f"data={data}", item, f"--project={project}"])
        lines = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and f"'{key}'" in lines[0], (item, lines)
        assert lines[0].startswith("nsl train: error: ") and not project.exists(), item


@pytest.mark.parametrize("text, expected", [("on", "on"), ("true", "on"), ("yes", "on"), ("off", "off"),
                                             ("false", "off"), ("no", "off"), ("auto", "auto"), ("ON", "on")])
def test_words_mean_what_a_user_means(text, expected):
    assert resolve(overrides=[f"mixed_precision={text}"]).hparams.mixed_precision == expected
    if expected != "auto":
        assert resolve(overrides=[f"cache={text}"]).data.cache is (expected == "on")


def test_freeze_bn_and_weights_keywords():
    assert resolve(overrides=["freeze_bn=yes"]).model.freeze_bn == "true"
    assert resolve(overrides=["freeze_bn=off"]).model.freeze_bn == "false"
    assert resolve(overrides=["weights=none"]).model.weights == "none"
    assert resolve(overrides=["weights=None"]).model.weights == "none"
    assert resolve(overrides=["steps_per_epoch=null"]).hparams.steps_per_epoch is None
    assert resolve(overrides=["steps_per_epoch=none"]).hparams.steps_per_epoch is None


def test_options_are_frozen_and_updated_copies_are_checked():
    options = resolve()
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.model.imgsz = 5
    single = updated(options, {"strategy": "single", "single.epochs": 7})
    assert [(p.name, p.epochs) for p in single.hparams.phase_plan()] == [("single", 7)]
    with pytest.raises(ConfigError, match="'imgsz'"):
        updated(options, {"imgsz": 3})


def test_a_saved_config_of_an_older_version_still_resolves():
    """A key that a run's config.yaml lacks takes today's default; a key since removed is dropped."""
    saved = to_dict(resolve(overrides=["imgsz=64"]))
    del saved["bn_momentum"]
    saved["retired_key"] = 3
    options = resolve(base=saved, check_paths=False)
    assert options.model.imgsz == 64 and options.model.bn_momentum is None


def test_every_key_is_documented_and_defaults_yaml_is_current():
    assert all(spec.help and spec.kind for spec in KEYS.values())
    from nsl.cli import build_parser
    from nsl.commands.cfg import render_all

    text = (ROOT / "nsl" / "defaults.yaml").read_text(encoding="utf-8")
    assert text == render_all(build_parser()), (
        "nsl/defaults.yaml is stale: regenerate it with python -m nsl cfg > nsl/defaults.yaml")
    assert render_defaults() in text
    assert cfg.build({k: v for k, v in cfg.flatten(load_defaults(), "defaults").items()}) == Options()


def test_a_run_saved_before_epochs_meant_the_total_keeps_its_per_phase_meaning(tmp_path):
    from nsl.rundir import RunDir

    (tmp_path / "config.yaml").write_text("epochs: 2\nimgsz: 48\n", encoding="utf-8")  # no epochs_mode: old
    old = RunDir(tmp_path).options().hparams
    assert old.epochs_mode == "per_phase" and [p.epochs for p in old.phase_plan()] == [2, 2, 2]
    save_config(resolve(overrides={"epochs": 2, "strategy": "progressive"}, check_paths=False),
                tmp_path / "config.yaml")
    new = RunDir(tmp_path).options().hparams
    assert new.epochs_mode == "total" and [p.epochs for p in new.phase_plan()] == [1, 1, 1]
