"""The data sets handsign knows: where each lives under DATA, whether it is there and matches its
published sha256, and how to get it (`handsign data`; fetching is handsign.data.fetch).

    status()                  -> one row per data set (verified / present / missing / incomplete / bad checksum)
    require(["mnist", ...])   -> DataError naming *every* missing set and how to get it, in one message
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from handsign.errors import DataError

CHUNK = 1 << 20
ASL_LETTERS = "abcdefghiklmnopqrstuvwxy"  # Sign-MNIST's 24 static letters: no j, no z (they need motion)
SIGN_MNIST_KAGGLE_URL = "https://www.kaggle.com/datasets/datamunge/sign-language-mnist"
ASL_PHOTOS_KAGGLE_URL = "https://www.kaggle.com/datasets/ayuraj/asl-dataset"


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """--data-dir, else $HANDSIGN_DATA, else ./data."""
    return Path(data_dir or os.environ.get("HANDSIGN_DATA") or "data")


@dataclass(frozen=True)
class Form:
    """One acceptable form of a file: its path under DATA and published sha256 (size: for messages)."""

    path: str
    sha256: str
    size: int


@dataclass(frozen=True)
class DataSource:
    name: str
    title: str
    folder: str                   # under DATA
    slots: tuple = ()             # per needed file: the Forms that can stand for it, in the loader's order
    tree: tuple = ()              # (file count, sha256 over sorted (relative path, bytes)) for a photo tree
    how: str = ""                 # how to get it, one line
    optional: bool = False        # no command needs it; `fetch` without names skips it


def _mnist_slot(stem: str, gz: tuple, raw: tuple) -> tuple:
    # the loader reads the decompressed IDX file when present, else the .gz that fetch downloads
    return (Form(f"MNIST/raw/{stem}", *raw), Form(f"MNIST/raw/{stem}.gz", *gz))


KNOWN = {
    "mnist": DataSource(
        "mnist", "MNIST", "MNIST/raw", slots=(
            _mnist_slot("train-images-idx3-ubyte",
                        ("440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9912422),
                        ("ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db", 47040016)),
            _mnist_slot("train-labels-idx1-ubyte",
                        ("3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28881),
                        ("65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5", 60008)),
            _mnist_slot("t10k-images-idx3-ubyte",
                        ("8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1648877),
                        ("0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7", 7840016)),
            _mnist_slot("t10k-labels-idx1-ubyte",
                        ("f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4542),
                        ("ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2", 10008))),
        how="handsign data fetch mnist (torchvision's mirrors, ~11 MB)"),
    "sign_mnist": DataSource(
        "sign_mnist", "Sign Language MNIST", "sign_mnist", slots=(
            # Kaggle's files have LF line ends; copies with CRLF circulate (same rows): both are accepted
            (Form("sign_mnist/sign_mnist_train.csv",
                  "b7ff39ad5f1210fa765ce11aa5f20c2e97fe467ffc22231aac923c863eef75c4", 83253609),
             Form("sign_mnist/sign_mnist_train.csv",
                  "4c2897f19fab2b0ae2a7e4fa82e969043315d9f3a1a9cc0948b576bf1189a7e5", 83281065)),
            (Form("sign_mnist/sign_mnist_test.csv",
                  "178c0dd21c4b0e86d58df12f14ea1e9efa795ad19d146802b3b28094a16d56ae", 21770312),
             Form("sign_mnist/sign_mnist_test.csv",
                  "0e9d67bae23e67f40728e0b63bf15ad4bd5175947b8a9fac5dd9f17ce133c47b", 21777485))),
        how=f"handsign data fetch sign_mnist (needs kagglehub and a Kaggle API token), or download the "
            f"archive from {SIGN_MNIST_KAGGLE_URL} and run: handsign data fetch sign_mnist --from archive.zip"),
    "asl_photos": DataSource(
        "asl_photos", "ASL photos (Massey University)", "asl_photos/massey",
        tree=(1675, "ce7286c73a66cbf8cfa157625c2a7b668c24b6f4a1e2ce0b4ac9e162992fff82"),
        how=f"optional; download the asl_dataset archive ({ASL_PHOTOS_KAGGLE_URL}) and run: "
            f"handsign data fetch asl_photos --from asl-dataset.zip (its 24 letter folders are kept)",
        optional=True),
}


def known_names(names) -> list[str]:
    """The data set names given (all known ones if none), checked: an unknown name lists the valid ones."""
    names = list(names or KNOWN)
    unknown = [n for n in names if n not in KNOWN]
    if unknown:
        raise DataError(f"unknown data set {', '.join(map(repr, unknown))}; choose from {', '.join(KNOWN)}")
    return names


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _tree_files(folder: Path) -> list[tuple[str, Path]]:
    """(relative posix path, file) for <letter>/*.jpeg under `folder`, sorted as the published hash is."""
    return sorted((p.relative_to(folder).as_posix(), p) for letter in ASL_LETTERS
                  for p in (folder / letter).glob("*.jpeg") if p.is_file())


def tree_sha256(files) -> str:
    """sha256 over the sorted sequence of (relative path, file bytes), each path then its bytes, no separator:
    how shared/data/SOURCES.md's value for the Massey photos is defined (checked against it)."""
    h = hashlib.sha256()
    for rel, p in files:
        h.update(rel.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def _present(ds: DataSource, root: Path) -> list[Form | None]:
    """Per slot, the form the loader would read (the first that exists), or None."""
    return [next((f for f in slot if (root / f.path).is_file()), None) for slot in ds.slots]


def missing_files(ds: DataSource, root: Path) -> list[str]:
    if ds.tree:
        return [] if _tree_files(root / ds.folder) else [f"{ds.folder}/<letter>/*.jpeg"]
    return [slot[-1].path.rsplit("/", 1)[1] for slot, f in zip(ds.slots, _present(ds, root)) if f is None]


def check(name: str, data_dir=None, verify: bool = True) -> dict:
    """One data set's row: name, title, where, state (verified | present | missing | incomplete |
    bad checksum), detail, how."""
    ds, root = KNOWN[name], resolve_data_dir(data_dir)
    row = {"name": name, "title": ds.title, "where": str(root / ds.folder), "how": ds.how, "optional": ds.optional}
    if ds.tree:
        files = _tree_files(root / ds.folder)
        count, digest = ds.tree
        if not files:
            return {**row, "state": "missing", "detail": f"no <letter>/*.jpeg files ({count} expected)"}
        if not verify:
            return {**row, "state": "present", "detail": f"{len(files)} files, not checked"}
        if len(files) == count and tree_sha256(files) == digest:
            return {**row, "state": "verified", "detail": f"{count} files, sha256 {digest[:12]}..."}
        return {**row, "state": "bad checksum", "detail": f"{len(files)} files ({count} expected); the sha256 over "
                f"them differs from the published {digest[:12]}..."}
    found = _present(ds, root)
    if not any(found):
        return {**row, "state": "missing", "detail": f"none of its {len(ds.slots)} files"}
    lacking = missing_files(ds, root)
    if lacking:
        return {**row, "state": "incomplete", "detail": "missing " + ", ".join(lacking)}
    if not verify:
        return {**row, "state": "present", "detail": f"{len(found)} files, not checked"}
    bad = [f.path.rsplit("/", 1)[1] for slot, f in zip(ds.slots, found)
           if sha256_file(root / f.path) not in {g.sha256 for g in slot if g.path == f.path}]
    if bad:
        return {**row, "state": "bad checksum", "detail": "sha256 differs from the published value: " + ", ".join(bad)}
    return {**row, "state": "verified", "detail": f"{len(found)} files match their published sha256"}


def status(data_dir=None, names=None, verify: bool = True) -> list[dict]:
    """Every known data set's row (see check)."""
    return [check(n, data_dir, verify) for n in known_names(names)]


def format_status(rows: list[dict], data_dir=None) -> str:
    root = resolve_data_dir(data_dir)
    lines = [f"DATA = {root.resolve()}  (--data-dir, else $HANDSIGN_DATA, else ./data)", ""]
    w = max(len(r["name"]) for r in rows)
    for r in rows:
        lines.append(f"{r['name']:<{w}}  {r['state']:<12}  {r['where']}")
        lines.append(f"{'':<{w}}  {r['detail']}")
        if r["state"] != "verified":
            lines.append(f"{'':<{w}}  get it: {r['how']}")
    return "\n".join(lines)


def require(names, data_dir=None) -> None:
    """DataError naming every set in `names` that is not (fully) there, with how to get each, in one line."""
    root = resolve_data_dir(data_dir)
    gaps = [(KNOWN[n], missing_files(KNOWN[n], root)) for n in known_names(names)]
    gaps = [(ds, files) for ds, files in gaps if files]
    if gaps:
        parts = [f"{ds.title} ({root / ds.folder} lacks {', '.join(files)}; get it: {ds.how})" for ds, files in gaps]
        raise DataError(f"missing data: {'; '.join(parts)}. 'handsign data' shows every data set and where it "
                        f"is looked for (--data-dir, else $HANDSIGN_DATA, else ./data)")
