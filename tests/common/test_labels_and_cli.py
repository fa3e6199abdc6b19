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
    assert (labels[10].roman, labels[15].roman, labels[10].ascii, labels[15].ascii) == ("ṭa", "ta", ".ta", "ta")


@pytest.mark.parametrize("column", ["name", "roman", "ascii"])
def test_every_builtin_label_is_spelled_distinctly(column):
    """ट/त, ठ/थ, ड/द, ढ/ध, ण/न once shared a roman name and the demo's summary merged them; the ascii spelling is
    what the overlay draws without a Devanagari font, so it must be distinct too, without case, and plain ASCII."""
    labels = load_labels("nsl36")
    spellings = [getattr(label, column).casefold() for label in labels]
    assert len(set(spellings)) == len(labels) == 36
    assert all(label.ascii.isascii() and label.ascii for label in labels)


def test_a_labels_file_with_two_classes_spelled_alike_is_one_line(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text("index,name,roman\n0,ट,ta\n1,त,Ta\n", encoding="utf-8")
    with pytest.raises(NslError, match=r"mine.csv: labels 0 and 1 share the roman 'Ta'"):
        load_labels(path)


def test_old_saved_labels_of_the_36_consonants_take_the_distinct_spellings():
    """A run or bundle saved before the ascii column had ट and त both as 'ta': it reads back distinct."""
    from nsl.labels import labels_from_dicts, labels_to_dicts

    old = [{"index": label.index, "name": label.name, "roman": "ta" if label.index in (10, 15) else label.roman}
           for label in load_labels("nsl36")]
    assert labels_from_dicts(old) == load_labels("nsl36")
    mine = [{"index": 0, "name": "a", "roman": "a"}, {"index": 1, "name": "b", "roman": "b"}]
    assert [l.ascii for l in labels_from_dicts(mine)] == ["a", "b"]
    assert labels_from_dicts(labels_to_dicts(load_labels("nsl36"))) == load_labels("nsl36")


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
