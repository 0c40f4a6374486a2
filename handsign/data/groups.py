"""Near-duplicate groups, so a validation split can hold out whole groups instead of random images.

Sign Language MNIST's 27,455 training images were made from about 1,700 photos by adding small
rotations, filters and brightness changes, so nearly every training image has a near-copy in the
training file (cosine similarity of mean-centred pixels >= 0.994 for 99 % of them), while a test
image's nearest training image is farther (median 0.85). A random validation split is therefore
almost a copy of the training split: it reaches 100 % within a few epochs and cannot choose between
settings. Holding out whole groups of near-copies (pairs above GROUP_SIMILARITY, joined transitively, each
group of one label) gives validation images whose nearest training image is as far as a test image's.

The threshold decides how far. benchmarks/valid_split.py measures the nearest-training-image
similarity of held-out images against the test file's (test images only, no labels): at 0.99 (1,347
groups) its quantiles 10/25/50/75/90 % are 0.67/0.76/0.85/0.93/0.96, the test file's 0.69/0.77/0.85/
0.92/0.96. Rounds two to four used 0.95 (1,143 groups: 0.67/0.74/0.81/0.87/0.90), which held out
photos farther from training than the test file's, and on those a narrow CNN looked as good as wider
ones that are clearly better on test-like photos (docs/fast.md, round five). It stays coarse: an error
is one source photo of about 125 held out, some of which have 80 near-copies, so compare settings over
several seeds (each seed is another split).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from handsign.files import atomic_open
from handsign.data.splits import GROUP_SIMILARITY
from handsign.errors import HandsignError

CHUNK = 2048       # rows of the similarity matrix at a time: 2048 x 27,455 floats = 225 MB
MAX_IMAGES = 100_000  # every pair is compared: 10^5 images of 28x28 = 16 TFLOP, minutes on a laptop CPU


def unit_rows(images: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, C*H*W) float rows, mean-centred and of unit length: their dot products are the
    similarity this module compares against GROUP_SIMILARITY (`--group-similarity`)."""
    x = images.reshape(len(images), -1).float()
    x = x - x.mean(1, keepdim=True)
    return x / x.norm(dim=1, keepdim=True).clamp_min(1e-6)  # a flat image has no near-copies but itself


def near_duplicate_groups(images: torch.Tensor, similarity: float = GROUP_SIMILARITY,
                          cache: Path | None = None) -> torch.Tensor:
    """(N, C, H, W) uint8 -> (N,) int64 group ids (0..G-1): connected components of near-copy pairs.

    Cost: one (N x N) similarity matrix in chunks, N^2 * H * W * 2 FLOPs (about 1.2 TFLOP, a few
    seconds, for Sign-MNIST's train file); with `cache` (a folder) the result is kept there under the
    pixels' hash.
    """
    if len(images) > MAX_IMAGES:
        raise HandsignError(f"--valid-split groups compares every pair of images; {len(images):,} is more than "
                            f"{MAX_IMAGES:,} (use --valid-split random)")
    key = hashlib.sha256(images.contiguous().numpy().tobytes()).hexdigest()[:16]
    path = cache / f"groups-{key}-{similarity}.npy" if cache is not None else None
    if path is not None and path.is_file():
        try:
            ids = np.load(path, allow_pickle=False)
            if ids.shape == (len(images),):
                return torch.from_numpy(ids).long()
        except (OSError, ValueError):
            pass  # a damaged cache file is recomputed
    x = unit_rows(images)
    rows, cols = [], []
    for start in range(0, len(x), CHUNK):
        r, c = (x[start:start + CHUNK] @ x.T > similarity).nonzero(as_tuple=True)
        rows.append(r + start)
        cols.append(c)
    rows, cols = torch.cat(rows), torch.cat(cols)
    ids = torch.arange(len(x))
    while True:  # min-label propagation: each pass gives every image its smallest neighbour's label
        new = ids.clone().scatter_reduce_(0, rows, ids[cols], reduce="amin")
        new = new[new]  # pointer jumping: follow labels to their own labels (fewer passes)
        if torch.equal(new, ids):
            break
        ids = new
    ids = torch.unique(ids, return_inverse=True)[1]
    if path is None:
        return ids
    with atomic_open(path) as f:  # a file object: np.save would add ".npy" to a name
        np.save(f, ids.numpy())
    return ids


def split_by_groups(ids: torch.Tensor, labels: torch.Tensor, num_classes: int, fraction: float,
                    seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded, stratified by class: whole groups (`ids`, (N,)) go to valid until each class has given
    about `fraction` of its images. Returns (train_index, valid_index), sorted."""
    g = torch.Generator().manual_seed(seed)
    valid = torch.zeros(len(labels), dtype=torch.bool)
    for c in range(num_classes):
        members = labels == c
        groups = torch.unique(ids[members])
        groups = groups[torch.randperm(len(groups), generator=g)]
        sizes = torch.bincount(ids[members])[groups]  # images of each group, in the shuffled order
        want = round(int(members.sum()) * fraction)
        # the shortest prefix of shuffled groups reaching `want` images (at least one group, never all)
        take = int(torch.searchsorted(sizes.cumsum(0), torch.tensor(want))) + 1 if want else 0
        take = min(take, max(len(groups) - 1, 0))
        valid |= torch.isin(ids, groups[:take]) & members
    return torch.nonzero(~valid).flatten(), torch.nonzero(valid).flatten()
