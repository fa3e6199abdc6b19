"""The MediaPipe hand model (``hand_landmarker.task``): find it, build it offline, or fetch Google's file.

A ``.task`` file is an uncompressed zip of ``hand_detector.tflite`` + ``hand_landmarks_detector.tflite``.
``build`` takes the same two models out of the ``mediapipe==0.10.21`` wheel (the last one that ships them);
``fetch`` downloads Google's official file. Both verify the result by structure (no sha256 of the official
file could be obtained offline, see DESIGN-NOTES section 2), print its sha256 so a fleet can pin one
(``--sha256``), and write it atomically into the user cache.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from nsl.edge.child_probe import PROBE_TIMEOUT_S, probe_in_child
from nsl.errors import NslError
from nsl.fileio import atomic_path, sha256_of, user_cache_dir

log = logging.getLogger(__name__)

MEMBERS = ("hand_detector.tflite", "hand_landmarks_detector.tflite")
WHEEL_SPEC = "mediapipe==0.10.21"
WHEEL_PLATFORM = ("--python-version", "3.11", "--implementation", "cp", "--platform", "manylinux_2_28_x86_64")
WHEEL_MODELS = {
    "full": ("mediapipe/modules/palm_detection/palm_detection_full.tflite",
             "mediapipe/modules/hand_landmark/hand_landmark_full.tflite"),
    # same palm detector, lighter landmark model: about 32 % faster tracking (DESIGN-NOTES section 2)
    "lite": ("mediapipe/modules/palm_detection/palm_detection_full.tflite",
             "mediapipe/modules/hand_landmark/hand_landmark_lite.tflite"),
}
OFFICIAL_URL = ("https://storage.googleapis.com/mediapipe-models/hand_landmarker/hand_landmarker/"
                "float16/latest/hand_landmarker.task")
TASK_NAMES = {"full": "hand_landmarker.task", "lite": "hand_landmarker_lite.task"}
HOW_TO_GET = ("run 'nsl hand-model build' (offline, from the mediapipe wheel) or 'nsl hand-model fetch' "
              "(Google's official file), or pass --hand-model PATH")


def cache_dir() -> Path:
    """NSL_CACHE_DIR, else $XDG_CACHE_HOME/nsl, else ~/.cache/nsl."""
    return user_cache_dir()


def default_path(variant: str = "full") -> Path:
    return cache_dir() / TASK_NAMES[variant]




def verify(path: str | Path, sha256: str | None = None) -> str:
    """Check a ``.task`` file's structure (and a pinned sha256); return its sha256 or raise NslError."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            names = sorted(info.filename for info in infos)
            if names != sorted(MEMBERS):
                raise NslError(f"{path}: expected exactly {' + '.join(MEMBERS)} inside, found {names}; {HOW_TO_GET}")
            if any(info.compress_type != zipfile.ZIP_STORED for info in infos):
                raise NslError(f"{path}: members are compressed; MediaPipe needs them stored; {HOW_TO_GET}")
            for info in infos:
                if archive.read(info)[4:8] != b"TFL3":
                    raise NslError(f"{path}: {info.filename} is not a TFLite model (no TFL3 mark); {HOW_TO_GET}")
    except (zipfile.BadZipFile, OSError) as err:
        raise NslError(f"{path}: not a hand model .task file ({err}); {HOW_TO_GET}") from None
    actual = sha256_of(path)
    if sha256 and actual != sha256.lower():
        raise NslError(f"{path}: sha256 {actual} does not match the pinned {sha256.lower()}; "
                       "fetch again, or pin the new value if the file changed on purpose")
    return actual


# What `nsl hand-model build` writes (deterministic): files with this digest are not probed again.
BUILT_SHA256 = {"3cc0f011c0003dac21fffc5ddd30a008e0c562a1000e275e2aa62433699580be"}
_PROBE = """import sys
import numpy as np
try:
    import mediapipe as mp
    from mediapipe.tasks.python.core.base_options import BaseOptions
    from mediapipe.tasks.python.vision import HandLandmarker, HandLandmarkerOptions, RunningMode
    landmarker = HandLandmarker.create_from_options(HandLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=sys.argv[1]), running_mode=RunningMode.IMAGE))
    landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.zeros((64, 64, 3), np.uint8)))
    landmarker.close()
except Exception as err:
    print(f"{type(err).__name__}: {err}".splitlines()[0][:160], file=sys.stderr)
    sys.exit(3)
"""


def check_loads(path: Path) -> None:
    """Open the model with MediaPipe and run it once on a blank image **in a child process**, so a file that passes
    the structure check but fails to load is refused, and one that crashes MediaPipe's TFLite (a damaged or crafted
    member: a changed byte of a weight scale aborts it with a double free) crashes the child, not this process.
    A file that passed is remembered by digest in the user cache (``probed/``), and the file `build` writes is known,
    so the 2 s of the child's start-up (2-core x86, loaded) is paid once per machine and file, not per start."""
    path = Path(path)
    digest = sha256_of(path)
    marker = cache_dir() / "probed" / digest
    if digest in BUILT_SHA256 or marker.is_file():
        return
    outcome = probe_in_child(_PROBE, path)
    if outcome.kind == "timeout":
        raise NslError(f"{path}: MediaPipe did not load this hand model within {PROBE_TIMEOUT_S} s; {HOW_TO_GET}")
    if outcome.kind == "crash":
        raise NslError(f"{path}: MediaPipe crashes on this hand model ({outcome.detail} while loading it: a damaged "
                       f"or tampered file); {HOW_TO_GET}")
    if outcome.kind == "error":
        raise NslError(f"{path}: MediaPipe cannot load this hand model ({outcome.detail}); {HOW_TO_GET}")
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(f"{path}\n", encoding="utf-8")
    except OSError:  # a read-only cache: probed again next time
        pass


def resolve(path: str | Path | None = None) -> Path:
    """The hand model to use: an explicit path, else the cached full model, else the cached lite one."""
    if path:
        path = Path(path).expanduser()
        if not path.is_file():
            raise NslError(f"--hand-model {path}: file not found; {HOW_TO_GET}")
        return path
    for variant in ("full", "lite"):
        if default_path(variant).is_file():
            return default_path(variant)
    raise NslError(f"no hand model in {cache_dir()}: {HOW_TO_GET}")


def _download_wheel(folder: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", *WHEEL_PLATFORM,
           "--dest", str(folder), "--quiet", WHEEL_SPEC]
    log.info("downloading %s (about 35 MB) to take its hand models", WHEEL_SPEC)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise NslError(f"pip download {WHEEL_SPEC} failed ({last}); check the network or the package index "
                       "settings, or use 'nsl hand-model fetch' or --hand-model PATH")
    wheels = sorted(folder.glob("mediapipe-*.whl"))
    if not wheels:
        raise NslError(f"pip download {WHEEL_SPEC} produced no wheel in {folder}")
    return wheels[0]


def _write_task(wheel: Path, variant: str, target: Path) -> None:
    with zipfile.ZipFile(wheel) as source, atomic_path(target) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as task:
            for member, name in zip(WHEEL_MODELS[variant], MEMBERS):
                task.writestr(zipfile.ZipInfo(name, date_time=(2025, 1, 1, 0, 0, 0)), source.read(member))
        verify(tmp)
        check_loads(tmp)


def build(variant: str = "full", output: str | Path | None = None, force: bool = False) -> Path:
    """Build the ``.task`` from the mediapipe 0.10.21 wheel; an existing valid file is kept unless ``force``."""
    if variant not in WHEEL_MODELS:
        raise NslError(f"--variant {variant!r}: expected one of {', '.join(WHEEL_MODELS)}")
    target = Path(output).expanduser() if output else default_path(variant)
    if target.is_file() and not force:
        try:
            verify(target)
            log.info("%s already built (use --force to rebuild)", target)
            return target
        except NslError:
            log.warning("%s is not a valid hand model; rebuilding it", target)
    with tempfile.TemporaryDirectory(prefix="nsl-hand-model-") as folder:
        _write_task(_download_wheel(Path(folder)), variant, target)
    log.info("built %s (%s variant, sha256 %s)", target, variant, sha256_of(target))
    return target


def fetch(url: str = OFFICIAL_URL, output: str | Path | None = None, sha256: str | None = None,
          timeout: float = 60.0) -> Path:
    """Download the official ``.task``, verify it (structure, pinned sha256, loads) and move it into place."""
    target = Path(output).expanduser() if output else default_path("full")
    log.info("downloading %s", url)
    with atomic_path(target) as tmp:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as stream:
                for block in iter(lambda: response.read(1 << 20), b""):
                    stream.write(block)
        except (OSError, ValueError) as err:
            raise NslError(f"cannot download {url} ({err}); offline, use 'nsl hand-model build'") from None
        digest = verify(tmp, sha256)
        check_loads(tmp)
    log.info("saved %s (sha256 %s%s)", target, digest, "" if sha256 else "; pin it with --sha256 on other devices")
    return target
