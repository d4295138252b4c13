"""Fixtures of the vision tests: the tiny colour model and a TCP server that never answers."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.edge.support import MASK_CLASSES, build_colour_model


@pytest.fixture(scope="session")
def mask_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real ONNX mask model (dynamic batch) that boxes red/green/blue squares."""
    return build_colour_model(tmp_path_factory.mktemp("model") / "mask.onnx", MASK_CLASSES)


@pytest.fixture
def hanging_server() -> Iterator[int]:
    """Port of a local TCP server that accepts connections and never says a word."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.2)
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            held.append(conn)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield int(srv.getsockname()[1])
    stop.set()
    t.join(2)
    for c in held:
        c.close()
    srv.close()
