"""Camera presets: the pipeline strings for the Pi camera, the Jetson CSI camera and USB, and --source aliases."""

from __future__ import annotations

import pytest

from nsl.edge import camera_presets as presets
from nsl.errors import NslError


def elements(pipeline: str) -> list[str]:
    return [part.strip() for part in pipeline.split(" ! ")]


def test_picam_pipeline_is_libcamera_to_bgr_appsink():
    parts = elements(presets.picam_pipeline(1280, 720, 30))
    assert parts[0] == "libcamerasrc"
    assert parts[1] == "video/x-raw,width=1280,height=720,framerate=30/1"
    assert parts[-3:] == ["videoconvert", "video/x-raw,format=BGR", "appsink drop=true max-buffers=1 sync=false"]
    assert not any(part.startswith("videoflip") for part in parts)


def test_csi_pipeline_captures_in_nvmm_and_scales_on_nvvidconv():
    parts = elements(presets.csi_pipeline(640, 480, 60, flip="rotate-180", camera=1))
    assert parts[0] == "nvarguscamerasrc sensor-id=1"
    assert parts[1] == "video/x-raw(memory:NVMM),width=1280,height=720,format=NV12,framerate=60/1"
    assert parts[2] == "nvvidconv flip-method=2"
    assert parts[3] == "video/x-raw,width=640,height=480,format=BGRx"
    assert parts[-2:] == ["video/x-raw,format=BGR", "appsink drop=true max-buffers=1 sync=false"]


def test_csi_never_captures_smaller_than_the_output():
    assert "width=1920,height=1080,format=NV12" in presets.csi_pipeline(1920, 1080)


@pytest.mark.parametrize("flip, videoflip, nvvidconv", [("clockwise", 1, 3), ("counterclockwise", 3, 1),
                                                        ("horizontal", 4, 4), ("vertical", 5, 6)])
def test_one_flip_name_maps_to_each_elements_own_number(flip, videoflip, nvvidconv):
    assert f"videoflip method={videoflip}" in presets.picam_pipeline(flip=flip)
    assert f"videoflip method={videoflip}" in presets.usb_pipeline(flip=flip)
    assert f"nvvidconv flip-method={nvvidconv}" in presets.csi_pipeline(flip=flip)


def test_usb_pipeline_mjpeg_and_raw():
    mjpeg = elements(presets.usb_pipeline(640, 480, 30, device="/dev/video2"))
    assert mjpeg[:3] == ["v4l2src device=/dev/video2", "image/jpeg,width=640,height=480,framerate=30/1", "jpegdec"]
    raw = elements(presets.usb_pipeline(320, 240, 15, fmt="raw"))
    assert raw[1] == "video/x-raw,width=320,height=240,framerate=15/1" and "jpegdec" not in raw


@pytest.mark.parametrize("text, expected", [
    ("picam", presets.picam_pipeline()),
    ("picam:1280x720@15", presets.picam_pipeline(1280, 720, 15)),
    ("csi:1280x720@60,flip=rotate-180,id=1", presets.csi_pipeline(1280, 720, 60, "rotate-180", camera=1)),
    ("usb:device=/dev/video2,format=raw,fps=15", presets.usb_pipeline(fps=15, device="/dev/video2", fmt="raw")),
    ("0", 0), (" 2 ", 2), (1, 1),
    ("clip.mp4", "clip.mp4"), ("rtsp://cam.local/stream", "rtsp://cam.local/stream"),
    ("picamera_frames/", "picamera_frames/"),
])
def test_resolve_source(text, expected):
    assert presets.resolve_source(text) == expected


@pytest.mark.parametrize("text, words", [("csi:fps=fast", "whole number"), ("picam:id=1", "unknown option 'id=1'"),
                                         ("usb:format=h264", "format=mjpeg"), ("csi:flip=upside", "unknown camera flip"),
                                         ("picam:0x480", "must be positive")])
def test_bad_options_are_one_line_errors(text, words):
    with pytest.raises(NslError, match=words) as caught:
        presets.resolve_source(text)
    assert "\n" not in str(caught.value)


def test_pipelines_are_recognised_and_need_gstreamer(monkeypatch):
    assert presets.is_gstreamer_pipeline(presets.resolve_source("csi"))
    assert not presets.is_gstreamer_pipeline("clip.mp4") and not presets.is_gstreamer_pipeline(0)
    monkeypatch.setattr(presets, "opencv_has_gstreamer", lambda: False)
    with pytest.raises(NslError, match="without GStreamer"):
        presets.require_gstreamer(presets.resolve_source("picam"))
    presets.require_gstreamer("clip.mp4")  # not a pipeline: nothing to check
    monkeypatch.setattr(presets, "opencv_has_gstreamer", lambda: True)
    presets.require_gstreamer(presets.resolve_source("picam"))


def test_opencv_build_information_is_read():
    assert isinstance(presets.opencv_has_gstreamer(), bool)
