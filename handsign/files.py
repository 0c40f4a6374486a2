"""Writing a file so that no reader, and no kill, ever sees half of it: the one way handsign writes files.

    with atomic_open("best.json") as f:  f.write(data)        # or atomic_write_bytes(path, data)

A temporary `.NAME.XXXXXXXX.tmp` beside the target is written, fsynced and renamed over it: readers see
the old file or the new one. An exception inside the block removes the temporary file and leaves the
old one; a killed process may leave the temporary file, which `remove_stale_temps` deletes.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_open(path, mode: int = 0o644, suffix: str = ".tmp"):
    """A binary file to write; on a clean exit it replaces `path` (permissions `mode`: mkstemp's are 0600)."""
    path = Path(path)
    if path.is_dir():  # os.replace would fail only after the whole file is written
        raise IsADirectoryError(21, "Is a directory", str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def atomic_write_bytes(path, data: bytes) -> None:
    """Write `data` to `path` atomically (a model file, JSON, a report: readable by others, 0644)."""
    with atomic_open(path) as f:
        f.write(data)


def remove_stale_temps(folder) -> list[Path]:
    """Delete the temporary files that a killed atomic write left in `folder` (.NAME.XXXXXXXX.tmp).

    Loaders never look at them (they open fixed names); this only reclaims the space. Call it only on a
    folder no other process is writing to (train --resume owns its run folder)."""
    removed = []
    for p in Path(folder).glob(".*.tmp"):
        try:
            p.unlink()
            removed.append(p)
        except OSError:
            pass
    return removed


def cache_dir() -> Path:
    """handsign's cache folder (parsed CSVs, near-copy groups, landmarks, the built C kernels):
    $HANDSIGN_CACHE, else ~/.cache/handsign."""
    return Path(os.environ.get("HANDSIGN_CACHE") or Path.home() / ".cache" / "handsign")
