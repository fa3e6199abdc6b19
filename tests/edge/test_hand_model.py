"""The hand model: built offline from the mediapipe wheel, verified by structure, found in the user cache."""

import zipfile

import pytest

from nsl.edge import hand_model as hm
from nsl.errors import NslError
from tests.conftest import run_nsl
from tests.edge.conftest import error_line


def _task(path, members, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_built_model_is_an_uncompressed_pair_of_tflite_files(hand_model):
    with zipfile.ZipFile(hand_model) as archive:
        infos = archive.infolist()
        assert sorted(i.filename for i in infos) == sorted(hm.MEMBERS)
        assert all(i.compress_type == zipfile.ZIP_STORED for i in infos)
        assert all(archive.read(i)[4:8] == b"TFL3" for i in infos)
        # the same two models as Google's official file (7,818,763 bytes of models, DESIGN-NOTES section 2)
        assert sum(i.file_size for i in infos) == 7_818_763
    assert len(hm.verify(hand_model)) == 64
    hm.check_loads(hand_model)


def test_verify_refuses_what_mediapipe_cannot_use(tmp_path):
    model = b"\x1c\x00\x00\x00TFL3" + bytes(32)
    good = _task(tmp_path / "good.task", dict.fromkeys(hm.MEMBERS, model))
    digest = hm.verify(good)
    assert hm.verify(good, sha256=digest.upper()) == digest
    with pytest.raises(NslError, match="does not match the pinned"):
        hm.verify(good, sha256="0" * 64)
    with pytest.raises(NslError, match="compressed"):
        hm.verify(_task(tmp_path / "zipped.task", dict.fromkeys(hm.MEMBERS, model), zipfile.ZIP_DEFLATED))
    with pytest.raises(NslError, match="expected exactly"):
        hm.verify(_task(tmp_path / "one.task", {"hand_detector.tflite": model}))
    with pytest.raises(NslError, match="not a TFLite model"):
        hm.verify(_task(tmp_path / "text.task", dict.fromkeys(hm.MEMBERS, b"<html>not found</html>")))
    (tmp_path / "page.task").write_text("<html>404</html>")
    with pytest.raises(NslError, match="nsl hand-model build"):
        hm.verify(tmp_path / "page.task")


def test_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("NSL_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert hm.default_path() == tmp_path / "xdg" / "nsl" / "hand_landmarker.task"
    monkeypatch.setenv("NSL_CACHE_DIR", str(tmp_path / "mine"))
    assert hm.default_path("lite") == tmp_path / "mine" / "hand_landmarker_lite.task"
    with pytest.raises(NslError, match="nsl hand-model build.*nsl hand-model fetch"):
        hm.resolve()
    with pytest.raises(NslError, match="--hand-model .*missing.task: file not found"):
        hm.resolve(tmp_path / "missing.task")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "hand_landmarker_lite.task").write_bytes(b"x")
    assert hm.resolve().name == "hand_landmarker_lite.task"


def test_fetch_verifies_and_writes_atomically(tmp_path, hand_model):
    """fetch through a file:// address (no network in tests): the same checks as for Google's file."""
    target = tmp_path / "cache" / "hand_landmarker.task"
    digest = hm.sha256_of(hand_model)
    assert hm.fetch(hand_model.as_uri(), target, sha256=digest) == target
    assert hm.sha256_of(target) == digest
    other = tmp_path / "other.task"
    with pytest.raises(NslError, match="does not match the pinned"):
        hm.fetch(hand_model.as_uri(), other, sha256="f" * 64)
    assert not other.exists() and not list(tmp_path.glob(".other.task*"))
    with pytest.raises(NslError, match="cannot download"):
        hm.fetch((tmp_path / "absent.task").as_uri(), other)


def test_cli_build_reuses_the_cached_model_and_fetch_checks_the_sha(hand_model, tmp_path):
    proc = run_nsl("hand-model", "build", env={"NSL_CACHE_DIR": str(hand_model.parent)})
    assert '"sha256"' in proc.stdout and "already built" in proc.stderr
    proc = run_nsl("hand-model", "fetch", "--url", hand_model.as_uri(), "--output", tmp_path / "x.task",
                   "--sha256", "0" * 64, check=False)
    assert proc.returncode == 2 and "does not match the pinned" in error_line(proc)
