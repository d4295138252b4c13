"""A delivery's photo (进货查验) over HTTP, on real PostgreSQL: through the evidence checks,
read by whoever may read the delivery, written only by a writer of its site."""

from __future__ import annotations

import cv2
import numpy as np
from fastapi.testclient import TestClient

from bkcommon.timeutil import utcnow
from tests.api.authz_world import World


def _jpeg() -> bytes:
    img = np.full((16, 16, 3), 200, dtype=np.uint8)
    img[4:12, 4:12] = (0, 160, 0)
    ok, buf = cv2.imencode(".jpg", img)
    assert ok
    return bytes(buf)


def test_a_delivery_photo_is_checked_stored_and_read_in_scope(
    client: TestClient, world: World
) -> None:
    c = client
    officer = world.headers("officer")
    body = {
        "site_id": "site-a1",
        "supplier_name": "绿源蔬菜配送",
        "supplier_licence": "JY13301000000077",
        "product": "土豆",
        "batch_no": "B-PHOTO",
        "delivered_on": str(utcnow().date()),
        "quantity": "40",
        "received_by": "王师傅",
    }
    created = c.post("/api/v1/purchases", json=body, headers=officer)
    assert created.status_code == 201, created.text
    purchase = created.json()
    assert purchase["photo_sha256"] is None
    url = f"/api/v1/purchases/{purchase['id']}/photo"
    assert c.get(url, headers=officer).status_code == 404  # no photo yet
    jpeg = _jpeg()
    r = c.put(url, content=jpeg, headers=officer | {"Content-Type": "image/jpeg"})
    assert r.status_code == 200, r.text
    sha = r.json()["sha256"]
    again = c.get(f"/api/v1/purchases/{purchase['id']}", headers=world.headers("regulator"))
    assert again.json()["photo_sha256"] == sha
    got = c.get(url, headers=world.headers("regulator"))
    assert got.status_code == 200
    assert got.content == jpeg
    assert got.headers["content-type"] == "image/jpeg"
    assert got.headers["x-content-type-options"] == "nosniff"
    # An insurer without this canteen does not see it; an officer cannot reach another site's.
    assert c.get(url, headers=world.headers("insurer")).status_code == 404
    other = c.post(
        "/api/v1/purchases", json=body | {"site_id": "site-b1"}, headers=world.headers("admin")
    ).json()
    elsewhere = f"/api/v1/purchases/{other['id']}/photo"
    put = c.put(elsewhere, content=_jpeg(), headers=officer | {"Content-Type": "image/jpeg"})
    assert put.status_code == 404
    # An insurer never writes; not an image, or a lying header, is refused.
    insurer = world.headers("insurer")
    assert (
        c.put(url, content=jpeg, headers=insurer | {"Content-Type": "image/jpeg"}).status_code
        == 403
    )
    text = c.put(url, content=b"hello", headers=officer | {"Content-Type": "text/plain"})
    assert text.status_code == 415
    fake = c.put(
        url, content=b"\xff\xd8\xffrubbish", headers=officer | {"Content-Type": "image/jpeg"}
    )
    assert fake.status_code in {415, 422}
    # The stored photo is unchanged by the refusals.
    assert c.get(url, headers=officer).content == jpeg
