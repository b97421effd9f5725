"""Datasets: MNIST and Fashion-MNIST from IDX files, and scikit-learn's digits.

Files are looked up in this order: the directory the user names (``--data-dir`` or
``NNCOMPARE_DATA_DIR``), the download cache, the system directory where Debian's
``dataset-fashion-mnist`` package puts them, and only then the network. Downloads are
checked against published checksums by ``pooch.retrieve`` and moved into the cache only once
verified, within an overall deadline, so an interrupted, stalled or corrupt transfer never
leaves a file behind.
"""

from __future__ import annotations

import hashlib
import math
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nncompare.errors import DataError, UsageError
from nncompare.idx import read_labels, read_pixels, scale_pixels

DATA_DIR_ENV = "NNCOMPARE_DATA_DIR"
CACHE_DIR_ENV = "NNCOMPARE_CACHE_DIR"
BASE_URL_ENV = "NNCOMPARE_BASE_URL"
DOWNLOAD_TIMEOUT_ENV = "NNCOMPARE_DOWNLOAD_TIMEOUT"

ROLES = ("train_images", "train_labels", "test_images", "test_labels")
SPLITS = {"train": ("train_images", "train_labels"), "test": ("test_images", "test_labels")}
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


@dataclass(frozen=True)
class IdxSource:
    """Where an IDX dataset can be downloaded from and the md5s its ``.gz`` files may have."""

    name: str
    base_url: str
    md5: dict[str, tuple[str, ...]]
    system_dirs: tuple[str, ...] = ()
    citation: str = ""


IDX_DATASETS: dict[str, IdxSource] = {
    "mnist": IdxSource(
        name="mnist",
        base_url="https://ossci-datasets.s3.amazonaws.com/mnist/",
        md5={
            "train_images": ("f68b3c2dcbeaaa9fbdd348bbdeb94873",),
            "train_labels": ("d53e105ee54ea40749a09fcbcd1e9432",),
            "test_images": ("9fb629c4189551a2d022fa330f9573f3",),
            "test_labels": ("ec29112dd5afa0611ce80d1b7f02629c",),
        },
        citation="Y. LeCun, C. Cortes, C. J. C. Burges, The MNIST database of handwritten digits.",
    ),
    "fashion-mnist": IdxSource(
        name="fashion-mnist",
        base_url="http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        # The project's published md5s first, then those of Debian's recompressed copies.
        md5={
            "train_images": ("8d4fb7e6c68d591d4c3dfef9ec88bf0d", "cf8536b0aa1a6ac5fa3f23001093305c"),
            "train_labels": ("25c81989df183df01b3e8a0aad5dffbe", "10bea18fdb374794d4bb42e356e600c9"),
            "test_images": ("bef4ecab320f06d8554ea6380940ec79", "f78720b4224f21cce2f2ccf2d7a94c9a"),
            "test_labels": ("bb300cfdad3c16e7a12a480ee83cd310", "0d30e22e447f3c33dab9ed536400ac01"),
        },
        system_dirs=("/usr/share/datasets/fashion-mnist",),
        citation="H. Xiao, K. Rasul, R. Vollgraf, Fashion-MNIST (2017), arXiv:1708.07747.",
    ),
}
DATASETS = (*IDX_DATASETS, "digits")
#: (training samples, features, classes) of each dataset as published, for checks before loading it.
SHAPES = {"mnist": (60000, 784, 10), "fashion-mnist": (60000, 784, 10), "digits": (1437, 64, 10)}


@dataclass(frozen=True)
class Dataset:
    """A train/test split as float32 features in [0, 1] and int64 labels."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str = ""
    classes: np.ndarray = field(default=None)  # type: ignore[assignment]
    #: The training images as stored (uint8 rows; ``x_train == idx.scale_pixels(x_train_pixels)``),
    #: or None: what the engines send their workers, a quarter of the float32 bytes.
    x_train_pixels: np.ndarray | None = None

    def __post_init__(self):
        if self.classes is None:
            classes = np.unique(np.concatenate([self.y_train, self.y_test]))
            object.__setattr__(self, "classes", classes)

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])


def md5sum(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def cache_dir() -> Path:
    """The download cache: ``NNCOMPARE_CACHE_DIR`` or the platform's user cache."""
    env = os.environ.get(CACHE_DIR_ENV)
    if env:
        return Path(env)
    import pooch

    return Path(pooch.os_cache("nncompare"))


def _find_in(directory: Path, roles) -> dict[str, Path]:
    found = {}
    for role in roles:
        for candidate in (IDX_FILES[role] + ".gz", IDX_FILES[role]):
            if (directory / candidate).is_file():
                found[role] = directory / candidate
                break
    return found


def _candidate_dirs(name: str, data_dir: str | os.PathLike | None) -> list[tuple[str, Path]]:
    dirs: list[tuple[str, Path]] = []
    if data_dir is not None:
        base = Path(data_dir)
        if not base.is_dir():
            raise UsageError(
                f"data directory {base} does not exist; pass --data-dir with a folder holding the IDX files"
            )
        dirs += [("data dir", base / name), ("data dir", base)]
    dirs.append(("cache", cache_dir() / name))
    dirs += [("system", Path(d)) for d in IDX_DATASETS[name].system_dirs]
    return dirs


def _expected(roles) -> str:
    return ", ".join(IDX_FILES[r] + ".gz" for r in roles)


def locate(
    name: str, *, data_dir=None, splits=("train", "test"), download: bool = True, progress: bool = False
) -> dict[str, Path]:
    """Find (or download) the IDX files of ``splits``; returns role -> path."""
    if name not in IDX_DATASETS:
        raise UsageError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if data_dir is None and os.environ.get(DATA_DIR_ENV):
        data_dir = os.environ[DATA_DIR_ENV]
    roles = [r for s in splits for r in SPLITS[s]]
    for _, directory in _candidate_dirs(name, data_dir):
        if not directory.is_dir():
            continue
        found = _find_in(directory, roles)
        if len(found) == len(roles):
            return found
        if found:
            missing = [r for r in roles if r not in found]
            split_names = sorted({s for s in splits if any(r in missing for r in SPLITS[s])})
            raise DataError(
                f"{directory} has only part of {name}: the {'/'.join(split_names)} split is missing; "
                f"expected {_expected(missing)} (raw or .gz) beside the others"
            )
    if not download:
        raise DataError(f"{name} is not at hand; run 'nncompare data fetch --dataset {name}' or pass --data-dir")
    return fetch(name, splits=splits, progress=progress)


def fetch(name: str, *, splits=("train", "test"), progress: bool = False) -> dict[str, Path]:
    """Download the files of ``splits`` into the cache, verifying each before it is kept."""
    source = IDX_DATASETS[name]
    base = os.environ.get(BASE_URL_ENV) or source.base_url
    target = cache_dir() / name
    target.mkdir(parents=True, exist_ok=True)
    paths = {}
    for role in (r for s in splits for r in SPLITS[s]):
        fname = IDX_FILES[role] + ".gz"
        final = target / fname
        if final.is_file() and md5sum(final) in source.md5[role]:
            paths[role] = final
            continue
        paths[role] = _download_verified(base.rstrip("/") + "/" + fname, final, source.md5[role], progress)
    return paths


def download_deadline_s() -> float:
    """Seconds one file's download may take in all (``NNCOMPARE_DOWNLOAD_TIMEOUT``, default 600)."""
    text = os.environ.get(DOWNLOAD_TIMEOUT_ENV) or "600"
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (math.isfinite(value) and 0 < value <= 86400):
        raise UsageError(f"{DOWNLOAD_TIMEOUT_ENV} must be a number of seconds between 0 and 86400, got {text!r}")
    return value


class _DeadlinePassed(Exception):
    """Raised by SIGALRM inside the transfer: a server that trickles bytes cannot hold a fetch forever."""


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Interrupt the block after ``seconds`` (a per-read timeout cannot: one byte a minute resets it)."""
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield  # no SIGALRM here; the per-read timeout still applies
        return

    def expire(signum, frame):
        raise _DeadlinePassed()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _download_verified(url: str, final: Path, md5s: tuple[str, ...], progress: bool) -> Path:
    """``pooch.retrieve``: a temporary file beside ``final``, checked, then moved into place; removed on any exit."""
    import pooch

    pooch.get_logger().setLevel("WARNING")
    deadline = download_deadline_s()
    advice = f"set {BASE_URL_ENV} to a reachable mirror, or point {DATA_DIR_ENV} at a folder holding the IDX files"
    try:
        with _deadline(deadline):
            pooch.retrieve(
                url,
                known_hash=f"md5:{md5s[0]}",
                fname=final.name,
                path=final.parent,
                downloader=pooch.HTTPDownloader(progressbar=progress, timeout=min(60.0, deadline)),
            )
    except _DeadlinePassed:
        raise DataError(f"download of {url} took more than {deadline:g} s ({DOWNLOAD_TIMEOUT_ENV}); {advice}") from None
    except ValueError as exc:
        if "hash" not in str(exc).lower():
            raise
        raise DataError(f"checksum mismatch for {url}: expected md5 {md5s[0]}; the file was discarded") from None
    except Exception as exc:  # requests' and urllib3's many transport errors
        raise DataError(f"download of {url} failed ({type(exc).__name__}); {advice}") from None
    return final


def checksum_status(name: str, role: str, path: Path) -> str:
    """'published', 'known' (e.g. Debian's recompression) or 'unknown' for a local file."""
    if path.suffix != ".gz":
        return "raw (not checked)"
    got = md5sum(path)
    md5s = IDX_DATASETS[name].md5[role]
    if got == md5s[0]:
        return "published md5"
    if got in md5s:
        return "known md5 (repackaged)"
    return f"unknown md5 {got}"


def load_dataset(name: str, *, data_dir=None, download: bool = True, progress: bool = False) -> Dataset:
    """Load a dataset as float32 [0, 1] features and int64 labels."""
    if name == "digits":
        return _load_digits()
    paths = locate(name, data_dir=data_dir, download=download, progress=progress)
    classes = SHAPES[name][2]
    pixels, y_train = read_pixels(paths["train_images"]), read_labels(paths["train_labels"], classes)
    x_train = scale_pixels(pixels)
    x_test, y_test = scale_pixels(read_pixels(paths["test_images"])), read_labels(paths["test_labels"], classes)
    for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        if len(x) != len(y):
            raise DataError(
                f"{name} {split} split: {len(x)} images but {len(y)} labels; the files do not belong together"
            )
    if x_train.shape[1] != x_test.shape[1]:
        raise DataError(f"{name}: train and test images differ in size; the files do not belong together")
    return Dataset(
        name, x_train, y_train, x_test, y_test, source=str(paths["train_images"].parent), x_train_pixels=pixels
    )


def _load_digits() -> Dataset:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = (bunch.data / 16.0).astype(np.float32)
    y = bunch.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=360, random_state=0, stratify=y)
    return Dataset("digits", x_train, y_train, x_test, y_test, source="sklearn.datasets.load_digits")
