"""Grouped validation split: near-copies of one picture never straddle train and valid."""

import torch

from handsign.train.config import make_config
from handsign.data.readers import Dataset, split_train_valid
from handsign.data.groups import near_duplicate_groups


def near_copies(n_sources: int = 12, copies: int = 5, classes: int = 3, seed: int = 0) -> tuple[Dataset, torch.Tensor]:
    """`n_sources` random pictures, each with `copies` slightly noisy versions; returns data + true source id."""
    g = torch.Generator().manual_seed(seed)
    sources = torch.rand(n_sources, 1, 28, 28, generator=g) * 255
    images, labels, origin = [], [], []
    for s in range(n_sources):
        for _ in range(copies):
            noisy = (sources[s] + torch.randn(1, 28, 28, generator=g) * 4).clamp(0, 255)
            images.append(noisy.to(torch.uint8))
            labels.append(s % classes)
            origin.append(s)
    ds = Dataset(torch.stack(images), torch.tensor(labels), list("abc")[:classes], "sign_mnist", "test")
    return ds, torch.tensor(origin)


def test_groups_are_the_sources(tmp_path):
    ds, origin = near_copies()
    ids = near_duplicate_groups(ds.images)
    assert len(torch.unique(ids)) == len(torch.unique(origin))
    for k in torch.unique(ids):  # each group is exactly one source's copies
        assert len(torch.unique(origin[ids == k])) == 1
    assert torch.equal(near_duplicate_groups(ds.images, cache=tmp_path), ids)  # computed, then cached
    assert torch.equal(near_duplicate_groups(ds.images, cache=tmp_path), ids)  # read back
    (next(tmp_path.iterdir())).write_bytes(b"broken")  # a damaged cache file is recomputed
    assert torch.equal(near_duplicate_groups(ds.images, cache=tmp_path), ids)


def test_group_split_holds_out_whole_sources(tmp_path, monkeypatch):
    monkeypatch.setenv("HANDSIGN_CACHE", str(tmp_path))
    ds, origin = near_copies(n_sources=30)
    tr, va = split_train_valid(ds, 0.2, seed=1, by="groups")
    assert len(tr) + len(va) == len(ds) and 0 < len(va) < len(ds)
    assert torch.bincount(va.labels, minlength=3).min() > 0  # every class is validated
    key = lambda x: bytes(x.numpy())  # noqa: E731
    src = {key(x): int(o) for x, o in zip(ds.images, origin)}
    assert not {src[key(x)] for x in tr.images} & {src[key(x)] for x in va.images}
    # random splitting, by contrast, puts copies of one source on both sides
    rtr, rva = split_train_valid(ds, 0.2, seed=1)
    assert {src[key(x)] for x in rtr.images} & {src[key(x)] for x in rva.images}
    _, va2 = split_train_valid(ds, 0.2, seed=2, by="groups")
    assert not torch.equal(va.images, va2.images) or len(va) != len(va2)


def test_valid_split_is_a_checked_choice():
    import pytest

    from handsign.errors import HandsignError

    assert make_config(valid_split="groups").valid_split == "groups"
    with pytest.raises(HandsignError, match="--valid-split"):
        make_config(valid_split="people")


def test_too_many_images_for_pairwise_groups_is_a_clear_error(monkeypatch):
    import pytest

    import handsign.data.groups as groups
    from handsign.errors import HandsignError

    ds, _ = near_copies(n_sources=4)
    monkeypatch.setattr(groups, "MAX_IMAGES", 10)  # 20 images: over the (lowered) limit
    with pytest.raises(HandsignError, match="--valid-split random"):
        split_train_valid(ds, 0.2, seed=0, by="groups")


def test_group_similarity_sets_how_near_a_copy_must_be(tmp_path, monkeypatch):
    """Copies about 0.97 alike are one group at 0.95 and strangers at 0.99: the threshold is what
    `--group-similarity` passes down, and the split follows it."""
    monkeypatch.setenv("HANDSIGN_CACHE", str(tmp_path))
    ds, origin = near_copies(n_sources=30, copies=4)
    g = torch.Generator().manual_seed(1)
    noisy = (ds.images.float() + torch.randn(ds.images.shape, generator=g) * 13).clamp(0, 255).to(torch.uint8)
    ds = Dataset(noisy, ds.labels, ds.classes, ds.name, ds.source)  # copies now ~0.97 alike
    assert len(torch.unique(near_duplicate_groups(ds.images, 0.95))) == 30
    assert len(torch.unique(near_duplicate_groups(ds.images, 0.99))) == len(ds)
    key = lambda x: bytes(x.numpy())  # noqa: E731
    src = {key(x): int(o) for x, o in zip(ds.images, origin)}

    def straddling(similarity):  # sources with copies on both sides of the split
        tr, va = split_train_valid(ds, 0.2, seed=0, by="groups", similarity=similarity)
        return {src[key(x)] for x in tr.images} & {src[key(x)] for x in va.images}

    assert not straddling(0.95) and straddling(0.99)


def test_group_similarity_is_checked_saved_and_kept_for_old_runs():
    import pytest

    from handsign.train.config import GROUP_SIMILARITY as SIMILARITY
    from handsign.train.config import LEGACY_GROUP_SIMILARITY as LEGACY_SIMILARITY
    from handsign.train.config import TrainConfig
    from handsign.errors import HandsignError

    cfg = make_config("fast-asl", valid_split="groups")
    assert cfg.group_similarity == SIMILARITY and TrainConfig.from_dict(cfg.to_dict()) == cfg
    assert make_config("fast-asl", group_similarity=0.9).to_argv()[-2:] == ["--group-similarity", "0.9"]
    for bad in (0, 1, 1.5, -0.2):
        with pytest.raises(HandsignError, match="--group-similarity"):
            make_config(group_similarity=bad)
    old = cfg.to_dict()
    del old["group_similarity"]  # a run saved before the field: it was split at the old threshold
    assert TrainConfig.from_dict(old).group_similarity == LEGACY_SIMILARITY != SIMILARITY
    old["valid_split"] = "random"  # (a random split has no threshold to keep)
    assert TrainConfig.from_dict(old).group_similarity == SIMILARITY
