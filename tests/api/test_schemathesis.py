"""Schemathesis against the OpenAPI document, signed in as an admin: zero server errors.

Every operation of the document gets a few generated requests (valid and invalid
parameters and bodies); a 5xx answer fails the test.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import psycopg
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error

from api.app import create_app
from api.settings import ApiSettings
from bkcommon.settings import CommonSettings

EXAMPLES_PER_OPERATION = 6


@pytest.mark.slow
@pytest.mark.usefixtures("registry")
def test_no_server_errors(
    db_url: str,
    settings: ApiSettings,
    admin_headers: dict[str, str],
    conn: psycopg.Connection[Any],
) -> None:
    app = create_app(settings, common=CommonSettings(database_url=db_url))
    failures: list[str] = []
    calls = 0
    statuses: Counter[int] = Counter()
    started = time.monotonic()
    with TestClient(app):  # the lifespan opens the pool the routes use
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 15
        for operation in operations:
            if operation.path.endswith("/auth/logout"):
                continue  # would revoke the token the other operations use

            @given(case=operation.as_strategy())
            @hypothesis_settings(
                max_examples=EXAMPLES_PER_OPERATION,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def run(case: Any) -> None:
                nonlocal calls
                calls += 1
                response = case.call(headers=admin_headers)
                statuses[response.status_code] += 1
                case.validate_response(response, checks=[not_a_server_error])

            try:
                run()
            except Exception as exc:  # collect every failing operation, then fail once
                failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    seen = dict(sorted(statuses.items()))
    elapsed = time.monotonic() - started
    print(f"schemathesis: {len(operations)} operations, {calls} calls, {elapsed:.1f} s, {seen}")
    assert calls >= len(operations)
    assert sum(n for code, n in statuses.items() if code < 300) > len(operations)  # signed in
    assert not failures, "\n\n".join(failures)
