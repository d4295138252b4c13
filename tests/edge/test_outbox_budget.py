"""A full edge disk: the outbox prunes old evidence images and keeps every unsent event."""

from __future__ import annotations

import base64
import json
import os
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

from bkcommon.messages import Violation, decode, encode
from edge.outbox import Outbox, strip_evidence


def _violation(i: int, image_bytes: int = 3000) -> bytes:
    jpeg = bytes([i % 251]) * image_bytes
    v = Violation.model_validate(
        {
            "event_id": f"evt-{i:06d}",
            "rule": "no_mask",
            "camera_id": "cam-1",
            "started_at": datetime(2026, 3, 1, 8, 0, tzinfo=UTC),
            "confidence": 0.9,
            "evidence": {
                "jpeg_b64": base64.b64encode(jpeg).decode(),
                "sha256": "ab" * 32,
                "width_px": 320,
                "height_px": 180,
            },
        }
    )
    return encode(v)


def test_over_budget_prunes_oldest_evidence_and_keeps_every_event(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.sqlite", max_bytes=20_000)
    for i in range(30):  # 30 x ~4.2 KB: three times the budget
        assert ob.put(f"evt-{i:06d}", "t/v", _violation(i))
    st = ob.stats()
    assert st.depth == 30
    assert st.dropped_total == 0
    assert st.bytes_total <= 20_000
    assert st.evidence_pruned_total > 0
    rows = ob.peek(30)
    assert [r.event_id for r in rows] == [f"evt-{i:06d}" for i in range(30)]
    oldest = decode(Violation, rows[0].payload)
    newest = decode(Violation, rows[-1].payload)
    assert oldest.evidence is not None
    assert oldest.evidence.jpeg_b64 is None
    assert oldest.evidence.sha256 == "ab" * 32  # the backend still learns which image it was
    assert oldest.details["evidence_pruned"] == "outbox over its disk budget"
    assert newest.evidence is not None
    assert newest.evidence.jpeg_b64  # the newest pictures are kept


def test_rows_are_dropped_only_when_pruned_rows_still_do_not_fit(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.sqlite", max_bytes=2_000)
    for i in range(20):
        ob.put(f"evt-{i:06d}", "t/v", _violation(i, image_bytes=600))
    st = ob.stats()
    assert st.bytes_total <= 2_000
    assert st.dropped_total > 0  # last resort: ~300-byte events alone exceed 2 KB
    assert st.evidence_pruned_total >= st.dropped_total


def test_strip_evidence_leaves_other_payloads_alone() -> None:
    assert strip_evidence(b"not json") is None
    assert strip_evidence(json.dumps({"evidence": {"sha256": "ab" * 32}}).encode()) is None
    assert strip_evidence(b"[1, 2]") is None


def test_outbox_written_before_pruning_existed_opens(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite"
    con = sqlite3.connect(path)
    con.executescript(
        """CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE,
           topic TEXT NOT NULL, payload BLOB NOT NULL, bytes INTEGER NOT NULL,
           created_at REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0);
           INSERT INTO outbox(event_id, topic, payload, bytes, created_at)
           VALUES ('evt-old-0001', 't', x'7b7d', 2, 0);"""
    )
    con.commit()
    con.close()
    ob = Outbox(path, max_bytes=10_000)
    assert ob.depth() == 1
    assert ob.put("evt-000001", "t/v", _violation(1))
    assert ob.stats().evidence_pruned_total == 0


def test_little_free_disk_prunes_evidence_but_never_drops_an_event(tmp_path: Path) -> None:
    free = {"bytes": 10_000_000}
    ob = Outbox(
        tmp_path / "o.sqlite", disk_reserve_bytes=1_000_000, free_bytes=lambda: free["bytes"]
    )
    for i in range(10):
        ob.put(f"evt-{i:06d}", "t/v", _violation(i))
    assert ob.stats().evidence_pruned_total == 0
    free["bytes"] = 990_000  # something else filled the disk: 10 KB into the reserve
    for i in range(10, 20):
        ob.put(f"evt-{i:06d}", "t/v", _violation(i))
    st = ob.stats()
    assert st.evidence_pruned_total > 0
    assert st.depth == 20
    assert st.dropped_total == 0
    free["bytes"] = 0  # past the reserve: every image goes, still no event
    ob.put("evt-000020", "t/v", _violation(20))
    st = ob.stats()
    assert (st.depth, st.dropped_total) == (21, 0)


def _can_mount_tmpfs(path: Path) -> bool:
    import os
    import subprocess

    if os.geteuid() != 0:
        return False
    path.mkdir(exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        return False
    subprocess.run(["umount", str(path)], check=False)
    return True


def test_a_really_full_disk_keeps_every_event(tmp_path: Path) -> None:
    import subprocess

    import pytest

    mnt = tmp_path / "disk"
    if not _can_mount_tmpfs(mnt):
        pytest.skip("mounting a tiny tmpfs needs root")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], check=True)
    try:
        ob = Outbox(mnt / "o.sqlite", disk_reserve_bytes=200_000)
        for i in range(40):  # 40 x ~27 KB images: about 1 MB of pictures on a 1 MB disk
            ob.put(f"evt-{i:06d}", "t/v", _violation(i, image_bytes=20_000))
        st = ob.stats()
        assert st.depth == 40
        assert st.dropped_total == 0
        assert st.evidence_pruned_total > 0
        assert [r.event_id for r in ob.peek(40)] == [f"evt-{i:06d}" for i in range(40)]
        ob.close()
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_pruned_pages_are_not_zeroed_into_the_wal(tmp_path: Path) -> None:
    """With secure_delete on (Debian's SQLite default), pruning old images wrote every freed
    page, zeroed, into the WAL: on a full disk that needed the room it would free."""
    ob = Outbox(tmp_path / "o.db")
    try:
        assert ob._db.execute("PRAGMA secure_delete").fetchone() == (0,)
    finally:
        ob.close()


def test_pruning_a_full_outbox_does_not_load_it_into_memory(tmp_path: Path) -> None:
    """Each new event on a full outbox used to read every unpruned image into memory (the
    size of the outbox, under the lock the cameras wait on) to strip the oldest one."""
    cap = 40 * 1024 * 1024
    ob = Outbox(tmp_path / "o.sqlite", max_bytes=cap, disk_reserve_bytes=None)

    def payload() -> bytes:
        img = base64.b64encode(os.urandom(150_000)).decode()
        return json.dumps({"evidence": {"jpeg_b64": img}, "details": {}}).encode()

    i = 0
    while ob.stats().bytes_total < cap - 400_000:
        ob.put(f"e{i:08d}", "t/v", payload())
        i += 1
    tracemalloc.start()
    try:
        for _ in range(3):  # broker still down: each new event prunes the oldest image
            ob.put(f"e{i:08d}", "t/v", payload())
            i += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert ob.stats().evidence_pruned_total >= 1
    assert peak < 8 * 1024 * 1024, f"peak {peak / 2**20:.0f} MiB for a {cap / 2**20:.0f} MiB outbox"
