"""``models=auto`` and ``crop=auto`` become concrete before a run starts, from whether the dataset has a hands
file; a run's saved config that predates a key keeps the meaning it had when it was saved."""

from __future__ import annotations

from nsl.config import resolve
from nsl.rundir import RunDir
from nsl.train.hands import with_auto_resolved


def _resolved(tmp_path, *overrides):
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    return with_auto_resolved(resolve(overrides=[f"data={data}", *overrides], check_paths=False))


def test_a_hands_file_means_both_models_and_the_devices_crops(tmp_path):
    hands = tmp_path / "hands.npz"
    hands.write_bytes(b"")
    options = _resolved(tmp_path, f"hands={hands}")
    assert (options.model.models, options.preprocess.crop) == ("both", "hands")
    options = _resolved(tmp_path, f"hands={hands}", "crop=image", "models=cnn")  # what a user says stays
    assert (options.model.models, options.preprocess.crop) == ("cnn", "image")


def test_no_hands_file_means_the_cnn_on_the_datasets_framing(tmp_path):
    for setting in ("hands=none", "hands=auto"):  # auto: nsl data hands was never run for this folder
        options = _resolved(tmp_path, setting)
        assert (options.model.models, options.preprocess.crop) == ("cnn", "image"), setting


def test_a_config_saved_before_the_auto_defaults_keeps_its_meaning(tmp_path):
    (tmp_path / "config.yaml").write_text("imgsz: 48\n", encoding="utf-8")  # no strategy, crop or models
    options = RunDir(tmp_path).options()
    assert (options.hparams.strategy, options.preprocess.crop, options.model.models) == ("progressive", "image",
                                                                                          "cnn")


def test_a_run_saved_before_landmark_ensembles_keeps_one_landmark_model(tmp_path):
    (tmp_path / "config.yaml").write_text("imgsz: 48\nlandmarks:\n  dropout: 0.2\n", encoding="utf-8")
    assert RunDir(tmp_path).options().landmarks.ensemble == 1  # what it trained (a resume must not make five)
    assert resolve().landmarks.ensemble == 5  # a new run: the default, chosen on the training signers
