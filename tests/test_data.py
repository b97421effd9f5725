"""Dataset look-up order, partial directories, and verified downloads from a real local HTTP server."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from nncompare import data
from nncompare.data import IDX_FILES, fetch, load_dataset, locate
from nncompare.errors import DataError, UsageError
from nncompare.idx import write_idx

SHARED_MNIST_TEST = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
# read before the autouse fixture below clears it for each test
DATA_DIR_AT_START = os.environ.get("NNCOMPARE_DATA_DIR")


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NNCOMPARE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("NNCOMPARE_DATA_DIR", raising=False)
    return tmp_path / "cache"


class _Handler(http.server.SimpleHTTPRequestHandler):
    truncate: set = set()

    def log_message(self, *args):
        pass

    def do_GET(self):
        name = self.path.rsplit("/", 1)[-1]
        if name in self.truncate:
            body = (Path(self.directory) / name).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.close()
            return
        super().do_GET()


@pytest.fixture
def http_server(tmp_path):
    """A real HTTP server on 127.0.0.1 serving a folder; yields (folder, base_url, handler class)."""
    root = tmp_path / "served"
    root.mkdir()
    handler = type("Handler", (_Handler,), {"truncate": set()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}/", handler
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def mnist_test_files():
    """The real MNIST test files (canonical, published md5), when the offline copy is at hand."""
    folder = Path(DATA_DIR_AT_START or "/nonexistent") / "mnist-10k"
    if not all((folder / f).is_file() for f in SHARED_MNIST_TEST):
        pytest.skip(
            "the real MNIST test files are not at hand: set NNCOMPARE_DATA_DIR to a folder that holds them (mnist-10k/)"
        )
    return folder


def test_download_verifies_and_caches(http_server, mnist_test_files, isolated_cache, monkeypatch):
    root, url, _ = http_server
    for f in SHARED_MNIST_TEST:
        shutil.copy(mnist_test_files / f, root / f)
    monkeypatch.setenv("NNCOMPARE_BASE_URL", url)
    paths = fetch("mnist", splits=("test",))
    assert paths["test_images"] == isolated_cache / "mnist" / "t10k-images-idx3-ubyte.gz"
    assert data.md5sum(paths["test_images"]) == "9fb629c4189551a2d022fa330f9573f3"
    assert sorted(p.name for p in (isolated_cache / "mnist").iterdir()) == sorted(SHARED_MNIST_TEST)
    # a second fetch finds them in the cache, even with the server gone
    monkeypatch.setenv("NNCOMPARE_BASE_URL", "http://127.0.0.1:9/")
    assert fetch("mnist", splits=("test",)) == paths
    assert locate("mnist", splits=("test",), download=False) == paths


def test_checksum_mismatch_leaves_nothing_in_the_cache(http_server, isolated_cache, monkeypatch):
    root, url, _ = http_server
    write_idx(root / "t10k-images-idx3-ubyte.gz", np.zeros((3, 28, 28), np.uint8))
    monkeypatch.setenv("NNCOMPARE_BASE_URL", url)
    with pytest.raises(DataError, match="checksum mismatch") as info:
        fetch("mnist", splits=("test",))
    assert "\n" not in str(info.value)
    assert list((isolated_cache / "mnist").iterdir()) == []


def test_truncated_transfer_leaves_nothing_in_the_cache(http_server, mnist_test_files, isolated_cache, monkeypatch):
    root, url, handler = http_server
    for f in SHARED_MNIST_TEST:
        shutil.copy(mnist_test_files / f, root / f)
    handler.truncate.add("t10k-images-idx3-ubyte.gz")
    monkeypatch.setenv("NNCOMPARE_BASE_URL", url)
    with pytest.raises(DataError):
        fetch("mnist", splits=("test",))
    assert list((isolated_cache / "mnist").iterdir()) == []


def test_unreachable_mirror_says_what_to_do(isolated_cache, monkeypatch):
    monkeypatch.setenv("NNCOMPARE_BASE_URL", "http://127.0.0.1:9/")
    with pytest.raises(DataError, match="NNCOMPARE_BASE_URL .* NNCOMPARE_DATA_DIR"):
        load_dataset("mnist")


def test_directory_with_only_the_test_split_names_the_missing_files(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    write_idx(folder / "t10k-images-idx3-ubyte.gz", np.zeros((2, 28, 28), np.uint8))
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.zeros(2, np.uint8))
    with pytest.raises(
        DataError, match="train split is missing.*train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz"
    ):
        load_dataset("mnist", data_dir=tmp_path)


def test_missing_data_dir_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        load_dataset("mnist", data_dir=tmp_path / "nope")


def _write_split(folder: Path, n: int, *, raw=False, label_count=None):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(1)
    ext = "" if raw else ".gz"
    for split, count in (("train", n), ("t10k", n // 2)):
        write_idx(
            folder / f"{split}-images-idx3-ubyte{ext}",
            rng.randint(0, 256, (count, 28, 28)).astype(np.uint8),
            compress=not raw,
        )
        write_idx(
            folder / f"{split}-labels-idx1-ubyte{ext}",
            (np.arange(label_count or count) % 10).astype(np.uint8),
            compress=not raw,
        )


def test_data_dir_comes_before_the_cache_and_raw_files_work(tmp_path, isolated_cache):
    _write_split(isolated_cache / "mnist", 20)
    _write_split(tmp_path / "mine" / "mnist", 30, raw=True)
    ds = load_dataset("mnist", data_dir=tmp_path / "mine")
    assert len(ds.y_train) == 30 and ds.x_train.dtype == np.float32
    assert len(load_dataset("mnist").y_train) == 20  # no data dir: the cache


def test_env_var_names_the_data_dir(tmp_path, monkeypatch):
    _write_split(tmp_path / "d", 12)
    monkeypatch.setenv("NNCOMPARE_DATA_DIR", str(tmp_path / "d"))
    assert len(load_dataset("mnist").y_train) == 12


def test_images_and_labels_that_do_not_belong_together(tmp_path):
    _write_split(tmp_path / "mnist", 20, label_count=19)
    with pytest.raises(DataError, match="do not belong together"):
        load_dataset("mnist", data_dir=tmp_path)


def test_real_fashion_mnist_loads(fashion):
    assert fashion.x_train.shape == (60000, 784) and fashion.x_test.shape == (10000, 784)
    assert fashion.x_train.dtype == np.float32 and fashion.classes.tolist() == list(range(10))


def test_digits_is_always_there(digits):
    assert digits.x_train.shape[1] == 64 and len(digits.classes) == 10
    assert 0.0 <= digits.x_train.min() and digits.x_train.max() <= 1.0


def test_published_md5s_are_well_formed():
    for source in data.IDX_DATASETS.values():
        assert set(source.md5) == set(IDX_FILES)
        for md5s in source.md5.values():
            assert all(len(m) == 32 and int(m, 16) >= 0 for m in md5s)
