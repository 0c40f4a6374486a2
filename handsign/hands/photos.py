"""An image folder (ROOT/<label>/*.jpg) -> hand landmarks per file, with who is in each photo.

    hs = load_folder("../shared/data/asl_photos/massey")   # landmarks cached per file content
    hs.points, hs.handedness, hs.found, hs.labels, hs.groups

`groups` name the person in each photo (Massey's file names carry hand1..hand5), so evaluation can
leave whole people out: the photos of one person are near-copies of each other.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from handsign.images import preprocess as pp
from handsign.errors import DataError
from handsign.hands import cache
from handsign.hands.landmarks import Hand, detect

GROUP_PATTERN = r"hand\d+"  # the person in a Massey file name, e.g. hand3_k_left_seg_2_cropped.jpeg


@dataclass
class HandSet:
    files: list[Path]
    labels: np.ndarray  # (N,) int64 index into label_names
    label_names: list[str]
    groups: list[str]  # person of each file ("" when the pattern does not match)
    hands: list = field(default_factory=list)  # Hand or None (no hand found), per file

    @property
    def found(self) -> np.ndarray:
        return np.array([h is not None for h in self.hands], dtype=bool)

    def landmarks(self, index=None) -> "LandmarkSet":
        """The photos in `index` (all if None) that have a hand, as arrays for training."""
        index = np.arange(len(self.files)) if index is None else np.asarray(index)
        keep = [int(i) for i in index if self.hands[i] is not None]
        points = np.stack([self.hands[i].points for i in keep]) if keep else np.zeros((0, 21, 3), np.float32)
        left = np.array([self.hands[i].handedness == "Left" for i in keep], dtype=bool)
        return LandmarkSet(points, left, self.labels[keep], self.label_names, [self.groups[i] for i in keep])

    def subset(self, index) -> "HandSet":
        return HandSet([self.files[i] for i in index], self.labels[index], self.label_names,
                       [self.groups[i] for i in index], [self.hands[i] for i in index])

    def people(self) -> list[str]:
        """The people named in the file names (leave-one-person-out needs at least 2)."""
        found = sorted(set(self.groups) - {""})
        if len(found) < 2:
            raise DataError(f"leave-one-person-out needs photos of at least 2 people; the file names name "
                            f"{len(found)}")
        return found

    def detection_report(self) -> dict:
        """Share of photos with a hand found: overall, per label and per person."""
        found = self.found

        def rate(mask):
            n = int(mask.sum())
            return {"found": int(found[mask].sum()), "photos": n, "rate": round(float(found[mask].mean()), 4) if n else None}

        groups = np.array(self.groups)
        return {"overall": rate(np.ones(len(found), dtype=bool)),
                "per_label": {name: rate(self.labels == i) for i, name in enumerate(self.label_names)},
                "per_person": {g: rate(groups == g) for g in sorted(set(self.groups))}}


@dataclass
class LandmarkSet:
    """Hands found in photos, as arrays: what the landmark family trains and evaluates on."""
    points: np.ndarray  # (N, 21, 3) float32, pixels (z in MediaPipe's relative units)
    left: np.ndarray    # (N,) bool: MediaPipe named the hand "Left"
    labels: np.ndarray  # (N,) int64 index into classes
    classes: list
    groups: list        # person of each hand

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index) -> "LandmarkSet":
        index = np.asarray(index, dtype=np.int64)
        return LandmarkSet(self.points[index], self.left[index], self.labels[index], self.classes,
                           [self.groups[i] for i in index])

    def split(self, fraction: float, seed: int) -> tuple["LandmarkSet", "LandmarkSet"]:
        """(train, valid): `fraction` of each label's hands, at least one where it has two, drawn with `seed`."""
        rng = np.random.default_rng(seed)
        valid = []
        for label in np.unique(self.labels):
            idx = rng.permutation(np.flatnonzero(self.labels == label))
            k = min(len(idx) - 1, max(1, round(fraction * len(idx))))
            valid.extend(idx[:k].tolist())
        valid_mask = np.zeros(len(self), dtype=bool)
        valid_mask[valid] = True
        return self.subset(np.flatnonzero(~valid_mask)), self.subset(np.flatnonzero(valid_mask))


def list_folder(root, labels: list[str] | None = None, group_pattern: str = GROUP_PATTERN, every: int = 1):
    """(files, label indices, label names, groups) of ROOT/<label>/<image>, sorted; every: keep every Nth
    file of each label (quick runs)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no such folder (expected ROOT/<label>/*.jpg, e.g. the Massey ASL photos)")
    names = labels or sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    files, ys, groups = [], [], []
    pattern = re.compile(group_pattern)
    for i, name in enumerate(names):
        folder = root / name
        if not folder.is_dir():
            continue
        images = [f for f in sorted(folder.iterdir()) if f.suffix.lower() in pp.IMAGE_EXTENSIONS and f.is_file()]
        for f in images[::every]:
            files.append(f)
            ys.append(i)
            m = pattern.search(f.name)
            groups.append(m.group(0) if m else "")
    if not files:
        raise DataError(f"{root}: no images in ROOT/<label>/ sub-folders")
    return files, np.array(ys, dtype=np.int64), list(names), groups


def hand_of_bytes(data: bytes, name: str = "image") -> Hand | None:
    """Decode + detect, through the cache."""
    key = cache.key_for(data)
    hit = cache.get(key)
    if hit is not cache.MISSING:
        return hit
    hand = detect(pp.to_rgb(pp.decode_image(data, name=name)).astype(np.uint8))
    cache.put(key, hand)
    return hand


def load_folder(root, labels: list[str] | None = None, group_pattern: str = GROUP_PATTERN,
                progress: bool = True, every: int = 1) -> HandSet:
    """Landmarks of every (every-th) image under ROOT/<label>/ (MediaPipe on the first run, the cache after)."""
    files, ys, names, groups = list_folder(root, labels, group_pattern, every)
    hands = []
    for i, f in enumerate(files):
        hands.append(hand_of_bytes(f.read_bytes(), name=str(f)))
        if progress and sys.stderr.isatty() and (i + 1) % 50 == 0:
            print(f"\rhand landmarks: {i + 1}/{len(files)}", end="", file=sys.stderr, flush=True)
    if progress and sys.stderr.isatty():
        print(file=sys.stderr)
    return HandSet(files, ys, names, groups, hands)
