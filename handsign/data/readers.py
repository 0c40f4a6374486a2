"""Datasets as in-memory tensors: MNIST (IDX files), Sign Language MNIST (CSV), image folders.

Every dataset is small enough (< 50 MB as uint8) to keep whole in memory, so training slices
tensors instead of running a per-sample DataLoader (the airbench lesson: most of a small model's
time otherwise goes to Python per-sample overhead).
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from handsign.images import preprocess as pp
from handsign.files import atomic_open, cache_dir
from handsign.data.splits import GROUP_SIMILARITY
from handsign.data.sources import ASL_LETTERS, require, resolve_data_dir
from handsign.errors import DataError
from handsign.data.groups import near_duplicate_groups, split_by_groups

DIGITS = "0123456789"
MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


@dataclass
class Dataset:
    """Labelled images kept as tensors."""
    images: torch.Tensor  # (N, 1, H, W) uint8, 0 = black
    labels: torch.Tensor  # (N,) int64 class indices into `classes`
    classes: list         # class names, e.g. list("abcdefghiklmnopqrstuvwxy")
    name: str             # mnist | sign_mnist | folder
    source: str           # where it came from, for messages and the checkpoint

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index) -> "Dataset":
        index = torch.as_tensor(index, dtype=torch.long)
        return Dataset(self.images[index], self.labels[index], self.classes, self.name, self.source)

    def fingerprint(self) -> str:
        """sha256 of pixels and labels: identifies exactly which data a model saw."""
        h = hashlib.sha256()
        h.update(self.images.contiguous().numpy().tobytes())
        h.update(self.labels.contiguous().numpy().tobytes())
        return h.hexdigest()[:16]


def _require(name: str, root: Path) -> None:
    """DataError saying what is missing and how to get it (handsign.data.sources knows every data set)."""
    require([name], root)


# ---------------------------------------------------------------- MNIST (IDX files)

def _read_idx(path: Path, magic: int, ndim: int) -> np.ndarray:
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise DataError(f"{path}: not a valid gzip file ({e})") from None
    if len(raw) < 4 + 4 * ndim or struct.unpack(">I", raw[:4])[0] != magic:
        raise DataError(f"{path}: not an IDX file (expected magic number 0x{magic:08x})")
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise DataError(f"{path}: holds {body.size} bytes of data, header says {dims} (truncated?)")
    return body.reshape(dims)


def _find_mnist_file(raw_dir: Path, stem: str) -> Path | None:
    for p in (raw_dir / stem, raw_dir / (stem + ".gz")):
        if p.is_file():
            return p
    return None


def load_mnist(root: Path, split: str) -> Dataset:
    raw_dir = root / "MNIST" / "raw"
    img_stem, lbl_stem = MNIST_FILES[split]
    if _find_mnist_file(raw_dir, img_stem) is None or _find_mnist_file(raw_dir, lbl_stem) is None:
        _require("mnist", root)  # no download behind the user's back: `handsign data fetch mnist` does it
    img_path, lbl_path = _find_mnist_file(raw_dir, img_stem), _find_mnist_file(raw_dir, lbl_stem)
    images = _read_idx(img_path, 0x00000803, 3)  # (N, 28, 28) uint8
    labels = _read_idx(lbl_path, 0x00000801, 1)  # (N,) uint8
    if len(images) != len(labels):
        raise DataError(f"{raw_dir}: {len(images)} images but {len(labels)} labels")
    if labels.size and labels.max() > 9:
        raise DataError(f"{lbl_path}: label {labels.max()} is not a digit 0..9")
    return Dataset(torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels.astype(np.int64)),
                   list(DIGITS), "mnist", str(img_path))


# ---------------------------------------------------------------- Sign Language MNIST (CSV)

SIGN_MNIST_COLUMNS = 785  # label + 28*28 pixels
_ALLOWED = np.zeros(256, dtype=bool)
_ALLOWED[[ord(c) for c in "0123456789,\n"]] = True


def _column_name(col: int) -> str:
    return "label" if col == 0 else f"pixel{col}"


def _locate(body: np.ndarray, pos: int) -> tuple[int, int]:
    """Byte offset in the CSV body -> (1-based data row, 0-based column)."""
    newlines = np.flatnonzero(body[:pos] == 10)
    line_start = int(newlines[-1]) + 1 if newlines.size else 0
    return newlines.size + 1, int(np.count_nonzero(body[line_start:pos] == 44))


def _token_at(body: np.ndarray, pos: int) -> str:
    start = pos
    while start > 0 and body[start - 1] not in (44, 10):
        start -= 1
    end = pos
    while end < len(body) and body[end] not in (44, 10):
        end += 1
    return bytes(body[start:end]).decode("latin-1")[:20]


def parse_sign_mnist_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Parse a Sign-MNIST CSV -> (labels (N,) int64 raw, pixels (N, 784) uint8). DataError on any flaw.

    Vectorised over the bytes (about 0.5 s for the 83 MB train file): every value is 1-3 digits, so
    each one is rebuilt from the (at most) three bytes before its separator.
    """
    name = str(path)  # the whole path: the user may have several data roots
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):  # the UTF-8 byte-order mark that Excel's "CSV UTF-8" writes first
        raw = raw[3:]
    if not raw.strip():
        raise DataError(f"{name}: file is empty")
    header_end = raw.find(b"\n")
    header = (raw if header_end < 0 else raw[:header_end]).decode("latin-1").strip()
    expected = "label," + ",".join(f"pixel{i}" for i in range(1, 785))
    if header != expected:
        n = header.count(",") + 1
        shown = header if len(header) <= 40 else header[:40] + "..."
        raise DataError(f"{name}: wrong header {shown!r} ({n} columns); expected 'label,pixel1,...,pixel784'")
    body_bytes = b"" if header_end < 0 else raw[header_end + 1:]
    if b"\r" in body_bytes:
        body_bytes = body_bytes.replace(b"\r\n", b"\n")
    body_bytes = body_bytes.rstrip(b"\n")
    if not body_bytes:
        raise DataError(f"{name}: has a header but no data rows")
    body = np.frombuffer(body_bytes, dtype=np.uint8)

    bad = np.flatnonzero(~_ALLOWED[body])
    if bad.size:
        row, col = _locate(body, int(bad[0]))
        raise DataError(f"{name}: row {row}, column {_column_name(col)}: "
                        f"{_token_at(body, int(bad[0]))!r} is not a non-negative integer")

    seps = np.flatnonzero((body == 44) | (body == 10))  # every value ends at one of these (or EOF)
    ends = np.append(seps, len(body))
    row_ends = np.flatnonzero(np.append(body[seps] == 10, True))  # token index that ends each row
    n_rows = len(row_ends)
    expected_ends = np.arange(1, n_rows + 1) * SIGN_MNIST_COLUMNS - 1
    wrong = np.flatnonzero(row_ends != expected_ends)
    if wrong.size:
        r = int(wrong[0])
        n_cols = int(row_ends[r] - (row_ends[r - 1] if r else -1))
        raise DataError(f"{name}: row {r + 1} has {n_cols} columns; expected {SIGN_MNIST_COLUMNS} (label + 784 pixels)")

    starts = np.concatenate([[0], seps + 1])
    lengths = ends - starts
    if lengths.min() == 0:
        t = int(np.argmin(lengths))
        raise DataError(f"{name}: row {t // SIGN_MNIST_COLUMNS + 1}, column "
                        f"{_column_name(t % SIGN_MNIST_COLUMNS)}: empty value")
    if lengths.max() > 3:
        t = int(np.argmax(lengths))
        raise DataError(f"{name}: row {t // SIGN_MNIST_COLUMNS + 1}, column {_column_name(t % SIGN_MNIST_COLUMNS)}: "
                        f"{_token_at(body, int(starts[t]))!r} is out of range 0..255")
    digits = np.concatenate([np.zeros(3, np.int16), body.astype(np.int16) - 48])  # 3 pads: ends-3 >= -3
    e = ends + 3
    values = digits[e - 1] + 10 * digits[e - 2] * (lengths >= 2) + 100 * digits[e - 3] * (lengths >= 3)
    table = values.reshape(n_rows, SIGN_MNIST_COLUMNS)
    pixels = table[:, 1:]
    if pixels.max() > 255:
        r, c = np.argwhere(pixels > 255)[0]
        raise DataError(f"{name}: row {r + 1}, column pixel{c + 1}: '{pixels[r, c]}' is out of range 0..255")
    return table[:, 0].astype(np.int64), pixels.astype(np.uint8)


def map_sign_labels(raw: np.ndarray, name: str, scheme: str = "auto") -> np.ndarray:
    """Kaggle labels (0..24, no 9 = j) or the course's renumbered 0..23 -> indices into ASL_LETTERS."""
    present = set(np.unique(raw).tolist())
    if scheme == "auto":
        scheme = "course" if 9 in present and 24 not in present else "kaggle"
    if scheme == "kaggle":
        bad = raw[(raw > 24) | (raw == 9)]
        if bad.size:
            row = int(np.flatnonzero((raw > 24) | (raw == 9))[0]) + 1
            why = "9 would be j, which needs motion and is not in the data" if bad[0] == 9 else "not in 0..24"
            raise DataError(f"{name}: row {row}, column label: label {bad[0]} is unknown ({why})")
        return np.where(raw > 9, raw - 1, raw)
    bad = np.flatnonzero(raw > 23)
    if bad.size:
        raise DataError(f"{name}: row {bad[0] + 1}, column label: label {raw[bad[0]]} is not in 0..23")
    return raw


def _csv_cache_path(path: Path, st: os.stat_result) -> Path:
    """<cache>/<stem>-<which file>-<which state of it>.npz. Size and mtime alone miss a rewrite that keeps
    both (cp -p, rsync -t, touch -r, a coarse-mtime file system); the inode and ctime change on any write,
    rename or utime and cannot be set back by a user."""
    where = hashlib.sha256(f"{path.resolve()}".encode()).hexdigest()[:12]
    state = hashlib.sha256(f"{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}|{st.st_ino}|{st.st_dev}|v3".encode())
    return cache_dir() / f"{path.stem}-{where}-{state.hexdigest()[:16]}.npz"


def _prune_csv_cache(keep: Path) -> None:
    """Delete the other cached states of the same CSV (and the one-key names of handsign <= round 7 for a CSV
    of that name): each rewrite of a CSV would otherwise leave a 20 MB file behind for good."""
    stem, where, _ = keep.stem.rsplit("-", 2)
    old = [p for p in keep.parent.glob(f"{glob.escape(stem)}-*.npz") if len(p.stem[len(stem) + 1:]) == 20]
    for p in [*keep.parent.glob(f"{glob.escape(stem)}-{where}-*.npz"), *old]:
        if p != keep:
            try:
                p.unlink()
            except OSError:
                pass


def _same_file_state(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_size, a.st_mtime_ns, a.st_ctime_ns, a.st_ino, a.st_dev) == \
        (b.st_size, b.st_mtime_ns, b.st_ctime_ns, b.st_ino, b.st_dev)


def read_sign_mnist_csv(path: Path, *, use_cache: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Parse with a binary cache keyed by the CSV's path, size, mtime, ctime and inode (never stale)."""
    before = path.stat()
    cache = _csv_cache_path(path, before)
    if use_cache and cache.is_file():
        try:
            with np.load(cache, allow_pickle=False) as z:
                labels, pixels = z["labels"], z["pixels"]
            if labels.dtype == np.int64 and pixels.dtype == np.uint8 and labels.ndim == 1 \
                    and pixels.shape == (len(labels), 784):
                return labels, pixels
        except Exception:
            pass  # a broken or foreign cache file is rebuilt below
    labels, pixels = parse_sign_mnist_csv(path)
    # a CSV rewritten while it was parsed: the result is not cached under the key of the old state
    if use_cache and _same_file_state(before, path.stat()):
        try:
            with atomic_open(cache) as f:
                np.savez(f, labels=labels, pixels=pixels)
            _prune_csv_cache(cache)
        except OSError:  # a read-only or full disk only costs speed
            pass
    return labels, pixels


def sign_mnist_path(root: Path, split: str) -> Path:
    return root / "sign_mnist" / f"sign_mnist_{split}.csv"


def load_sign_mnist(root: Path, split: str, label_scheme: str = "auto") -> Dataset:
    path = sign_mnist_path(root, split)
    if not path.is_file():
        _require("sign_mnist", root)
    raw_labels, pixels = read_sign_mnist_csv(path)
    labels = map_sign_labels(raw_labels, str(path), label_scheme)
    images = torch.from_numpy(pixels).reshape(-1, 1, 28, 28)
    return Dataset(images, torch.from_numpy(labels), list(ASL_LETTERS), "sign_mnist", str(path))


# ---------------------------------------------------------------- folder of labelled images

def load_image_folder(root: Path, spec: dict | None = None) -> Dataset:
    """root/<class>/*.png|jpg|... -> Dataset; every image goes through the shared preprocessing with `spec`
    (default: the folder data set's), the spec the model trained on it stores, so predict reads alike."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: image folder does not exist")
    spec = spec or pp.default_spec("folder")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    files, labels = [], []
    for i, c in enumerate(classes):
        for f in sorted((root / c).iterdir()):
            if f.suffix.lower() in pp.IMAGE_EXTENSIONS:
                files.append(f)
                labels.append(i)
    if not files:
        raise DataError(f"{root}: no images found; expected {root}/<class>/*.png (or .jpg, .bmp, .gif, .webp)")
    images = torch.from_numpy(np.stack([pp.preprocess_levels(pp.decode_image(f), spec) for f in files]))
    return Dataset(images, torch.tensor(labels, dtype=torch.long), classes, "folder", str(root))


# ---------------------------------------------------------------- entry points

def load_dataset(name: str, split: str = "train", data_dir=None, *, image_folder: str = "",
                 spec: dict | None = None) -> Dataset:
    """'mnist' | 'sign_mnist' | 'folder' and 'train' | 'test' -> Dataset. `spec`: the preprocessing an image
    folder's pictures go through (the files of mnist and sign_mnist are already 28x28 gray levels)."""
    if split not in ("train", "test"):
        raise DataError(f"unknown split {split!r}; choose train or test")
    root = resolve_data_dir(data_dir)
    if name == "mnist":
        return load_mnist(root, split)
    if name == "sign_mnist":
        return load_sign_mnist(root, split)
    if name == "folder":
        folder = Path(image_folder)
        if (folder / split).is_dir():
            return load_image_folder(folder / split, spec)
        if split == "test":
            raise DataError(f"{folder}: no test/ subfolder; a folder without train/ and test/ is used as train only")
        return load_image_folder(folder, spec)
    raise DataError(f"unknown dataset {name!r}; choose mnist, sign_mnist or folder")


def split_train_valid(ds: Dataset, fraction: float, seed: int, by: str = "random",
                      similarity: float = GROUP_SIMILARITY) -> tuple[Dataset, Dataset]:
    """Seeded, stratified split: each class gives `fraction` of its samples to valid. by="groups" holds
    out whole groups of near-copies (pairs above `similarity`) instead of single images (handsign.data.groups:
    why, and what it costs)."""
    if by == "groups":
        ids = near_duplicate_groups(ds.images, similarity, cache=cache_dir())
        train_idx, valid_idx = split_by_groups(ids, ds.labels, len(ds.classes), fraction, seed)
        return ds.subset(train_idx), ds.subset(valid_idx)
    g = torch.Generator().manual_seed(seed)
    valid_idx = []
    for c in range(len(ds.classes)):
        idx = torch.nonzero(ds.labels == c).flatten()
        n = int(round(len(idx) * fraction))
        valid_idx.append(idx[torch.randperm(len(idx), generator=g)[:n]])
    valid_idx = torch.cat(valid_idx).sort().values
    mask = torch.ones(len(ds), dtype=torch.bool)
    mask[valid_idx] = False
    return ds.subset(torch.nonzero(mask).flatten()), ds.subset(valid_idx)
