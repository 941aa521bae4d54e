"""Tests for harness.data: IDX validation, checksums, downloads, and the dataset loaders.

No test reaches beyond 127.0.0.1 or touches the real user cache: an autouse
fixture points the cache, HOME and every mirror list at places under tmp_path.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import http.server
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from harness.data import catalogue as data
from harness.data import sample
from harness.data.catalogue import DataError, Dataset, download_verified, load_dataset, read_idx

STEMS = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


# --------------------------------------------------------------------------- builders


def idx_header(type_code: int, dims: tuple[int, ...]) -> bytes:
    """The IDX magic number and dimension sizes."""
    return bytes([0, 0, type_code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    """A complete IDX file holding ``array`` with the element type ``type_code``."""
    big_endian = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    return idx_header(type_code, array.shape) + array.astype(big_endian[type_code]).tobytes()


def write(path: Path, content: bytes, *, compress: bool = False) -> Path:
    """Write bytes (gzip-compressed if asked, with a fixed mtime) and return the path."""
    path.write_bytes(gzip.compress(content, mtime=0) if compress else content)
    return path


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def images(count: int) -> np.ndarray:
    """Distinct uint8 28x28 images."""
    return (np.arange(count * 784).reshape(count, 28, 28) % 251).astype(np.uint8)


def labels(count: int) -> np.ndarray:
    return (np.arange(count) % 10).astype(np.uint8)


def fake_mnist(
    monkeypatch: pytest.MonkeyPatch,
    *,
    n_file_train: int = 6,
    n_test: int = 4,
    n_train: int = 4,
    overrides: dict[str, bytes] | None = None,
) -> dict[str, bytes]:
    """Tiny stand-ins for the four MNIST files, registered as canonical in the hash table.

    Returns the gzip bytes by file name (``<stem>.gz``); ``overrides`` replaces
    the raw IDX content of a file by stem, e.g. to plant a bad label.
    """
    raw = {
        STEMS[0]: idx_bytes(images(n_file_train)),
        STEMS[1]: idx_bytes(labels(n_file_train)),
        STEMS[2]: idx_bytes(images(n_test)[::-1].copy()),
        STEMS[3]: idx_bytes(labels(n_test)[::-1].copy()),
    }
    raw.update(overrides or {})
    archives = {stem: gzip.compress(content, mtime=0) for stem, content in raw.items()}
    specs = {
        stem: data.FileSpec(stem, (sha256(archives[stem]),), sha256(raw[stem]), len(raw[stem]))
        for stem in STEMS
    }
    patched = dataclasses.replace(
        data._PUBLISHED["mnist"],
        train_images=specs[STEMS[0]],
        train_labels=specs[STEMS[1]],
        test_images=specs[STEMS[2]],
        test_labels=specs[STEMS[3]],
        n_train=n_train,
    )
    monkeypatch.setitem(data._PUBLISHED, "mnist", patched)
    return {f"{stem}.gz": archive for stem, archive in archives.items()}


def place(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (folder / name).write_bytes(content)
    return folder


def closed_port_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep every test away from the real cache, the real data folders and the internet."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("NNDL_BENCH_DATA", raising=False)
    nowhere = closed_port_url()
    monkeypatch.setenv("NNDL_BENCH_MNIST_MIRRORS", nowhere)
    monkeypatch.setenv("NNDL_BENCH_FASHION_MNIST_MIRRORS", nowhere)
    for proxy in (
        "http_proxy",
        "https_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ):
        monkeypatch.delenv(proxy, raising=False)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[SimpleNamespace]:
    """An HTTP server on 127.0.0.1 serving tmp_path/srv and recording each requested path."""
    root = tmp_path / "srv"
    root.mkdir()
    seen: list[str] = []
    release = threading.Event()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(root), **kwargs)  # type: ignore[arg-type]

        def do_GET(self) -> None:  # noqa: N802 - name fixed by http.server
            seen.append(self.path)
            if self.path.startswith("/stall/"):
                release.wait(timeout=10)  # a server that accepts but never answers in time
            super().do_GET()

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            """Keep test output clean."""

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield SimpleNamespace(
            root=root, url=f"http://127.0.0.1:{httpd.server_address[1]}/", seen=seen
        )
    finally:
        release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


# --------------------------------------------------------------------------- IDX: good files


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
def test_ubyte_round_trip(tmp_path: Path, compress: bool) -> None:
    array = images(3)
    path = write(tmp_path / ("x.gz" if compress else "x"), idx_bytes(array), compress=compress)
    loaded = read_idx(path)
    assert loaded.dtype == np.uint8
    assert loaded.shape == (3, 28, 28)
    np.testing.assert_array_equal(loaded, array)


@pytest.mark.parametrize(
    ("type_code", "dtype"),
    [(0x09, np.int8), (0x0B, np.int16), (0x0C, np.int32), (0x0D, np.float32), (0x0E, np.float64)],
)
@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
def test_other_types_round_trip_big_endian(
    tmp_path: Path, type_code: int, dtype: type, compress: bool
) -> None:
    array = np.array([[-3, 0, 7], [100, -100, 1]], dtype=dtype)
    path = write(tmp_path / "values.idx", idx_bytes(array, type_code), compress=compress)
    loaded = read_idx(path)
    assert loaded.dtype == np.dtype(dtype)
    assert loaded.dtype.isnative
    np.testing.assert_array_equal(loaded, array)


def test_gzip_detected_by_magic_bytes_without_gz_name(tmp_path: Path) -> None:
    path = write(tmp_path / "labels-idx1-ubyte", idx_bytes(labels(5)), compress=True)
    np.testing.assert_array_equal(read_idx(path), labels(5))


def test_four_dimensions_accepted(tmp_path: Path) -> None:
    array = np.arange(24, dtype=np.uint8).reshape(1, 2, 3, 4)
    np.testing.assert_array_equal(read_idx(write(tmp_path / "four", idx_bytes(array))), array)


def test_returned_array_is_writable(tmp_path: Path) -> None:
    loaded = read_idx(write(tmp_path / "l", idx_bytes(labels(3))))
    loaded[0] = 9
    assert loaded[0] == 9


# --------------------------------------------------------------------------- IDX: faults


def test_empty_file(tmp_path: Path) -> None:
    path = write(tmp_path / "empty-idx1-ubyte", b"")
    with pytest.raises(DataError, match=r"empty-idx1-ubyte: the file is empty \(0 bytes\)"):
        read_idx(path)


def test_empty_gzip_content(tmp_path: Path) -> None:
    path = write(tmp_path / "nothing.gz", b"", compress=True)
    with pytest.raises(DataError, match=r"nothing\.gz: contains no data after decompression"):
        read_idx(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"absent-idx1-ubyte: no such file"):
        read_idx(tmp_path / "absent-idx1-ubyte")


def test_named_gz_but_not_gzip(tmp_path: Path) -> None:
    path = write(tmp_path / "labels.gz", idx_bytes(labels(4)))
    with pytest.raises(
        DataError, match=r"labels\.gz: named \.gz but is not gzip-compressed \(starts with 0x0000,"
    ):
        read_idx(path)


def test_corrupt_gzip(tmp_path: Path) -> None:
    good = gzip.compress(idx_bytes(images(2)), mtime=0)
    path = write(tmp_path / "broken.gz", good[:10] + bytes(b ^ 0x5A for b in good[10:]))
    with pytest.raises(DataError, match=r"broken\.gz: corrupt or truncated gzip data"):
        read_idx(path)


def test_truncated_gzip_stream(tmp_path: Path) -> None:
    good = gzip.compress(idx_bytes(images(2)), mtime=0)
    path = write(tmp_path / "cut.gz", good[: len(good) // 2])
    with pytest.raises(DataError, match=r"cut\.gz: corrupt or truncated gzip data"):
        read_idx(path)


def test_wrong_magic(tmp_path: Path) -> None:
    path = write(tmp_path / "magic", b"\x12\x34\x08\x01" + struct.pack(">I", 2) + b"\x01\x02")
    with pytest.raises(
        DataError, match=r"magic: bad IDX magic number 0x12340801: its first two bytes must be zero"
    ):
        read_idx(path)


def test_wrong_type_code(tmp_path: Path) -> None:
    path = write(tmp_path / "typed", idx_header(0x0A, (2,)) + b"\x01\x02")
    with pytest.raises(
        DataError, match=r"typed: unknown IDX data type code 0x0A; expected one of 0x08"
    ):
        read_idx(path)


@pytest.mark.parametrize("ndim", [0, 5])
def test_bad_dimension_count(tmp_path: Path, ndim: int) -> None:
    path = write(tmp_path / "dims", bytes([0, 0, 0x08, ndim]) + b"\x00" * 4 * ndim)
    with pytest.raises(
        DataError, match=rf"dims: the IDX header declares {ndim} dimensions; expected 1 to 4"
    ):
        read_idx(path)


def test_truncated_magic(tmp_path: Path) -> None:
    path = write(tmp_path / "tiny", b"\x00\x00")
    with pytest.raises(
        DataError, match=r"tiny: truncated: 2 bytes, shorter than the 4-byte IDX magic number"
    ):
        read_idx(path)


def test_truncated_dimensions(tmp_path: Path) -> None:
    path = write(tmp_path / "hdr", bytes([0, 0, 0x08, 3]) + struct.pack(">I", 10))
    with pytest.raises(
        DataError, match=r"hdr: truncated header: 3 dimension sizes need 12 bytes .* found 4"
    ):
        read_idx(path)


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
def test_payload_shorter_than_header_promises(tmp_path: Path, compress: bool) -> None:
    content = idx_header(0x08, (3, 28, 28)) + bytes(2 * 784 + 5)
    path = write(tmp_path / "short-idx3-ubyte", content, compress=compress)
    with pytest.raises(DataError) as caught:
        read_idx(path)
    message = str(caught.value)
    assert "short-idx3-ubyte: truncated" in message
    assert (
        "promises 2,352 data bytes (shape 3x28x28 of unsigned byte) but only 1,573 follow"
        in message
    )


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
def test_trailing_bytes_after_payload(tmp_path: Path, compress: bool) -> None:
    content = idx_bytes(labels(5)) + b"\x00"
    path = write(tmp_path / "long-idx1-ubyte", content, compress=compress)
    with pytest.raises(
        DataError, match=r"long-idx1-ubyte: trailing bytes after the 5 data bytes the IDX header"
    ):
        read_idx(path)


def test_wider_type_payload_size_checked(tmp_path: Path) -> None:
    content = idx_header(0x0E, (2,)) + bytes(12)
    with pytest.raises(
        DataError, match=r"promises 16 data bytes \(shape 2 of double\) but only 12 follow"
    ):
        read_idx(write(tmp_path / "doubles", content))


def test_lying_header_does_not_allocate_its_claim(tmp_path: Path) -> None:
    """A header promising ~4 GB over a few bytes of gzip data fails fast as truncated."""
    content = idx_header(0x08, (65535, 65535)) + bytes(10)
    with pytest.raises(
        DataError, match=r"truncated: the IDX header promises 4,294,836,225 data bytes"
    ):
        read_idx(write(tmp_path / "liar.gz", content, compress=True))


# --------------------------------------------------------------------------- dataset-level checks


def test_label_out_of_range(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = labels(6)
    bad[3] = 12
    files = fake_mnist(monkeypatch, overrides={STEMS[1]: idx_bytes(bad)})
    folder = place(tmp_path / "d", files)
    with pytest.raises(DataError) as caught:
        load_dataset("mnist", data_dir=folder, download=False)
    message = str(caught.value)
    assert "train-labels-idx1-ubyte.gz: label 12 at index 3 is outside 0..9" in message


def test_image_label_count_mismatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = fake_mnist(monkeypatch, overrides={STEMS[3]: idx_bytes(labels(3))})
    folder = place(tmp_path / "d", files)
    with pytest.raises(DataError) as caught:
        load_dataset("mnist", data_dir=folder, download=False)
    message = str(caught.value)
    assert "t10k-images-idx3-ubyte.gz holds 4 images but" in message
    assert "t10k-labels-idx1-ubyte.gz holds 3 labels" in message


def test_images_must_be_three_dimensional(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = fake_mnist(monkeypatch, overrides={STEMS[2]: idx_bytes(images(4).reshape(4, 784))})
    folder = place(tmp_path / "d", files)
    with pytest.raises(
        DataError, match=r"t10k-images-idx3-ubyte\.gz: images must be 3-D .* shape \(4, 784\)"
    ):
        load_dataset("mnist", data_dir=folder, download=False)


def test_labels_must_be_one_dimensional(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = fake_mnist(monkeypatch, overrides={STEMS[1]: idx_bytes(labels(6).reshape(3, 2))})
    folder = place(tmp_path / "d", files)
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte\.gz: labels must be 1-D"):
        load_dataset("mnist", data_dir=folder, download=False)


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


# --------------------------------------------------------------------------- bundled sample


def test_mnist_sample_loads_real_digits() -> None:
    dataset = load_dataset("mnist-sample")
    assert dataset.name == "mnist-sample"
    assert dataset.train_images.shape == (8_000, 784)
    assert dataset.test_images.shape == (2_000, 784)
    assert dataset.train_labels.shape == (8_000,) and dataset.test_labels.shape == (2_000,)
    for array in (dataset.train_images, dataset.test_images):
        assert array.dtype == np.float64 and array.flags.c_contiguous
        assert 0.0 <= array.min() and array.max() <= 1.0
    assert set(np.unique(dataset.train_labels)) == set(range(10))
    assert set(np.unique(dataset.test_labels)) == set(range(10))
    # The canonical t10k set starts with a 7, a 2 and a 1, and ends with a 6.
    np.testing.assert_array_equal(dataset.train_labels[:3], [7, 2, 1])
    assert dataset.test_labels[-1] == 6
    assert 0.1 < dataset.train_images.mean() < 0.15  # real digits: mostly dark background


def test_mnist_sample_n_train() -> None:
    assert load_dataset("mnist-sample", n_train=100).n_train == 100
    with pytest.raises(
        DataError, match=r"n_train=8,001 exceeds the 8,000 training samples of mnist-sample"
    ):
        load_dataset("mnist-sample", n_train=8_001)


def test_damaged_sample_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path / "t10k-labels-idx1-ubyte.gz", b"not the sample")
    with pytest.raises(
        DataError, match=r"t10k-labels-idx1-ubyte\.gz: SHA-256 .*reinstall nndl-bench"
    ):
        sample.verify_sample(path, data._MNIST_T10K_LABELS)


# --------------------------------------------------------------------------- synthetic


def test_synthetic_is_deterministic() -> None:
    first = load_dataset("synthetic", n_train=300, input_size=12, seed=7)
    second = load_dataset("synthetic", n_train=300, input_size=12, seed=7)
    other = load_dataset("synthetic", n_train=300, input_size=12, seed=8)
    for field in ("train_images", "train_labels", "test_images", "test_labels"):
        np.testing.assert_array_equal(getattr(first, field), getattr(second, field))
    assert not np.array_equal(first.train_images, other.train_images)


def test_synthetic_honours_sizes() -> None:
    dataset = load_dataset("synthetic", n_train=250, input_size=30)
    assert dataset.name == "synthetic"
    assert (dataset.n_train, dataset.input_size) == (250, 30)
    assert dataset.train_images.shape == (250, 30) and dataset.test_images.shape == (10_000, 30)
    assert dataset.train_images.dtype == np.float64 and dataset.train_images.flags.c_contiguous
    assert dataset.train_labels.dtype == np.int64
    assert 0.0 <= dataset.train_images.min() and dataset.train_images.max() < 1.0
    assert dataset.test_labels.min() >= 0 and dataset.test_labels.max() <= 9
    assert len(np.unique(dataset.test_labels)) >= 5  # a usable spread of classes


def test_synthetic_default_size() -> None:
    dataset = load_dataset("synthetic", input_size=2)
    assert dataset.n_train == 50_000


def test_synthetic_prefix_and_fixed_test_set() -> None:
    small = load_dataset("synthetic", n_train=50, input_size=8, seed=3)
    large = load_dataset("synthetic", n_train=500, input_size=8, seed=3)
    np.testing.assert_array_equal(small.train_images, large.train_images[:50])
    np.testing.assert_array_equal(small.train_labels, large.train_labels[:50])
    np.testing.assert_array_equal(small.test_images, large.test_images)


def test_synthetic_labels_are_learnable() -> None:
    """Each class has its own stroke pattern, so least squares on one-hot targets
    recovers most labels."""
    dataset = load_dataset("synthetic", n_train=3_000, input_size=100, seed=1)
    design = np.hstack([dataset.train_images, np.ones((dataset.n_train, 1))])
    weights, *_ = np.linalg.lstsq(design, np.eye(10)[dataset.train_labels], rcond=None)
    test_design = np.hstack([dataset.test_images, np.ones((len(dataset.test_images), 1))])
    accuracy = np.mean(np.argmax(test_design @ weights, axis=1) == dataset.test_labels)
    assert accuracy > 0.5
    ink = np.mean(dataset.train_images > 0)
    assert 0.1 < ink < 0.35  # about as much ink as an MNIST digit

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


def test_dataset_rejects_inconsistent_arrays() -> None:
    with pytest.raises(DataError, match=r"train images must be 2-D .* one label each"):
        Dataset(
            "x", np.zeros((3, 4)), np.zeros(2, np.int64), np.zeros((1, 4)), np.zeros(1, np.int64)
        )


# --------------------------------------------------------------------------- downloads


def test_download_verified_good(tmp_path: Path, server: SimpleNamespace) -> None:
    content = b"payload" * 1000
    (server.root / "file.bin").write_bytes(content)
    dest = tmp_path / "out" / "file.bin"
    assert download_verified([server.url + "file.bin"], dest, sha256(content), timeout=5) == dest
    assert dest.read_bytes() == content
    assert [p.name for p in dest.parent.iterdir()] == ["file.bin"]


def test_download_verified_bad_checksum_leaves_nothing(
    tmp_path: Path, server: SimpleNamespace
) -> None:
    (server.root / "file.bin").write_bytes(b"tampered")
    out = tmp_path / "out"
    with pytest.raises(DataError) as caught:
        download_verified([server.url + "file.bin"], out / "file.bin", "0" * 64, timeout=5)
    message = str(caught.value)
    assert "file.bin: download failed from every mirror" in message
    assert (
        f"SHA-256 {sha256(b'tampered')} of the downloaded file does not match "
        f"the expected {'0' * 64}" in message
    )
    assert list(out.iterdir()) == []


def test_download_verified_unreachable(tmp_path: Path) -> None:
    url = closed_port_url() + "file.bin"
    out = tmp_path / "out"
    with pytest.raises(
        DataError, match=rf"download failed from every mirror: {url}: cannot connect \("
    ):
        download_verified([url], out / "file.bin", "0" * 64, timeout=2)
    assert list(out.iterdir()) == []


def test_download_verified_falls_back_to_next_mirror(
    tmp_path: Path, server: SimpleNamespace
) -> None:
    content = b"right bytes"
    (server.root / "good").mkdir()
    (server.root / "good" / "f").write_bytes(content)
    urls = [closed_port_url() + "f", server.url + "missing/f", server.url + "good/f"]
    dest = download_verified(urls, tmp_path / "f", sha256(content), timeout=5)
    assert dest.read_bytes() == content
    assert server.seen == ["/missing/f", "/good/f"]


def test_download_verified_rejects_other_schemes(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"unsupported URL scheme; use http:// or https://"):
        download_verified(["file:///etc/hostname"], tmp_path / "f", "0" * 64)


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
