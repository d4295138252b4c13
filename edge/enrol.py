"""Enrol an edge box: trade the installer's one-time code for the box's credentials.

The answer of ``POST /api/v1/enrol`` is written where only the service user can read it:
``device.json`` (everything, for the record) and ``device.env`` (``BK_MQTT_URL`` with the
box's broker account, ``BK_EDGE_BOX_ID``, ``BK_EDGE_API_TOKEN``), both mode 0600 and owned
by the service user, written to a temporary file first and renamed, so a crash never leaves
half a credential. The systemd unit reads ``device.env`` after ``edge.env``.

Only the standard library: the box needs nothing but this package to enrol.
"""

from __future__ import annotations

import json
import os
import pwd
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from bkcommon.errors import BrightKitchenError, ConfigError

DEVICE_JSON = "device.json"
DEVICE_ENV = "device.env"


class EnrolError(BrightKitchenError):
    """The backend refused the code, or could not be reached; the message says which."""


@dataclass(frozen=True, slots=True)
class Enrolled:
    """Where the credentials were written and the broker account they hold."""

    box_id: str
    site_id: str
    mqtt_username: str
    files: tuple[Path, ...]


def broker_url(broker: str, username: str, password: str) -> str:
    """``broker`` (``mqtt://host:1883`` or ``mqtts://host:8883``) with the account in it."""
    parts = urlsplit(broker)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ConfigError(
            f"--broker: expected mqtt://host:port or mqtts://host:port, got {broker!r}"
        )
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    netloc = f"{quote(username, safe='')}:{quote(password, safe='')}@{host}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, "", "", ""))


def request_credentials(
    api_url: str, box_id: str, code: str, timeout_s: float = 30
) -> dict[str, str]:
    """POST the code to ``{api_url}/api/v1/enrol`` and return the answer's fields."""
    url = api_url.rstrip("/") + "/api/v1/enrol"
    if urlsplit(url).scheme not in ("http", "https"):
        raise ConfigError(f"--api: expected an http(s):// URL, got {api_url!r}")
    body = json.dumps({"box_id": box_id, "code": code}).encode()
    req = urllib.request.Request(  # noqa: S310 (scheme checked above)
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # noqa: S310
            answer = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        try:
            detail = json.loads(exc.read()).get("detail", "")
        except (ValueError, AttributeError):
            detail = ""
        raise EnrolError(f"the backend refused the enrolment ({exc.code}): {detail}") from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise EnrolError(f"cannot reach {url}: {exc}") from exc
    needed = ("box_id", "site_id", "api_token", "mqtt_username", "mqtt_password")
    if not isinstance(answer, dict) or any(not isinstance(answer.get(k), str) for k in needed):
        raise EnrolError(f"unexpected answer from {url}")
    return {k: str(v) for k, v in answer.items() if v is not None}


def _write_private(path: Path, text: str, owner: tuple[int, int] | None) -> None:
    """Write ``text`` to ``path`` with mode 0600 (and ``owner``), atomically."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
        if owner is not None:
            os.fchown(fd, *owner)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _owner(user: str | None) -> tuple[int, int] | None:
    if user is None:
        return None
    try:
        entry = pwd.getpwnam(user)
    except KeyError as exc:
        raise ConfigError(f"--owner: no user {user!r} on this box") from exc
    return entry.pw_uid, entry.pw_gid


def enrol(
    *, api_url: str, box_id: str, code: str, broker: str, out_dir: Path, owner: str | None
) -> Enrolled:
    """Enrol ``box_id`` with ``code`` and store its credentials in ``out_dir`` (0600)."""
    uid_gid = _owner(owner)
    broker_url(broker, "check", "check")  # refuse a bad --broker before spending the code
    answer = request_credentials(api_url, box_id, code)
    out_dir.mkdir(parents=True, exist_ok=True)
    env = {
        "BK_EDGE_BOX_ID": answer["box_id"],
        "BK_EDGE_SITE_ID": answer["site_id"],
        "BK_MQTT_URL": broker_url(broker, answer["mqtt_username"], answer["mqtt_password"]),
        "BK_EDGE_API_TOKEN": answer["api_token"],
    }
    env_text = "# written by `brightkitchen edge enrol`: the box's credentials, keep private\n"
    env_text += "".join(f"{k}={v}\n" for k, v in env.items())
    files = (out_dir / DEVICE_JSON, out_dir / DEVICE_ENV)
    _write_private(files[0], json.dumps(answer, indent=2) + "\n", uid_gid)
    _write_private(files[1], env_text, uid_gid)
    return Enrolled(
        box_id=answer["box_id"],
        site_id=answer["site_id"],
        mqtt_username=answer["mqtt_username"],
        files=files,
    )
