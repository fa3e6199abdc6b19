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


def test_atomic_outputs_get_the_usual_permissions(tmp_path):
    """mkstemp/mkdtemp make 0600/0700 entries: a bundle copied to a device or mounted into a container for
    another user would be unreadable. Atomic outputs get what open()/mkdir() give under the umask."""
    import os

    old = os.umask(0o022)
    try:
        write_json(tmp_path / "meta.json", {})
        with atomic_dir(tmp_path / "bundle") as tmp:
            write_json(tmp / "metadata.json", {})
    finally:
        os.umask(old)
    assert (tmp_path / "meta.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "bundle").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "bundle" / "metadata.json").stat().st_mode & 0o777 == 0o644
