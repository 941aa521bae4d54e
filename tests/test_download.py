"""Tests for harness.data.download: a download checked against its SHA-256,
from the first mirror that has it, leaving nothing behind when it fails."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from fake_data import closed_port_url, sha256

from harness.data.dataset import DataError
from harness.data.download import download_verified

pytestmark = pytest.mark.usefixtures("isolated_env")


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
