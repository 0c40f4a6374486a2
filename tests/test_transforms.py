from dataclasses import replace

import torch
import torch.nn.functional as F

from handsign.images.augment import AugmentSpec, PhotoAugmentSpec, augment_batch, get_augment


def batch(n=16):
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, 1, 28, 28, generator=g)


def test_identity_spec_changes_nothing():
    x = batch()
    ident = AugmentSpec(rotation_deg=0, crop_scale=(1, 1), hflip_p=0, brightness=0, contrast=0)
    y = augment_batch(x, ident, torch.Generator().manual_seed(1))
    assert torch.allclose(x, y, atol=1e-5)


def test_flip_only_mirrors():
    x = batch()
    flip = AugmentSpec(rotation_deg=0, crop_scale=(1, 1), hflip_p=1.0, brightness=0, contrast=0)
    y = augment_batch(x, flip, torch.Generator().manual_seed(1))
    assert torch.allclose(y, x.flip(-1), atol=1e-5)


def test_course_augmentation_is_per_image_seeded_and_in_range():
    x = batch(1).expand(8, -1, -1, -1).contiguous()  # 8 copies of one image
    spec = get_augment("course")
    y1 = augment_batch(x, spec, torch.Generator().manual_seed(5))
    y2 = augment_batch(x, spec, torch.Generator().manual_seed(5))
    y3 = augment_batch(x, spec, torch.Generator().manual_seed(6))
    assert y1.shape == x.shape and y1.min() >= 0 and y1.max() <= 1
    assert torch.equal(y1, y2) and not torch.equal(y1, y3)
    assert not torch.allclose(y1[0], y1[1])  # each copy drew its own parameters


def test_per_batch_mode_draws_once_like_the_course():
    x = batch(1).expand(8, -1, -1, -1).contiguous()
    y = augment_batch(x, get_augment("course"), torch.Generator().manual_seed(5), per_batch=True)
    assert all(torch.allclose(y[0], y[i]) for i in range(8))
    assert not torch.allclose(y[0], x[0])


# photo augmentation with every effect neutral but one, so its output can be checked against torch's own op
NEUTRAL_PHOTO = PhotoAugmentSpec(p=1.0, rotation_deg=0, zoom=(1, 1), shift=0, tilt=0, hflip_p=0, gamma=(1, 1),
                                 contrast=0, brightness=0, light_slope=0, blur_p=0, noise_std=0, lowres_p=0)


def test_neutral_photo_augmentation_changes_nothing():
    x = batch().clamp(1e-4, 1)
    y = augment_batch(x, NEUTRAL_PHOTO, torch.Generator().manual_seed(1))
    assert torch.allclose(y, x, atol=1e-5)


def test_photo_blur_is_the_3x3_gaussian_mixed_in_per_image():
    x = batch().clamp(1e-4, 1)
    y = augment_batch(x, replace(NEUTRAL_PHOTO, blur_p=1.0), torch.Generator().manual_seed(1))
    k = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]).view(1, 1, 3, 3) / 16
    blurred = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), k)
    # y = x + mix * (blurred - x), one mix in [0.3, 1] per image
    mix = ((y - x) * (blurred - x)).sum((1, 2, 3)) / ((blurred - x) ** 2).sum((1, 2, 3))
    assert ((mix >= 0.3 - 1e-4) & (mix <= 1 + 1e-4)).all() and mix.std() > 0.01
    assert torch.allclose(y, x + mix.view(-1, 1, 1, 1) * (blurred - x), atol=1e-5)


def test_photo_resolution_loss_resamples_through_one_smaller_size():
    x = batch().clamp(1e-4, 1)
    y = augment_batch(x, replace(NEUTRAL_PHOTO, lowres_p=1.0), torch.Generator().manual_seed(1))
    matches = [side for side in range(16, 25) if torch.allclose(y, F.interpolate(
        F.interpolate(x, size=(side, side), mode="area"), size=(28, 28), mode="bilinear", align_corners=False),
        atol=1e-5)]
    assert len(matches) == 1  # every image went down to the same side and back


def test_photo_background_texture_is_bicubic_upsampled_noise():
    # zoomed far out, the picture covers a small centre and the rest is background: smooth, in [0, 1]
    x = batch()
    y = augment_batch(x, replace(NEUTRAL_PHOTO, zoom=(3, 3)), torch.Generator().manual_seed(1))
    corner = y[:, :, :5, :5]
    assert y.min() >= 0 and y.max() <= 1
    assert (corner[..., 1:] - corner[..., :-1]).abs().max() < 0.1  # no pixel noise: low-frequency only
    assert corner.std((1, 2, 3)).max() > 0  # but not flat either
