"""Evidence files (photos of a fix, edge snapshots): checked, stored by hash, served by scope.

- Only JPEG and PNG are accepted, decided from the bytes (magic number and a parsed image
  header with a sane size), never from the client's file name; a declared content type
  that is not an image is refused too (a client that says text/plain is confused or lying).
- Decompression bombs (a small file declaring a huge picture) are refused from the header,
  before any decoding: at most ``MAX_PIXELS``. An upload is then decoded to prove it is an
  image: a JPEG at 1/8 scale (libjpeg's DCT scaling), a PNG by inflating its pixel stream
  in bounded pieces and checking it has exactly the size the header announces.
- Size is limited while reading (``BK_API_MAX_UPLOAD_MB``).
- The client's file name is never a path: it is sanitised and kept as display metadata.
- Files live in an ``EvidenceStore`` by sha256 (``LocalDirStore``: ``root/ab/cd/<sha256>``,
  or an S3-compatible bucket: ``api.services.evidence_store``); edge snapshots that ingest
  stored in ``evidence_blobs`` are served the same way.
- A file is served only to a principal whose scope covers a ticket or violation that
  references it; to everyone else it does not exist (404).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import struct
import tempfile
import unicodedata
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import psycopg
from PIL import Image

from api.auth.scope import SiteScope
from api.services.lifecycle import TicketNotFoundError
from bkcommon.errors import RequestError

logger = logging.getLogger(__name__)

Conn = psycopg.Connection[Any]

_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
_MAX_SIDE_PX = 20_000
MAX_PIXELS = 50_000_000  # more than a phone's or camera's photo; a bomb declares far more
MAX_PROGRESSIVE_PIXELS = 24_000_000
"""A progressive JPEG is decoded with every coefficient of the full frame held at once,
whatever the draft scale: 7071x7071 took 250 MB, two at a time past an API pod's 512 MiB."""
MAX_JPEG_SCANS = 64
"""A photo has 1 scan (baseline) or about 10 (progressive); each scan is a pass over the whole
frame, and 5,000 tiny scans in 476 KB held a request for 17 s (minutes at the size limit)."""
_PROGRESSIVE_SOF = {0xC2, 0xC6, 0xCA, 0xCE}
_INFLATE_PIECE = 1024 * 1024
# Declared types that may carry a photo; the bytes still decide which one it is.
_PHOTO_TYPES = frozenset(
    {"image/jpeg", "image/jpg", "image/pjpeg", "image/png", "application/octet-stream"}
)
_FILENAME_MAX = 100
_CHUNK = 64 * 1024


class EvidenceError(RequestError, ValueError):
    """An upload was refused; ``status_code`` is the HTTP answer (still a ValueError)."""

    status_code = 422


class UnsupportedMediaError(EvidenceError):
    """Not a JPEG or PNG image."""

    status_code = 415


class TooLargeError(EvidenceError):
    """Bigger than the upload limit."""

    status_code = 413


class TooManyPixelsError(UnsupportedMediaError):
    """The header declares more pixels than ``MAX_PIXELS``: a decompression bomb (422).

    An UnsupportedMediaError still, so readers of stored files that skip what is not a
    usable image skip it too; only the HTTP answer differs.
    """

    status_code = 422


class EvidenceStore(Protocol):
    """Where evidence bytes live, addressed by their sha256."""

    def put(self, sha256: str, data: bytes) -> None:
        """Store ``data`` under ``sha256`` (a no-op when it is already there)."""

    def get(self, sha256: str) -> bytes | None:
        """The bytes stored under ``sha256``, or None."""


class LocalDirStore:
    """A directory of content-addressed files: ``root/ab/cd/<sha256>``, written atomically."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, sha256: str) -> Path:
        """Where ``sha256`` lives; only ever built from a validated hash."""
        if not _SHA_RE.match(sha256):
            raise ValueError("not a sha256 hex digest")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, sha256: str, data: bytes) -> None:
        """Write to a temporary file in the same folder, fsync, then rename into place."""
        target = self.path(sha256)
        if target.exists():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".up-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, sha256: str) -> bytes | None:
        """The file's bytes, or None."""
        try:
            return self.path(sha256).read_bytes()
        except (FileNotFoundError, ValueError):
            return None


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """What the bytes are: media type and pixel size from the parsed header."""

    media_type: str
    width_px: int
    height_px: int


def read_limited(stream: BinaryIO, max_bytes: int) -> bytes:
    """Read the whole stream, refusing as soon as it passes ``max_bytes``."""
    parts: list[bytes] = []
    total = 0
    while True:
        chunk = stream.read(_CHUNK)
        if not chunk:
            return b"".join(parts)
        total += len(chunk)
        if total > max_bytes:
            raise TooLargeError(f"file larger than the {max_bytes // (1024 * 1024)} MB limit")
        parts.append(chunk)


def sniff_image(data: bytes) -> ImageInfo:
    """Decide JPEG or PNG from magic bytes and a valid header, or raise UnsupportedMediaError.

    Example:
        >>> sniff_image(b"GIF89a...")
        Traceback (most recent call last):
        ...
        api.services.evidence.UnsupportedMediaError: only JPEG and PNG images are accepted
    """
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return _png(data)
    if data.startswith(b"\xff\xd8\xff"):
        return _jpeg(data)
    raise UnsupportedMediaError("only JPEG and PNG images are accepted")


def _sane(media_type: str, w: int, h: int) -> ImageInfo:
    if w <= 0 or h <= 0:
        raise UnsupportedMediaError(f"{media_type} header has an impossible size {w}x{h}")
    if w > _MAX_SIDE_PX or h > _MAX_SIDE_PX or w * h > MAX_PIXELS:
        raise TooManyPixelsError(
            f"{media_type} declares {w}x{h} pixels ({w * h / 1e6:.0f} megapixels); "
            f"the limit is {MAX_PIXELS // 1_000_000} megapixels and {_MAX_SIDE_PX} px a side"
        )
    return ImageInfo(media_type, w, h)


def check_declared_type(declared: str | None) -> None:
    """Refuse an upload whose declared content type cannot be a photo (415).

    Example:
        >>> check_declared_type("image/png; charset=x")
        >>> try:
        ...     check_declared_type("text/html")
        ... except UnsupportedMediaError as e:
        ...     print(e)
        declared content type text/html is not a photo; send image/jpeg or image/png
    """
    media = (declared or "").split(";", 1)[0].strip().lower()
    if media and media not in _PHOTO_TYPES:
        shown = media[:60].encode("ascii", "backslashreplace").decode()
        raise UnsupportedMediaError(
            f"declared content type {shown} is not a photo; send image/jpeg or image/png"
        )


def check_image(data: bytes) -> ImageInfo:
    """``sniff_image`` and then decode the image, so what is stored is a picture.

    Raises UnsupportedMediaError (415) for what is not a JPEG / PNG or does not decode,
    TooManyPixelsError (422) for a declared size past ``MAX_PIXELS``, before decoding.
    """
    info = sniff_image(data)
    if info.media_type == "image/png":
        _inflate_png(data, info)
    else:
        # b"\xff\xda" only stands for a start-of-scan: inside scan data a 0xFF byte is
        # followed by 0x00 (JPEG byte stuffing); an EXIF thumbnail's own scans count too,
        # which the limit leaves room for
        if data.count(b"\xff\xda") > MAX_JPEG_SCANS:
            raise UnsupportedMediaError(
                f"JPEG with more than {MAX_JPEG_SCANS} scans is not a photo"
            )
        _decode_jpeg(data, info)
    return info


_JPEG_KEEP_APP = {0xE0, 0xE2, 0xEE}  # JFIF, the ICC colour profile, Adobe's colour transform
_PNG_DROP = {b"eXIf", b"tEXt", b"zTXt", b"iTXt", b"tIME"}


def strip_metadata(data: bytes, info: ImageInfo) -> bytes:
    """The photo without what it says about its sender: EXIF (GPS position, phone, time),
    XMP, comments and text chunks; the pixels are unchanged. A JPEG that EXIF says to turn
    is turned first (re-encoded), since its EXIF goes. For photos from the public: a
    parent's home is not for the canteen the complaint is about."""
    if info.media_type == "image/png":
        return _strip_png(data)
    try:
        with Image.open(io.BytesIO(data), formats=["JPEG"]) as im:
            orientation = im.getexif().get(0x0112, 1)
            if orientation not in (None, 1):
                from PIL import ImageOps

                turned = ImageOps.exif_transpose(im)
                out = io.BytesIO()
                turned.save(out, format="JPEG", quality=92)
                return _strip_jpeg(out.getvalue())
    except (OSError, ValueError, SyntaxError, TypeError, KeyError):
        pass  # EXIF that does not parse: the segments go all the same, unturned
    return _strip_jpeg(data)


def _strip_jpeg(data: bytes) -> bytes:
    out = [data[:2]]
    i = 2
    while i + 4 <= len(data):
        marker = data[i + 1]
        if data[i] != 0xFF or marker == 0xDA:  # scans follow: the rest is kept as it is
            break
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
            out.append(data[i : i + 2])
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        segment = data[i : i + 2 + length]
        if not ((0xE0 <= marker <= 0xEF and marker not in _JPEG_KEEP_APP) or marker == 0xFE):
            out.append(segment)
        i += 2 + length
    out.append(data[i:])
    return b"".join(out)


def _strip_png(data: bytes) -> bytes:
    out = [data[:8]]
    i = 8
    while i + 8 <= len(data):
        (length,) = struct.unpack(">I", data[i : i + 4])
        kind = data[i + 4 : i + 8]
        chunk = data[i : i + 12 + length]
        if kind not in _PNG_DROP:
            out.append(chunk)
        i += 12 + length
        if kind == b"IEND":
            break
    return b"".join(out)


def _decode_jpeg(data: bytes, info: ImageInfo) -> None:
    """Decode at 1/8 scale (libjpeg's DCT scaling): every byte is read, few pixels kept."""
    try:
        with Image.open(io.BytesIO(data), formats=["JPEG"]) as im:
            if im.size != (info.width_px, info.height_px):
                raise UnsupportedMediaError("JPEG frame headers disagree about the size")
            im.draft("RGB", (max(1, info.width_px // 8), max(1, info.height_px // 8)))
            im.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        if isinstance(exc, EvidenceError):
            raise
        raise UnsupportedMediaError(f"JPEG image data does not decode: {exc}") from exc


_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # PNG colour type -> samples per pixel
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
          (0, 1, 1, 2))  # fmt: skip


def _png_raw_size(w: int, h: int, bits: int, interlaced: bool) -> int:
    """Bytes of the inflated pixel stream: each row is a filter byte plus its samples."""
    passes = _ADAM7 if interlaced else ((0, 0, 1, 1),)
    total = 0
    for x0, y0, dx, dy in passes:
        pw, ph = (w - x0 + dx - 1) // dx, (h - y0 + dy - 1) // dy
        if pw > 0 and ph > 0:
            total += ph * (1 + (pw * bits + 7) // 8)
    return total


def _png_chunks(data: bytes) -> Iterable[tuple[bytes, bytes]]:
    """(type, data) of each chunk after the signature, checksums verified, up to IEND."""
    i = 8
    while i + 12 <= len(data):
        length, kind = struct.unpack(">I4s", data[i : i + 8])
        end = i + 12 + length
        if end > len(data):
            raise UnsupportedMediaError("PNG is truncated")
        body = data[i + 8 : i + 8 + length]
        if zlib.crc32(kind + body) != struct.unpack(">I", data[end - 4 : end])[0]:
            raise UnsupportedMediaError(f"PNG {kind.decode('latin-1')!r} chunk checksum is wrong")
        yield kind, body
        if kind == b"IEND":
            return
        i = end
    raise UnsupportedMediaError("PNG is truncated (no IEND chunk)")


def _inflate_png(data: bytes, info: ImageInfo) -> None:
    """Inflate the IDAT stream in bounded pieces; it must be exactly the announced size."""
    bit_depth, colour, _, _, interlace = struct.unpack(">BBBBB", data[24:29])
    if colour not in _CHANNELS or bit_depth not in {1, 2, 4, 8, 16}:
        raise UnsupportedMediaError(f"PNG colour type {colour} / bit depth {bit_depth} is invalid")
    expected = _png_raw_size(
        info.width_px, info.height_px, _CHANNELS[colour] * bit_depth, interlace == 1
    )
    inflater = zlib.decompressobj()
    produced = 0
    try:
        for kind, body in _png_chunks(data):
            if kind != b"IDAT":
                continue
            pending = body
            while pending and not inflater.eof:
                produced += len(inflater.decompress(pending, _INFLATE_PIECE))
                pending = inflater.unconsumed_tail
                if produced > expected:
                    raise UnsupportedMediaError("PNG pixel data is larger than its header says")
    except zlib.error as exc:
        raise UnsupportedMediaError(f"PNG pixel data does not inflate: {exc}") from exc
    if not inflater.eof or produced != expected:
        raise UnsupportedMediaError(
            f"PNG pixel data is {produced} bytes, its header announces {expected}"
        )


def _png(data: bytes) -> ImageInfo:
    """IHDR must follow the signature, be 13 bytes long and carry a correct CRC."""
    if len(data) < 33 or data[12:16] != b"IHDR" or struct.unpack(">I", data[8:12])[0] != 13:
        raise UnsupportedMediaError("PNG without a valid IHDR header")
    (crc,) = struct.unpack(">I", data[29:33])
    if zlib.crc32(data[12:29]) != crc:
        raise UnsupportedMediaError("PNG header checksum is wrong")
    w, h = struct.unpack(">II", data[16:24])
    return _sane("image/png", w, h)


_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg(data: bytes) -> ImageInfo:
    """Walk the marker segments up to the start-of-frame and read its size."""
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            raise UnsupportedMediaError("JPEG marker structure is broken")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        if marker in (0xD9, 0xDA):
            break  # end of image or start of scan before any frame header
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if length < 2:
            raise UnsupportedMediaError("JPEG segment length is broken")
        if marker in _SOF:
            if i + 9 > len(data):
                break
            h, w = struct.unpack(">HH", data[i + 5 : i + 9])
            if marker in _PROGRESSIVE_SOF and w * h > MAX_PROGRESSIVE_PIXELS:
                raise TooManyPixelsError(
                    f"progressive JPEG of {w}x{h} pixels ({w * h / 1e6:.0f} megapixels); "
                    f"the limit is {MAX_PROGRESSIVE_PIXELS // 1_000_000} megapixels "
                    "(save it as a baseline JPEG)"
                )
            return _sane("image/jpeg", w, h)
        i += 2 + length
    raise UnsupportedMediaError("JPEG without a frame header")


_STRIP_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def sanitise_filename(name: str | None) -> str:
    """A display name safe anywhere: no folders, control or direction characters, short.

    Example:
        >>> sanitise_filename("../../etc/passwd")
        'passwd'
        >>> sanitise_filename("photo\\u202egnp.exe")
        'photognp.exe'
    """
    text = unicodedata.normalize("NFC", name or "")
    text = re.split(r"[/\\\\]", text)[-1]
    text = "".join(ch for ch in text if unicodedata.category(ch) not in _STRIP_CATEGORIES)
    text = re.sub(r"\s+", " ", text).strip().lstrip(".").strip()
    if len(text) > _FILENAME_MAX:
        stem, dot, ext = text.rpartition(".")
        if dot and 0 < len(ext) <= 10:
            text = stem[: _FILENAME_MAX - len(ext) - 1] + "." + ext
        else:
            text = text[:_FILENAME_MAX]
    return text or "upload"


@dataclass(frozen=True, slots=True)
class StoredEvidence:
    """A file attached to a ticket."""

    sha256: str
    kind: str
    media_type: str
    size_bytes: int
    filename: str
    width_px: int
    height_px: int
    created: bool


def attach_photo(
    conn: Conn,
    store: EvidenceStore,
    *,
    ticket_id: int,
    data: bytes,
    filename: str | None,
    uploaded_by: str,
    scope: SiteScope,
    now: datetime,
) -> StoredEvidence:
    """Check, store and attach a photo to an open ticket in ``scope``.

    Raises TicketNotFoundError (404) when the ticket is not in scope, EvidenceError when
    refused; the app answers both, so a route passes them through.
    """
    info = check_image(data)
    row = conn.execute(
        f"SELECT status FROM tickets t WHERE id = %(id)s AND {scope.clause('t.site_id')}",
        {"id": ticket_id, **scope.params()},
    ).fetchone()
    if row is None:
        raise TicketNotFoundError(f"ticket {ticket_id} not found")
    if row[0] == "closed":
        raise EvidenceError("ticket is closed; reopen it before adding evidence")
    sha = hashlib.sha256(data).hexdigest()
    store.put(sha, data)
    name = sanitise_filename(filename)
    inserted = conn.execute(
        """INSERT INTO ticket_evidence (ticket_id, sha256, kind, media_type, size_bytes,
                                        filename, uploaded_by, at)
           VALUES (%s, %s, 'photo', %s, %s, %s, %s, %s)
           ON CONFLICT (ticket_id, sha256) DO NOTHING RETURNING id""",
        (ticket_id, sha, info.media_type, len(data), name, uploaded_by, now),
    ).fetchone()
    logger.info(
        "ticket %s: evidence %s (%s, %d bytes) from %s",
        ticket_id,
        sha[:12],
        info.media_type,
        len(data),
        uploaded_by,
        extra={"ticket_id": ticket_id},
    )
    return StoredEvidence(
        sha256=sha,
        kind="photo",
        media_type=info.media_type,
        size_bytes=len(data),
        filename=name,
        width_px=info.width_px,
        height_px=info.height_px,
        created=inserted is not None,
    )


def visible(conn: Conn, *, sha256: str, scope: SiteScope) -> bool:
    """True when a ticket, violation or inspection in ``scope`` references the file."""
    if not _SHA_RE.match(sha256):
        return False
    row = conn.execute(
        f"""SELECT EXISTS (SELECT 1 FROM ticket_evidence te JOIN tickets t ON t.id = te.ticket_id
                           WHERE te.sha256 = %(sha)s AND {scope.clause("t.site_id")})
               OR EXISTS (SELECT 1 FROM violations v
                          WHERE v.evidence_sha256 = %(sha)s AND {scope.clause("v.site_id")})
               OR EXISTS (SELECT 1 FROM inspection_photos p
                          JOIN inspections i ON i.id = p.inspection_id
                          WHERE p.sha256 = %(sha)s AND {scope.clause("i.site_id")})""",
        {"sha": sha256, **scope.params()},
    ).fetchone()
    return bool(row and row[0])


def load_bytes(conn: Conn, store: EvidenceStore, sha256: str) -> tuple[str, bytes] | None:
    """(media type, bytes) from the file store, else from ``evidence_blobs``; None if absent."""
    data = store.get(sha256)
    if data is not None:
        try:
            return sniff_image(data).media_type, data
        except UnsupportedMediaError:
            logger.error("evidence %s in the store is not an image", sha256)
            return None
    row = conn.execute(
        "SELECT media_type, bytes FROM evidence_blobs WHERE sha256 = %s", (sha256,)
    ).fetchone()
    return None if row is None else (str(row[0]), bytes(row[1]))


def fetch_evidence(
    conn: Conn, store: EvidenceStore, *, sha256: str, scope: SiteScope
) -> tuple[str, bytes] | None:
    """The file if ``scope`` may see it, else None (the caller answers 404 either way)."""
    if not visible(conn, sha256=sha256, scope=scope):
        return None
    return load_bytes(conn, store, sha256)


def ticket_evidence(conn: Conn, *, ticket_id: int) -> Iterable[tuple[Any, ...]]:
    """Rows (sha256, kind, media_type, size_bytes, filename, uploaded_by, at, event_id)."""
    return conn.execute(
        """SELECT sha256, kind, media_type, size_bytes, filename, uploaded_by, at, event_id
           FROM ticket_evidence WHERE ticket_id = %s ORDER BY id""",
        (ticket_id,),
    ).fetchall()
