"""Tests for harness.data.catalogue: where local files are looked for, their
checksums, downloads into the cache, the fallbacks of ``auto``, and the
requests ``load_dataset`` refuses.

No test reaches beyond 127.0.0.1 or touches the real user cache: the
``isolated_env`` fixture points the cache, HOME and every mirror list at
places under tmp_path.
"""

from __future__ import annotations

import gzip
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from fake_data import (
    STEMS,
    closed_port_url,
    fake_mnist,
    idx_bytes,
    images,
    labels,
    place,
    sha256,
    write,
)

from harness.data import catalogue as data
from harness.data.catalogue import load_dataset
from harness.data.dataset import DataError

pytestmark = pytest.mark.usefixtures("isolated_env")

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


# --------------------------------------------------------------------------- local files, checksums


def test_local_mnist_loads_with_book_split(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = place(tmp_path / "d", fake_mnist(monkeypatch, n_file_train=6, n_train=4))
    dataset = load_dataset("mnist", data_dir=folder, download=False)
    assert dataset.name == "mnist"
    assert dataset.n_train == 4
    assert dataset.input_size == 784
    assert dataset.test_images.shape == (4, 784)
    assert dataset.train_images.dtype == np.float64
    assert dataset.train_images.flags.c_contiguous and dataset.test_images.flags.c_contiguous
    assert dataset.train_labels.dtype == np.int64 and dataset.test_labels.dtype == np.int64
    np.testing.assert_allclose(dataset.train_images, images(6)[:4].reshape(4, 784) / 255.0)
    np.testing.assert_array_equal(dataset.train_labels, labels(6)[:4])
    np.testing.assert_array_equal(dataset.test_labels, labels(4)[::-1])


def test_local_checksum_mismatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = fake_mnist(monkeypatch)
    expected = data._PUBLISHED["mnist"].test_labels.gz_sha256[0]
    tampered = gzip.compress(idx_bytes(np.array([1, 2, 3, 4], dtype=np.uint8)), mtime=0)
    folder = place(tmp_path / "d", {**files, "t10k-labels-idx1-ubyte.gz": tampered})
    with pytest.raises(DataError) as caught:
        load_dataset("mnist", data_dir=folder, download=True)
    message = str(caught.value)
    assert str(folder / "t10k-labels-idx1-ubyte.gz") in message
    assert f"SHA-256 {sha256(tampered)} does not match" in message
    assert expected in message
    assert "delete it to re-download" in message
    assert (folder / "t10k-labels-idx1-ubyte.gz").read_bytes() == tampered  # never replaced


def test_checksum_mismatch_is_not_hidden_by_auto(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = fake_mnist(monkeypatch)
    folder = place(tmp_path / "d", {**files, "train-images-idx3-ubyte.gz": b"\x1f\x8b junk"})
    with pytest.raises(DataError, match="delete it to re-download"):
        load_dataset("auto", data_dir=folder, download=False)


def test_real_mnist_table_rejects_a_wrong_local_file(tmp_path: Path) -> None:
    """With the real hashes, a wrong t10k-labels is named even though the other files are absent."""
    path = data._MNIST_T10K_LABELS
    wrong = write(tmp_path / "t10k-labels-idx1-ubyte.gz", idx_bytes(labels(10)), compress=True)
    with pytest.raises(
        DataError, match=r"t10k-labels-idx1-ubyte\.gz: SHA-256 .* \(f7ae60f92e00ec6d"
    ):
        data._verify_local(wrong, path, "MNIST")


def test_uncompressed_and_recompressed_copies_accepted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = fake_mnist(monkeypatch)
    folder = tmp_path / "d"
    folder.mkdir()
    for name, archive in files.items():
        content = gzip.decompress(archive)
        if name.startswith("train"):
            write(folder / name.removesuffix(".gz"), content)  # uncompressed name
        else:
            (folder / name).write_bytes(gzip.compress(content, compresslevel=1, mtime=12345))
    assert sha256((folder / "t10k-labels-idx1-ubyte.gz").read_bytes()) != sha256(
        files["t10k-labels-idx1-ubyte.gz"]
    )
    dataset = load_dataset("mnist", data_dir=folder, download=False)
    assert dataset.n_train == 4


def test_uncompressed_mismatch_names_raw_hash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = fake_mnist(monkeypatch)
    folder = place(
        tmp_path / "d", {k: v for k, v in files.items() if not k.startswith("t10k-images")}
    )
    write(
        folder / "t10k-images-idx3-ubyte", idx_bytes(images(4))
    )  # not the reversed canonical order
    raw_hash = data._PUBLISHED["mnist"].test_images.raw_sha256
    with pytest.raises(DataError, match=rf"canonical MNIST t10k-images-idx3-ubyte \({raw_hash}\)"):
        load_dataset("mnist", data_dir=folder, download=False)


def test_env_folder_is_searched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = place(tmp_path / "env-data", fake_mnist(monkeypatch))
    monkeypatch.setenv("NNDL_BENCH_DATA", str(folder))
    assert load_dataset("mnist", download=False).name == "mnist"


def test_cache_folder_is_searched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    place(tmp_path / "xdg-cache" / "nndl-bench" / "mnist", fake_mnist(monkeypatch))
    assert load_dataset("mnist", download=False).name == "mnist"


def test_home_cache_used_without_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_CACHE_HOME")
    place(tmp_path / "home" / ".cache" / "nndl-bench" / "mnist", fake_mnist(monkeypatch))
    assert load_dataset("mnist", download=False).name == "mnist"


def test_missing_mnist_without_download_is_clear(tmp_path: Path) -> None:
    with pytest.raises(DataError) as caught:
        load_dataset("mnist", data_dir=tmp_path / "nothing", download=False)
    message = str(caught.value)
    assert "MNIST files not found (train-images-idx3-ubyte.gz" in message
    assert str(tmp_path / "nothing") in message
    assert "downloading is off" in message


# --------------------------------------------------------------------------- request validation


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"name": "cifar"}, r"unknown dataset 'cifar'; choose one of auto, mnist, fashion-mnist"),
        ({"name": "synthetic", "n_train": 0}, r"n_train=0 is invalid"),
        (
            {"name": "mnist-sample", "input_size": 100},
            r"input_size=100 needs the synthetic dataset",
        ),
        ({"name": "synthetic", "input_size": 0}, r"input_size=0 is invalid"),
    ],
)
def test_bad_requests(kwargs: dict[str, object], pattern: str) -> None:
    with pytest.raises(DataError, match=pattern):
        load_dataset(**kwargs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- downloads


def test_mnist_download_is_cached_and_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: SimpleNamespace
) -> None:
    place(server.root / "mirror", fake_mnist(monkeypatch))
    monkeypatch.setenv("NNDL_BENCH_MNIST_MIRRORS", f"{closed_port_url()} {server.url}mirror")
    notices: list[str] = []
    first = load_dataset("mnist", download_timeout=5, notice=notices.append)
    cache = tmp_path / "xdg-cache" / "nndl-bench" / "mnist"
    assert first.name == "mnist" and first.n_train == 4
    assert sorted(p.name for p in cache.iterdir()) == sorted(f"{stem}.gz" for stem in STEMS)
    assert len(server.seen) == 4
    assert any("downloading MNIST train-images-idx3-ubyte.gz into" in line for line in notices)
    second = load_dataset("mnist", download_timeout=5)
    assert len(server.seen) == 4  # nothing fetched again
    np.testing.assert_array_equal(first.train_images, second.train_images)


def test_mnist_download_into_data_dir_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: SimpleNamespace
) -> None:
    files = fake_mnist(monkeypatch)
    place(server.root, files)
    monkeypatch.setenv("NNDL_BENCH_MNIST_MIRRORS", server.url)
    partial = place(
        tmp_path / "mine", {"t10k-labels-idx1-ubyte.gz": files["t10k-labels-idx1-ubyte.gz"]}
    )
    assert load_dataset("mnist", data_dir=partial, download_timeout=5).name == "mnist"
    assert len(server.seen) == 3  # the local file was used, only the missing ones fetched
    assert len(list(partial.iterdir())) == 4


def test_mnist_download_bad_checksum(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: SimpleNamespace
) -> None:
    files = fake_mnist(monkeypatch)
    place(server.root, {**files, "train-images-idx3-ubyte.gz": b"\x1f\x8bnot it"})
    monkeypatch.setenv("NNDL_BENCH_MNIST_MIRRORS", server.url)
    folder = tmp_path / "dl"
    with pytest.raises(
        DataError, match=r"train-images-idx3-ubyte\.gz: download failed .* does not match"
    ):
        load_dataset("mnist", data_dir=folder, download_timeout=5)
    assert list(folder.iterdir()) == []


def test_auto_falls_back_to_sample_with_notice(tmp_path: Path) -> None:
    notices: list[str] = []
    dataset = load_dataset(
        "auto", data_dir=tmp_path / "empty", download_timeout=2, notice=notices.append
    )
    assert dataset.name == "mnist-sample"
    assert dataset.n_train == 8_000
    fallback = [line for line in notices if "mnist-sample" in line]
    assert len(fallback) == 1
    assert "\n" not in fallback[0]
    assert fallback[0].startswith("MNIST not found in ")
    assert (
        "not downloadable; using the bundled mnist-sample (8,000 train / 2,000 test)" in fallback[0]
    )


def test_auto_without_download_falls_back_quietly_offline(tmp_path: Path) -> None:
    notices: list[str] = []
    dataset = load_dataset(
        "auto", data_dir=tmp_path / "empty", download=False, n_train=10, notice=notices.append
    )
    assert (dataset.name, dataset.n_train) == ("mnist-sample", 10)
    assert notices and "downloading is off; using the bundled mnist-sample" in notices[-1]
    assert not (tmp_path / "empty").exists()  # nothing created when not downloading


def test_auto_prefers_full_mnist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = place(tmp_path / "d", fake_mnist(monkeypatch))
    notices: list[str] = []
    dataset = load_dataset("auto", data_dir=folder, notice=notices.append)
    assert dataset.name == "mnist"
    assert notices == []


def test_auto_gives_up_on_a_silent_mirror_within_the_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: SimpleNamespace
) -> None:
    fake_mnist(monkeypatch)
    monkeypatch.setenv("NNDL_BENCH_MNIST_MIRRORS", f"{server.url}stall/ {server.url}stall/")
    notices: list[str] = []
    started = time.monotonic()
    dataset = load_dataset(
        "auto", data_dir=tmp_path / "d", download_timeout=0.5, notice=notices.append
    )
    assert time.monotonic() - started < 5
    assert dataset.name == "mnist-sample"
    assert "not downloadable; using the bundled mnist-sample" in notices[-1]
    assert list((tmp_path / "d").iterdir()) == []


def test_download_budget_covers_all_mirrors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: SimpleNamespace
) -> None:
    fake_mnist(monkeypatch)
    monkeypatch.setenv("NNDL_BENCH_MNIST_MIRRORS", f"{server.url}stall/ {server.url}stall/")
    with pytest.raises(DataError) as caught:
        load_dataset("mnist", data_dir=tmp_path / "d", download_timeout=0.3)
    message = str(caught.value)
    assert "stall/train-images-idx3-ubyte.gz: no data for 0.3 s" in message
    assert "not finished within --download-timeout 0.3 s" in message


def test_corrupt_local_file_reported_before_any_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only one (bad) file present and no network: auto must not hide the bad file."""
    fake_mnist(monkeypatch)
    folder = place(tmp_path / "d", {"t10k-labels-idx1-ubyte.gz": b"\x1f\x8b bad"})
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz: SHA-256 .*delete it"):
        load_dataset("auto", data_dir=folder, download_timeout=2)


def test_explicit_mnist_does_not_fall_back(tmp_path: Path) -> None:
    with pytest.raises(
        DataError, match=r"MNIST not found in .*download failed from every mirror.*cannot connect"
    ):
        load_dataset("mnist", data_dir=tmp_path / "d", download_timeout=2)


def test_a_run_downloads_within_its_download_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: SimpleNamespace
) -> None:
    from harness.config import RunConfig
    from harness.running.run import check_data

    fake_mnist(monkeypatch)
    monkeypatch.setenv("NNDL_BENCH_MNIST_MIRRORS", f"{server.url}stall/")
    config = RunConfig(backends=("numpy-gemm",), dataset="mnist", data_dir=tmp_path / "d",
                       download_timeout=0.4)
    with pytest.raises(DataError, match=r"no data for 0\.4 s"):
        check_data(config, lambda message: None)


# --------------------------------------------------------------------------- Fashion-MNIST


@pytest.mark.skipif(
    not FASHION_DIR.is_dir(), reason="Debian's dataset-fashion-mnist package is not installed"
)
def test_fashion_mnist_from_debian_package() -> None:
    dataset = load_dataset("fashion-mnist", download=False, n_train=1_000)
    assert dataset.name == "fashion-mnist"
    assert dataset.train_images.shape == (1_000, 784)
    assert dataset.test_images.shape == (10_000, 784)
    assert np.bincount(dataset.test_labels).tolist() == [1_000] * 10
