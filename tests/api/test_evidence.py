"""Evidence uploads and downloads over HTTP: types from bytes, size limit, hostile names, scope."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.services.evidence import (
    LocalDirStore,
    TooLargeError,
    UnsupportedMediaError,
    read_limited,
    sanitise_filename,
    sniff_image,
)
from api.settings import ApiSettings
from tests.api.conftest import T0
from tests.api.loop_support import (
    jpeg_bytes,
    loop_client,
    loop_registry,
    loop_settings,
    png_bytes,
    tid,
    who,
)

__all__ = ["loop_client", "loop_registry", "loop_settings", "tid", "who"]

H = dict[str, dict[str, str]]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\system.ini", "system.ini"),
        ("a\x00b.jpg", "ab.jpg"),
        ("invoice\u202egpj.exe", "invoicegpj.exe"),
        ("....", "upload"),
        ("", "upload"),
        (None, "upload"),
        ("照片 1.jpg", "照片 1.jpg"),
        ("x" * 300 + ".jpeg", "x" * 95 + ".jpeg"),
    ],
)
def test_sanitise_filename(name: str | None, expected: str) -> None:
    assert sanitise_filename(name) == expected


@pytest.mark.parametrize(
    "data",
    [
        b"GIF89a\x01\x00\x01\x00",
        b"<?php system($_GET['c']); ?>",
        b"\xff\xd8\xff\xe0\x00\x10JFIF",  # JPEG magic, no frame header
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 40,  # PNG magic, broken IHDR
        png_bytes()[:20] + b"\xff" * 13,  # PNG with a wrong header checksum
        b"",
    ],
)
def test_sniff_refuses_non_images(data: bytes) -> None:
    with pytest.raises(UnsupportedMediaError):
        sniff_image(data)


def test_sniff_reads_real_headers() -> None:
    assert sniff_image(jpeg_bytes(64, 48)).width_px == 64
    info = sniff_image(png_bytes(4, 3))
    assert (info.media_type, info.width_px, info.height_px) == ("image/png", 4, 3)


def test_read_limited_stops_at_the_limit(tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.write_bytes(b"\0" * 5000)
    with big.open("rb") as f, pytest.raises(TooLargeError):
        read_limited(f, 4096)
    with big.open("rb") as f:
        assert len(read_limited(f, 5000)) == 5000


def test_upload_checks_bytes_not_the_clients_word(
    loop_client: TestClient, who: H, tid: int, loop_settings: ApiSettings
) -> None:
    url = f"/api/v1/tickets/{tid}/evidence"

    def up(name: str, data: bytes, ctype: str = "image/jpeg") -> Any:
        return loop_client.post(url, headers=who["officer"], files={"file": (name, data, ctype)})

    fake = up("photo.jpg", b"MZ\x90\x00 this is an exe")
    assert fake.status_code == 415
    assert "JPEG and PNG" in fake.json()["detail"]
    assert up("x.gif", b"GIF89a....", "image/gif").status_code == 415
    big = jpeg_bytes() + b"\0" * (1024 * 1024)  # a valid JPEG padded past the 1 MB limit
    r = up("big.jpg", big)
    assert r.status_code == 413
    assert "limit" in r.json()["detail"]
    huge = loop_client.post(
        url, headers={**who["officer"], "Content-Type": "multipart/form-data; boundary=x"},
        content=b"--x\r\n" + b"\0" * (6 * 1024 * 1024),
    )  # fmt: skip
    assert huge.status_code == 413  # refused from Content-Length, before reading

    hostile_names = [
        b"../../etc/passwd", b"a\x00b.jpg", "\u202egnp.jpg".encode(), b"y" * 300,
        b"C:\\..\\boot.ini", b"/dev/null",
    ]  # fmt: skip
    shas = []
    for i, hostile in enumerate(hostile_names):  # raw bytes, as a hostile client sends them
        data = jpeg_bytes(seed=20 + i)
        shas.append(hashlib.sha256(data).hexdigest())
        r = loop_client.post(
            url, headers={**who["officer"], "Content-Type": "multipart/form-data; boundary=B0"},
            content=b"--B0\r\nContent-Disposition: form-data; name=\"file\"; filename=\""
            + hostile + b"\"\r\nContent-Type: image/png\r\n\r\n" + data + b"\r\n--B0--\r\n",
        )  # fmt: skip
        assert r.status_code == 201, (hostile, r.text)  # declared PNG, the bytes say JPEG
        assert r.json()["media_type"] == "image/jpeg"
        assert r.json()["sha256"] == shas[-1]
    listing = loop_client.get(url, headers=who["officer"]).json()
    assert [e["filename"] for e in listing] == [
        "passwd", "ab.jpg", "gnp.jpg", "y" * 100, "boot.ini", "null",
    ]  # fmt: skip
    again = up("again.jpg", jpeg_bytes(seed=20))
    assert again.json()["filename"] == "passwd"  # the same bytes: attached once
    root = Path(loop_settings.evidence_dir)
    stored = sorted(p for p in root.rglob("*") if p.is_file())
    assert stored == sorted(root / h[:2] / h[2:4] / h for h in shas)  # by hash only
    assert not (root.parent / "etc").exists()
    data = jpeg_bytes(seed=5)

    png = up("p.png", png_bytes(), "application/octet-stream")
    assert png.json()["media_type"] == "image/png"
    assert loop_client.post(
        "/api/v1/tickets/99999/evidence", headers=who["officer"],
        files={"file": ("a.jpg", data, "image/jpeg")},
    ).status_code == 404  # fmt: skip
    assert (
        loop_client.post(
            url, headers=who["insurer"], files={"file": ("a.jpg", data, "image/jpeg")}
        ).status_code
        == 403
    )


def test_download_only_for_those_who_see_the_ticket(
    loop_client: TestClient, who: H, tid: int
) -> None:
    data = jpeg_bytes(seed=7)
    sha = loop_client.post(
        f"/api/v1/tickets/{tid}/evidence", headers=who["officer"],
        files={"file": ("fix.jpg", data, "image/jpeg")},
    ).json()["sha256"]  # fmt: skip
    url = f"/api/v1/evidence/{sha}"
    for role in ("officer", "director", "regulator", "admin"):
        r = loop_client.get(url, headers=who[role])
        assert r.status_code == 200, role
        assert r.content == data
        assert r.headers["content-type"] == "image/jpeg"
        assert r.headers["x-content-type-options"] == "nosniff"
    assert loop_client.get(url, headers=who["stranger"]).status_code == 404
    assert loop_client.get(url).status_code == 401
    assert loop_client.get("/api/v1/evidence/" + "0" * 64, headers=who["admin"]).status_code == 404
    assert (
        loop_client.get("/api/v1/evidence/..%2F..%2Fetc", headers=who["admin"]).status_code == 404
    )


def test_edge_snapshot_from_the_database_is_served_by_scope(
    loop_client: TestClient, who: H, conn: psycopg.Connection[Any]
) -> None:
    snap = jpeg_bytes(seed=11)
    sha = hashlib.sha256(snap).hexdigest()
    conn.execute(
        "INSERT INTO evidence_blobs (sha256, media_type, bytes) VALUES (%s, 'image/jpeg', %s)",
        (sha, snap),
    )
    conn.execute(
        """INSERT INTO violations (event_id, site_id, box_id, camera_id, rule, started_at,
                                   confidence, evidence_sha256)
           VALUES ('evt-00000001', 'school-001', 'box-1', 'cam-1', 'no_mask', %s, 0.9, %s)""",
        (T0, sha),
    )
    r = loop_client.get(f"/api/v1/evidence/{sha}", headers=who["officer"])
    assert r.status_code == 200
    assert r.content == snap
    assert loop_client.get(f"/api/v1/evidence/{sha}", headers=who["stranger"]).status_code == 404


def test_local_store_is_content_addressed_and_atomic(tmp_path: Path) -> None:
    store = LocalDirStore(tmp_path)
    data = png_bytes()
    sha = hashlib.sha256(data).hexdigest()
    store.put(sha, data)
    store.put(sha, data)  # idempotent
    assert store.get(sha) == data
    assert store.get("f" * 64) is None
    assert store.get("../../etc/passwd") is None
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [sha]
