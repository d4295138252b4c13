"""The console's ``localToIso`` (i18n.js) in the browser: a datetime-local input read in the
region's zone gives the instant that reads back as the same wall time, on the days the clocks
change too (a rapid test's or an incident's time was an hour off there)."""

from __future__ import annotations

import json

import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from tests.console.conftest import Console

pytestmark = pytest.mark.slow

SCRIPT = """
const done = arguments[arguments.length - 1];
import("/console/static/i18n.js").then((m) => {
  const before = m.getTimeZone();
  const out = [];
  for (const [tz, local] of JSON.parse(arguments[0])) {
    m.setTimeZone(tz);
    const iso = m.localToIso(local);
    const back = new Intl.DateTimeFormat("sv-SE", { timeZone: tz, year: "numeric",
      month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23" })
      .format(new Date(iso)).replace(" ", "T");
    out.push([tz, local, iso, back]);
  }
  m.setTimeZone(before);
  done(JSON.stringify(out));
}, (e) => done(JSON.stringify({ error: String(e) })));
"""

CASES = [
    ("Asia/Shanghai", "2026-03-08T04:30"),
    ("Europe/Berlin", "2026-03-29T01:30"),  # the hour before spring-forward (01:00 UTC)
    ("Europe/Berlin", "2026-03-29T05:00"),
    ("Europe/Berlin", "2026-10-25T01:30"),  # summer time still, before fall-back
    ("America/New_York", "2026-03-08T04:30"),  # summer time already (07:00 UTC change)
    ("America/New_York", "2026-11-01T00:30"),
    ("America/New_York", "2026-11-01T04:00"),
]


def test_local_to_iso_reads_back_as_the_same_wall_time(
    module_console: Console, module_browser: WebDriver
) -> None:
    b = module_browser
    b.get(module_console.url + "/console/")
    b.set_script_timeout(20)
    got = json.loads(b.execute_async_script(SCRIPT, json.dumps(CASES)))
    assert isinstance(got, list), got
    for tz, local, iso, back in got:
        assert back == local, f"{tz}: {local} sent as {iso}, which is {back} there"
