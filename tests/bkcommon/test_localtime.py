"""The region's time zone: the setting, its deprecated alias, a bad name, and local text."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from api.services.notify.message import TicketFacts, ticket_event, ticket_opened
from bkcommon import localtime
from bkcommon.localtime import (
    fmt_local,
    local_date,
    region_zone,
    region_zone_name,
    time_zone_error,
    zone_label,
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BK_TIME_ZONE", raising=False)
    monkeypatch.delenv("BK_CONSOLE_TIME_ZONE", raising=False)
    localtime._resolve.cache_clear()  # so each test sees its own warnings


def test_default_is_china() -> None:
    assert region_zone_name() == "Asia/Shanghai"
    assert region_zone() == ZoneInfo("Asia/Shanghai")
    assert time_zone_error() is None


def test_setting_wins_over_the_deprecated_alias(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BK_CONSOLE_TIME_ZONE", "Asia/Tokyo")
    assert region_zone_name() == "Asia/Tokyo"
    monkeypatch.setenv("BK_TIME_ZONE", " Europe/Berlin ")
    assert region_zone_name() == "Europe/Berlin"
    monkeypatch.setenv("BK_TIME_ZONE", "")  # blank counts as unset
    assert region_zone_name() == "Asia/Tokyo"


def test_alias_alone_works_with_a_deprecation_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("BK_CONSOLE_TIME_ZONE", "Asia/Tokyo")
    with caplog.at_level(logging.WARNING, logger="bkcommon.localtime"):
        assert region_zone_name() == "Asia/Tokyo"
        assert region_zone_name() == "Asia/Tokyo"
    assert [r.getMessage() for r in caplog.records] == [
        "BK_CONSOLE_TIME_ZONE is deprecated; set BK_TIME_ZONE instead"
    ]  # once, not per call


@pytest.mark.parametrize("var", ["BK_TIME_ZONE", "BK_CONSOLE_TIME_ZONE"])
def test_unknown_name_is_a_config_error_and_falls_back_at_run_time(
    var: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(var, "Mars/Olympus")
    assert time_zone_error() == (
        f"{var}: 'Mars/Olympus' is not a known IANA time zone (e.g. Asia/Shanghai)"
    )
    with caplog.at_level(logging.WARNING, logger="bkcommon.localtime"):
        assert region_zone_name() == "Asia/Shanghai"
    assert "'Mars/Olympus' is not a known time zone; using Asia/Shanghai" in caplog.text
    monkeypatch.setenv(var, "../../etc/passwd")  # not a zone key at all
    assert time_zone_error() is not None
    assert region_zone_name() == "Asia/Shanghai"


def test_validate_config_reports_a_bad_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    from brightkitchen.cli import main

    monkeypatch.setenv("BK_TIME_ZONE", "Mars/Olympus")
    assert main(["api", "run", "--validate-config"]) == 2


def test_dst_free_zone() -> None:
    china = ZoneInfo("Asia/Shanghai")
    winter, summer = datetime(2026, 1, 15, 2, tzinfo=UTC), datetime(2026, 7, 15, 2, tzinfo=UTC)
    assert fmt_local(winter, china) == "2026-01-15 10:00"
    assert fmt_local(summer, china) == "2026-07-15 10:00"
    assert zone_label(summer, china) == "北京时间 China time, UTC+08:00"
    # 16:00 UTC is already the next day in China: days are counted locally
    assert local_date(datetime(2026, 12, 4, 16, tzinfo=UTC), china) == date(2026, 12, 5)
    assert local_date(datetime(2026, 12, 4, 15, 59, tzinfo=UTC), china) == date(2026, 12, 4)


def test_dst_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BK_TIME_ZONE", "Europe/Berlin")
    winter, summer = datetime(2026, 1, 15, 9, tzinfo=UTC), datetime(2026, 7, 15, 9, tzinfo=UTC)
    assert fmt_local(winter, show_zone=True) == "2026-01-15 10:00 (Europe/Berlin, UTC+01:00)"
    assert fmt_local(summer, show_zone=True) == "2026-07-15 11:00 (Europe/Berlin, UTC+02:00)"
    # the night the clocks go forward (2026-03-29 01:00 UTC): 00:59 UTC is 01:59, then 03:00
    assert fmt_local(datetime(2026, 3, 29, 0, 59, tzinfo=UTC)) == "2026-03-29 01:59"
    assert fmt_local(datetime(2026, 3, 29, 1, 0, tzinfo=UTC)) == "2026-03-29 03:00"
    assert local_date(datetime(2026, 7, 14, 22, 30, tzinfo=UTC)) == date(2026, 7, 15)
    assert local_date(datetime(2026, 1, 14, 22, 30, tzinfo=UTC)) == date(2026, 1, 14)


def test_fmt_local_edges() -> None:
    assert fmt_local(None) == "—"
    at = datetime(2026, 12, 5, 2, 0, 7, tzinfo=UTC)
    assert fmt_local(at, seconds=True) == "2026-12-05 10:00:07"
    with pytest.raises(ValueError, match="aware"):
        fmt_local(datetime(2026, 12, 5, 2))  # a naive time has no instant to convert


def _facts() -> TicketFacts:
    return TicketFacts(
        ticket_id=7,
        ticket_no="ZG-20261204-0007",
        site_id="school-001",
        site_name="东区第一小学食堂",
        rule="temp_high",
        subject="fridge-1",
        tier=2,
        title="冷藏温度超标 fridge over temperature limit",
        opened_at=datetime(2026, 12, 4, 18, 0, tzinfo=UTC),
        due_at=datetime(2026, 12, 5, 2, 0, tzinfo=UTC),
        link="https://bk.example/console/tickets/7",
    )


def test_notice_text_shows_local_time_and_payload_keeps_utc() -> None:
    msg = ticket_opened(_facts())
    assert "整改期限 Due: 2026-12-05 10:00 (北京时间 China time, UTC+08:00)" in msg.body
    assert "02:00" not in msg.body  # not the UTC wall clock a canteen officer misreads
    assert msg.payload["due_at"] == "2026-12-05T02:00:00Z"
    assert msg.payload["opened_at"] == "2026-12-04T18:00:00Z"
    facts = _facts()
    assert f"食堂 Site: {facts.site_name}\n" in msg.body  # its name; the id is for machines
    assert facts.site_id not in msg.body
    assert msg.payload["site_id"] == facts.site_id
    warning = ticket_event(_facts(), "warning", note="请尽快整改")
    assert "整改期限 Due: 2026-12-05 10:00 (北京时间 China time, UTC+08:00)" in warning.body
    assert warning.payload["due_at"] == "2026-12-05T02:00:00Z"


def test_notice_text_follows_the_configured_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BK_TIME_ZONE", "Asia/Urumqi")  # UTC+6: not Beijing time, named
    body = ticket_opened(_facts()).body
    assert "整改期限 Due: 2026-12-05 08:00 (Asia/Urumqi, UTC+06:00)" in body
    monkeypatch.setenv("BK_TIME_ZONE", "America/New_York")
    body = ticket_event(_facts(), "reminder").body
    assert "整改期限 Due: 2026-12-04 21:00 (America/New_York, UTC-05:00)" in body
