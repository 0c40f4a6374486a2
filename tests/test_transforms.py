import torch

from handsign.transforms import AugmentSpec, augment_batch, get_augment


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
