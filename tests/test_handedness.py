"""Handedness as handsign reports it: the real hand of an ordinary (unmirrored) picture, not MediaPipe's label,
which assumes a mirrored selfie picture (docs/hands.md, "Which hand")."""

import numpy as np
import pytest
from PIL import Image

from conftest import import_or_skip_or_fail, skip_or_fail
from handsign.hands.landmarks import real_hand

import_or_skip_or_fail("mediapipe", "the hands extra (pip install 'handsign[hands]')")

from handsign.infer.predict import predict  # noqa: E402


def test_real_hand_flips_mediapipes_label():
    assert (real_hand("Left"), real_hand("Right")) == ("Right", "Left")
    with pytest.raises(ValueError):
        real_hand("left")


def test_a_right_hand_in_a_photo_is_reported_right_and_its_mirror_image_left(real_data_dir, tmp_path):
    """Massey's signers sign with their right hands (photos taken facing them, not mirrored)."""
    folder = real_data_dir / "asl_photos" / "massey" / "l"
    if not folder.is_dir():
        skip_or_fail(f"{folder} not found (the Massey ASL photos)")
    photo = sorted(folder.glob("hand2_*"))[0]
    flipped = tmp_path / "flipped.png"
    Image.open(photo).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(flipped)
    right, left = predict([photo, flipped], model="asl")
    assert (right["via"], left["via"]) == ("landmarks", "landmarks")
    assert (right["handedness"], left["handedness"]) == ("Right", "Left")
    # what the model sees is unchanged: the features mirror by MediaPipe's own label, so both read l alike
    assert right["label"] == left["label"] == "l"
    assert right["probability"] == pytest.approx(left["probability"], abs=0.05)
    # and the 21 points are the mirror image of each other
    w = Image.open(photo).size[0]
    a, b = np.array(right["landmarks"]), np.array(left["landmarks"])
    assert np.abs((w - b[:, 0]) - a[:, 0]).mean() < 0.05 * w and np.abs(b[:, 1] - a[:, 1]).mean() < 0.05 * w
