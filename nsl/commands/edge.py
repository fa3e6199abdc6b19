"""Subcommands of this package (registered by nsl.cli); handlers import their heavy modules lazily."""

from __future__ import annotations

import json
import sys

from nsl.env import require


def _add_model_options(parser) -> None:
    parser.add_argument("--model", required=True, metavar="BUNDLE", help="model bundle folder (made by nsl export)")
    parser.add_argument("--backend", choices=("tflite", "onnx"), default="tflite", help="runtime (default tflite)")
    parser.add_argument("--precision", choices=("fp32", "fp16", "int8"), default=None,
                        help="model file of the bundle (default: the bundle's default file, normally int8)")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="classifier threads (default: nsl app half the cores, beside the hand tracker; "
                             "nsl predict all cores)")
    parser.add_argument("--hand-model", default=None, metavar="PATH",
                        help="hand_landmarker.task (default: the one in the user cache)")
    parser.add_argument("--hands", type=int, choices=(1, 2), default=1, help="hands to find per frame (default 1)")
    parser.add_argument("--roi", default=None, metavar="X,Y,W,H",
                        help="classify this fixed region (pixels) instead of detecting hands")
    parser.add_argument("--model-kind", choices=("cnn", "landmarks", "fused"), default=None,
                        help="which of the bundle's models name the sign (default: fused when it has the CNN and "
                             "the landmark model; a hand without landmarks, e.g. --roi, is named by the CNN alone)")


def _add_tracker_options(parser) -> None:
    """MediaPipe HandLandmarker's three thresholds, by MediaPipe's own names."""
    group = parser.add_argument_group("hand tracker (MediaPipe HandLandmarker; 0..1, default 0.5 each)")
    group.add_argument("--min-hand-detection-confidence", type=float, default=0.5, metavar="P",
                       help="palm detector score to report a hand")
    group.add_argument("--min-hand-presence-confidence", type=float, default=0.5, metavar="P",
                       help="landmark model score that a hand is present")
    group.add_argument("--min-tracking-confidence", type=float, default=0.5, metavar="P",
                       help="score to keep tracking a hand from frame to frame (VIDEO mode)")


def _add_camera_options(parser) -> None:
    group = parser.add_argument_group("camera (an index, /dev/videoN, picam, csi, usb)")
    group.add_argument("--width", type=int, default=None, metavar="PX", help="frame width to ask the camera for")
    group.add_argument("--height", type=int, default=None, metavar="PX", help="frame height to ask the camera for")
    group.add_argument("--fps", type=float, default=None, help="frame rate to ask the camera for")
    group.add_argument("--mirror", action="store_true",
                       help="mirrored view, for any source (tracking and classification see the frame unmirrored)")


def _add_app_view(parser) -> None:
    group = parser.add_argument_group("what is shown and logged")
    group.add_argument("--show-top", action="store_true", help="list each hand's top-3 classes on the overlay")
    group.add_argument("--hide-timing", action="store_true", help="start with the timing panel off (key t toggles)")
    group.add_argument("--status", choices=("auto", "on", "off"), default="auto",
                       help="one live status line (frames/s, label) on stderr; auto: when headless on a terminal")
    group.add_argument("--json-max-mb", type=float, default=None, metavar="MB",
                       help="rotate the --json FILE at this size, keeping FILE.1..FILE.3 (an existing FILE is "
                            "kept as FILE.1 at start); with --json - the service manager's journal rotates")


def _add_app(commands) -> None:
    parser = commands.add_parser("app", help="live sign recognition from a camera, video, folder or stream",
                                 description="Camera frames -> MediaPipe hand landmarks -> square crop -> classifier "
                                             "-> smoothed label. Keys: q quits, space pauses, s saves a snapshot, "
                                             "t toggles the timing panel.")
    _add_model_options(parser)
    _add_tracker_options(parser)
    _add_camera_options(parser)
    _add_app_view(parser)
    parser.add_argument("--source", default="0",
                        help="camera index, /dev/videoN, picam|csi|usb[:WxH@FPS], video file, image folder, "
                             "rtsp:// or http:// URL, or a GStreamer pipeline (default 0)")
    parser.add_argument("--smooth", type=int, default=5, metavar="N", help="smooth labels over N frames (1 = off)")
    parser.add_argument("--smooth-method", choices=("majority", "ema"), default="majority",
                        help="majority vote or exponential average of the probabilities (default majority)")
    parser.add_argument("--threshold", type=float, default=0.5,
                        help="below this smoothed confidence the label is 'unknown' (default 0.5)")
    parser.add_argument("--headless", action="store_true", help="open no window")
    parser.add_argument("--json", default=None, metavar="FILE|-", help="one JSON line per frame (- for stdout)")
    parser.add_argument("--output", default=None, metavar="VIDEO", help="record the annotated frames (.mp4)")
    parser.add_argument("--max-frames", type=int, default=None, metavar="N", help="stop after N frames")
    parser.add_argument("--show-landmarks", action="store_true", help="draw the 21 hand landmarks")
    parser.set_defaults(func=_run_app)


def _run_app(args) -> int:
    require("edge", "app")
    from nsl.edge.app import AppOptions, run_app
    from nsl.edge.timing import format_summary

    fields = AppOptions.__dataclass_fields__
    summary = run_app(AppOptions(**{name: getattr(args, name) for name in fields}))
    print(format_summary(summary), file=sys.stderr if args.json == "-" else sys.stdout)
    return 0


def _add_predict(commands) -> None:
    parser = commands.add_parser("predict", help="classify the signs in still images (files or folders)",
                                 description="The same hand crop and classification as nsl app, on still images.")
    parser.add_argument("images", nargs="+", metavar="IMAGE|DIR", help="image files or folders of images")
    _add_model_options(parser)
    _add_tracker_options(parser)
    parser.add_argument("--no-detect", action="store_true", help="classify the whole image (a ready crop)")
    parser.add_argument("--top", type=int, default=3, metavar="K", help="top-K classes in the JSON output")
    parser.add_argument("--json", nargs="?", const="-", default=None, metavar="FILE",
                        help="JSON lines instead of a table (to FILE, or stdout)")
    parser.set_defaults(func=_run_predict)


def _run_predict(args) -> int:
    require("edge", "predict")
    from nsl.edge.bundle import open_bundle
    from nsl.edge.hand_model import resolve
    from nsl.edge.hands import Confidences, make_hands, parse_roi
    from nsl.edge.outputs import JsonLines
    from nsl.edge.predict import collect_images, format_table, predict_images
    from nsl.edge.recognizer import Recognizer

    confidences = Confidences(args.min_hand_detection_confidence, args.min_hand_presence_confidence,
                              args.min_tracking_confidence)
    paths = collect_images(args.images)
    bundle = open_bundle(args.model)
    classifier = Recognizer.open(bundle, args.backend, args.precision, args.threads, args.model_kind)
    roi = parse_roi(args.roi) if args.roi else None
    hand_model = None if roi is not None or args.no_detect else resolve(args.hand_model)
    out = JsonLines(args.json) if args.json else None  # a file that cannot be written fails before the work
    tracker = make_hands(hand_model, roi, args.hands, mode="image", whole_image=args.no_detect,
                         confidences=confidences)
    try:
        rows = predict_images(bundle, classifier, paths, tracker, args.top)
    finally:
        tracker.close()
    if out:
        for row in rows:
            out.write(row)
        out.close()
    else:
        print(format_table(rows))
    return 0


def _add_hand_model(commands) -> None:
    parser = commands.add_parser("hand-model", help="get MediaPipe's hand model (hand_landmarker.task)",
                                 description="build: offline, from the models inside the mediapipe 0.10.21 wheel; "
                                             "fetch: Google's official file. Both go to the user cache "
                                             "(NSL_CACHE_DIR, else $XDG_CACHE_HOME/nsl, else ~/.cache/nsl).")
    verbs = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    build = verbs.add_parser("build", help="build it from the mediapipe 0.10.21 wheel (via pip download)")
    build.add_argument("--variant", choices=("full", "lite"), default="full",
                       help="lite: lighter landmark model, about 32%% faster tracking (default full)")
    build.add_argument("--output", default=None, metavar="PATH", help="where to write it (default: user cache)")
    build.add_argument("--force", action="store_true", help="rebuild even if a valid file is there")
    fetch = verbs.add_parser("fetch", help="download Google's official file, verified by structure")
    fetch.add_argument("--sha256", default=None, help="refuse the file unless it has this sha256 (pin it for a fleet)")
    fetch.add_argument("--output", default=None, metavar="PATH", help="where to write it (default: user cache)")
    fetch.add_argument("--url", default=None, help="another address of the same file (a mirror)")
    parser.set_defaults(func=_run_hand_model)


def _run_hand_model(args) -> int:
    require("edge", f"hand-model {args.action}")
    from nsl.edge import hand_model

    if args.action == "build":
        path = hand_model.build(args.variant, args.output, args.force)
    else:
        path = hand_model.fetch(args.url or hand_model.OFFICIAL_URL, args.output, args.sha256)
    print(json.dumps({"path": str(path), "sha256": hand_model.sha256_of(path)}))
    return 0


def _add_capture(commands) -> None:
    from nsl.config import load_defaults

    defaults = load_defaults()
    parser = commands.add_parser(
        "capture", help="record your own signers: the app's hand crops, class by class, in the dataset layout",
        description="Shows each class to sign (Devanagari and roman) with a countdown, then saves a burst of the "
                    "app's own crops (its hand tracker and crop) and their landmarks to OUT/<class index>/"
                    "SIGNER_SESSION_CLASS_NUMBER.jpg and OUT/landmarks.npz. Keys: space start, n next, p previous, "
                    "r redo, q quit. Resumes a folder it finds (numbers go on, counts include earlier sessions). "
                    "Headless from a video file: the countdowns start by themselves. Train on it with "
                    "split=grouped group_pattern='^([^_]+)_' (one group per signer); see docs/DATA.md.")
    parser.add_argument("--out", required=True, metavar="DIR", help="dataset folder to write (or resume)")
    parser.add_argument("--signer", required=True, metavar="NAME", help="who signs (letters, digits, '-')")
    parser.add_argument("--source", default="0", help="camera index, /dev/videoN, picam|csi|usb[:WxH@FPS], "
                                                      "video file, image folder or stream (default 0)")
    parser.add_argument("--session", default=None, metavar="S", help="session name (default: today, YYYYMMDD)")
    parser.add_argument("--burst", type=int, default=10, metavar="N", help="crops saved per class and take "
                                                                           "(default 10)")
    parser.add_argument("--every", type=int, default=3, metavar="N",
                        help="frames between two saved crops of a burst (default 3)")
    parser.add_argument("--countdown", type=float, default=3.0, metavar="S", help="seconds before a burst "
                                                                                  "(default 3)")
    parser.add_argument("--labels", default=defaults["labels"], help="nsl36 or a labels CSV (default nsl36)")
    parser.add_argument("--size", type=int, default=256, help="side of the saved crops, pixels (default 256)")
    parser.add_argument("--margin", type=float, default=defaults["crop_margin"],
                        help=f"crop margin around the hand (default {defaults['crop_margin']}, as the app)")
    parser.add_argument("--hand-model", default=None, metavar="PATH", help="hand_landmarker.task (default: cache)")
    parser.add_argument("--headless", action="store_true", help="no window: countdowns start by themselves")
    parser.add_argument("--max-frames", type=int, default=None, metavar="N", help="stop after N frames")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    _add_tracker_options(parser)
    _add_camera_options(parser)
    parser.set_defaults(func=_run_capture)


def _run_capture(args) -> int:
    require("edge", "capture")
    from nsl.edge.capture_app import CaptureOptions, run_capture

    summary = run_capture(CaptureOptions(**{name: getattr(args, name) for name in CaptureOptions.__dataclass_fields__}))
    if args.json:
        print(json.dumps(summary, indent=2, ensure_ascii=False))
    else:
        done = sum(row["this_signer"] > 0 for row in summary["classes"])
        print(f"{summary['saved']} crops saved in {summary['frames']} frames; {summary['signer']} has signed "
              f"{done}/{len(summary['classes'])} classes in {summary['out']}\n"
              f"next: nsl train data={summary['out']} split=grouped group_pattern='{summary['group_pattern']}'")
    return 0


def add_commands(commands) -> None:
    """Register this package's subcommands on the ``nsl`` parser."""
    _add_app(commands)
    _add_capture(commands)
    _add_predict(commands)
    _add_hand_model(commands)
