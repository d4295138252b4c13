"""Hostile uploads against the real app and PostgreSQL: every one refused, nothing stored.

Covers the three upload routes (ticket evidence, rectification photos, inspection photos):
declared types that are not photos, bodies over the limit sent without a Content-Length
(refused while they stream, over a real socket to uvicorn), decompression bombs (a small
file declaring a huge picture), files that only start like an image, and hostile names.
"""

from __future__ import annotations

import io
import select
import socket
import struct
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import uvicorn
from fastapi.testclient import TestClient
from PIL import Image

from api.app import create_app
from api.services.evidence import (
    MAX_PIXELS,
    TooManyPixelsError,
    UnsupportedMediaError,
    check_image,
)
from api.settings import ApiSettings
from bkcommon.settings import CommonSettings
from tests.api.conftest import T0
from tests.api.loop_support import jpeg_bytes, loop_client, loop_registry, loop_settings, tid, who
from tests.support.services import free_port

__all__ = ["loop_client", "loop_registry", "loop_settings", "tid", "who"]

H = dict[str, dict[str, str]]


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_declaring(width: int, height: int, idat: bytes | None = None) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` grey pixels, with ``idat`` as data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    data = zlib.compress(b"\0" * 1000) if idat is None else idat
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")
    )


def jpeg_declaring(width: int, height: int) -> bytes:
    """A real small JPEG whose start-of-frame header is rewritten to ``width`` x ``height``."""
    data = bytearray(jpeg_bytes(16, 16))
    i = 2
    while data[i + 1] not in (0xC0, 0xC1, 0xC2):
        i += 2 + struct.unpack(">H", data[i + 2 : i + 4])[0]
    data[i + 5 : i + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def pil_image(mode: str, size: tuple[int, int], fmt: str, **save: Any) -> bytes:
    """An image written by Pillow (an implementation independent of the checks)."""
    buf = io.BytesIO()
    Image.new(mode, size, color=1).save(buf, format=fmt, **save)
    return buf.getvalue()


def stored_files(settings: ApiSettings) -> list[Path]:
    """Files in the evidence store."""
    return [p for p in Path(settings.evidence_dir).rglob("*") if p.is_file()]


def inspection_id(conn: psycopg.Connection[Any]) -> int:
    """An inspection at the loop site (the regulator's region)."""
    row = conn.execute(
        "INSERT INTO inspections (site_id, kind, started_at, notes) "
        "VALUES ('school-001', 'routine', %s, 'hostile uploads') RETURNING id",
        (T0,),
    ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize(
    ("mode", "size", "save"),
    [
        ("1", (13, 5), {}),
        ("L", (1, 1), {}),
        ("LA", (7, 3), {}),
        ("P", (9, 9), {}),
        ("RGB", (31, 17), {}),
        ("RGBA", (5, 40), {}),
        ("I;16", (6, 6), {}),
        ("RGB", (33, 21), {"optimize": True}),
    ],
)
def test_every_kind_of_real_png_passes(mode: str, size: tuple[int, int], save: Any) -> None:
    info = check_image(pil_image(mode, size, "PNG", **save))
    assert (info.media_type, info.width_px, info.height_px) == ("image/png", *size)


def test_interlaced_png_passes() -> None:
    """Adam7 by hand: seven passes of rows, each a filter byte and its grey samples."""
    w, h = 11, 6
    passes = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
              (0, 1, 1, 2))  # fmt: skip
    raw = b""
    for x0, y0, dx, dy in passes:
        cols = len(range(x0, w, dx))
        rows = len(range(y0, h, dy))
        if cols and rows:
            raw += (b"\0" + b"\x7f" * cols) * rows
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 1)
    png = (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(raw))
        + _chunk(b"IEND", b"")
    )  # fmt: skip
    with Image.open(io.BytesIO(png)) as im:  # Pillow agrees it is an image
        im.load()
    assert check_image(png).width_px == w
    assert check_image(pil_image("RGB", (640, 480), "JPEG", progressive=True)).height_px == 480


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (jpeg_declaring(10_000, 9_000), "90 megapixels"),
        (jpeg_declaring(30_000, 10), "20000 px a side"),
        (png_declaring(8_000, 8_000), "64 megapixels"),
        (png_declaring(1, 2**31 - 1), "px a side"),
    ],
)
def test_bombs_are_refused_from_the_header(data: bytes, why: str) -> None:
    assert len(data) < 2000  # small files, huge pictures
    with pytest.raises(TooManyPixelsError, match=why):
        check_image(data)


GOOD_PNG = png_declaring(4, 3, idat=zlib.compress(b"\0" * 15))  # 3 rows: filter byte + 4
_IDAT_DATA = 8 + 25 + 8  # signature, IHDR chunk, IDAT length and type


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (jpeg_bytes(320, 240)[:400], "does not decode"),  # cut in the middle of the scan
        (png_declaring(4, 3, idat=b"not zlib at all"), "does not inflate"),
        (png_declaring(4, 3, idat=zlib.compress(b"\0" * 5)), "announces 15"),
        (png_declaring(4, 3, idat=zlib.compress(b"\0" * 5000)), "larger than its header"),
        (GOOD_PNG[:-12], "no IEND"),
        (GOOD_PNG[:_IDAT_DATA] + b"\x00" + GOOD_PNG[_IDAT_DATA + 1 :], "checksum"),
    ],
)
def test_files_that_only_start_like_images_are_refused(data: bytes, why: str) -> None:
    assert check_image(GOOD_PNG).height_px == 3  # the same file, intact, passes
    with pytest.raises(UnsupportedMediaError, match=why):
        check_image(data)


def test_bombs_and_fakes_are_refused_by_every_upload_route(
    loop_client: TestClient,
    who: H,
    tid: int,
    loop_settings: ApiSettings,
    conn: psycopg.Connection[Any],
) -> None:
    bomb, fake = png_declaring(9_000, 9_000), jpeg_bytes(320, 240)[:400]
    iid = inspection_id(conn)
    for data, status, word in ((bomb, 422, "megapixels"), (fake, 415, "does not decode")):
        r = loop_client.post(
            f"/api/v1/tickets/{tid}/evidence",
            headers=who["officer"],
            files={"file": ("x.png", data, "image/png")},
        )
        assert (r.status_code, word in r.json()["detail"]) == (status, True), r.text
        r = loop_client.post(
            f"/api/v1/tickets/{tid}/rectify",
            headers=who["officer"],
            data={"note": "fixed"},
            files=[("photos", ("fix.png", data, "image/png"))],
        )
        assert (r.status_code, word in r.json()["detail"]) == (status, True), r.text
        r = loop_client.post(
            f"/api/v1/inspections/{iid}/photos",
            headers={**who["regulator"], "Content-Type": "image/png"},
            content=data,
        )
        assert (r.status_code, word in r.json()["detail"]) == (status, True), r.text
    assert stored_files(loop_settings) == []
    assert conn.execute("SELECT count(*) FROM ticket_evidence").fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM inspection_photos").fetchone() == (0,)
    status = conn.execute("SELECT status FROM tickets WHERE id = %s", (tid,)).fetchone()
    assert status == ("open",)  # no rectification went through


def test_declared_types_that_are_not_photos_are_refused(
    loop_client: TestClient,
    who: H,
    tid: int,
    loop_settings: ApiSettings,
    conn: psycopg.Connection[Any],
) -> None:
    photo = jpeg_bytes(seed=3)  # a real JPEG, declared as something else
    iid = inspection_id(conn)
    for declared in ("text/plain", "text/html", "image/svg+xml", "application/x-msdownload"):
        expected = (415, f"declared content type {declared} is not a photo")
        r = loop_client.post(
            f"/api/v1/tickets/{tid}/evidence",
            headers=who["officer"],
            files={"file": ("a.jpg", photo, declared)},
        )
        assert (r.status_code, r.json()["detail"][: len(expected[1])]) == expected
        r = loop_client.post(
            f"/api/v1/tickets/{tid}/rectify",
            headers=who["officer"],
            data={"note": "fixed"},
            files=[("photos", ("a.jpg", photo, declared))],
        )
        assert (r.status_code, r.json()["detail"][: len(expected[1])]) == expected
        r = loop_client.post(
            f"/api/v1/inspections/{iid}/photos",
            headers={**who["regulator"], "Content-Type": declared},
            content=photo,
        )
        assert (r.status_code, r.json()["detail"][: len(expected[1])]) == expected
    assert stored_files(loop_settings) == []


def multipart(parts: list[tuple[bytes, bytes]], fields: dict[str, str]) -> bytes:
    """A multipart body built by hand: file names go on the wire exactly as given."""
    out = b""
    for name, value in fields.items():
        out += f'--B0\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    for filename, data in parts:
        out += (
            b'--B0\r\nContent-Disposition: form-data; name="photos"; filename="' + filename
            + b'"\r\nContent-Type: image/jpeg\r\n\r\n' + data + b"\r\n"
        )  # fmt: skip
    return out + b"--B0--\r\n"


def test_hostile_names_on_rectification_photos_never_become_paths(
    loop_client: TestClient, who: H, tid: int, loop_settings: ApiSettings
) -> None:
    names = [
        b"../../../../tmp/owned.jpg", b"C:\\Windows\\win.ini", b"a\x00b.jpg",
        b"x" * 1000 + b".jpg", "\u202eexe.jpg".encode(), "\ufb01le\u200b.jpg".encode(),
        b"/dev/zero", b"..", b"CON",
    ]  # fmt: skip
    parts = [(name, jpeg_bytes(seed=40 + i)) for i, name in enumerate(names)]
    headers = {**who["officer"], "Content-Type": "multipart/form-data; boundary=B0"}
    url = f"/api/v1/tickets/{tid}/rectify"
    too_long = multipart([(b"y" * 5000 + b".jpg", jpeg_bytes(seed=39))], {"note": "n"})
    refused = loop_client.post(url, headers=headers, content=too_long)
    assert refused.status_code == 400  # a header line past the parser's limit: not parsed
    assert stored_files(loop_settings) == []
    assert loop_client.post(f"/api/v1/tickets/{tid}/acknowledge", headers=who["officer"]).is_success
    r = loop_client.post(url, headers=headers, content=multipart(parts, {"note": "fixed"}))
    assert r.status_code == 200, r.text
    listed = loop_client.get(f"/api/v1/tickets/{tid}/evidence", headers=who["officer"]).json()
    assert [e["filename"] for e in listed] == [
        "owned.jpg", "win.ini", "ab.jpg", "x" * 96 + ".jpg", "exe.jpg", "\ufb01le.jpg", "zero",
        "upload", "CON",
    ]  # fmt: skip
    root = Path(loop_settings.evidence_dir)
    assert sorted(stored_files(loop_settings)) == sorted(
        root / e["sha256"][:2] / e["sha256"][2:4] / e["sha256"] for e in listed
    )
    assert not Path("/tmp/owned.jpg").exists()


@pytest.fixture
def live(db_url: str, loop_settings: ApiSettings, loop_registry: None) -> Iterator[str]:
    """The app served by uvicorn on a free port: requests over a real socket."""
    app = create_app(loop_settings, common=CommonSettings(database_url=db_url))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        threading.Event().wait(0.05)
    assert server.started
    yield f"127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def send_chunked(address: str, path: str, headers: dict[str, str], total: int) -> tuple[int, int]:
    """POST ``total`` bytes as chunked transfer (no Content-Length) until the server answers.

    Returns (status, bytes sent): a server that refuses while streaming answers long
    before the end, and stops reading.
    """
    host, port = address.split(":")
    head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    piece = b"\0" * (64 * 1024)
    sent = 0
    with socket.create_connection((host, int(port)), timeout=20) as sock:
        sock.sendall(head.encode())
        if "multipart" in headers.get("Content-Type", ""):
            part = (
                b'--B0\r\nContent-Disposition: form-data; name="file"; filename="big.jpg"\r\n'
                b"Content-Type: image/jpeg\r\n\r\n\xff\xd8\xff"
            )
            sock.sendall(f"{len(part):x}\r\n".encode() + part + b"\r\n")
        try:
            while sent < total:
                if select.select([sock], [], [], 0)[0]:
                    break  # the answer came while we were still sending
                sock.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                sent += len(piece)
            else:
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server closed the connection after answering
        answer = sock.recv(4096).decode("latin-1")
    return int(answer.split(" ", 2)[1]), sent


@pytest.mark.slow
def test_oversize_bodies_are_refused_while_they_stream(
    live: str, who: H, tid: int, loop_settings: ApiSettings, conn: psycopg.Connection[Any]
) -> None:
    total = 256 * 1024 * 1024  # far past the 1 MB file and ~4 MB body limits
    multipart = {**who["officer"], "Content-Type": "multipart/form-data; boundary=B0"}
    for path in (f"/api/v1/tickets/{tid}/evidence", f"/api/v1/tickets/{tid}/rectify"):
        status, sent = send_chunked(live, path, multipart, total)
        print(f"{path}: 413 after {sent / 2**20:.1f} MiB sent of {total / 2**20:.0f} MiB")
        assert status == 413
        assert sent < total // 8, sent  # refused long before the end, not after reading it
    raw = {**who["regulator"], "Content-Type": "image/jpeg"}
    status, sent = send_chunked(live, f"/api/v1/inspections/{inspection_id(conn)}/photos", raw,
                                total)  # fmt: skip
    assert status == 413
    assert sent < total // 8, sent
    assert stored_files(loop_settings) == []


def test_a_large_real_photo_passes() -> None:
    photo = pil_image("RGB", (4000, 3000), "JPEG", quality=85)  # a 12-megapixel phone photo
    assert check_image(photo).width_px == 4000
    assert MAX_PIXELS > 4000 * 3000


def _segment(marker: int, payload: bytes) -> bytes:
    return b"\xff" + bytes([marker]) + struct.pack(">H", len(payload) + 2) + payload


def scan_bomb(w: int, h: int, scans: int) -> bytes:
    """A valid greyscale progressive JPEG of ``scans`` tiny AC scans: each scan is a pass
    over the whole frame, so a few hundred KB of them held a request for minutes."""
    blocks = ((w + 7) // 8) * ((h + 7) // 8)

    def stuffed(bits: str) -> bytes:
        bits += "1" * (-len(bits) % 8)
        out = bytearray()
        for i in range(0, len(bits), 8):
            out.append(int(bits[i : i + 8], 2))
            if out[-1] == 0xFF:
                out.append(0)
        return bytes(out)

    data = b"\xff\xd8" + _segment(0xDB, b"\x00" + bytes([1] * 64))
    data += _segment(0xC2, struct.pack(">BHHB", 8, h, w, 1) + b"\x01\x11\x00")
    data += _segment(0xC4, b"\x00" + bytes([1] + [0] * 15) + b"\x00")
    data += _segment(0xC4, b"\x10" + bytes([1] + [0] * 15) + b"\xe0")
    data += _segment(0xDA, b"\x01\x01\x00\x00\x00\x00") + stuffed("0" * blocks)
    ac = stuffed(("0" + "1" * 14) * ((blocks + 32766) // 32767))
    data += (_segment(0xDA, b"\x01\x01\x00\x01\x3f\x00") + ac) * scans
    return data + b"\xff\xd9"


def test_a_jpeg_of_thousands_of_scans_or_a_huge_progressive_frame_is_refused_at_once() -> None:
    import time

    few = scan_bomb(64, 64, 8)
    assert check_image(few).width_px == 64  # a real progressive file with a few scans passes
    t0 = time.monotonic()
    with pytest.raises(UnsupportedMediaError, match="more than 64 scans"):
        check_image(scan_bomb(2000, 2000, 5000))
    assert time.monotonic() - t0 < 1.0  # refused before decoding, not after minutes
    # a progressive frame is held whole while decoded: 7071 x 7071 is refused by its header
    with pytest.raises(TooManyPixelsError, match="progressive JPEG"):
        check_image(scan_bomb(7071, 7071, 2))


def test_a_public_photo_loses_what_it_says_about_its_sender() -> None:
    """EXIF GPS and the phone, XMP and comments go; the pixels stay; a photo EXIF says to
    turn is turned first, since its EXIF goes."""
    from api.services.evidence import strip_metadata

    im = Image.new("RGB", (64, 32), (200, 30, 30))
    exif = Image.Exif()
    exif[0x0110] = "iPhone 13"  # Model
    exif[0x8825] = {1: "N", 2: (31.0, 13.0, 45.0)}  # GPS
    out = io.BytesIO()
    im.save(out, format="JPEG", exif=exif.tobytes(), comment=b"home")
    data = out.getvalue()
    clean = strip_metadata(data, check_image(data))
    for secret in (b"iPhone", b"Exif", b"home"):
        assert secret not in clean
    with Image.open(io.BytesIO(clean)) as a, Image.open(io.BytesIO(data)) as b:
        assert a.tobytes() == b.tobytes()  # the same pixels, not re-encoded
    exif[0x0112] = 6  # shot in portrait: turn 90 degrees
    out = io.BytesIO()
    im.save(out, format="JPEG", exif=exif.tobytes())
    turned = strip_metadata(out.getvalue(), check_image(out.getvalue()))
    assert b"iPhone" not in turned
    with Image.open(io.BytesIO(turned)) as t:
        assert t.size == (32, 64)
    png = io.BytesIO()
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "home address")
    im.save(png, format="PNG", pnginfo=info)
    clean_png = strip_metadata(png.getvalue(), check_image(png.getvalue()))
    assert b"home address" not in clean_png
    assert check_image(clean_png).width_px == 64
