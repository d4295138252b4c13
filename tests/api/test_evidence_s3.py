"""Evidence in an S3-compatible bucket, against a real S3 server (moto's, over HTTP).

Uploads land in the bucket by hash with the hash kept and checked; downloads go only to
those whose scope covers the file, streamed through the API or redirected to a link signed
for a few seconds; the bucket and its objects grant nothing to anonymous readers; edge
snapshots that ingest stored in the database move to the bucket through the API workers;
the claim bundle reads its evidence from the bucket.
"""

from __future__ import annotations

import hashlib
import io
import json
import uuid
import zipfile
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.services.evidence_store import (
    EvidenceIntegrityError,
    S3Store,
    make_store,
    offload_blobs,
)
from api.settings import ApiSettings
from api.workers import Workers
from bkcommon.settings import CommonSettings
from tests.api.conftest import T0
from tests.api.loop_support import (
    jpeg_bytes,
    loop_registry,
    loop_settings,
    tid,
    who,
)
from tests.support.services import port_open, wait_until

moto_server = pytest.importorskip("moto.server")

__all__ = ["loop_registry", "loop_settings", "tid", "who"]

H = dict[str, dict[str, str]]
ANYONE = "http://acs.amazonaws.com/groups/global/AllUsers"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on a free local port (a real HTTP server, not a patched SDK)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    wait_until(lambda: port_open("127.0.0.1", port), 20, what="the S3 server")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_settings(loop_settings: ApiSettings, s3_endpoint: str) -> ApiSettings:
    """The loop settings with evidence in a fresh private bucket of the S3 server."""
    settings = ApiSettings(
        **{
            **loop_settings.model_dump(),
            "evidence_store": "s3",
            "s3_endpoint": s3_endpoint,
            "s3_bucket": f"bk-evidence-{uuid.uuid4().hex[:12]}",
            "s3_access_key": "bk-test-access",
            "s3_secret_key": "bk-test-secret",
        }
    )
    store = make_store(settings)
    assert isinstance(store, S3Store)
    store.client.create_bucket(Bucket=settings.s3_bucket)
    return settings


@pytest.fixture
def store(s3_settings: ApiSettings) -> S3Store:
    made = make_store(s3_settings)
    assert isinstance(made, S3Store)
    return made


@pytest.fixture
def s3_client(db_url: str, s3_settings: ApiSettings, loop_registry: None) -> Iterator[TestClient]:
    app = create_app(s3_settings, common=CommonSettings(database_url=db_url))
    with TestClient(app) as c:
        yield c


def _upload(client: TestClient, who: H, tid: int, data: bytes) -> str:
    r = client.post(
        f"/api/v1/tickets/{tid}/evidence",
        headers=who["officer"],
        files={"file": ("fix.jpg", data, "image/jpeg")},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["sha256"])


def test_upload_lands_in_the_bucket_by_hash_and_streams_back_by_scope(
    s3_client: TestClient, who: H, tid: int, store: S3Store, s3_settings: ApiSettings
) -> None:
    data = jpeg_bytes(seed=31)
    sha = _upload(s3_client, who, tid, data)
    assert sha == hashlib.sha256(data).hexdigest()
    key = f"evidence/{sha[:2]}/{sha[2:4]}/{sha}"
    head = store.client.head_object(Bucket=s3_settings.s3_bucket, Key=key, ChecksumMode="ENABLED")
    assert head["ContentType"] == "image/jpeg"
    assert head["Metadata"] == {"sha256": sha}
    assert head["ContentLength"] == len(data)
    assert not s3_settings.evidence_dir.exists()  # nothing on the API's disk

    url = f"/api/v1/evidence/{sha}"
    for role in ("officer", "director", "regulator", "admin"):
        r = s3_client.get(url, headers=who[role])
        assert r.status_code == 200, role
        assert r.content == data
        assert r.headers["content-type"] == "image/jpeg"
        assert r.headers["content-length"] == str(len(data))
        assert r.headers["x-content-type-options"] == "nosniff"
    assert s3_client.get(url, headers=who["stranger"]).status_code == 404
    assert s3_client.get(url).status_code == 401
    assert s3_client.get("/api/v1/evidence/" + "0" * 64, headers=who["admin"]).status_code == 404

    # The bucket is private: no policy, and neither it nor the object grants anyone else.
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as no_policy:
        store.client.get_bucket_policy(Bucket=s3_settings.s3_bucket)
    assert no_policy.value.response["Error"]["Code"] == "NoSuchBucketPolicy"
    for acl in (
        store.client.get_bucket_acl(Bucket=s3_settings.s3_bucket),
        store.client.get_object_acl(Bucket=s3_settings.s3_bucket, Key=key),
    ):
        assert all(g["Grantee"].get("URI") != ANYONE for g in acl["Grants"])


def test_signed_links_only_after_the_scope_check(
    db_url: str, s3_settings: ApiSettings, loop_registry: None, who: H, tid: int
) -> None:
    settings = s3_settings.model_copy(update={"s3_presign_s": 60})
    app = create_app(settings, common=CommonSettings(database_url=db_url))
    with TestClient(app) as client:
        data = jpeg_bytes(seed=32)
        sha = _upload(client, who, tid, data)
        r = client.get(f"/api/v1/evidence/{sha}", headers=who["officer"], follow_redirects=False)
        assert r.status_code == 307
        assert r.headers["cache-control"] == "no-store"
        link = r.headers["location"]
        assert link.startswith(f"{settings.s3_endpoint}/{settings.s3_bucket}/evidence/")
        assert "X-Amz-Signature=" in link
        assert "X-Amz-Expires=60" in link
        got = httpx.get(link, timeout=10)  # the browser's request: no API token
        assert got.status_code == 200
        assert got.content == data
        assert got.headers["content-type"] == "image/jpeg"
        assert got.headers["content-disposition"] == "inline"
        stranger = client.get(
            f"/api/v1/evidence/{sha}", headers=who["stranger"], follow_redirects=False
        )
        assert stranger.status_code == 404
        assert "location" not in stranger.headers


def test_a_changed_object_is_never_served(
    s3_client: TestClient, who: H, tid: int, store: S3Store, s3_settings: ApiSettings
) -> None:
    data = jpeg_bytes(seed=33)
    sha = _upload(s3_client, who, tid, data)
    other = jpeg_bytes(seed=34)
    store.client.put_object(Bucket=s3_settings.s3_bucket, Key=store.key(sha), Body=other)
    assert store.get(sha) is None
    opened = store.open(sha)
    assert opened is not None
    with pytest.raises(EvidenceIntegrityError):
        b"".join(opened.chunks)
    with pytest.raises(ValueError, match="does not hash"):
        store.put(sha, other)


def _edge_snapshot(conn: psycopg.Connection[Any], seed: int, event: str) -> tuple[str, bytes]:
    """An edge snapshot as ingest stores it: in evidence_blobs, referenced by a violation."""
    snap = jpeg_bytes(seed=seed)
    sha = hashlib.sha256(snap).hexdigest()
    conn.execute(
        "INSERT INTO evidence_blobs (sha256, media_type, bytes) VALUES (%s, 'image/jpeg', %s)",
        (sha, snap),
    )
    conn.execute(
        """INSERT INTO violations (event_id, site_id, box_id, camera_id, rule, started_at,
                                   confidence, evidence_sha256)
           VALUES (%s, 'school-001', 'box-1', 'cam-1', 'no_mask', %s, 0.9, %s)""",
        (event, T0, sha),
    )
    return sha, snap


def test_workers_move_edge_snapshots_to_the_bucket(
    s3_client: TestClient,
    who: H,
    conn: psycopg.Connection[Any],
    db_url: str,
    store: S3Store,
    s3_settings: ApiSettings,
) -> None:
    sha, snap = _edge_snapshot(conn, 40, "evt-s3-0001")
    url = f"/api/v1/evidence/{sha}"
    before = s3_client.get(url, headers=who["officer"])  # not moved yet: from the table
    assert (before.status_code, before.content) == (200, snap)
    assert not store.exists(sha)

    settings = s3_settings.model_copy(update={"s3_offload_interval_s": 0.2})
    workers = Workers(database_url=db_url, settings=settings)
    assert workers.offload is not None
    workers.offload.start()
    try:

        def moved() -> bool:
            row = conn.execute("SELECT count(*) FROM evidence_blobs").fetchone()
            return row is not None and row[0] == 0

        wait_until(moved, 30, 0.2, what="the snapshot to leave the database")
    finally:
        workers.stop()
    assert store.get(sha) == snap
    after = s3_client.get(url, headers=who["officer"])
    assert (after.status_code, after.content) == (200, snap)
    assert s3_client.get(url, headers=who["stranger"]).status_code == 404
    assert offload_blobs(conn, store) == 0  # nothing left to move

    # A row whose bytes do not hash to its key stays where it is.
    conn.execute(
        "INSERT INTO evidence_blobs (sha256, media_type, bytes) VALUES (%s, 'image/jpeg', %s)",
        ("cd" * 32, jpeg_bytes(seed=41)),
    )
    assert offload_blobs(conn, store) == 0
    assert not store.exists("cd" * 32)
    assert conn.execute("SELECT count(*) FROM evidence_blobs").fetchone() == (1,)


def test_claim_bundle_reads_its_evidence_from_the_bucket(
    s3_client: TestClient,
    who: H,
    conn: psycopg.Connection[Any],
    store: S3Store,
    s3_settings: ApiSettings,
) -> None:
    from api.services.tickets import process_findings
    from tests.api.conftest import insert_finding

    sha, snap = _edge_snapshot(conn, 42, "evt-s3-0002")
    insert_finding(
        conn,
        key="violation:evt-s3-0002",
        kind="violation",
        subject="cam-1",
        rule="no_mask",
        payload={"event_id": "evt-s3-0002"},
        notify=False,
    )
    process_findings(conn, now=T0, settings=s3_settings)
    assert offload_blobs(conn, store) == 1
    incident = s3_client.post(
        "/api/v1/incidents",
        headers=who["admin"],
        json={"site_id": "school-001", "occurred_at": T0.isoformat(), "kind": "illness"},
    )
    assert incident.status_code == 201, incident.text
    r = s3_client.get(f"/api/v1/incidents/{incident.json()['id']}/bundle.zip", headers=who["admin"])
    assert r.status_code == 200, r.text
    zf = zipfile.ZipFile(io.BytesIO(r.content))
    manifest = json.loads(zf.read("manifest.json"))
    assert f"evidence/{sha}.jpg" in manifest["files"]
    assert zf.read(f"evidence/{sha}.jpg") == snap


def test_an_unreachable_bucket_is_a_503_not_a_lost_photo(
    db_url: str, s3_settings: ApiSettings, loop_registry: None, who: H, tid: int
) -> None:
    from tests.support.services import free_port

    gone = s3_settings.model_copy(update={"s3_endpoint": f"http://127.0.0.1:{free_port()}"})
    app = create_app(gone, common=CommonSettings(database_url=db_url))
    with TestClient(app) as client:
        r = client.post(
            f"/api/v1/tickets/{tid}/evidence",
            headers=who["officer"],
            files={"file": ("fix.jpg", jpeg_bytes(seed=50), "image/jpeg")},
        )
        assert r.status_code == 503, r.text
        assert "evidence store" in r.json()["detail"]
        listing = client.get(f"/api/v1/tickets/{tid}/evidence", headers=who["officer"])
        assert listing.json() == []  # nothing attached that cannot be fetched
