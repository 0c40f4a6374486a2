"""Getting the data sets: `handsign data fetch [NAME...]`.

    fetch(["mnist"])                               # torchvision's mirrors, in order
    fetch(["sign_mnist"])                          # through kagglehub, when it is installed and set up
    fetch(["sign_mnist"], source="archive.zip")    # a zip, folder or file the user has (--from)
    fetch(["asl_photos"], url="https://.../x.zip")   # a URL the user gives (--url)

Every file is written to a temporary name in its target folder, hashed while written, and renamed over
the target only when its sha256 is the published one: a truncated or corrupted download never becomes a
data file, and an interrupted one leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

from handsign.files import atomic_open
from handsign.data.sources import (ASL_LETTERS, CHUNK, KNOWN, SIGN_MNIST_KAGGLE_URL, known_names, check, resolve_data_dir,
                               sha256_file, tree_sha256)
from handsign.errors import DataError

# torchvision.datasets.MNIST.mirrors (0.29); torchvision's own list is used when it is installed
MNIST_MIRRORS = ["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"]
KAGGLE_SIGN_MNIST = "datamunge/sign-language-mnist"


class _Bar:
    """Bytes progress on a terminal (redrawn at most 10 times a second); one line at the end otherwise."""

    def __init__(self, desc: str, total: int | None, enabled: bool = True, stream=None):
        self.desc, self.total, self.done = desc, total, 0
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = enabled and getattr(self.stream, "isatty", lambda: False)()
        self.start = self.last = time.perf_counter()

    def update(self, n: int):
        self.done += n
        now = time.perf_counter()
        if self.tty and now - self.last >= 0.1:
            self.last = now
            self._draw(now)

    def _draw(self, now, end=""):
        mb, total = self.done / 1e6, f"/{self.total / 1e6:.1f}" if self.total else ""
        filled = int(24 * self.done / self.total) if self.total else 0
        bar = f"[{'#' * filled}{'-' * (24 - filled)}] " if self.total else ""
        self.stream.write(f"\r{self.desc} {bar}{mb:.1f}{total} MB {mb / max(now - self.start, 1e-9):.1f} MB/s{end}")
        self.stream.flush()

    def close(self):
        if self.tty:
            self._draw(time.perf_counter(), "\n")
        elif self.enabled:
            self.stream.write(f"{self.desc}: {self.done / 1e6:.1f} MB in {time.perf_counter() - self.start:.1f} s\n")
            self.stream.flush()


def write_verified(chunks, dest: Path, accepted: set[str] | None, what: str, size: int | None = None,
                   progress: _Bar | None = None) -> Path:
    """Write `chunks` to a temporary file beside `dest`; rename it over `dest` only if the byte count (when
    `size` is known) and the sha256 (when `accepted` is given) match, else remove it and raise DataError."""
    try:  # a data file is as readable as any other file the user makes
        with atomic_open(dest, mode=0o666 & ~_umask(), suffix=".part") as f:
            h, n = hashlib.sha256(), 0
            for chunk in chunks:
                f.write(chunk)
                h.update(chunk)
                n += len(chunk)
                if progress:
                    progress.update(len(chunk))
            if size is not None and n != size:
                raise DataError(f"{what}: got {n:,} of {size:,} bytes (truncated); refused, nothing written")
            if accepted is not None and h.hexdigest() not in accepted:
                raise DataError(f"{what}: sha256 {h.hexdigest()[:16]}... is not the published "
                                f"{sorted(accepted)[0][:16]}... (corrupted or another file); refused, nothing written")
        return dest
    finally:
        if progress:
            progress.close()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def download(url: str, dest: Path, accepted: set[str] | None, *, progress: bool = True,
             timeout: float = 30) -> Path:
    """GET `url` into `dest` through write_verified (Content-Length checked too); DataError on any failure."""
    req = urllib.request.Request(url, headers={"User-Agent": "handsign"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            length = resp.headers.get("Content-Length")
            size = int(length) if length and length.isdigit() else None
            chunks = iter(lambda: resp.read(CHUNK), b"")
            return write_verified(chunks, dest, accepted, url, size, _Bar(dest.name, size, enabled=progress))
    except DataError:
        raise
    except Exception as e:  # refused, timed out, HTTP 404, a connection cut mid-body (IncompleteRead)
        raise DataError(f"{url}: {type(e).__name__}: {e}") from None


def mnist_mirrors() -> list[str]:
    try:
        from torchvision.datasets import MNIST  # torchvision (train extra) only to fetch MNIST

        return list(MNIST.mirrors)
    except Exception:  # torchvision is optional (deploy-only installs)
        return list(MNIST_MIRRORS)


# ---------------------------------------------------------------- per-source installers

def _slots_to_get(ds, root: Path) -> list[tuple]:
    """Slots whose file is missing; a present file with a wrong sha256 stops the fetch (it is the user's)."""
    todo = []
    for slot in ds.slots:
        found = next((f for f in slot if (root / f.path).is_file()), None)
        if found is None:
            todo.append(slot)
        elif sha256_file(root / found.path) not in {f.sha256 for f in slot if f.path == found.path}:
            raise DataError(f"{root / found.path}: sha256 differs from the published value; remove it and fetch again")
    return todo


def _fetch_mnist(root: Path, mirrors: list[str], progress: bool) -> None:
    for slot in _slots_to_get(KNOWN["mnist"], root):
        form = slot[-1]  # the .gz, as published
        name, errors = form.path.rsplit("/", 1)[1], []
        for mirror in mirrors:
            try:
                download(urllib.parse.urljoin(mirror if mirror.endswith("/") else mirror + "/", name),
                         root / form.path, {form.sha256}, progress=progress)
                break
            except DataError as e:
                errors.append(str(e))
        else:
            raise DataError(f"{name}: no mirror gave the published file: " + "; ".join(errors))


def _members(src: Path, name: str | None = None) -> dict:
    """posix path -> zero-argument function giving its chunks, for a zip, a folder or one file."""
    if not src.exists():
        raise DataError(f"--from {src}: no such file or folder")
    if src.is_dir():
        return {p.relative_to(src).as_posix(): (lambda p=p: _file_chunks(p))
                for p in sorted(src.rglob("*")) if p.is_file()}
    if zipfile.is_zipfile(src):
        zf = zipfile.ZipFile(src)  # stays open while its members are copied; closed when collected
        return {i.filename: (lambda i=i: _zip_chunks(zf, i)) for i in zf.infolist() if not i.is_dir()}
    return {name or src.name: lambda: _file_chunks(src)}


def _zip_chunks(zf: zipfile.ZipFile, info: zipfile.ZipInfo):
    with zf.open(info) as f:
        while chunk := f.read(CHUNK):
            yield chunk


def _file_chunks(path: Path):
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk


def _install_files(ds, root: Path, members: dict, src: str) -> None:
    for slot in _slots_to_get(ds, root):
        errors = []
        for path in dict.fromkeys(f.path for f in slot):  # e.g. MNIST: the IDX file or its .gz
            base, accepted = path.rsplit("/", 1)[1], {f.sha256 for f in slot if f.path == path}
            for member in (m for m in members if m.rsplit("/", 1)[-1] == base):
                try:  # archives often hold a file twice (e.g. Kaggle's); the first that verifies wins
                    write_verified(members[member](), root / path, accepted, f"{src}: {member}")
                    break
                except DataError as e:
                    errors.append(str(e))
            if (root / path).is_file():
                break
        else:
            names = " or ".join(sorted({f.path.rsplit('/', 1)[1] for f in slot}))
            raise DataError("; ".join(errors) or f"{src}: holds no file named {names}")


def _install_tree(ds, root: Path, members: dict, src: str) -> None:
    """Copy <letter>/*.jpeg of the first folder in `members` that has all 24 letters, verified as a whole."""
    parents: dict[str, set] = {}
    for m in members:
        parts = m.split("/")
        if len(parts) >= 2 and parts[-2] in ASL_LETTERS and parts[-1].endswith(".jpeg"):
            parents.setdefault("/".join(parts[:-2]), set()).add(parts[-2])
    top = sorted((p for p, letters in parents.items() if len(letters) == len(ASL_LETTERS)), key=lambda p: (len(p), p))
    if not top:
        raise DataError(f"{src}: no folder with the 24 letter folders a..y (no j, z) of *.jpeg photos")
    prefix = top[0] + "/" if top[0] else ""
    dest = root / ds.folder
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part"))
    try:
        for m in members:
            rel = m[len(prefix):]
            if m.startswith(prefix) and rel.count("/") == 1 and rel.split("/")[0] in ASL_LETTERS \
                    and rel.endswith(".jpeg"):
                (tmp / rel).parent.mkdir(exist_ok=True)
                write_verified(members[m](), tmp / rel, None, m)
        files = sorted((p.relative_to(tmp).as_posix(), p) for p in tmp.glob("*/*.jpeg"))
        count, digest = ds.tree
        if len(files) != count or tree_sha256(files) != digest:
            raise DataError(f"{src}: {len(files)} photos ({count} expected) whose sha256 differs from the "
                            f"published {digest[:12]}...; refused, nothing written")
        for d in [tmp, *tmp.iterdir()]:
            os.chmod(d, 0o777 & ~_umask())  # mkdtemp makes it private
        old = dest.with_name(tmp.name + ".old")
        if dest.exists():
            dest.rename(old)
        tmp.rename(dest)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _install(ds, root: Path, src: Path, name: str | None = None) -> None:
    members = _members(src, name)
    (_install_tree if ds.tree else _install_files)(ds, root, members, str(src))


def _from_url(ds, root: Path, url: str, progress: bool) -> None:
    root.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=root, prefix=".download.", suffix=".part")
    os.close(fd)
    try:
        download(url, Path(tmp), None, progress=progress)
        _install(ds, root, Path(tmp), name=Path(urllib.parse.urlparse(url).path).name)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _from_kaggle(ds, root: Path) -> None:
    hint = (f"or download the archive from {SIGN_MNIST_KAGGLE_URL} and run: "
            f"handsign data fetch sign_mnist --from archive.zip")
    try:
        import kagglehub  # optional: only when it is installed and set up
    except ModuleNotFoundError:
        raise DataError(f"Sign Language MNIST comes from Kaggle: pip install kagglehub, put your Kaggle API token "
                        f"in ~/.kaggle/kaggle.json (or set KAGGLE_USERNAME and KAGGLE_KEY) and run this again, "
                        f"{hint}") from None
    try:
        path = kagglehub.dataset_download(KAGGLE_SIGN_MNIST)
    except Exception as e:  # no token, no network, Kaggle's answer: the user's to fix
        raise DataError(f"kagglehub could not download {KAGGLE_SIGN_MNIST} ({type(e).__name__}: {e}); {hint}") from None
    _install(ds, root, Path(path))


def fetch(names=None, data_dir=None, *, source=None, url: str | None = None, mirrors: list[str] | None = None,
          progress: bool = True, log=print) -> list[dict]:
    """Get each named data set (default: the ones commands need) into DATA, verified; its status rows.

    source: a zip, folder or file holding the set (--from); url: where to download it (--url); mirrors:
    base URLs for MNIST's files (default torchvision's). A set that fails does not stop the others; the
    failures are raised together at the end as one DataError.
    """
    names = known_names(names) if names else [n for n, ds in KNOWN.items() if not ds.optional]
    if (source or url) and len(names) != 1:
        raise DataError("--from and --url hold one data set: name exactly one (mnist, sign_mnist or asl_photos)")
    root, rows, failures = resolve_data_dir(data_dir), [], []
    for name in names:
        ds = KNOWN[name]
        try:
            if source:
                _install(ds, root, Path(source))
            elif url:
                _from_url(ds, root, url, progress)
            elif check(name, root)["state"] == "verified":
                pass
            elif name == "mnist":
                _fetch_mnist(root, mirrors or mnist_mirrors(), progress)
            elif name == "sign_mnist":
                _from_kaggle(ds, root)
            else:
                raise DataError(f"{ds.title} cannot be downloaded for you: {ds.how}")
        except DataError as e:
            failures.append(f"{name}: {e}")
        rows.append(row := check(name, root))
        log(f"{name}: {row['state']} ({row['detail']}) in {row['where']}")
    if failures:
        raise DataError(" | ".join(failures))
    return rows
