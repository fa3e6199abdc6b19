"""Drawing on frames: hand boxes, optional landmarks, the label in Devanagari, confidence, FPS, stage times.

OpenCV's putText cannot draw Devanagari, so non-ASCII text is drawn with Pillow in a Devanagari font found on
the system (``NSL_FONT``, fontconfig, common paths); rendered labels are cached. Without such a font the
labels are shown romanised, and that is logged once."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from nsl.edge.smoothing import NO_HAND

log = logging.getLogger(__name__)

FONT_PATHS = (
    "/usr/share/fonts/truetype/noto/NotoSansDevanagari-Regular.ttf",
    "/usr/share/fonts/opentype/noto/NotoSansDevanagari-Regular.otf",
    "/usr/share/fonts/noto/NotoSansDevanagari-Regular.ttf",
    "/usr/share/fonts/truetype/lohit-devanagari/Lohit-Devanagari.ttf",
    "/usr/share/fonts/truetype/fonts-deva-extra/kalimati.ttf",
    "/usr/share/fonts/truetype/freefont/FreeSans.ttf",
)
HAND_CONNECTIONS = ((0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (5, 9), (9, 10), (10, 11),
                    (11, 12), (9, 13), (13, 14), (14, 15), (15, 16), (13, 17), (0, 17), (17, 18), (18, 19), (19, 20))
GREEN, GREY, RED, WHITE, BLACK = (0, 200, 0), (160, 160, 160), (0, 0, 230), (255, 255, 255), (0, 0, 0)  # BGR


def _fontconfig_devanagari() -> str | None:
    if not shutil.which("fc-list"):
        return None
    try:  # fonts that hold KA (U+0915); fc-match would answer with any font at all
        out = subprocess.run(["fc-list", ":charset=915", "file"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    files = sorted(line.split(":")[0].strip() for line in out.stdout.splitlines() if line.strip())
    preferred = [f for f in files if "Devanagari" in f and "Regular" in f]
    return (preferred or files or [None])[0]


@lru_cache(maxsize=1)
def find_devanagari_font() -> Path | None:
    """NSL_FONT, else a font fontconfig reports with Devanagari, else a common path; None (logged once)."""
    candidates = [os.environ.get("NSL_FONT"), _fontconfig_devanagari(), *FONT_PATHS]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    log.warning("no Devanagari font found (install fonts-noto-core or set NSL_FONT); labels are shown romanised")
    return None


@lru_cache(maxsize=256)
def _text_patch(font_path: str, size: int, text: str) -> np.ndarray:
    """White text on transparent, as an (H, W) alpha mask; cached because labels repeat every frame."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(font_path, size)
    left, top, right, bottom = font.getbbox(text)
    mask = Image.new("L", (max(1, right - left), max(1, bottom - top)), 0)
    ImageDraw.Draw(mask).text((-left, -top), text, font=font, fill=255)
    return np.asarray(mask)


def _blend(image: np.ndarray, mask: np.ndarray, x: int, y: int, colour) -> None:
    """Paint ``colour`` through ``mask`` at (x, y), clipped to the image."""
    height, width = image.shape[:2]
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + mask.shape[1], width), min(y + mask.shape[0], height)
    if x1 <= x0 or y1 <= y0:
        return
    alpha = mask[y0 - y:y1 - y, x0 - x:x1 - x, None].astype(np.float32) / 255
    region = image[y0:y1, x0:x1]
    region[:] = (region * (1 - alpha) + np.asarray(colour, np.float32) * alpha).astype(np.uint8)


class Renderer:
    """Draw one frame's results; ``draw`` returns a BGR image for the window and the video file. Text scales
    with the frame: labels about 1/16 of its height, the status lines smaller."""

    def __init__(self, show_landmarks: bool = False, mirror: bool = False, show_top: bool = False,
                 show_timing: bool = True):
        self.show_landmarks, self.mirror, self.show_top, self.show_timing = show_landmarks, mirror, show_top, show_timing
        self.font = find_devanagari_font()
        self.label_size = self.small_size = 24
        self.width = 0  # of the frame being drawn (a mirrored view flips x about it)

    @property
    def devanagari(self) -> bool:
        return self.font is not None

    def text(self, image: np.ndarray, text: str, x: int, y: int, colour=WHITE, background=BLACK,
             size: int | None = None) -> tuple[int, int]:
        """Text with its top-left at (x, y) on a filled background; returns the (width, height) it took."""
        size = size or self.small_size
        pad = max(2, size // 8)
        if text.isascii() or self.font is None:
            scale, thickness = size / 34, max(1, size // 16)
            (width, height), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
            cv2.rectangle(image, (x, y), (x + width + 2 * pad, y + height + base + 2 * pad), background, -1)
            cv2.putText(image, text, (x + pad, y + height + pad), cv2.FONT_HERSHEY_SIMPLEX, scale, colour,
                        thickness, cv2.LINE_AA)
            return width + 2 * pad, height + base + 2 * pad
        mask = _text_patch(str(self.font), size, text)
        cv2.rectangle(image, (x, y), (x + mask.shape[1] + 2 * pad, y + mask.shape[0] + 2 * pad), background, -1)
        _blend(image, mask, x + pad, y + pad, colour)
        return mask.shape[1] + 2 * pad, mask.shape[0] + 2 * pad

    def draw_hand(self, image: np.ndarray, result) -> None:
        """``result`` has .hand (nsl.edge.hands.Hand), .box (the crop the classifier saw, drawn), .text (label to
        show), .confidence, .known."""
        colour = GREEN if result.known else GREY
        x0, y0, x1, y1 = (int(round(v)) for v in self._x(result.box))
        cv2.rectangle(image, (x0, y0), (x1, y1), colour, 2)
        if self.show_landmarks and result.hand.landmarks is not None:
            points = np.round(self._points(result.hand.landmarks[:, :2])).astype(int)
            for a, b in HAND_CONNECTIONS:
                cv2.line(image, tuple(points[a]), tuple(points[b]), WHITE, 1, cv2.LINE_AA)
            for point in points:
                cv2.circle(image, tuple(point), 3, RED, -1)
        label_height = int(self.label_size * 1.7)
        top = y0 - label_height if y0 - label_height >= 0 else max(0, y0)  # above the box, else inside it
        x = min(max(0, x0), image.shape[1] - 1)
        width, _ = self.text(image, result.text, x, top, BLACK, colour, self.label_size)
        if result.known:  # the confidence apart from the label, so the rendered label stays cached
            self.text(image, f"{result.confidence:.0%}{models_tag(getattr(result, 'models', ()))}", x + width, top,
                      WHITE)
        if self.show_top and getattr(result, "top", None):
            self.draw_top(image, result, x, max(y0, top + label_height))

    def draw_top(self, image: np.ndarray, result, x: int, y: int) -> None:
        """This frame's three most probable classes under the label: index, name, probability."""
        for index, probability in result.top:
            label = result.labels[index]
            name = label.display(self.devanagari)
            y += self.text(image, f"{index} {name} {probability:.0%}", x, y, WHITE)[1]

    def _x(self, box) -> tuple:
        """A box in the drawn view: mirrored about the frame's middle when the view is."""
        x0, y0, x1, y1 = box
        return (self.width - x1, y0, self.width - x0, y1) if self.mirror else (x0, y0, x1, y1)

    def _points(self, points: np.ndarray) -> np.ndarray:
        if not self.mirror:
            return points
        flipped = np.array(points, dtype=float)
        flipped[:, 0] = self.width - flipped[:, 0]
        return flipped

    def draw(self, frame_rgb: np.ndarray, results: list, fps: float, stage_ms: dict, status: str = "") -> np.ndarray:
        image = cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR)
        if self.mirror:  # the view only: tracking and classification saw the frame as the camera gave it
            image = cv2.flip(image, 1)
        self.width = image.shape[1]
        self.label_size = int(np.clip(image.shape[0] / 16, 14, 64))
        self.small_size = int(np.clip(image.shape[0] / 30, 10, 32))
        y = self.text(image, timing_text(fps, stage_ms) if self.show_timing else f"{fps:4.1f} FPS", 0, 0, WHITE)[1]
        if not results:
            y += self.text(image, NO_HAND, 0, y, WHITE, GREY, self.label_size)[1]
        if status:
            self.text(image, status, 0, y, WHITE, RED)
        for result in results:  # after the status lines: a label near the top stays readable
            self.draw_hand(image, result)
        return image


def models_tag(models) -> str:
    """Which models named this hand, beside its confidence: ' cnn+landmarks' when both answered (fused), else the
    one that did; nothing when unknown (a plain classifier)."""
    return f" {'+'.join(models)}" if models else ""


def timing_text(fps: float, stage_ms: dict) -> str:
    """The timing panel: frame rate, hand tracking, the classifier's own inference (``model``, on its worker
    thread, beside tracking) and what the loop waited for it (``wait``), drawing."""
    parts = [f"hands {stage_ms.get('hands', 0):.1f}"]
    if "model" in stage_ms:
        parts.append(f"classify {stage_ms['model']:.1f} (wait {stage_ms.get('classify', 0):.1f})")
    else:
        parts.append(f"classify {stage_ms.get('classify', 0):.1f}")
    parts.append(f"draw {stage_ms.get('draw', 0):.1f}")
    return f"{fps:4.1f} FPS  " + "  ".join(parts) + " ms"
