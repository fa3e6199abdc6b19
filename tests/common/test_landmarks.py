"""The landmark features and the fusion rule (numpy only: the same functions on both sides)."""

import numpy as np
import pytest

from nsl.errors import DataError
from nsl.fusion import choose_weight, fuse
from nsl.landmarks import HandsTable, hand_features


def _hand(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    points = rng.uniform(100, 300, (21, 3))
    points[:, 2] = rng.normal(0, 20, 21)
    return points


def test_features_ignore_position_size_and_which_hand():
    hand = _hand()
    base = hand_features(hand, "Right")
    assert base.shape == (63,) and base.dtype == np.float32
    moved = hand + np.array([57.0, -31.0, 4.0])
    assert np.allclose(hand_features(moved, "Right"), base, atol=1e-5)
    bigger = (hand - hand[0]) * 2.5 + hand[0]
    assert np.allclose(hand_features(bigger, "Right"), base, atol=1e-5)
    mirrored = hand.copy()
    mirrored[:, 0] = 640 - mirrored[:, 0]  # the same sign made with the other hand
    assert np.allclose(hand_features(mirrored, "Left"), base, atol=1e-5)
    assert not np.allclose(hand_features(mirrored, "Right"), base, atol=1e-3)
    assert np.abs(base[:2]).max() == 0 and np.linalg.norm(base.reshape(21, 3)[:, :2], axis=1).max() == pytest.approx(1)


def test_batch_and_world_layouts():
    hands = np.stack([_hand(1), _hand(2)])
    batch = hand_features(hands, ["Right", "Left"])
    assert batch.shape == (2, 63) and np.allclose(batch[1], hand_features(hands[1], "Left"))
    assert hand_features(hands, ["Right", "Left"], hands / 1000, "xyz21+world").shape == (2, 126)
    with pytest.raises(DataError, match="layout"):
        hand_features(hands[0], "Right", layout="xyz")
    with pytest.raises(DataError, match="world"):
        hand_features(hands[0], "Right", layout="xyz21+world")


def test_angle_layout_adds_shape_values_that_ignore_the_hands_pose_in_the_picture():
    hand = _hand(3)
    base = hand_features(hand, "Right", layout="xyz21+angles")
    assert base.shape == (92,) and np.allclose(base[:63], hand_features(hand, "Right"))
    turn = np.deg2rad(40)
    rotation = np.array([[np.cos(turn), -np.sin(turn), 0], [np.sin(turn), np.cos(turn), 0], [0, 0, 1]])
    turned = (hand - hand[0]) @ rotation.T * 1.7 + hand[0] + 90  # rotated in the image plane, nearer, moved
    shape = hand_features(turned, "Right", layout="xyz21+angles")[63:]
    assert np.allclose(shape, base[63:], atol=1e-5) and not np.allclose(
        hand_features(turned, "Right")[:63], base[:63], atol=1e-2)
    bends = base[63:78]  # cosines between consecutive bones
    assert np.all(np.abs(bends) <= 1 + 1e-6)
    straight = hand.copy()
    straight[5:9] = hand[0] + np.outer(np.arange(1, 5), [10.0, -20.0, 0.0])  # the index finger in line
    assert np.allclose(hand_features(straight, "Right", layout="xyz21+angles")[66:69], 1.0, atol=1e-6)


def test_hands_file_round_trips(tmp_path):
    rows = [{"path": "0/a.jpg", "sha256": "x", "found": True, "landmarks": _hand(), "world": _hand() / 1000,
             "handedness": "Left", "handedness_score": 0.9, "box": [1, 2, 3, 4], "crop_box": [0, 1, 4, 5],
             "image_size": [640, 480]},
            {"path": "1/b.jpg", "sha256": "y", "found": False, "image_size": [640, 480]}]
    table = HandsTable.from_rows(str(tmp_path), rows, {"margin": 0.1})
    loaded = HandsTable.load(table.save(tmp_path / "hands.npz"))
    assert list(loaded.paths) == ["0/a.jpg", "1/b.jpg"] and list(loaded.found) == [True, False]
    assert np.isnan(loaded.landmarks[1]).all() and loaded.handedness[0] == "Left" and loaded.meta["margin"] == 0.1
    assert loaded.row_for(tmp_path / "1" / "b.jpg") == 1 and loaded.row_for(tmp_path.parent / "x.jpg") is None
    assert np.allclose(loaded.features(np.array([0])), hand_features(_hand(), "Left")[None])
    (tmp_path / "bad.npz").write_bytes(b"not a hands file")
    with pytest.raises(DataError, match="bad.npz: not a hands file"):
        HandsTable.load(tmp_path / "bad.npz")


def test_fusion_is_never_below_the_better_input_on_the_images_it_was_chosen_on():
    """A planted case: the CNN is right on half the images, the landmark model on another half, both confident
    only when right. The chosen weight must do at least as well as either alone."""
    rng = np.random.default_rng(0)
    n, classes = 200, 5
    truth = rng.integers(0, classes, n)

    def model(right: np.ndarray, sharp: float) -> np.ndarray:
        logits = rng.normal(0, 1, (n, classes))
        logits[np.arange(n), truth] += np.where(right, sharp, -sharp)
        return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)

    cnn, landmarks = model(rng.random(n) < 0.6, 3.0), model(rng.random(n) < 0.7, 2.0)
    landmarks[rng.random(n) < 0.1] = np.nan  # no hand found: the CNN answers there
    weight, grid = choose_weight(cnn, landmarks, truth)
    fused = (fuse(cnn, landmarks, weight).argmax(1) == truth).mean()
    alone = {w: row["top1"] for row in grid for w in [row["weight"]]}
    assert fused >= max(alone[0.0], alone[1.0]) and 0 < weight < 1
    assert np.allclose(fuse(cnn, landmarks, 0.0), cnn, atol=1e-6)
    has = ~np.isnan(landmarks).any(axis=1)
    assert np.allclose(fuse(cnn, landmarks, 1.0)[has], landmarks[has], atol=1e-5)
    assert np.allclose(fuse(cnn, landmarks, 0.7)[~has], cnn[~has])


def _disputed(copies: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two-class answers whose fused top-1 over the weight grid is known: 37 images both models get right, 10 both
    get wrong, and three disputed ones right only for w > 0.07 (X), w < 0.93 (Y) and w < 0.12 (Z). So w = 0.10 wins
    by one image (X, Y, Z), every weight from 0.15 to 0.90 has X and Y, w = 0 has Y and Z, w = 1 only X."""
    def pair(cnn_logodds: float, landmark_logodds: float) -> tuple[list, list]:
        p_cnn, p_lm = 1 / (1 + np.exp(-cnn_logodds)), 1 / (1 + np.exp(-landmark_logodds))
        return [1 - p_cnn, p_cnn], [1 - p_lm, p_lm]  # class 1 is the truth

    rows = [pair(3.0, 3.0)] * 37 + [pair(-3.0, -3.0)] * 10
    for threshold, cnn_right in ((0.07, False), (0.93, True), (0.12, True)):
        a, b = 4 * threshold, 4 * (1 - threshold)  # right for w < a / (a + b) when the CNN is the one right
        rows.append(pair(a, -b) if cnn_right else pair(-a, b))
    cnn, landmarks = (np.array([r[k] for r in rows] * copies) for k in (0, 1))
    return cnn, landmarks, np.ones(len(cnn), int)


def test_a_weight_that_wins_by_one_image_of_fifty_is_not_trusted_over_equal_weights():
    """The one-standard-error rule: on 50 images, one image (2 points, under one standard error) does not move the
    weight off 0.5; the same pattern on 1,000 images (20 images) does."""
    cnn, landmarks, truth = _disputed(copies=1)
    weight, grid = choose_weight(cnn, landmarks, truth)
    top1 = {row["weight"]: row["top1"] for row in grid}
    assert top1[0.1] == max(top1.values()) and top1[0.1] - top1[0.5] == pytest.approx(1 / 50)  # the planted curve
    assert weight == 0.5
    cnn, landmarks, truth = _disputed(copies=20)
    assert choose_weight(cnn, landmarks, truth)[0] == 0.1


def test_on_a_saturated_validation_split_only_the_tolerant_rule_lets_one_photo_go():
    """51 validation photos the CNN names all (as it does for the signers it trained on): every weight up to 0.15
    is at 100 %, every weight from 0.2 to 0.95 misses one photo, the landmark model alone two. The default keeps
    the fused answer at the CNN's 100 % (0.15: the Wald error is zero there); Agresti-Coull's error without the
    single-model floor counts one photo of 51 as noise and takes 0.5."""
    def pair(cnn_logodds: float, landmark_logodds: float) -> tuple[list, list]:
        p_cnn, p_lm = 1 / (1 + np.exp(-cnn_logodds)), 1 / (1 + np.exp(-landmark_logodds))
        return [1 - p_cnn, p_cnn], [1 - p_lm, p_lm]

    rows = [pair(3.0, 3.0)] * 49 + [pair(4 * 0.17, -4 * 0.83), pair(4 * 0.97, -4 * 0.03)]
    cnn, landmarks = (np.array([r[k] for r in rows]) for k in (0, 1))
    truth = np.ones(len(rows), int)
    weight, grid = choose_weight(cnn, landmarks, truth, error="agresti_coull", floor_alone=False)
    top1 = {row["weight"]: round(row["top1"] * 51) for row in grid}
    assert top1[0.15] == 51 and top1[0.2] == top1[0.5] == top1[0.95] == 50 and top1[1.0] == 49  # the planted curve
    assert weight == 0.5
    assert choose_weight(cnn, landmarks, truth)[0] == 0.15
