"""Files: atomic writes (a file or a folder appears whole or not at all, so an interrupted run never leaves half a
file), content hashes, and the file-name suffixes of images and videos that every stage recognises.

Temporary entries carry their writer (``.NAME.HOST-PID.XXXX.tmp``, ``PREFIXHOST-PID.XXXX``): what a killed run left
(kill -9, a power cut) is removed by the next write of the same name once that process is gone from this host."""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from nsl.errors import NslError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov")


def user_cache_dir() -> Path:
    """The user's cache folder for what nsl rebuilds on demand: NSL_CACHE_DIR, else $XDG_CACHE_HOME/nsl, else
    ~/.cache/nsl."""
    if os.environ.get("NSL_CACHE_DIR"):
        return Path(os.environ["NSL_CACHE_DIR"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "nsl"


def is_image_file(path: str | Path) -> bool:
    """By its name: one of ``IMAGE_SUFFIXES`` (any case)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def is_video_file(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def sha256_of(path: str | Path) -> str:
    """The hex sha256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fsync_path(path: str | Path) -> None:
    """Flush a file (or a folder's entries) to disk, so a rename that follows survives a power cut."""
    flags = os.O_RDONLY | (os.O_DIRECTORY if Path(path).is_dir() else 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems (and /proc-like mounts) refuse fsync on a folder: nothing to flush there
        pass
    finally:
        os.close(fd)


def owner_tag() -> str:
    """``HOST-PID`` of this process, as its temporary entries are named."""
    host = re.sub(r"[^A-Za-z0-9-]", "", socket.gethostname())[:32] or "host"
    return f"{host}-{os.getpid()}"


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_temps(folder: str | Path, prefix: str) -> list[Path]:
    """Remove the entries ``PREFIX HOST-PID.*`` of ``folder`` that a process of this host left and that is no
    longer running; others' entries (another host sharing the folder, a live writer) are kept."""
    host, _, _ = owner_tag().rpartition("-")
    removed = []
    for entry in Path(folder).glob(glob.escape(prefix) + "*"):
        writer, _, pid = entry.name[len(prefix):].split(".", 1)[0].rpartition("-")
        if writer != host or not pid.isdigit() or _running(int(pid)):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        log.info("removed %s (left by an interrupted run)", entry)
        removed.append(entry)
    return removed


@contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A private folder in the system temp folder, removed afterwards; first the folders of ``prefix`` that killed
    runs of this host left there are removed."""
    root = Path(tempfile.gettempdir())
    remove_stale_temps(root, prefix)
    path = Path(tempfile.mkdtemp(prefix=f"{prefix}{owner_tag()}.", dir=root))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _default_mode(path: Path, directory: bool) -> None:
    """mkstemp/mkdtemp make private (0600/0700) entries; give the result the mode a plain open/mkdir would, so a
    bundle copied to a device or mounted into a container stays readable by its other users."""
    path.chmod((0o777 if directory else 0o666) & ~_umask())


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path.parent, f".{path.name}.")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{owner_tag()}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    _default_mode(tmp_path, directory=False)
    try:
        yield tmp_path
        fsync_path(tmp_path)
        os.replace(tmp_path, path)
        fsync_path(path.parent)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text(path: str | Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | Path, data, indent: int = 2) -> Path:
    return write_text(path, json.dumps(data, indent=indent, ensure_ascii=False) + "\n")


def read_json(path: str | Path):
    """A JSON file's value; a one-line error naming the file when it is not JSON."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise NslError(f"{path}: not valid JSON ({err})") from None


@contextmanager
def atomic_dir(path: str | Path, force: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside ``path`` and move it into place when the block succeeds.

    An existing ``path`` is replaced only with ``force``; the caller checks that first to give a clear error.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path.parent, f".{path.name}.")
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.{owner_tag()}.", suffix=".tmp", dir=path.parent))
    _default_mode(tmp, directory=True)
    try:
        yield tmp
        if path.exists() and force:
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
