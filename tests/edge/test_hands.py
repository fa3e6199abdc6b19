"""Hand finding on real photos (../shared/data), the fixed region, and stable track ids."""

import numpy as np
import pytest

from nsl.edge.hands import BoxTracks, MediaPipeHands, RoiHands, Tracker, WholeImage, make_hands, parse_roi
from nsl.preprocess import CropSpec, crop_box, crop_hand, expand_box, read_image
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


def test_a_hand_that_fills_the_photo_is_found_on_the_retry_with_more_border(hand_model, still_hands):
    """asl_36's tight crops: at the first padding the palm detector misses these three test-signer photos; the
    retry with STILL_RETRY_PADDING finds each (measured: 13 of the 16 misses in asl_36), in the photo's pixels."""
    names = ["m/hand5_m_bot_seg_4_cropped.jpeg", "p/hand4_p_bot_seg_2_cropped.jpeg", "p/hand5_p_bot_seg_4_cropped.jpeg"]
    photos = [read_image(real_data("asl_36") / name) for name in names]
    with MediaPipeHands(hand_model, max_hands=1, mode="image", retry_padding=None) as once:
        assert not any(once.detect(photo) for photo in photos), "the first pass finds these now: pick other photos"
    for photo in photos:
        hands = still_hands.detect(photo)
        assert len(hands) == 1
        x0, y0, x1, y1 = hands[0].box  # the hand fills the photo: its box covers most of it, inside the frame
        height, width = photo.shape[:2]
        assert -0.05 * width <= x0 < x1 <= 1.05 * width and -0.05 * height <= y0 < y1 <= 1.05 * height
        assert (x1 - x0) * (y1 - y0) > 0.25 * width * height


def test_a_mirrored_photo_gives_a_left_hand_whose_crop_is_the_right_hands(still_hands):
    """Real photos of a test signer and their mirror images (a left-handed signer): MediaPipe calls the mirrored
    hand Left, and with the bundle's mirror_left the CNN's crop is the original's (up to the landmarks' jitter),
    much closer than the unmirrored crop of the mirrored photo."""
    spec, plain = CropSpec(size=64, mirror_left=True), CropSpec(size=64)
    for name in ["a/hand4_a_bot_seg_2_cropped.jpeg", "k/hand5_k_bot_seg_4_cropped.jpeg"]:
        photo = read_image(real_data("asl_36") / name)
        [right], [left] = still_hands.detect(photo), still_hands.detect(np.ascontiguousarray(photo[:, ::-1]))
        assert (right.handedness, left.handedness) == ("Right", "Left"), name
        original = crop_hand(photo, right.box, spec, side=right.handedness).astype(float)
        canonical = crop_hand(photo[:, ::-1], left.box, spec, side=left.handedness).astype(float)
        as_seen = crop_hand(photo[:, ::-1], left.box, plain, side=left.handedness).astype(float)
        assert np.abs(canonical - original).mean() < 0.5 * np.abs(as_seen - original).mean(), name


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


def test_a_big_frame_is_tracked_shrunk_and_its_boxes_come_back_in_its_own_pixels(hand_model):
    """A 12x enlarged photo (5376 x 5376): MediaPipe gets at most TRACK_MAX_SIDE pixels a side (it took 10 GB and
    crashed on a 30000 x 30000 still), and the hand's box scales with the photo."""
    from nsl.edge.hands import TRACK_MAX_SIDE

    photo = read_image(sorted(real_data("nsl_consonants").rglob("*"))[1])  # 224 x 224
    big = np.repeat(np.repeat(photo, 12, axis=0), 12, axis=1)
    with MediaPipeHands(hand_model, max_hands=1, mode="image") as hands:
        seen = []
        run = hands._run
        hands._run = lambda frame, timestamp: seen.append(frame.shape) or run(frame, timestamp)
        small, large = hands.detect(photo), hands.detect(big)
    assert small and large and max(seen[-1][:2]) <= TRACK_MAX_SIDE * 1.5  # the shrunk frame plus the still's border
    # MediaPipe's landmarks differ a little with the resolution it sees (measured IoU 0.80); boxes left in the
    # shrunk frame's pixels would be 2.8x too small (IoU near 0)
    assert _iou(np.array(large[0].box) / 12, small[0].box) > 0.6


def test_a_fixed_region_outside_the_frame_fails_and_one_partly_outside_warns(caplog):
    frame = np.zeros((480, 640, 3), np.uint8)
    with pytest.raises(NslError, match=r"--roi 5000,5000,100,100: the region lies outside the 640x480 frame"):
        RoiHands(parse_roi("5000,5000,100,100")).detect(frame)
    partly = RoiHands(parse_roi("600,400,100,100"))
    with caplog.at_level("WARNING"):
        assert partly.detect(frame)[0].box == (600, 400, 700, 500)
        partly.detect(frame)
    warnings = [r.getMessage() for r in caplog.records if "--roi" in r.getMessage()]
    assert warnings == ["--roi 600,400,100,100: 68% of the region lies outside the 640x480 frame and is "
                        "classified as black padding"]
