import os
import subprocess
import tempfile

import pytest

from nsl.errors import NslError
from nsl.fileio import atomic_dir, atomic_path, owner_tag, read_json, scratch_dir, write_json


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


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_what_killed_writers_left_is_removed_by_the_next_write(tmp_path, monkeypatch):
    """kill -9 mid-export left an 11 MB .NAME.*.tmp beside --out and a folder in the system temp dir for good."""
    host = owner_tag().rpartition("-")[0]
    dead, alive = f"{host}-{_dead_pid()}", f"{host}-{os.getpid()}"
    left = {tmp_path / f".bundle.{dead}.x1.tmp": "dir", tmp_path / f".out.json.{dead}.x2.tmp": "file",
            tmp_path / f".bundle.{alive}.x3.tmp": "dir",                  # a live writer: kept
            tmp_path / f".bundle.otherhost-{_dead_pid()}.x4.tmp": "dir",   # another machine sharing the folder
            tmp_path / ".bundle.abc123.tmp": "dir"}                        # not named by this code: kept
    for path, kind in left.items():
        path.mkdir() if kind == "dir" else path.write_text("half")
    with atomic_dir(tmp_path / "bundle") as tmp:
        (tmp / "model.bin").write_bytes(b"1")
    write_json(tmp_path / "out.json", {})
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["bundle", "out.json", f".bundle.{alive}.x3.tmp", *(p.name for p in list(left)[3:])])
    scratch_root = tmp_path / "system-tmp"
    scratch_root.mkdir()
    (scratch_root / f"nsl-export-{dead}.y").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch_root))
    with scratch_dir("nsl-export-") as work:
        assert work.parent == scratch_root and work.name.startswith(f"nsl-export-{owner_tag()}.")
    assert list(scratch_root.iterdir()) == []


def test_atomic_path_names_its_writer(tmp_path):
    with atomic_path(tmp_path / "x.bin") as tmp:
        assert tmp.name.startswith(f".x.bin.{owner_tag()}.") and tmp.name.endswith(".tmp")
        tmp.write_bytes(b"1")


def test_read_json_names_a_damaged_file(tmp_path):
    (tmp_path / "labels.json").write_text("[{")
    with pytest.raises(NslError, match="labels.json: not valid JSON"):
        read_json(tmp_path / "labels.json")
