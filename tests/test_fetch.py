"""`handsign data` and `handsign data fetch`: status, verified downloads from a local HTTP server on
127.0.0.1 (a free port), truncated and corrupted downloads refused with nothing left behind, installs from
a zip / folder / fake kagglehub, and one message naming every missing data set.

The catalogue (handsign.data.sources.KNOWN) is swapped for one whose sha256 values are those of small files
made here, except in the realdata tests, which serve copies of ../shared/data's MNIST files.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import os
import shutil
import sys
import threading
import types
import zipfile
from pathlib import Path

import pytest

from conftest import make_mnist, make_sign_mnist
from handsign.data import sources as datasets
from handsign.cli import main
from handsign.data.sources import KNOWN, DataSource, Form, require, status, tree_sha256
from handsign.errors import DataError
from handsign.data.fetch import fetch

MNIST_STEMS = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
               "t10k-labels-idx1-ubyte"]


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


class Mirror:
    """A local HTTP server for the files in `folder`: /good/NAME, /truncated/NAME (full Content-Length,
    half the body, then the connection closes), /short/NAME (no Content-Length, half the body),
    /corrupt/NAME (one byte changed), anything else 404."""

    def __init__(self, folder: Path):
        self.folder, self.requests = folder, []
        mirror = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):  # quiet test output
                pass

            def do_GET(self):
                mirror.requests.append(self.path)
                mode, _, name = self.path.strip("/").partition("/")
                f = mirror.folder / name
                if mode not in ("good", "truncated", "short", "corrupt") or not f.is_file():
                    self.send_error(404)
                    return
                body = f.read_bytes()
                if mode == "corrupt":
                    body = body[:-1] + bytes([body[-1] ^ 0xFF])
                self.send_response(200)
                if mode != "short":
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[:len(body) // 2] if mode in ("truncated", "short") else body)
                self.close_connection = True

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_mnist(tmp_path, monkeypatch):
    """Small gzip'd IDX files in tmp/published/ and a catalogue that publishes their sha256."""
    src = make_mnist(tmp_path / "made", n_train=40, n_test=20, gz=True) / "MNIST" / "raw"
    published = tmp_path / "published"
    shutil.copytree(src, published)
    slots = tuple((Form(f"MNIST/raw/{s}", "0" * 64, 0),
                   Form(f"MNIST/raw/{s}.gz", sha((published / f"{s}.gz").read_bytes()), 0)) for s in MNIST_STEMS)
    monkeypatch.setitem(KNOWN, "mnist", DataSource("mnist", "MNIST", "MNIST/raw", slots=slots, how="fetch it"))
    return published


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file())


def test_fetch_from_a_mirror_verifies_and_loads(tmp_path, fake_mnist):
    data = tmp_path / "data"
    with Mirror(fake_mnist) as m:
        rows = fetch(["mnist"], data, mirrors=[m.url + "/good"], progress=False, log=lambda *a: None)
    assert rows[0]["state"] == "verified"
    assert leftovers(data) == sorted(f"{s}.gz" for s in MNIST_STEMS)
    for s in MNIST_STEMS:
        assert (data / "MNIST/raw" / f"{s}.gz").read_bytes() == (fake_mnist / f"{s}.gz").read_bytes()
    from handsign.data.readers import load_dataset
    assert len(load_dataset("mnist", "train", data)) == 40 and len(load_dataset("mnist", "test", data)) == 20


@pytest.mark.parametrize("mode, words", [("truncated", "bytes (truncated)"), ("short", "not the published"),
                                         ("corrupt", "not the published"), ("missing", "404")])
def test_bad_download_is_refused_and_nothing_stays(tmp_path, fake_mnist, mode, words):
    data = tmp_path / "data"
    with Mirror(fake_mnist) as m, pytest.raises(DataError) as e:
        fetch(["mnist"], data, mirrors=[f"{m.url}/{mode}"], progress=False, log=lambda *a: None)
    assert words in str(e.value) and "train-images-idx3-ubyte.gz" in str(e.value)
    assert leftovers(data) == []  # no .part file, no half file
    assert status(data, ["mnist"])[0]["state"] == "missing"


def test_next_mirror_is_tried_after_a_bad_one(tmp_path, fake_mnist):
    data = tmp_path / "data"
    with Mirror(fake_mnist) as m:
        rows = fetch(["mnist"], data, mirrors=[m.url + "/corrupt", m.url + "/truncated", m.url + "/good"],
                     progress=False, log=lambda *a: None)
    assert rows[0]["state"] == "verified" and leftovers(data) == sorted(f"{s}.gz" for s in MNIST_STEMS)
    first = [r for r in m.requests if r.endswith("/train-images-idx3-ubyte.gz")]
    assert first == ["/corrupt/train-images-idx3-ubyte.gz", "/truncated/train-images-idx3-ubyte.gz",
                     "/good/train-images-idx3-ubyte.gz"]


def test_status_states(tmp_path, fake_mnist):
    data = tmp_path / "data"
    raw = data / "MNIST/raw"
    assert status(data, ["mnist"])[0]["state"] == "missing"
    raw.mkdir(parents=True)
    shutil.copy(fake_mnist / "train-images-idx3-ubyte.gz", raw)
    row = status(data, ["mnist"])[0]
    assert row["state"] == "incomplete" and "t10k-labels-idx1-ubyte.gz" in row["detail"]
    for s in MNIST_STEMS:
        shutil.copy(fake_mnist / f"{s}.gz", raw)
    assert status(data, ["mnist"])[0]["state"] == "verified"
    assert status(data, ["mnist"], verify=False)[0]["state"] == "present"
    (raw / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"other"))
    row = status(data, ["mnist"])[0]
    assert row["state"] == "bad checksum" and row["detail"].endswith("t10k-labels-idx1-ubyte.gz")
    # a present bad file is the user's: fetch does not overwrite it, it says what to do
    with pytest.raises(DataError, match="remove it and fetch again"):
        fetch(["mnist"], data, mirrors=["http://127.0.0.1:9/"], progress=False, log=lambda *a: None)


def test_require_names_every_missing_set_in_one_message(tmp_path):
    with pytest.raises(DataError) as e:
        require(["mnist", "sign_mnist"], tmp_path)
    msg = str(e.value)
    assert msg.count("get it:") == 2 and "\n" not in msg
    assert str(tmp_path / "MNIST" / "raw") in msg and "handsign data fetch mnist" in msg
    assert str(tmp_path / "sign_mnist") in msg and "sign_mnist_test.csv" in msg
    make_sign_mnist(tmp_path)
    with pytest.raises(DataError) as e:
        require(["mnist", "sign_mnist"], tmp_path)
    assert "MNIST" in str(e.value) and "Sign Language" not in str(e.value)


@pytest.fixture
def fake_sign(tmp_path, monkeypatch):
    """Small Sign-MNIST CSVs and a catalogue that publishes their sha256."""
    made = make_sign_mnist(tmp_path / "made", n_train=48, n_test=24) / "sign_mnist"
    slots = tuple((Form(f"sign_mnist/sign_mnist_{s}.csv", sha((made / f"sign_mnist_{s}.csv").read_bytes()), 0),)
                  for s in ("train", "test"))
    monkeypatch.setitem(KNOWN, "sign_mnist", DataSource("sign_mnist", "Sign Language MNIST", "sign_mnist",
                                                     slots=slots, how="get it from Kaggle"))
    return made


def kaggle_zip(made: Path, path: Path, corrupt: bool = False) -> Path:
    """Kaggle's archive layout: both CSVs at the top and again in folders of their own."""
    with zipfile.ZipFile(path, "w") as z:
        for s in ("train", "test"):
            body = (made / f"sign_mnist_{s}.csv").read_bytes()
            z.writestr(f"sign_mnist_{s}/sign_mnist_{s}.csv", body + (b"1" if corrupt else b""))
            z.writestr(f"sign_mnist_{s}.csv", body + (b"1" if corrupt else b""))
        z.writestr("amer_sign2.png", b"not needed")
    return path


def test_sign_mnist_from_zip_folder_url_and_kagglehub(tmp_path, fake_sign, monkeypatch):
    zpath = kaggle_zip(fake_sign, tmp_path / "archive.zip")
    for i, kw in enumerate([{"source": zpath}, {"source": fake_sign}]):
        data = tmp_path / f"d{i}"
        assert fetch(["sign_mnist"], data, progress=False, log=lambda *a: None, **kw)[0]["state"] == "verified"
        assert leftovers(data) == ["sign_mnist_test.csv", "sign_mnist_train.csv"]
    with Mirror(tmp_path) as m:
        data = tmp_path / "d-url"
        fetch(["sign_mnist"], data, url=m.url + "/good/archive.zip", progress=False, log=lambda *a: None)
        assert leftovers(data) == ["sign_mnist_test.csv", "sign_mnist_train.csv"]  # the zip itself is gone
    # no kagglehub: the message says how to set it up and the --from route
    monkeypatch.setitem(sys.modules, "kagglehub", None)
    with pytest.raises(DataError, match="pip install kagglehub.*--from archive.zip"):
        fetch(["sign_mnist"], tmp_path / "d-none", progress=False, log=lambda *a: None)
    # kagglehub set up: it downloads into its cache, handsign copies the verified files
    unpacked = tmp_path / "kaggle-cache"
    zipfile.ZipFile(zpath).extractall(unpacked)
    calls = []
    fake = types.SimpleNamespace(dataset_download=lambda handle: calls.append(handle) or str(unpacked))
    monkeypatch.setitem(sys.modules, "kagglehub", fake)
    data = tmp_path / "d-kaggle"
    assert fetch(["sign_mnist"], data, progress=False, log=lambda *a: None)[0]["state"] == "verified"
    assert calls == ["datamunge/sign-language-mnist"]


def test_corrupt_archive_is_refused(tmp_path, fake_sign):
    zpath = kaggle_zip(fake_sign, tmp_path / "bad.zip", corrupt=True)
    data = tmp_path / "data"
    with pytest.raises(DataError, match="not the published"):
        fetch(["sign_mnist"], data, source=zpath, progress=False, log=lambda *a: None)
    assert leftovers(data) == []


def test_asl_photos_tree_from_zip(tmp_path, monkeypatch):
    """A Kaggle-like archive: asl_dataset/<class>/*.jpeg for digits and letters; only a..y (no j, z) are kept,
    verified as a whole by the sha256 over (relative path, bytes)."""
    letters = "abcdefghiklmnopqrstuvwxy"
    files = sorted((f"{c}/hand1_{c}_{k}.jpeg", f"{c}{k}".encode() * 10) for c in letters for k in range(2))
    digest = hashlib.sha256(b"".join(rel.encode() + body for rel, body in files)).hexdigest()
    monkeypatch.setitem(KNOWN, "asl_photos", DataSource("asl_photos", "ASL photos", "asl_photos/massey",
                                                     tree=(len(files), digest), how="from Kaggle", optional=True))
    zpath = tmp_path / "asl.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        for rel, body in files:
            z.writestr(f"asl_dataset/{rel}", body)
        z.writestr("asl_dataset/0/hand1_0.jpeg", b"a digit")
        z.writestr("asl_dataset/j/hand1_j.jpeg", b"j needs motion")
    data = tmp_path / "data"
    assert fetch(["asl_photos"], data, source=zpath, progress=False, log=lambda *a: None)[0]["state"] == "verified"
    assert len(leftovers(data)) == len(files) and not (data / "asl_photos/massey/j").exists()
    # a wrong tree is refused and the verified one stays as it was
    with zipfile.ZipFile(tmp_path / "bad.zip", "w") as z:
        for rel, body in files:
            z.writestr(f"x/{rel}", body + b"!")
    with pytest.raises(DataError, match="refused"):
        fetch(["asl_photos"], data, source=tmp_path / "bad.zip", progress=False, log=lambda *a: None)
    assert status(data, ["asl_photos"])[0]["state"] == "verified"
    assert [p.name for p in (data / "asl_photos").iterdir()] == ["massey"]  # no temporary folder left
    with pytest.raises(DataError, match="cannot be downloaded for you"):
        fetch(["asl_photos"], tmp_path / "d2", progress=False, log=lambda *a: None)


def test_cli_data_and_fetch(tmp_path, fake_mnist, capsys):
    data = tmp_path / "data"
    assert main(["data", "--data-dir", str(data)]) == 0
    out = capsys.readouterr().out
    assert "mnist" in out and "missing" in out and "get it: fetch it" in out
    with Mirror(fake_mnist) as m:
        assert main(["data", "--data-dir", str(data), "fetch", "mnist", "--mirror", m.url + "/good", "--quiet"]) == 0
        capsys.readouterr()
        code = main(["data", "fetch", "mnist", "--data-dir", str(tmp_path / "d2"), "--mirror", m.url + "/corrupt",
                     "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("handsign: error: mnist: ") and err.count("\n") == 1
    assert main(["data", "--data-dir", str(data), "--json", "--no-verify"]) == 0
    assert '"state": "present"' in capsys.readouterr().out
    assert main(["data", "fetch", "sign_mnist", "mnist", "--from", str(tmp_path)]) == 2
    assert "name exactly one" in capsys.readouterr().err


def test_missing_data_for_training_names_all_of_it(tmp_path, capsys):
    code = main(["train", "--recipe", "course-mnist-mlp", "--data-dir", str(tmp_path), "--out",
                 str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "handsign data fetch mnist" in err
    assert not (tmp_path / "run").exists()


@pytest.mark.realdata
def test_real_catalogue_matches_shared_data(real_data_dir, tmp_path):
    """The published sha256 values in the catalogue verify ../shared/data, and MNIST's four .gz files fetched
    from a local mirror of it verify too (the tree hash definition is checked by the asl_photos row)."""
    rows = {r["name"]: r for r in status(real_data_dir)}
    assert {n: r["state"] for n, r in rows.items()} == {"mnist": "verified", "sign_mnist": "verified",
                                                       "asl_photos": "verified"}
    files = datasets._tree_files(real_data_dir / "asl_photos/massey")
    assert len(files) == 1675 and tree_sha256(files) == KNOWN["asl_photos"].tree[1]
    with Mirror(real_data_dir / "MNIST/raw") as m:
        rows = fetch(["mnist"], tmp_path, mirrors=[m.url + "/good"], progress=False, log=lambda *a: None)
    assert rows[0]["state"] == "verified"
    assert sorted(p.name for p in (tmp_path / "MNIST/raw").iterdir()) == sorted(f"{s}.gz" for s in MNIST_STEMS)


def test_fetched_files_follow_the_umask(tmp_path, fake_mnist):
    with Mirror(fake_mnist) as m:
        fetch(["mnist"], tmp_path, mirrors=[m.url + "/good"], progress=False, log=lambda *a: None)
    mask = os.umask(0)
    os.umask(mask)
    assert {p.stat().st_mode & 0o777 for p in (tmp_path / "MNIST/raw").iterdir()} == {0o666 & ~mask}
