"""Dates and times in requests: ISO 8601 only, and a time always with its offset."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import TypeAdapter, ValidationError

from api.app import create_app
from api.input_types import IsoDate, IsoDateTime
from api.settings import ApiSettings
from bkcommon.settings import CommonSettings

DATES = TypeAdapter(IsoDate)
TIMES = TypeAdapter(IsoDateTime)


@pytest.mark.parametrize(
    "bad", [0, 1.5, "0", "3.379416592120249e-179", "20261201", "2026-12-1", "x"]
)
def test_a_date_is_yyyy_mm_dd_and_never_a_number(bad: Any) -> None:
    with pytest.raises(ValidationError, match="YYYY-MM-DD"):
        DATES.validate_python(bad)
    assert DATES.validate_python(" 2026-12-01 ") == date(2026, 12, 1)
    assert DATES.validate_python(date(2026, 12, 1)) == date(2026, 12, 1)


@pytest.mark.parametrize("bad", [0, 1733040000, "1733040000", "3e-179", "yesterday", "12/01/2026"])
def test_a_time_is_iso_8601_and_never_a_unix_number(bad: Any) -> None:
    with pytest.raises(ValidationError, match="ISO 8601"):
        TIMES.validate_python(bad)


def test_a_time_needs_its_offset() -> None:
    with pytest.raises(ValidationError, match="needs a time zone"):
        TIMES.validate_python("2026-12-01T10:00")
    with pytest.raises(ValidationError, match="needs a time zone"):
        TIMES.validate_python("2026-12-01")
    assert TIMES.validate_python("2026-12-01 10:00:00Z") == datetime(2026, 12, 1, 10, tzinfo=UTC)
    assert TIMES.validate_python("2026-12-01T18:00:00+08:00") == datetime(
        2026, 12, 1, 10, tzinfo=UTC
    )
    assert TIMES.json_schema() == {"type": "string", "format": "date-time"}
    assert DATES.json_schema() == {"type": "string", "format": "date"}


@pytest.fixture
def client(db_url: str, settings: ApiSettings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, common=CommonSettings(database_url=db_url))) as c:
        yield c


def test_query_dates_refuse_numbers_over_http(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    for path in (
        "/api/v1/disinfection/cycles.csv?date_to=3.379416592120249e-179",
        "/api/v1/disinfection/checks?date_from=0",
        "/api/v1/tickets?opened_from=1733040000",
        "/api/v1/tickets?opened_from=2026-12-01T10:00",  # no offset: which 10:00?
    ):
        r = client.get(path, headers=admin_headers)
        assert r.status_code == 422, (path, r.status_code, r.text)
    ok = client.get("/api/v1/disinfection/checks?date_from=2026-12-01", headers=admin_headers)
    assert ok.status_code == 200, ok.text
    ok = client.get(
        "/api/v1/tickets",
        params={"opened_from": "2026-12-01T10:00:00+08:00"},
        headers=admin_headers,
    )
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize("bad", ["0001-01-01", "1999-12-31", "2100-01-01", "9999-12-31"])
def test_a_date_is_of_2000_to_2099(bad: str) -> None:
    with pytest.raises(ValidationError, match="2000-2099"):
        DATES.validate_python(bad)
    with pytest.raises(ValidationError, match="2000-2099"):
        TIMES.validate_python(bad + "T12:00:00Z")
    assert DATES.validate_python("2000-01-01") == date(2000, 1, 1)
    assert DATES.validate_python("2099-12-31") == date(2099, 12, 31)


def test_the_range_of_a_time_is_in_utc() -> None:
    """The first moment is 2000-01-01T00:00Z: 07:00 in Beijing on that day is still 1999."""
    with pytest.raises(ValidationError, match="2000-2099"):
        TIMES.validate_python("2000-01-01T07:00:00+08:00")
    with pytest.raises(ValidationError, match="2000-2099"):
        TIMES.validate_python("2099-12-31T20:00:00-08:00")
    assert TIMES.validate_python("2099-12-31T23:59:59Z").year == 2099


def test_every_date_parameter_refuses_far_years_with_a_422(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    """Every query parameter of the OpenAPI document that is a date or a time, given year
    0001 or 9999: a 422 naming the range. Before the range, a day after 9999-12-31 (meals,
    coverage) and a window before 0001-01-01 (sensor readings) overflowed into a 500."""
    spec = client.get("/openapi.json").json()
    seen = 0
    for path, ops in spec["paths"].items():
        get = ops.get("get")
        if not get:
            continue
        url = path.replace("{", "").replace("}", "")  # a path parameter's name as its value
        for param in get.get("parameters", []):
            schema = param.get("schema", {})
            kinds = [schema.get("format")] + [s.get("format") for s in schema.get("anyOf", [])]
            if param["in"] != "query" or not {"date", "date-time"} & set(kinds):
                continue
            for year in ("0001", "9999"):
                value = f"{year}-12-31" if "date" in kinds else f"{year}-12-31T23:59:59Z"
                r = client.get(url, params={param["name"]: value}, headers=admin_headers)
                assert r.status_code == 422, (path, param["name"], value, r.status_code, r.text)
                assert "2000-2099" in r.text, r.text
            seen += 1
    assert seen >= 15, seen  # the document still lists its date parameters
