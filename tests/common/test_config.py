import pytest

from nsl.config import load_defaults, resolve, save_config
from nsl.errors import ConfigError


def test_defaults_follow_the_authors_recipe():
    config = load_defaults()
    assert [(p["epochs"], p["lr"], p["trainable"]) for p in config["phases"]] == [
        (3, 1e-3, "none"), (3, 1e-4, 140), (4, 1e-5, "all")]
    assert config["split_ratios"] == [0.70, 0.15, 0.15] and config["seed"] == 42
    assert config["augment"]["hflip"] is False


def test_overrides_beat_file_beat_defaults(tmp_path):
    cfg_file = tmp_path / "my.yaml"
    cfg_file.write_text("imgsz: 96\nbatch: 8\naugment: {rotation: 2}\n")
    config = resolve(cfg_file, ["batch=4", "augment.hflip=true", "weights=none", "dropout=1"])
    assert config["imgsz"] == 96 and config["batch"] == 4
    assert config["augment"] == {**load_defaults()["augment"], "rotation": 2.0, "hflip": True}
    assert config["weights"] == "none"
    assert config["dropout"] == 1.0 and isinstance(config["dropout"], float)


def test_unknown_key_suggests_the_closest(tmp_path):
    with pytest.raises(ConfigError, match="unknown config key 'imgsize'.*did you mean 'imgsz'"):
        resolve(overrides=["imgsize=96"])
    with pytest.raises(ConfigError, match="augment.rotate.*did you mean 'rotation'"):
        resolve(overrides=["augment.rotate=3"])


@pytest.mark.parametrize("item, message", [
    ("batch=big", "expected a number"), ("batch=2.5", "expected an integer"),
    ("cache=maybe", "expected true or false"), ("split_ratios=0.7", "expected a list"), ("epochs", "key=value")])
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
    config = resolve(overrides=["imgsz=64"])
    save_config(config, tmp_path / "config.yaml")
    assert resolve(tmp_path / "config.yaml") == config
