import os

import numpy as np
import pytest
import torch

from conftest import make_mnist, make_sign_mnist, sign_csv_text
from handsign.data.readers import (ASL_LETTERS, load_dataset, load_image_folder, parse_sign_mnist_csv,
                           read_sign_mnist_csv, split_train_valid)
from handsign.errors import DataError


def write(tmp_path, text, name="sign_mnist_train.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_csv_parses_values_exactly(tmp_path):
    rng = np.random.default_rng(1)
    px = rng.integers(0, 256, size=(5, 784))
    labels, pixels = parse_sign_mnist_csv(write(tmp_path, sign_csv_text([0, 24, 3, 10, 8], px)))
    assert labels.tolist() == [0, 24, 3, 10, 8]
    assert pixels.dtype == np.uint8 and pixels.shape == (5, 784)
    assert np.array_equal(pixels, px)


def test_csv_crlf_and_no_trailing_newline(tmp_path):
    text = sign_csv_text([1, 2]).rstrip("\n").replace("\n", "\r\n")
    labels, pixels = parse_sign_mnist_csv(write(tmp_path, text))
    assert labels.tolist() == [1, 2] and pixels.shape == (2, 784)


@pytest.mark.parametrize("mutate, message", [
    (lambda t: t.replace("label,", "lbl,", 1), "wrong header"),
    (lambda t: t.replace(",pixel784", "", 1), "wrong header"),
    (lambda t: t.rsplit(",", 1)[0] + "\n", "row 3 has 784 columns"),
    (lambda t: _set(t, 2, 10, "abc"), "row 2, column pixel10: 'abc' is not a non-negative integer"),
    (lambda t: _set(t, 1, 3, "300"), "row 1, column pixel3: '300' is out of range 0..255"),
    (lambda t: _set(t, 1, 3, "-4"), "row 1, column pixel3: '-4' is not a non-negative integer"),
    (lambda t: _set(t, 2, 5, "1.5"), "row 2, column pixel5: '1.5' is not a non-negative integer"),
    (lambda t: _set(t, 3, 0, "25"), "row 3, column label: label 25 is unknown"),
    (lambda t: _set(t, 1, 7, ""), "row 1, column pixel7: empty value"),
    (lambda t: t.split("\n")[0] + "\n", "has a header but no data rows"),
    (lambda t: "", "file is empty"),
])
def test_csv_errors_name_file_row_and_problem(tmp_path, mutate, message):
    text = mutate(sign_csv_text([1, 2, 3]))
    with pytest.raises(DataError) as e:
        parse_sign_mnist_csv(write(tmp_path, text)) if "label 25" not in message else \
            load_dataset("sign_mnist", "train", _as_root(tmp_path, text))
    assert "sign_mnist_train.csv" in str(e.value)
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def _set(text, row, col, value):
    lines = text.split("\n")
    cells = lines[row].split(",")
    cells[col] = value
    lines[row] = ",".join(cells)
    return "\n".join(lines)


def _as_root(tmp_path, text):
    (tmp_path / "root" / "sign_mnist").mkdir(parents=True, exist_ok=True)
    (tmp_path / "root" / "sign_mnist" / "sign_mnist_train.csv").write_text(text)
    return tmp_path / "root"


def test_kaggle_and_course_labels_map_to_the_same_letters(tmp_path):
    kaggle = make_sign_mnist(tmp_path / "k", scheme="kaggle")
    course = make_sign_mnist(tmp_path / "c", scheme="course")
    a, b = load_dataset("sign_mnist", "train", kaggle), load_dataset("sign_mnist", "train", course)
    assert a.classes == b.classes == list(ASL_LETTERS)
    assert torch.equal(a.labels, b.labels) and torch.equal(a.images, b.images)
    assert a.labels.max() == 23 and len(a.labels.unique()) == 24


def test_kaggle_label_9_is_refused(tmp_path):
    root = _as_root(tmp_path, sign_csv_text([24, 9, 3]))
    with pytest.raises(DataError, match="row 2, column label: label 9 is unknown"):
        load_dataset("sign_mnist", "train", root)


def test_cache_is_used_and_never_stale(tmp_path, monkeypatch):
    import handsign.data.readers as hd

    monkeypatch.setenv("HANDSIGN_CACHE", str(tmp_path / "cache"))
    p = write(tmp_path, sign_csv_text([1, 2]))
    l1, _ = read_sign_mnist_csv(p)
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1
    monkeypatch.setattr(hd, "parse_sign_mnist_csv", lambda path: pytest.fail("parsed again, cache not used"))
    l2, _ = read_sign_mnist_csv(p)  # from the cache
    assert l1.tolist() == l2.tolist() == [1, 2]
    monkeypatch.undo()
    monkeypatch.setenv("HANDSIGN_CACHE", str(tmp_path / "cache"))
    p.write_text(sign_csv_text([3, 4, 5]))  # new size and mtime: a new key
    l3, _ = read_sign_mnist_csv(p)
    assert l3.tolist() == [3, 4, 5]


def test_cache_keeps_one_file_per_csv_however_often_it_is_rewritten(tmp_path, monkeypatch):
    monkeypatch.setenv("HANDSIGN_CACHE", str(tmp_path / "cache"))
    (tmp_path / "other").mkdir()
    other = write(tmp_path / "other", sign_csv_text([7]))  # another CSV of the same name keeps its entry
    read_sign_mnist_csv(other)
    p = write(tmp_path, sign_csv_text([1, 2]))
    (tmp_path / "cache" / f"{p.stem}-{'0' * 20}.npz").write_bytes(b"a cache name of handsign <= 0.1 round 7")
    for labels in ([1, 2], [3, 4, 5], [6]):
        p.write_text(sign_csv_text(labels))
        assert read_sign_mnist_csv(p)[0].tolist() == labels
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 2  # the latest state of each CSV, nothing else
    assert read_sign_mnist_csv(other)[0].tolist() == [7]


def test_a_utf8_byte_order_mark_before_the_header_is_accepted(tmp_path):
    p = tmp_path / "bom.csv"
    p.write_bytes(b"\xef\xbb\xbf" + sign_csv_text([1, 2]).encode())
    assert read_sign_mnist_csv(p, use_cache=False)[0].tolist() == [1, 2]


def test_cache_is_not_fooled_by_same_size_and_mtime(tmp_path, monkeypatch):
    """cp -p / rsync -t / touch -r keep size and mtime: the cache must still see the new content."""
    monkeypatch.setenv("HANDSIGN_CACHE", str(tmp_path / "cache"))
    p = write(tmp_path, sign_csv_text([1, 2]))
    assert read_sign_mnist_csv(p)[0].tolist() == [1, 2]
    st = p.stat()
    p.write_text(sign_csv_text([3, 4]))  # same row count, same random pixels: same size
    assert p.stat().st_size == st.st_size
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))  # and the old mtime back
    assert read_sign_mnist_csv(p)[0].tolist() == [3, 4]


def test_broken_cache_file_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("HANDSIGN_CACHE", str(tmp_path / "cache"))
    p = write(tmp_path, sign_csv_text([1, 2]))
    read_sign_mnist_csv(p)
    (cache,) = (tmp_path / "cache").glob("*.npz")
    with open(cache, "wb") as f:  # a valid npz with the wrong arrays, then garbage
        np.savez(f, labels=np.zeros(3, np.int64), pixels=np.zeros((2, 5), np.uint8))
    assert read_sign_mnist_csv(p)[0].tolist() == [1, 2]
    cache.write_bytes(b"not an npz")
    assert read_sign_mnist_csv(p)[0].tolist() == [1, 2]


def test_mnist_idx_plain_and_gz(tmp_path):
    for gz in (False, True):
        root = make_mnist(tmp_path / f"m{gz}", gz=gz)
        ds = load_dataset("mnist", "train", root)
        assert ds.images.shape == (200, 1, 28, 28) and ds.images.dtype == torch.uint8
        assert ds.labels[:10].tolist() == list(range(10)) and ds.classes == list("0123456789")


def test_mnist_truncated_file(tmp_path):
    root = make_mnist(tmp_path)
    f = root / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    f.write_bytes(f.read_bytes()[:1000])
    with pytest.raises(DataError, match="truncated"):
        load_dataset("mnist", "test", root)


def test_missing_sign_mnist_says_what_to_fetch_and_where(tmp_path):
    with pytest.raises(DataError) as e:
        load_dataset("sign_mnist", "train", tmp_path)
    msg = str(e.value)
    assert "kaggle.com/datasets/datamunge/sign-language-mnist" in msg
    assert str(tmp_path / "sign_mnist") in msg and "sign_mnist_train.csv" in msg


def test_data_dir_from_environment(tmp_path, monkeypatch):
    root = make_sign_mnist(tmp_path / "env")
    monkeypatch.setenv("HANDSIGN_DATA", str(root))
    assert len(load_dataset("sign_mnist", "test")) == 96


def test_split_is_seeded_stratified_and_disjoint(tmp_path):
    ds = load_dataset("sign_mnist", "train", make_sign_mnist(tmp_path))
    tr, va = split_train_valid(ds, 0.25, seed=3)
    tr2, va2 = split_train_valid(ds, 0.25, seed=3)
    _, va3 = split_train_valid(ds, 0.25, seed=4)
    assert len(tr) + len(va) == len(ds) and len(va) == 24 * round(10 * 0.25)
    assert torch.equal(va.images, va2.images) and not torch.equal(va.images, va3.images)
    assert torch.bincount(va.labels, minlength=24).min() > 0
    seen = {bytes(x.numpy()) for x in tr.images}
    assert not any(bytes(x.numpy()) in seen for x in va.images)


def test_image_folder_dataset(tmp_path):
    from PIL import Image

    for cls, value in (("cat", 30), ("dog", 220)):
        (tmp_path / cls).mkdir()
        for i in range(3):
            Image.new("RGB", (40, 30), (value, value, value)).save(tmp_path / cls / f"{i}.png")
    (tmp_path / "dog" / "notes.txt").write_text("not an image")
    ds = load_image_folder(tmp_path)
    assert ds.classes == ["cat", "dog"] and ds.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert ds.images.shape == (6, 1, 28, 28)
    assert abs(int(ds.images[0].float().mean()) - 30) <= 1 and abs(int(ds.images[5].float().mean()) - 220) <= 1


def test_empty_image_folder(tmp_path):
    (tmp_path / "a").mkdir()
    with pytest.raises(DataError, match="no images found"):
        load_image_folder(tmp_path)


@pytest.mark.realdata
def test_real_data_sets_load_with_published_counts(real_data_dir):
    tr = load_dataset("sign_mnist", "train", real_data_dir)
    te = load_dataset("sign_mnist", "test", real_data_dir)
    assert len(tr) == 27455 and len(te) == 7172
    # SOURCES.md: Kaggle label 0 ('a') has 1126 train rows, label 24 ('y') 1118; test 'a' 331
    assert int((tr.labels == 0).sum()) == 1126 and int((tr.labels == 23).sum()) == 1118
    assert int((te.labels == 0).sum()) == 331
    m = load_dataset("mnist", "train", real_data_dir)
    assert len(m) == 60000 and m.labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert abs(m.images.float().div(255).mean().item() - 0.1307) < 1e-3
