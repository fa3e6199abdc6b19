import importlib.util
import sys

import pytest

from nsl.errors import NslError
from nsl.labels import load_labels
from tests.conftest import run_nsl


def test_builtin_labels_are_the_36_consonants_in_dataset_order():
    labels = load_labels("nsl36")
    assert len(labels) == 36
    assert [labels[i].name for i in (0, 9, 10, 33, 34, 35)] == ["क", "ञ", "ट", "क्ष", "त्र", "ज्ञ"]
    assert labels[15].roman == labels[10].roman == "ta"  # romanisation is not unique: labels are keyed by index


def test_user_labels_file(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text("index,name,roman\n1,b,bee\n0,a,ay\n")
    assert [(l.index, l.name, l.roman) for l in load_labels(path)] == [(0, "a", "ay"), (1, "b", "bee")]
    path.write_text("index,name\n0,a\n2,c\n")
    with pytest.raises(NslError, match="mine.csv: label indices must be 0..1"):
        load_labels(path)


def test_help_works_without_tensorflow():
    proc = run_nsl("--help")
    for verb in ("train", "export", "app", "predict", "data"):
        assert verb in proc.stdout
    if importlib.util.find_spec("tensorflow") is None:
        assert "tensorflow" not in sys.modules
