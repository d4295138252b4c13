"""Schemathesis over the whole OpenAPI document, once per role: the API keeps its contract.

For every role of ``tests.api.authz_world`` (admin, regulator, inspector, canteen
officer and director, insurer, device) every operation gets generated requests, valid
(positive) and invalid (negative), against the real app and a real PostgreSQL world. Each
answer must be no server error, carry a documented status code, content type and
headers, match the documented body schema, and invalid input must be refused (4xx).
Operations with path parameters also get the ids of real rows in one of the role's sites
(a real photo among them), so the 200 answers are checked as well as the 404s.

CI runs ``BK_SCHEMATHESIS_EXAMPLES`` (default 1) examples per operation, mode and
strategy, for every role but the director (``BK_SCHEMATHESIS_ROLES`` names the roles);
the longer run in docs/api-contract.md sets both.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from hypothesis.strategies import SearchStrategy
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from api.settings import ApiSettings
from bkcommon.settings import CommonSettings
from tests.api.authz_world import EXPECTED_SCOPE, ROLES, World, build_world
from tests.api.conftest import make_user_token
from tests.api.loop_support import jpeg_bytes

EXAMPLES = int(os.environ.get("BK_SCHEMATHESIS_EXAMPLES", "1"))
# CI leaves out the director: the same answers as the officer everywhere but verify
# (its own authorisation tests cover that); the longer run names all seven.
RUN_ROLES = tuple(
    os.environ.get("BK_SCHEMATHESIS_ROLES", ",".join(r for r in ROLES if r != "director"))
    .replace(" ", "")
    .split(",")
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]

# Operations last in a role's run: they revoke or replace the token the other calls use.
LAST = ("/logout", "/rotate", "/revoke", "/disable")

# The anchors of each role's user in the world (as tests.api.authz_world signs them in).
ANCHORS: dict[str, dict[str, Any]] = {
    "admin": {},
    "regulator": {"region_id": "dist-a"},
    "inspector": {"region_id": "dist-a"},
    "officer": {"person_id": "p-officer-a1"},
    "director": {"person_id": "p-director-a1"},
    "insurer": {"insurer": "PICC"},
    "device": {"site_ids": ("site-a1",)},
}


@dataclass
class Tally:
    """What one role's run did: calls, answers by status, failures by operation."""

    calls: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)


def known_path_values(world: World, role: str) -> dict[str, str]:
    """Real ids for path parameters, of rows in one of the role's sites (scope leaks are
    tests/api/test_authz_matrix.py's job; here the answers to real rows are checked)."""
    site = sorted(EXPECTED_SCOPE[role])[0]
    values = {
        "ticket_id": str(world.ticket[site]),
        "alarm_id": str(world.alarm[site]),
        "sensor_id": world.sensor[site],
        "site_id": site,
        "sha256": world.sha[site],
    }
    for name, by_site in world.extra.items():
        values[name] = str(by_site[site])
    return values


def real_photos(conn: psycopg.Connection[Any], world: World) -> None:
    """A real JPEG on each site's ticket (the world's own rows name files that are not
    stored), so ``GET /evidence/{sha256}`` answers 200 and its headers are checked."""
    for i, (site, ticket_id) in enumerate(sorted(world.ticket.items())):
        data = jpeg_bytes(seed=i)
        sha = hashlib.sha256(data).hexdigest()
        conn.execute(
            "INSERT INTO evidence_blobs (sha256, media_type, bytes) VALUES (%s, 'image/jpeg', %s)",
            (sha, data),
        )
        conn.execute(
            """INSERT INTO ticket_evidence (ticket_id, sha256, kind, media_type, size_bytes,
                                            uploaded_by)
               VALUES (%s, %s, 'photo', 'image/jpeg', %s, 'contract test')""",
            (ticket_id, sha, len(data)),
        )
        world.sha[site] = sha


def signed_in(client: TestClient, conn: psycopg.Connection[Any], role: str, world: World) -> None:
    """Sign the role in again (a new user of the same role) when an operation revoked it."""
    if client.get("/api/v1/auth/me", headers=world.headers(role)).status_code != 401:
        return
    name = f"{role}-again-{len(world.tokens)}-{time.monotonic_ns()}"
    world.tokens[role] = make_user_token(conn, username=name, role=role, **ANCHORS[role])


def strategies(operation: Any, known: dict[str, str]) -> list[SearchStrategy[Any]]:
    """Generated requests of both modes, plus valid ones aimed at real rows."""
    out = [
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    ]
    names = [p.name for p in operation.path_parameters]
    if names and all(n in known for n in names):
        fixed = {n: known[n] for n in names}
        out.append(operation.as_strategy(path_parameters=fixed))
    return out


def run_operation(
    operation: Any, strategy: SearchStrategy[Any], headers: dict[str, str], tally: Tally
) -> None:
    """Call ``operation`` with up to EXAMPLES generated cases and validate every answer."""

    @given(case=strategy)
    @hypothesis_settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        tally.calls += 1
        response = case.call(headers=headers)
        tally.statuses[response.status_code] += 1
        case.validate_response(response, checks=CHECKS)

    try:
        run()
    except Unsatisfiable:
        pass  # nothing to negate: an operation without parameters or body
    except (Exception, BaseExceptionGroup) as exc:  # collect every failing operation, fail once
        tally.failures.append(f"{operation.method.upper()} {operation.path}: {exc}")


@pytest.mark.slow
@pytest.mark.parametrize("role", RUN_ROLES)
def test_contract_holds_for_role(
    role: str,
    db_url: str,
    settings: ApiSettings,
    conn: psycopg.Connection[Any],
    tmp_path: Path,
) -> None:
    world = build_world(conn)
    real_photos(conn, world)
    app_settings = ApiSettings(
        **{**settings.model_dump(), "evidence_dir": tmp_path / "ev", "secret_key": "contract" * 4}
    )
    app = create_app(app_settings, common=CommonSettings(database_url=db_url))
    tally = Tally()
    started = time.monotonic()
    with TestClient(app) as client:  # the lifespan opens the pool the routes use
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        results = list(schema.get_all_operations())
        assert all(isinstance(r, Ok) for r in results), [
            r for r in results if not isinstance(r, Ok)
        ]
        operations = [r.ok() for r in results if isinstance(r, Ok)]
        operations.sort(key=lambda op: op.path.endswith(LAST))
        known = known_path_values(world, role)
        for operation in operations:
            for strategy in strategies(operation, known):
                signed_in(client, conn, role, world)
                run_operation(operation, strategy, world.headers(role), tally)
    elapsed = time.monotonic() - started
    seen = dict(sorted(tally.statuses.items()))
    print(
        f"schemathesis {role}: {len(operations)} operations, {tally.calls} calls, "
        f"{elapsed:.1f} s, failures {len(tally.failures)}, statuses {seen}"
    )
    assert len(operations) >= 60
    assert tally.calls >= len(operations)
    assert sum(n for code, n in tally.statuses.items() if code < 300) > 0
    assert not tally.failures, "\n\n".join(tally.failures)
