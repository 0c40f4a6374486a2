"""Landmark cache: one small JSON file per image content, so each photo is run through MediaPipe once.

Keyed by sha256(detector settings + the file's bytes): a changed file, or a changed detector, is a new
key, so a cached answer is never stale. Each entry is written atomically (temporary file + rename), so
a kill -9 mid-extraction leaves complete entries and at worst a stray temporary file, never a half
entry; an unreadable entry is treated as missing and rewritten.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from handsign.files import atomic_write_bytes
from handsign.files import cache_dir
from handsign.hands.landmarks import DETECTOR, Hand


def root() -> Path:
    return cache_dir() / "landmarks"


def key_for(data: bytes) -> str:
    return hashlib.sha256(DETECTOR.encode() + b"\0" + data).hexdigest()


def _path(key: str) -> Path:
    return root() / key[:2] / f"{key}.json"


MISSING = object()  # not in the cache (a cached "no hand" is None)


def get(key: str):
    """The cached Hand, None for a cached "no hand found", or MISSING."""
    try:
        record = json.loads(_path(key).read_text())
        return None if record["hand"] is None else Hand.from_json(record["hand"])
    except (OSError, ValueError, KeyError, TypeError):
        return MISSING


def put(key: str, hand: Hand | None) -> None:
    record = {"detector": DETECTOR, "hand": None if hand is None else hand.to_json()}
    atomic_write_bytes(_path(key), json.dumps(record).encode())
