"""Tampered bundles (issue 15, items 2, 6, 7): every file the metadata names must be listed with a digest and lie
inside the bundle folder; its labels and crop settings are checked; ``nsl val BUNDLE`` refuses a label count
that does not match the model. Bundles are built here around a tiny TFLite classifier (tests.hostile)."""

from __future__ import annotations

import os

import pytest

from nsl.edge.bundle import load_bundle, open_bundle
from nsl.errors import NslError
from nsl.fileio import sha256_of
from tests.conftest import env_python, run_nsl
from tests.edge.conftest import error_line
from tests.hostile import read_metadata, tiny_tflite, write_bundle, write_metadata


def _with_file(bundle, name: str, target):
    """List ``name`` in the bundle's files with the real digest of ``target`` and make it the default file."""
    metadata = read_metadata(bundle)
    entry = dict(next(iter(metadata["files"].values())), sha256=sha256_of(target))
    metadata["files"] = {name: entry}
    metadata["default_file"] = {"tflite": name}
    write_metadata(bundle, metadata)


def test_a_file_name_that_climbs_out_of_the_bundle_is_refused_before_it_is_read(tmp_path):
    outside = tmp_path / "other" / "model_int8.tflite"  # a working model, with its true digest in the metadata
    outside.parent.mkdir()
    outside.write_bytes(tiny_tflite())
    bundle = write_bundle(tmp_path / "bundle")
    _with_file(bundle, "../other/model_int8.tflite", outside)
    with pytest.raises(NslError, match=r"metadata\.json: file name '\.\./other/model_int8\.tflite' is not a file "
                                       r"inside the bundle folder"):
        load_bundle(bundle)


def test_an_absolute_name_tells_nothing_about_the_file_it_names(tmp_path):
    """The same message whether the named file exists or not, and no digest: nothing leaks through the error."""
    bundle = write_bundle(tmp_path / "bundle")
    messages = []
    for name in ("/etc/passwd", "/nonexistent/passwd"):
        _with_file(bundle, "placeholder", bundle / "model_fp32.tflite")
        metadata = read_metadata(bundle)
        metadata["files"] = {name: metadata["files"].pop("placeholder")}
        metadata["default_file"] = {"tflite": name}
        write_metadata(bundle, metadata)
        with pytest.raises(NslError) as caught:
            open_bundle(bundle)
        messages.append(str(caught.value).replace(name, "NAME"))
    assert messages[0] == messages[1] and "sha256" not in messages[0] and "missing" not in messages[0]


def test_a_symlink_out_of_the_bundle_is_refused(tmp_path):
    outside = tmp_path / "elsewhere.tflite"
    outside.write_bytes(tiny_tflite())
    bundle = write_bundle(tmp_path / "bundle")
    os.symlink(outside, bundle / "linked.tflite")
    _with_file(bundle, "linked.tflite", outside)
    with pytest.raises(NslError, match="linked.tflite' is not a file inside the bundle folder"):
        load_bundle(bundle)


def test_a_default_file_must_be_listed_with_its_digest(tmp_path):
    """A loadable model beside the listed one, named only in default_file: it would run without any check."""
    bundle = write_bundle(tmp_path / "bundle")
    (bundle / "unlisted.tflite").write_bytes(tiny_tflite(seed=1))
    metadata = read_metadata(bundle)
    metadata["default_file"] = {"tflite": "unlisted.tflite"}
    write_metadata(bundle, metadata)
    with pytest.raises(NslError, match=r"default_file\['tflite'\] = 'unlisted\.tflite' is not one of the files"):
        load_bundle(bundle)


@pytest.mark.parametrize("change, message", [
    (lambda m: m["files"].clear(), "'files' lists no model file"),
    (lambda m: m["files"]["model_fp32.tflite"].pop("sha256"), "has no sha256 digest"),
    (lambda m: m.update(labels="ka,kha,ga"), "'labels': expected a non-empty list"),
    (lambda m: m["labels"].reverse(), "'labels': entry 0 must be"),
    (lambda m: m["preprocess"].update(size=-8), "preprocess: size must be a whole number >= 1, got -8"),
    (lambda m: m["preprocess"].update(margin="wide"), "preprocess: margin must be a number >= 0"),
    (lambda m: m.update(preprocess=[8]), "'preprocess' must be a mapping"),
], ids=["no files", "no digest", "labels a string", "labels out of order", "negative size", "margin text",
        "preprocess a list"])
def test_damaged_metadata_is_one_line(tmp_path, change, message):
    bundle = write_bundle(tmp_path / "bundle")
    metadata = read_metadata(bundle)
    change(metadata)
    write_metadata(bundle, metadata)
    with pytest.raises(NslError, match="metadata.json: ") as caught:
        load_bundle(bundle)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_nsl_val_refuses_labels_that_do_not_match_the_model(tmp_path):
    """40 labels on a 36-output model used to give metrics and exit 0."""
    bundle = write_bundle(tmp_path / "bundle", classes=36)
    metadata = read_metadata(bundle)
    metadata["labels"] = [{"index": i, "name": f"class{i}", "roman": f"c{i}"} for i in range(40)]
    write_metadata(bundle, metadata)
    data = tmp_path / "data"
    for label in range(2):
        (data / str(label)).mkdir(parents=True)
        (data / str(label) / "a.png").write_bytes(_png())
    proc = run_nsl("val", bundle, "--data", data, python=env_python("edge"), check=False)
    assert proc.returncode == 2
    assert "the model has 36 outputs but metadata.json lists 40 labels" in error_line(proc)


def _png() -> bytes:
    import cv2
    import numpy as np

    return cv2.imencode(".png", np.full((8, 8, 3), 128, np.uint8))[1].tobytes()
