"""Hand-landmark features ignore where the hand is, how big it is, and which hand it is."""

import numpy as np
import pytest

from handsign.hands.features import BLOCKS, N_FEATURES, ROTATION_INVARIANT, block_slices, hand_features


def random_hand(seed=0, n=4):
    rng = np.random.default_rng(seed)
    pts = rng.uniform(50, 350, size=(n, 21, 3))
    pts[..., 2] = rng.normal(0, 20, size=(n, 21))
    return pts


def turn(points, degrees, centre=(200.0, 200.0)):
    a = np.deg2rad(degrees)
    out = points.copy()
    x, y = points[..., 0] - centre[0], points[..., 1] - centre[1]
    out[..., 0] = np.cos(a) * x - np.sin(a) * y + centre[0]
    out[..., 1] = np.sin(a) * x + np.cos(a) * y + centre[1]
    return out


def test_layout():
    assert hand_features(random_hand(), np.zeros(4, bool)).shape == (4, N_FEATURES)
    assert N_FEATURES == sum(BLOCKS.values()) == 102
    assert hand_features(random_hand(n=1)[0], False).shape == (N_FEATURES,)


def test_translation_and_scale_change_nothing():
    pts, left = random_hand(), np.array([0, 1, 0, 1], bool)
    base = hand_features(pts, left)
    moved = pts + np.array([37.0, -12.0, 5.0])
    np.testing.assert_allclose(hand_features(moved, left), base, atol=1e-5)
    np.testing.assert_allclose(hand_features(pts * 3.7, left), base, atol=1e-5)


def test_mirror_image_with_the_other_hand_gives_the_same_features():
    """A photo flipped left-right shows the other hand; MediaPipe then names the other handedness."""
    pts, left = random_hand(1), np.array([0, 1, 1, 0], bool)
    flipped = pts.copy()
    flipped[..., 0] = 400 - flipped[..., 0]
    np.testing.assert_allclose(hand_features(flipped, ~left), hand_features(pts, left), atol=1e-5)
    # and the mirror without the handedness swap is a different hand: features differ
    assert np.abs(hand_features(flipped, left) - hand_features(pts, left)).max() > 0.1


@pytest.mark.parametrize("degrees", [7.0, -30.0, 90.0, 180.0])
def test_in_plane_rotation_changes_only_the_orientation_block(degrees):
    pts, left = random_hand(2), np.array([0, 1, 0, 0], bool)
    base, turned = hand_features(pts, left), hand_features(turn(pts, degrees), left)
    s = block_slices()
    for name in ROTATION_INVARIANT:
        np.testing.assert_allclose(turned[:, s[name]], base[:, s[name]], atol=1e-4, err_msg=name)
    # the orientation block (sin, cos of the angle turned away) moves by exactly that angle, clockwise
    # for a right hand as the image shows it (y grows downwards), mirrored for a left one
    a0 = np.arctan2(base[:, s["orientation"]][:, 0], base[:, s["orientation"]][:, 1])
    a1 = np.arctan2(turned[:, s["orientation"]][:, 0], turned[:, s["orientation"]][:, 1])
    sign = np.where(left, -1.0, 1.0)
    diff = np.angle(np.exp(1j * (a1 - a0 - sign * np.deg2rad(degrees))))
    np.testing.assert_allclose(diff, 0, atol=1e-5)


def test_bad_shape_is_refused():
    with pytest.raises(ValueError, match=r"\(N, 21, 3\)"):
        hand_features(np.zeros((2, 20, 3)), [0, 0])


def test_hand_speed_is_in_palm_sizes_per_second_whatever_the_scale_and_frame_rate():
    from handsign.hands.features import hand_speed, palm_size

    rng = np.random.default_rng(0)
    hand = rng.uniform(100, 200, (21, 3))
    palm = float(palm_size(hand))
    moved = hand + np.array([palm * 0.3, palm * 0.4, 0.0])  # half a palm in the image plane
    assert hand_speed(hand, moved, 500) == pytest.approx(1.0)  # 0.5 palm in 0.5 s
    assert hand_speed(hand * 3, moved * 3, 500) == pytest.approx(1.0)  # nearer the camera: the same speed
    assert hand_speed(hand, hand + np.array([0, 0, 50.0]), 33) == 0.0  # depth alone is no motion in the image
    assert hand_speed(hand, moved, 0) == 0.0
