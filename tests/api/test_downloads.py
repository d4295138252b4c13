"""Large downloads: written to a spooled file (memory up to a bound, then disk), then streamed;
an error while writing is an HTTP error, not a truncated file."""

from __future__ import annotations

import hashlib
import tempfile
from typing import IO, Any

import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient

from api.routes import downloads


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/big.zip")
    def big() -> Any:
        def write(out: IO[bytes]) -> None:
            for i in range(64):
                out.write(hashlib.sha256(str(i).encode()).digest() * 1024)  # 32 KiB each

        return downloads.spooled_download(write, filename="big.zip")

    @app.get("/missing.zip")
    def missing() -> Any:
        def write(out: IO[bytes]) -> None:
            out.write(b"PK partial")
            raise HTTPException(status_code=404, detail="incident 9 not found")

        return downloads.spooled_download(write, filename="missing.zip")

    return app


def test_a_download_larger_than_the_memory_bound_goes_to_disk_and_arrives_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(downloads, "SPOOL_MEMORY_BYTES", 64 * 1024)
    rolled: list[bool] = []
    real = tempfile.SpooledTemporaryFile

    def spy(*a: Any, **kw: Any) -> Any:
        f = real(*a, **kw)
        orig = f.rollover

        def rollover() -> None:
            rolled.append(True)
            orig()

        f.rollover = rollover  # type: ignore[method-assign]
        return f

    monkeypatch.setattr(tempfile, "SpooledTemporaryFile", spy)
    r = TestClient(_app()).get("/big.zip")
    assert r.status_code == 200
    assert r.headers["content-disposition"] == 'attachment; filename="big.zip"'
    expected = b"".join(hashlib.sha256(str(i).encode()).digest() * 1024 for i in range(64))
    assert r.content == expected  # 2 MiB, in order
    assert rolled, "the spool stayed in memory past its bound"


def test_an_error_while_writing_is_an_http_error_not_a_truncated_file() -> None:
    r = TestClient(_app()).get("/missing.zip")
    assert r.status_code == 404
    assert r.json() == {"detail": "incident 9 not found"}
