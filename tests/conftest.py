"""Fixtures shared by the test files: the fake backends as plug-ins, a small
random problem for the chapter-1 network, and, for the tests of harness.data,
a process kept away from the real cache and the internet, and a local server."""

from __future__ import annotations

import http.server
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
# Tests run against the checkout, installed or not.
sys.path.insert(0, str(ROOT))

from fake_backends import PLUGINS  # noqa: E402
from fake_data import closed_port_url  # noqa: E402

from backends.base import Params, init_params  # noqa: E402


@pytest.fixture
def plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    """The backends of tests/fake_backends.py, registered for this process and the
    worker processes it starts."""
    monkeypatch.setenv("NNDL_BENCH_PLUGINS", PLUGINS)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), str(ROOT / "tests")]))


@pytest.fixture(scope="module")
def small_problem(request: pytest.FixtureRequest) -> tuple[Params, np.ndarray, np.ndarray,
                                                          np.ndarray]:
    """Parameters, random inputs in [0, 1), labels and a sample order: the
    chapter-1 network [784, 30, 10] over 1,000 samples, unless the test module
    sets ``SMALL_PROBLEM`` (sizes, samples, seed of the data, seed of the
    parameters) to a problem of its own."""
    sizes, samples, data_seed, params_seed = getattr(
        request.module, "SMALL_PROBLEM", ((784, 30, 10), 1000, 0, 0))
    rng = np.random.default_rng(data_seed)
    X = rng.random((samples, sizes[0]))
    y = rng.integers(0, sizes[-1], samples)
    return init_params(list(sizes), seed=params_seed), X, y, rng.permutation(samples)


@pytest.fixture
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
