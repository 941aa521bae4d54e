"""Tests for harness.data.idx: reading IDX files, gzip or not, and their faults,
the checks on a pair of image and label files, and any bytes at all."""

from __future__ import annotations

import gzip
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from fake_data import STEMS, fake_mnist, idx_bytes, idx_header, images, labels, place, write
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from harness.data.catalogue import load_dataset
from harness.data.dataset import CHUNK, DataError
from harness.data.idx import read_idx, read_pair

pytestmark = pytest.mark.usefixtures("isolated_env")


# --------------------------------------------------------------------------- good files


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


# --------------------------------------------------------------------------- faults


GOOD_GZIP = gzip.compress(idx_bytes(images(2)), mtime=0)
SHORT = idx_header(0x08, (3, 28, 28)) + bytes(2 * 784 + 5)

# Each broken file: its name, its content (None: no file at all), whether it is
# written gzip-compressed, and what the error says of it.
FAULTS = [
    pytest.param("empty-idx1-ubyte", b"", False,
                 r"empty-idx1-ubyte: the file is empty \(0 bytes\)", id="empty file"),
    pytest.param("nothing.gz", b"", True,
                 r"nothing\.gz: contains no data after decompression", id="empty gzip content"),
    pytest.param("absent-idx1-ubyte", None, False, r"absent-idx1-ubyte: no such file",
                 id="missing file"),
    pytest.param("labels.gz", idx_bytes(labels(4)), False,
                 r"labels\.gz: named \.gz but is not gzip-compressed \(starts with 0x0000,",
                 id="named gz but not gzip"),
    pytest.param("broken.gz", GOOD_GZIP[:10] + bytes(b ^ 0x5A for b in GOOD_GZIP[10:]), False,
                 r"broken\.gz: corrupt or truncated gzip data", id="corrupt gzip"),
    pytest.param("cut.gz", GOOD_GZIP[: len(GOOD_GZIP) // 2], False,
                 r"cut\.gz: corrupt or truncated gzip data", id="truncated gzip stream"),
    pytest.param("magic", b"\x12\x34\x08\x01" + struct.pack(">I", 2) + b"\x01\x02", False,
                 r"magic: bad IDX magic number 0x12340801: its first two bytes must be zero",
                 id="wrong magic"),
    pytest.param("typed", idx_header(0x0A, (2,)) + b"\x01\x02", False,
                 r"typed: unknown IDX data type code 0x0A; expected one of 0x08",
                 id="wrong type code"),
    *[pytest.param("dims", bytes([0, 0, 0x08, ndim]) + b"\x00" * 4 * ndim, False,
                   rf"dims: the IDX header declares {ndim} dimensions; expected 1 to 4",
                   id=f"{ndim} dimensions") for ndim in (0, 5)],
    pytest.param("tiny", b"\x00\x00", False,
                 r"tiny: truncated: 2 bytes, shorter than the 4-byte IDX magic number",
                 id="truncated magic"),
    pytest.param("hdr", bytes([0, 0, 0x08, 3]) + struct.pack(">I", 10), False,
                 r"hdr: truncated header: 3 dimension sizes need 12 bytes .* found 4",
                 id="truncated dimensions"),
    *[pytest.param("short-idx3-ubyte", SHORT, compress,
                   r"short-idx3-ubyte: truncated.*promises 2,352 data bytes "
                   r"\(shape 3x28x28 of unsigned byte\) but only 1,573 follow",
                   id=f"payload shorter than the header promises, {kind}")
      for compress, kind in [(False, "raw"), (True, "gzip")]],
    *[pytest.param("long-idx1-ubyte", idx_bytes(labels(5)) + b"\x00", compress,
                   r"long-idx1-ubyte: trailing bytes after the 5 data bytes the IDX header",
                   id=f"trailing bytes after the payload, {kind}")
      for compress, kind in [(False, "raw"), (True, "gzip")]],
    pytest.param("doubles", idx_header(0x0E, (2,)) + bytes(12), False,
                 r"promises 16 data bytes \(shape 2 of double\) but only 12 follow",
                 id="wider type payload size checked"),
    # ~4 GB promised over a few bytes of gzip data: fails fast, allocating nothing of it.
    pytest.param("liar.gz", idx_header(0x08, (65535, 65535)) + bytes(10), True,
                 r"truncated: the IDX header promises 4,294,836,225 data bytes",
                 id="lying header does not allocate its claim"),
]


@pytest.mark.parametrize(("name", "content", "compress", "error"), FAULTS)
def test_a_broken_file_is_a_data_error_that_names_it(
    tmp_path: Path, name: str, content: bytes | None, compress: bool, error: str
) -> None:
    path = tmp_path / name
    if content is not None:
        write(path, content, compress=compress)
    with pytest.raises(DataError, match=error):
        read_idx(path)


# --------------------------------------------------------------------------- image and label pairs


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


# --------------------------------------------------------------------------- any bytes

IDX_TYPES = [0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E]


@st.composite
def almost_idx(draw) -> bytes:
    """Bytes that are often almost an IDX file (so the fuzzing reaches the payload),
    sometimes any bytes at all."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=64))
    ndim = draw(st.integers(0, 5))
    header = bytes([0, 0, draw(st.sampled_from([*IDX_TYPES, 0x00, 0xFF])), ndim])
    dims = b"".join(draw(st.integers(0, 2**32 - 1) | st.integers(0, 6)).to_bytes(4, "big")
                    for _ in range(ndim))
    return header + dims[: draw(st.integers(0, len(dims)))] + draw(st.binary(max_size=200))


def _read_measured(path: Path):
    """read_idx's result (or its DataError) and the peak memory it allocated."""
    tracemalloc.start()
    try:
        try:
            return read_idx(path), tracemalloc.get_traced_memory()[1]
        except DataError as e:
            return e, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=almost_idx(), compressed=st.booleans())
# A zero dimension beside ones whose product no array can have: found by this test.
@example(content=bytes.fromhex("00000804" "00000000" "000001dd" "00560000" "cc7d8f59"),
         compressed=False)
def test_any_bytes_give_an_array_or_a_data_error_within_the_file_size(tmp_path, content,
                                                                      compressed):
    path = tmp_path / ("f.gz" if compressed else "f")
    path.write_bytes(gzip.compress(content) if compressed else content)
    result, peak = _read_measured(path)
    # What the bytes allow: the payload, a native-endian copy of it, and one read
    # buffer; never what a lying header promises.
    assert peak <= 3 * len(content) + 2 * CHUNK + (1 << 16)
    if not isinstance(result, DataError):
        assert result.nbytes <= len(content) and result.dtype.isnative


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(image_file=almost_idx(), label_file=almost_idx())
def test_any_pair_of_files_gives_a_dataset_or_a_data_error(tmp_path, image_file, label_file):
    (tmp_path / "images").write_bytes(image_file)
    (tmp_path / "labels").write_bytes(label_file)
    try:
        X, y = read_pair(tmp_path / "images", tmp_path / "labels")
    except DataError:
        return
    assert X.ndim == 3 and len(X) == len(y) and ((y >= 0) & (y <= 9)).all()
