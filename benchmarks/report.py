"""How a benchmark ends: its table printed, its JSON record written atomically. Import it after putting this
checkout on sys.path (handsign.files)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from handsign.files import atomic_write_bytes


def write_report(path, doc: dict, header: str | None = None, rows: Iterable[str] = ()) -> None:
    """Print `header` (if any; it may hold several lines) and each of `rows`, then write `doc` to `path` as JSON
    (indent 1, a final newline; atomically, its folder made if need be) and print "wrote PATH"."""
    if header is not None:
        print(header)
    for row in rows:
        print(row)
    atomic_write_bytes(Path(path), (json.dumps(doc, indent=1) + "\n").encode())
    print(f"wrote {path}")
