"""Choose the evidence store from the settings; the S3-compatible one (MinIO, AWS S3).

``BK_API_EVIDENCE_STORE=disk`` keeps files under ``BK_API_EVIDENCE_DIR`` (``LocalDirStore``);
``s3`` keeps them in a bucket as ``<prefix>ab/cd/<sha256>``:

- The bucket stays private. Objects are written without an ACL and read with the API's
  credentials; a browser only ever gets bytes after the API's scope check, either streamed
  through the API or (``BK_API_S3_PRESIGN_S`` > 0) by a redirect to a link signed for that
  many seconds, issued per request to someone allowed to see the file.
- The content hash is the key, is stored as the object's ``sha256`` metadata and is sent as
  its SHA-256 checksum, so the server refuses a write that does not match; a read checks it
  again before the bytes are used.
- Edge snapshots arrive inside MQTT messages and ingest writes them to ``evidence_blobs``
  in the same transaction as the violation (crash-safe, no network call in the writer).
  With S3, the API workers move them to the bucket (``offload_blobs``) and delete the row
  once the object is there; until then they are served from the table.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg

from api.services.evidence import (
    EvidenceStore,
    LocalDirStore,
    UnsupportedMediaError,
    sniff_image,
)
from api.settings import ApiSettings
from bkcommon.errors import RequestError

logger = logging.getLogger(__name__)

Conn = psycopg.Connection[Any]

_SHA_HEX = frozenset("0123456789abcdef")
_CHUNK = 64 * 1024
_OFFLOAD_BATCH = 50
_IMAGE_TYPES = frozenset({"image/jpeg", "image/png"})
_UNAVAILABLE = "the evidence store is unavailable; try again later"


def _check_sha(sha256: str) -> str:
    if len(sha256) != 64 or not set(sha256) <= _SHA_HEX:
        raise ValueError("not a sha256 hex digest")
    return sha256


def _media_type(data: bytes) -> str:
    try:
        return sniff_image(data).media_type
    except UnsupportedMediaError:
        return "application/octet-stream"


class EvidenceStoreUnavailableError(RequestError):
    """The bucket could not be reached or refused the API's account (503, try again)."""

    status_code = 503


class EvidenceIntegrityError(RuntimeError):
    """An object's bytes do not hash to its key."""


@dataclass(frozen=True, slots=True)
class StoredObject:
    """An object's bytes as a stream: its media type, its size and its chunks."""

    media_type: str
    size_bytes: int
    chunks: Iterator[bytes]


class S3Store:
    """Evidence in an S3-compatible bucket, keyed by sha256; ``client`` is a boto3 S3 client.

    ``signer`` signs download links (a client for the endpoint browsers reach), by
    default ``client``.
    """

    def __init__(
        self, client: Any, bucket: str, *, prefix: str = "evidence/", signer: Any = None
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self.signer = signer or client

    def key(self, sha256: str) -> str:
        """The object key of ``sha256``; only ever built from a validated hash."""
        sha = _check_sha(sha256)
        return f"{self.prefix}{sha[:2]}/{sha[2:4]}/{sha}"

    def _call(self, operation: str, **params: Any) -> dict[str, Any] | None:
        """``client.<operation>(Bucket=..., **params)``; None when the object is not there.

        Any other failure (server unreachable, refused credentials, a missing bucket) is
        ``EvidenceStoreUnavailableError``: the API answers 503 and logs the cause.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer: dict[str, Any] = getattr(self.client, operation)(Bucket=self.bucket, **params)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in {"404", "NoSuchKey", "NotFound"}:
                return None
            logger.error("evidence store: %s %s failed: %s", operation, self.bucket, exc)
            raise EvidenceStoreUnavailableError(_UNAVAILABLE) from exc
        except BotoCoreError as exc:
            logger.error("evidence store: %s %s failed: %s", operation, self.bucket, exc)
            raise EvidenceStoreUnavailableError(_UNAVAILABLE) from exc
        return answer

    def _head(self, sha256: str) -> dict[str, Any] | None:
        return self._call("head_object", Key=self.key(sha256))

    def exists(self, sha256: str) -> bool:
        """True when the object is stored."""
        return self._head(sha256) is not None

    def put(self, sha256: str, data: bytes) -> None:
        """Store ``data`` (whose sha256 must be ``sha256``) unless it is already there."""
        digest = hashlib.sha256(data).digest()
        if digest.hex() != _check_sha(sha256):
            raise ValueError(f"content does not hash to {sha256}")
        if self.exists(sha256):
            return
        self._call(
            "put_object",
            Key=self.key(sha256),
            Body=data,
            ContentType=_media_type(data),
            ChecksumSHA256=base64.b64encode(digest).decode("ascii"),
            Metadata={"sha256": sha256},
        )

    def get(self, sha256: str) -> bytes | None:
        """The object's bytes if stored and still hashing to ``sha256``, else None."""
        try:
            obj = self._call("get_object", Key=self.key(sha256))
        except ValueError:
            return None
        if obj is None:
            return None
        data: bytes = obj["Body"].read()
        if hashlib.sha256(data).hexdigest() != sha256:
            logger.error("evidence object %s does not match its hash; not served", sha256)
            return None
        return data

    def open(self, sha256: str) -> StoredObject | None:
        """Stream the object (for a download through the API); None when it is not stored.

        The body is hashed as it streams (the SDK also checks the stored checksum,
        ``ChecksumMode``); bytes that do not hash to ``sha256`` end the download with
        ``EvidenceIntegrityError`` before its last piece.
        """
        obj = self._call("get_object", Key=self.key(sha256), ChecksumMode="ENABLED")
        if obj is None:
            return None
        body = obj["Body"]

        def chunks() -> Iterator[bytes]:
            """The body, each piece hashed; the last piece is held back until the whole
            hashes to ``sha256``, so a changed object never reaches a client complete."""
            digest = hashlib.sha256()
            held: bytes | None = None
            try:
                for piece in body.iter_chunks(_CHUNK):
                    digest.update(piece)
                    if held is not None:
                        yield held
                    held = piece
            finally:
                body.close()
            if digest.hexdigest() != sha256:
                logger.error("evidence object %s does not match its hash; download cut", sha256)
                raise EvidenceIntegrityError(f"evidence object {sha256} does not match its hash")
            if held is not None:
                yield held

        return StoredObject(
            media_type=str(obj.get("ContentType") or "application/octet-stream"),
            size_bytes=int(obj["ContentLength"]),
            chunks=chunks(),
        )

    def presign(self, sha256: str, *, expires_s: int) -> str | None:
        """A GET link valid ``expires_s`` seconds; None when the object is not stored or
        has no image type of ours (then the caller serves the bytes itself).

        The link fixes the answer's type, ``inline`` disposition and a private cache
        lifetime no longer than the link itself.
        """
        head = self._head(sha256)
        if head is None or head.get("ContentType") not in _IMAGE_TYPES:
            return None  # not stored, or copied in without its type: the API serves it
        url: str = self.signer.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": self.key(sha256),
                "ResponseContentType": str(head["ContentType"]),
                "ResponseContentDisposition": "inline",
                "ResponseCacheControl": f"private, max-age={expires_s}",
            },
            ExpiresIn=expires_s,
        )
        return url


@functools.lru_cache(maxsize=8)
def _client(
    endpoint: str | None, region: str, access_key: str | None, secret_key: str | None
) -> Any:
    """One thread-safe client per configuration (creating one costs tens of milliseconds)."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session()
    return session.client(
        "s3",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},  # MinIO and other self-hosted servers
            retries={"max_attempts": 5, "mode": "standard"},
            connect_timeout=5,
            read_timeout=30,
        ),
    )


def s3_store(settings: ApiSettings) -> S3Store:
    """The bucket of ``settings`` (``BK_API_S3_*``)."""
    access = settings.s3_access_key.get_secret_value() if settings.s3_access_key else None
    secret = settings.s3_secret_key.get_secret_value() if settings.s3_secret_key else None
    client = _client(settings.s3_endpoint, settings.s3_region, access, secret)
    signer = client
    if settings.s3_public_endpoint and settings.s3_public_endpoint != settings.s3_endpoint:
        signer = _client(settings.s3_public_endpoint, settings.s3_region, access, secret)
    return S3Store(client, settings.s3_bucket, prefix=settings.s3_prefix, signer=signer)


def make_store(settings: ApiSettings) -> EvidenceStore:
    """The store ``BK_API_EVIDENCE_STORE`` names: a local directory or an S3 bucket."""
    if settings.evidence_store == "s3":
        return s3_store(settings)
    return LocalDirStore(settings.evidence_dir)


def offload_blobs(conn: Conn, store: EvidenceStore, *, limit: int = _OFFLOAD_BATCH) -> int:
    """Move up to ``limit`` edge snapshots from ``evidence_blobs`` into ``store``.

    Each row is locked (SKIP LOCKED: several workers share the table), its bytes checked
    against its hash and written to the store, then deleted; a row whose bytes do not
    hash to its key is left in place and logged. Returns the number of rows moved.
    """
    moved = 0
    with conn.transaction():
        rows = conn.execute(
            """SELECT sha256, bytes FROM evidence_blobs ORDER BY created_at
               LIMIT %s FOR UPDATE SKIP LOCKED""",
            (limit,),
        ).fetchall()
        for sha, data in rows:
            blob = bytes(data)
            if hashlib.sha256(blob).hexdigest() != sha:
                logger.error("evidence_blobs row %s does not match its hash; left in place", sha)
                continue
            store.put(str(sha), blob)
            conn.execute("DELETE FROM evidence_blobs WHERE sha256 = %s", (sha,))
            moved += 1
    if moved:
        logger.info("moved %d edge snapshot(s) to the evidence store", moved)
    return moved
