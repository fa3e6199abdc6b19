"""One grammar for every verb: each flag is also a key=value, both resolve to the same settings, a wrong key or value
is one line and exit 2, a --config FILE has a section per verb, and `nsl cfg` prints what a verb would run with.

Runs in the edge environment (no TensorFlow): the train-side verbs are exercised here up to where they would need
it, and through a real run in tests/train/test_grammar_train.py."""

from __future__ import annotations

import argparse

import pytest
import yaml

from nsl.cli import build_parser
from nsl.config import SECTIONS
from nsl.fields import Bool, Choice, Float, Int, ListOf
from nsl.grammar import IntChoice, leaf_verbs
from tests.conftest import run_nsl

VERBS = {section: parser for section, parser in leaf_verbs(build_parser()).items() if hasattr(parser, "nsl_keys")}


def words_of(section: str) -> list[str]:
    return section.replace("hand_model", "hand-model").split("_")


def positionals(parser) -> list[str]:
    """Values for the verb's positional arguments and its required keys."""
    words = [f"{action.dest}-value" for action in parser._actions
             if not action.option_strings and not isinstance(action, argparse._SubParsersAction)]
    return words + [f"{spec.key}=required-value" for spec in parser.nsl_keys.values() if spec.required]


def sample(spec) -> tuple[list[str], str]:
    """(flag words, key=value text) that set ``spec`` to a value other than its default."""
    kind = spec.kind
    if isinstance(kind, Bool):
        return [spec.flag], f"{spec.key}=true"
    if isinstance(kind, (Choice, IntChoice)):
        value = next(str(v) for v in kind.values if v != spec.default)
    elif isinstance(kind, ListOf):
        return [spec.flag, "a", "b"], f"{spec.key}=[a, b]"
    elif isinstance(kind, Int):
        value = str((spec.default or 0) + 3)
    elif isinstance(kind, Float):
        value = str((spec.default or 0.0) + 0.25)
    else:
        value = "some/value"
    return [spec.flag, value], f"{spec.key}={value}"


def test_every_verb_but_train_and_compare_has_keys_and_a_section():
    assert set(VERBS) == set(SECTIONS)
    assert {"val", "export", "app", "predict", "bench", "data_synth", "data_check", "data_hands"} <= set(VERBS)


@pytest.mark.parametrize("section", sorted(VERBS))
def test_each_flag_and_its_key_give_the_same_settings(section):
    parser = VERBS[section]
    base = [*words_of(section), *positionals(parser)]
    for spec in parser.nsl_keys.values():
        flag_words, key_value = sample(spec)
        by_flag = vars(build_parser().parse_args([*base, *flag_words]))
        by_key = vars(build_parser().parse_args([*base, key_value]))
        assert by_flag == by_key, f"nsl {' '.join(words_of(section))}: {flag_words} vs {key_value}"
        assert by_key[spec.key] != spec.default or isinstance(spec.kind, ListOf)


@pytest.mark.parametrize("section", sorted(VERBS))
def test_a_wrong_key_and_a_wrong_value_are_one_line_through_the_cli(section):
    parser = VERBS[section]
    base = [*words_of(section), *positionals(parser)]
    first = next(iter(parser.nsl_keys))
    typo = first[:-1] + ("x" if first[-1] != "x" else "y")
    proc = run_nsl(*base, f"{typo}=1", check=False)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and f"unknown key '{typo}'" in lines[0], proc.stderr
    assert f"did you mean '{first}'" in lines[0]
    typed = next((spec for spec in parser.nsl_keys.values() if not isinstance(spec.kind, ListOf) and
                  type(spec.kind).__name__ != "Text"), None)
    if typed is not None:
        proc = run_nsl(*base, f"{typed.key}=[not, this]", check=False)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and f"'{typed.key}'" in lines[0], proc.stderr


@pytest.mark.parametrize("flag_form, key_form, expected", [
    (["export", "/no/such/run", "--int8"], ["export", "/no/such/run", "int8=True"], "train"),
    (["val", "/no/such/run", "--max-drop", "1"], ["val", "/no/such/run", "max_drop=1"], "--max-drop gates"),
    (["predict", "README.md", "--model", "/no/bundle"], ["predict", "README.md", "model=/no/bundle"], "/no/bundle"),
    (["app", "--model", "/no/bundle", "--hand-model", "/no/hand.task", "--headless"],
     ["app", "model=/no/bundle", "hand_model=/no/hand.task", "headless=on"], "/no/"),
    (["data", "hands", "/no/data", "--hand-model", "/no/model.task"],
     ["data", "hands", "/no/data", "hand_model=/no/model.task"], "/no/"),
    (["bench", "--sections", "nosuch"], ["bench", "sections=nosuch"], "nosuch"),
    (["train", "--data", "/no/data"], ["train", "data=/no/data"], "/no/data"),
    (["compare", "--data", "/no/data", "--out", "/tmp/x"], ["compare", "data=/no/data", "--out", "/tmp/x"], "/no/data"),
])
def test_both_grammars_run_the_same_command(flag_form, key_form, expected):
    """Through the CLI, a real invocation that stops early: the two grammars end the same way, on the value."""
    by_flag, by_key = run_nsl(*flag_form, check=False), run_nsl(*key_form, check=False)
    assert by_flag.returncode == by_key.returncode == 2, (by_flag.stderr, by_key.stderr)
    assert by_flag.stderr == by_key.stderr and expected in by_key.stderr
    assert len(by_key.stderr.strip().splitlines()) == 1, by_key.stderr


def test_a_missing_required_key_names_flag_and_key():
    proc = run_nsl("app", "headless=true", check=False)
    assert proc.returncode == 2 and "--model (or model=...)" in proc.stderr


def test_precedence_defaults_config_section_key_value_flag(tmp_path):
    config = tmp_path / "nsl.yaml"
    config.write_text("imgsz: 96\nexport:\n  calib: 10\n  formats: tflite\napp:\n  smooth: 9\n", encoding="utf-8")
    args = build_parser().parse_args(["export", "runs/x", "--config", str(config), "calib=20"])
    assert (args.calib, args.formats, args.int8) == (20, "tflite", False)
    args = build_parser().parse_args(["export", "runs/x", "--config", str(config), "calib=20", "--calib", "30"])
    assert args.calib == 30
    args = build_parser().parse_args(["app", "model=b", "--config", str(config)])
    assert args.smooth == 9 and args.model == "b"
    from nsl.config import resolve

    assert resolve(config, check_paths=False).model.imgsz == 96  # the train keys beside the sections
    config.write_text("train:\n  imgsz: 64\nexport:\n  calib: 1\n", encoding="utf-8")
    assert resolve(config, check_paths=False).model.imgsz == 64
    config.write_text("export:\n  calbi: 1\n", encoding="utf-8")
    proc = run_nsl("export", "runs/x", "--config", config, check=False)
    assert proc.returncode == 2 and "unknown key 'calbi'" in proc.stderr and "did you mean 'calib'" in proc.stderr


def test_a_value_of_a_flag_is_not_taken_for_a_key():
    args = build_parser().parse_args(["app", "--model", "b", "--source", "rtsp://cam/stream?x=1", "smooth=3"])
    assert args.source == "rtsp://cam/stream?x=1" and args.smooth == 3


def test_cfg_prints_resolved_settings_with_help_in_the_edge_environment():
    proc = run_nsl("cfg", "export", "int8=true", "calib=8")
    assert "int8: true" in proc.stdout and "calib: 8" in proc.stdout and "# (bool)" in proc.stdout
    app = run_nsl("cfg", "app", "smooth=3").stdout
    assert "smooth: 3" in app and "model: null" in app
    synth = run_nsl("cfg", "data", "synth", "classes=4").stdout
    assert synth.startswith("# --- nsl data synth ---") and "classes: 4" in synth
    train = run_nsl("cfg", "train", "epochs=30", "augment.rotation=2").stdout
    values = yaml.safe_load(train)
    assert values["epochs"] == 30 and values["augment"]["rotation"] == 2.0 and "# (int >= 1 | null)" in train
    whole = yaml.safe_load(run_nsl("cfg").stdout)
    assert whole["export"]["int8"] is False and whole["imgsz"] == 224 and set(SECTIONS) <= set(whole)
    proc = run_nsl("cfg", "expot", check=False)
    assert proc.returncode == 2 and "no verb 'expot'" in proc.stderr
    proc = run_nsl("cfg", "train", "epcohs=3", check=False)
    assert proc.returncode == 2 and "did you mean 'epochs'" in proc.stderr


def test_exist_ok_reuses_a_run_folder_and_refuses_another(tmp_path):
    from nsl.errors import NslError
    from nsl.rundir import RunDir

    run = tmp_path / "exp"
    (run / "bundle").mkdir(parents=True)
    for name in ("config.yaml", "metrics.json", "best.keras", "notes.txt"):
        (run / name).write_text("x", encoding="utf-8")
    assert RunDir.for_new_run(tmp_path, "exp").path == tmp_path / "exp2"
    assert RunDir.for_new_run(tmp_path, "exp", exist_ok=True).path == run
    assert sorted(p.name for p in run.iterdir()) == ["notes.txt"]  # the run's own files went, the user's stayed
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "photo.jpg").write_text("x", encoding="utf-8")
    with pytest.raises(NslError, match="not a run folder"):
        RunDir.for_new_run(tmp_path, "other", exist_ok=True)
