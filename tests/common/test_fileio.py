import pytest

from nsl.fileio import atomic_dir, read_json, write_json


def test_write_json_is_atomic_and_keeps_the_old_file_on_failure(tmp_path):
    path = tmp_path / "out.json"
    write_json(path, {"a": "क"})
    assert read_json(path) == {"a": "क"}
    with pytest.raises(TypeError):
        write_json(path, {"bad": object()})
    assert read_json(path) == {"a": "क"}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_atomic_dir_appears_whole_or_not_at_all(tmp_path):
    target = tmp_path / "bundle"
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            (tmp / "half.bin").write_bytes(b"x")
            raise RuntimeError("interrupted")
    assert not target.exists() and list(tmp_path.iterdir()) == []
    with atomic_dir(target) as tmp:
        (tmp / "model.bin").write_bytes(b"1")
    with atomic_dir(target, force=True) as tmp:
        (tmp / "model.bin").write_bytes(b"2")
    assert (target / "model.bin").read_bytes() == b"2"
    assert [p.name for p in tmp_path.iterdir()] == ["bundle"]
