"""Hand finding on real photos (../shared/data), the fixed region, and stable track ids."""

import numpy as np
import pytest

from nsl.edge.hands import BoxTracks, MediaPipeHands, RoiHands, Tracker, WholeImage, make_hands, parse_roi
from nsl.preprocess import CropSpec, crop_box, expand_box, read_image
from nsl.errors import NslError
from tests.conftest import real_data

SPEC = CropSpec(size=64, margin=0.10)


def _iou(a, b) -> float:
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _yolo_boxes(label_file, width, height):
    boxes = []
    for line in label_file.read_text().split("\n"):
        if line.strip():
            _, cx, cy, w, h = map(float, line.split())
            boxes.append(((cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height))
    return boxes


@pytest.fixture(scope="module")
def still_hands(hand_model):
    with MediaPipeHands(hand_model, max_hands=1, mode="image") as hands:
        yield hands


def test_a_hand_is_found_in_every_consonant_photo(still_hands):
    photos = sorted(p for p in real_data("nsl_consonants").rglob("*") if p.is_file())
    assert len(photos) == 35
    found = [bool(still_hands.detect(read_image(p))) for p in photos]
    # known: 35/35 (data README); 33 leaves room for a MediaPipe release that misses a hard photo or two
    assert sum(found) >= 33, f"hands found in {sum(found)}/35"


def test_hands_natural_found_and_crop_boxes_match_the_labels(still_hands):
    photos = sorted(real_data("hands_natural").rglob("*.jpg"))
    assert len(photos) == 85
    grown_iou, square_iou = [], []
    for photo in photos:
        image = read_image(photo)
        hands = still_hands.detect(image)
        if not hands:
            continue
        labels = _yolo_boxes(photo.with_suffix(".txt"), image.shape[1], image.shape[0])
        grown_iou.append(max(_iou(expand_box(hands[0].box, SPEC.margin, False), label) for label in labels))
        square_iou.append(max(_iou(crop_box(hands[0].box, SPEC), label) for label in labels))
    # known: 73/85 without padding (data README); padding the still with a border finds 76 here. 68 allows
    # for small differences between MediaPipe releases without letting the padding regress unnoticed.
    assert len(grown_iou) >= 68, f"hands found in {len(grown_iou)}/85"
    # The landmark box grown by 10 % per side matched the labels best (README); measured median IoU 0.80
    # (0.73 for the bare landmark box). 0.70 fails if the boxes shift, shrink or come out in the wrong frame
    # coordinates (e.g. the padding not taken off), which drops it far below 0.5.
    assert np.median(grown_iou) >= 0.70, f"median IoU {np.median(grown_iou):.3f}"
    # The square crop covers extra background beside elongated hands: measured median 0.66.
    assert np.median(square_iou) >= 0.55, f"median IoU of the square crop {np.median(square_iou):.3f}"


def test_video_mode_tracks_one_hand_with_a_stable_id(hand_model):
    photo = sorted(real_data("nsl_consonants").rglob("*.jpg"))[0]
    image = read_image(photo)
    with MediaPipeHands(hand_model, max_hands=2, mode="video") as hands:
        frames = [hands.detect(image, timestamp_ms=t * 33) for t in range(8)]
    assert isinstance(hands, Tracker) and hands.name == "MediaPipe VIDEO mode (hand_landmarker.task)"
    assert all(frame for frame in frames)
    assert {hand.track_id for frame in frames for hand in frame} == {0}
    hand = frames[-1][0]
    assert hand.landmarks.shape == (21, 3) and hand.handedness in ("Left", "Right") and 0 < hand.score <= 1
    assert hand.world is not None and hand.world.shape == (21, 3) and np.abs(hand.world).max() < 0.5  # metres
    x0, y0, x1, y1 = crop_box(hand.box, SPEC)
    assert x1 - x0 == pytest.approx(y1 - y0)  # square
    assert 0 <= hand.box[0] < hand.box[2] <= image.shape[1] and 0 <= hand.box[1] < hand.box[3] <= image.shape[0]


def test_video_mode_finds_the_hand_again_on_the_frame_of_a_cut(hand_model):
    """Tracking follows the old hand's region; when it loses it, detection reruns on the same frame."""
    photos = [read_image(p) for p in sorted(real_data("nsl_consonants").rglob("*.jpg"))[:4]]
    with MediaPipeHands(hand_model, mode="video") as hands:
        found = [bool(hands.detect(photos[t % 4], timestamp_ms=t * 33)) for t in range(8)]
    assert all(found), found


def test_no_hand_in_an_empty_frame(still_hands):
    assert still_hands.detect(np.full((240, 320, 3), 128, np.uint8)) == []


def test_fixed_region_is_the_crop():
    roi = parse_roi("10,20,100,50")
    assert roi == (10, 20, 110, 70)
    hands = RoiHands(roi).detect(np.zeros((100, 200, 3), np.uint8))
    assert len(hands) == 1 and crop_box(hands[0].box, SPEC, hands[0].grow) == roi and hands[0].landmarks is None
    for bad in ("10,20,100", "a,b,c,d", "0,0,-5,10"):
        with pytest.raises(NslError, match="--roi"):
            parse_roi(bad)


def test_make_hands_builds_each_tracker_behind_one_interface():
    roi = make_hands(roi=parse_roi("40,40,120,120"))
    whole = make_hands(roi=parse_roi("40,40,120,120"), mode="image", whole_image=True)
    assert isinstance(roi, RoiHands) and isinstance(whole, WholeImage)
    assert isinstance(roi, Tracker) and isinstance(whole, Tracker)
    assert roi.name == "fixed region 40,40,120,120" and whole.name == "whole image"
    hands = whole.detect(np.zeros((100, 200, 3), np.uint8))
    assert len(hands) == 1 and crop_box(hands[0].box, SPEC, hands[0].grow) == (0, 0, 200, 100)
    with pytest.raises(NslError, match="--hands 3"):
        make_hands(roi=(0, 0, 10, 10), max_hands=3)


def test_tracks_keep_ids_and_smooth_boxes():
    tracks = BoxTracks(alpha=0.5, max_missed=1)
    first = tracks.update([(0, 0, 10, 10), (100, 100, 120, 120)])
    assert [track_id for track_id, _ in first] == [0, 1]
    moved = tracks.update([(104, 100, 124, 120), (2, 0, 12, 10)])  # other order, moved a little
    assert [track_id for track_id, _ in moved] == [1, 0]
    assert moved[0][1] == pytest.approx((102, 100, 122, 120))  # half way: smoothed
    tracks.update([])
    tracks.update([])  # both missed twice: forgotten
    assert tracks.update([(0, 0, 10, 10)])[0][0] == 2
