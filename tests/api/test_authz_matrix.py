"""The authorisation matrix: every role x every /api/v1 route x own and other site/region.

Routes are read from ``app.routes``; a route missing from ``ROUTES`` fails the test, so a
new endpoint cannot ship unclassified. Leaks are found by text: every row of the test
world carries its site id, so an out-of-scope site id in a response body is a leak.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from api.app import API_PREFIX, create_app
from api.settings import ApiSettings
from bkcommon.settings import CommonSettings
from tests.api.authz_world import (
    ANY_WRITERS,
    EXPECTED_SCOPE,
    ROLES,
    SITES,
    WRITERS,
    World,
)

Kind = Literal[
    "public",
    "signed",
    "login",
    "logout",
    "self",
    "list",
    "read",
    "write",
    "admin",
    "gated",
    "users",
]
_counter = itertools.count()


@dataclass(frozen=True)
class Spec:
    """How a route is authorised and what a call of it needs."""

    kind: Kind
    body: Callable[[], dict[str, Any]] | None = None
    query: dict[str, str] = field(default_factory=dict)
    ok: frozenset[int] = frozenset({200})
    roles: frozenset[str] = WRITERS  # who may write ("write" routes)
    strict: bool = True  # the call is complete: check own 2xx / other 404 exactly
    site_query: bool = False  # the site is named by the ``site_id`` query parameter
    regulator_ok: frozenset[int] = frozenset({404})  # "users": the regulator's answer


AUTHORITY = frozenset({"admin", "regulator"})  # deadlines, triage, complaints, publication
INSPECTORS = AUTHORITY | {"inspector"}  # who plans, records and signs inspections
# a ticket's check (the lifecycle decides which action), its comments, triage decisions
CHECKERS = ANY_WRITERS


def _loose_write(roles: frozenset[str] = INSPECTORS) -> Spec:
    """A write whose body the matrix does not build: only the role gate is checked exactly."""
    return Spec("write", roles=roles, strict=False)


_SPAN = {"from": "2026-03-02T07:00:00Z", "to": "2026-03-02T09:00:00Z"}

ROUTES: dict[tuple[str, str], Spec] = {
    ("GET", "/healthz"): Spec("public"),
    ("GET", "/metrics"): Spec("public"),
    ("POST", "/auth/login"): Spec("login"),
    ("POST", "/auth/logout"): Spec("logout"),
    ("GET", "/auth/me"): Spec("self"),
    ("POST", "/auth/rotate"): Spec("gated", roles=frozenset({"device"})),
    ("GET", "/alarms"): Spec("list"),
    ("POST", "/alarms/{alarm_id}/acknowledge"): Spec("write", body=lambda: {"note": "on it"}),
    ("GET", "/tickets"): Spec("list"),
    ("GET", "/tickets/{ticket_id}"): Spec("read"),
    ("GET", "/sites"): Spec("list"),
    ("GET", "/sensors/{sensor_id}/readings"): Spec("read", query=_SPAN),
    ("GET", "/notifications"): Spec("list"),
    # user administration: admins all; a regulator its region's users ("victim" is an
    # officer of site-b1 in dist-b: not found) and no grant beyond it (an insurer: 403)
    ("GET", "/users"): Spec("users", regulator_ok=frozenset({200})),
    ("GET", "/users/options"): Spec("users", regulator_ok=frozenset({200})),
    (
        "POST",
        "/users",
    ): Spec(
        "users",
        body=lambda: {
            "username": f"new-{next(_counter)}",
            "password": "long enough password",
            "role": "insurer",
            "insurer": "PICC",
            "site_ids": ["site-b1"],
        },
        ok=frozenset({201}),
        regulator_ok=frozenset({403}),
    ),
    ("PATCH", "/users/{username}"): Spec("users", body=lambda: {"site_ids": ["site-b1"]}),
    ("POST", "/users/{username}/password"): Spec(
        "users", body=lambda: {"password": "another long password"}
    ),
    ("POST", "/users/devices"): Spec(
        "admin",
        body=lambda: {"name": f"box-{next(_counter)}", "site_ids": ["site-b1"]},
        ok=frozenset({201}),
    ),
    ("POST", "/users/{username}/disable"): Spec("users"),
    ("POST", "/users/{username}/enable"): Spec("users"),
    ("GET", "/users/tokens"): Spec("admin"),
    ("POST", "/users/tokens/{token_id}/revoke"): Spec("admin", ok=frozenset({404})),
    ("POST", "/users/{username}/tokens/revoke"): Spec("users"),
    # inspections, insurance and risk
    ("POST", "/checklist-templates"): _loose_write(AUTHORITY),  # shared by every region
    ("POST", "/checklist-templates/standard"): Spec(  # created once: 201, then 200
        "write", roles=AUTHORITY, strict=False, ok=frozenset({200, 201})
    ),
    ("GET", "/checklist-templates"): Spec("self"),  # shared templates, no site data
    ("POST", "/inspections"): _loose_write(),
    ("GET", "/inspections"): Spec("list"),
    ("POST", "/inspections/plan"): _loose_write(),
    ("GET", "/inspections/{inspection_id}"): Spec("read"),
    ("POST", "/inspections/{inspection_id}/photos"): _loose_write(),
    ("POST", "/inspections/{inspection_id}/sign"): _loose_write(),
    ("GET", "/inspections/{inspection_id}/notice"): Spec("read"),
    ("POST", "/policies"): _loose_write(AUTHORITY),
    ("GET", "/policies"): Spec("list"),
    ("GET", "/policies/in-force"): Spec("read", site_query=True),
    ("GET", "/tickets/{ticket_id}/policy"): Spec("read"),
    ("POST", "/incidents"): _loose_write(WRITERS),
    ("GET", "/incidents"): Spec("list"),
    ("GET", "/incidents/{incident_id}"): Spec("read"),
    ("GET", "/incidents/{incident_id}/bundle.zip"): Spec("read"),
    ("POST", "/incidents/{incident_id}/claim"): _loose_write(WRITERS),
    ("GET", "/incidents/{incident_id}/claim"): Spec("read"),
    ("GET", "/insurance/risk-record"): Spec("read", site_query=True),
    ("GET", "/insurance/risk-records"): Spec("list"),
    ("GET", "/insurance/risk-records.csv"): Spec("list"),
    ("GET", "/insurance/risk-records.xlsx"): Spec("list"),
    ("GET", "/sites/{site_id}/risk"): Spec("read"),
    ("POST", "/risk/compute"): _loose_write(frozenset({"admin"})),
    # deadline overrides and triage modes: admins and regulators (in their region) only
    ("GET", "/settings/deadlines"): Spec("gated", roles=AUTHORITY),
    ("PUT", "/settings/deadlines"): _loose_write(AUTHORITY),
    ("GET", "/settings/triage"): Spec("gated", roles=AUTHORITY),
    ("PUT", "/settings/triage"): _loose_write(AUTHORITY),
    ("GET", "/settings/calendar"): Spec("gated", roles=AUTHORITY),
    ("PUT", "/settings/calendar"): Spec(
        "admin", body=lambda: {"days": [{"day": "2030-10-01", "working": False, "note": "国庆节"}]}
    ),
    # the rectification loop: per-action rules live in the lifecycle, so only the gate
    # (no read-only role writes) and the zero-leak / no-change-elsewhere checks apply
    # edge-box enrolment: admins create codes; a box redeems one with the code itself
    ("POST", "/enrol/codes"): Spec(
        "admin", body=lambda: {"box_id": "no-such-box"}, ok=frozenset({422})
    ),
    ("POST", "/enrol"): Spec("signed"),
    ("GET", "/ack/{token}"): Spec("signed"),
    ("POST", "/ack/{token}"): Spec("signed"),
    ("POST", "/tickets"): _loose_write(WRITERS),
    # the canteen's rectification and its photos are the writers'; an inspector (执法检查人员)
    # checks one (verify, reject, reopen), the lifecycle refusing it the other actions
    **{
        ("POST", f"/tickets/{{ticket_id}}/{action}"): _loose_write(WRITERS)
        for action in ("rectify", "evidence")
    },
    **{
        ("POST", f"/tickets/{{ticket_id}}/{action}"): _loose_write(CHECKERS)
        for action in ("acknowledge", "verify", "reject", "reopen", "close", "confirm-close")
    },
    ("GET", "/tickets/{ticket_id}/actions"): Spec("read"),
    ("POST", "/tickets/{ticket_id}/comments"): Spec(
        "write", body=lambda: {"text": "seen on the round"}, ok=frozenset({201}), roles=CHECKERS
    ),
    # alert channels: writers see their sites' people; a test send is a loose write
    ("GET", "/alerts/channels"): Spec("gated", roles=WRITERS),
    ("POST", "/alerts/channels/{person_id}/{index}/test"): _loose_write(WRITERS),
    ("GET", "/tickets/{ticket_id}/evidence"): Spec("read"),
    ("GET", "/evidence/{sha256}"): Spec("read", strict=False),
    ("GET", "/reviews"): Spec("list"),
    ("GET", "/reviews/stats"): Spec("list"),
    ("GET", "/reviews/export.zip"): Spec("list", query=_SPAN),
    ("POST", "/reviews/{review_id}/confirm"): _loose_write(CHECKERS),
    ("POST", "/reviews/{review_id}/dismiss"): _loose_write(CHECKERS),
    # rapid tests and purchase records: writers record for their sites, every role reads
    ("POST", "/purchases"): _loose_write(WRITERS),
    ("GET", "/purchases"): Spec("list"),
    ("GET", "/purchases/{purchase_id}"): Spec("read"),
    ("GET", "/purchases/{purchase_id}/photo"): Spec("read", strict=False),  # no photo: 404
    ("PUT", "/purchases/{purchase_id}/photo"): _loose_write(WRITERS),
    ("POST", "/rapid-tests"): _loose_write(WRITERS),
    ("POST", "/rapid-tests/import"): _loose_write(WRITERS),
    ("GET", "/rapid-tests"): Spec("list"),
    ("GET", "/rapid-tests/flags"): Spec("list"),
    ("GET", "/rapid-tests/stats"): Spec("list"),
    ("GET", "/rapid-tests/{test_id}"): Spec("read"),
    ("GET", "/rapid-tests/{test_id}/photo"): Spec("read", strict=False),  # no photo: 404
    ("PUT", "/rapid-tests/{test_id}/photo"): _loose_write(WRITERS),
    # public complaints and publication: admins and regulators (their region) only;
    # another region's complaint or region is 404 to a regulator
    ("GET", "/complaints"): Spec("gated", roles=AUTHORITY),
    ("GET", "/complaints/{complaint_id}"): Spec("gated", roles=AUTHORITY, ok=frozenset({200, 404})),
    ("GET", "/complaints/{complaint_id}/photos/{sha256}"): Spec(
        "gated",
        roles=AUTHORITY,
        ok=frozenset({404}),  # the world's complaints have none
    ),
    ("POST", "/complaints/{complaint_id}/confirm"): _loose_write(AUTHORITY),
    ("POST", "/complaints/{complaint_id}/dismiss"): _loose_write(AUTHORITY),
    ("GET", "/publication/{region_id}"): Spec(
        "gated",
        roles=AUTHORITY,
        ok=frozenset({404}),  # the world publishes nothing
    ),
    ("PUT", "/publication/{region_id}"): _loose_write(AUTHORITY),
    # the officer's daily duties: writers record for their sites; the duties are set by an
    # admin, a regulator or the director; the world's sites keep none yet (a read is 404)
    ("PUT", "/sites/{site_id}/duties"): _loose_write(frozenset({"admin", "regulator", "director"})),
    ("GET", "/sites/{site_id}/duties"): Spec("read", strict=False),
    ("GET", "/duties/checklists"): Spec("self"),  # the defaults, no site data
    ("GET", "/duties/today"): Spec("list"),
    ("PUT", "/duties/checklists"): _loose_write(AUTHORITY),
    **{
        (method, f"/sites/{{site_id}}/{name}"): (
            _loose_write(WRITERS) if method == "POST" else Spec("read")
        )
        for name in ("duty-photos", "daily-checks", "health-checks", "food-samples")
        for method in ("POST", "GET")
        if (method, name) != ("GET", "duty-photos")
    },
    # the weekly review and the report's signature are the director's; writers draft
    ("GET", "/sites/{site_id}/duty-photos/{sha256}"): Spec("read", strict=False),  # none: 404
    ("POST", "/sites/{site_id}/weekly-reviews"): _loose_write(frozenset({"director"})),
    ("GET", "/sites/{site_id}/weekly-reviews"): Spec("read"),
    ("POST", "/sites/{site_id}/monthly-reports"): _loose_write(WRITERS),
    ("PATCH", "/sites/{site_id}/monthly-reports"): _loose_write(WRITERS),
    ("POST", "/sites/{site_id}/monthly-reports/sign"): _loose_write(frozenset({"director"})),
    ("GET", "/sites/{site_id}/monthly-reports"): Spec("read"),
    ("GET", "/sites/{site_id}/meals"): Spec("read"),  # the world has no meal schedule: []
    # the disinfection ledger: another site by filter answers 404, as a read of it would
    **{
        ("GET", f"/disinfection/{name}"): Spec("read", site_query=True)
        for name in ("cycles", "checks", "cycles.csv", "cycles.xlsx")
    },
    # 包保 supervision: cadres (regulators) and admins record visits and see coverage
    ("POST", "/supervision/visits"): _loose_write(AUTHORITY),
    ("GET", "/supervision/visits"): Spec("list"),
    ("PUT", "/supervision/frequency"): _loose_write(AUTHORITY),
    ("GET", "/supervision/checklist"): Spec("self"),  # the default items, no site data
    **{
        ("GET", f"/supervision/{name}"): Spec("gated", roles=AUTHORITY)
        for name in ("coverage", "coverage.csv", "coverage.xlsx")
    },
}


# The only routes a device token may call; every other one answers it 403 (api.auth.device).
DEVICE_ROUTES = frozenset({("GET", "/auth/me"), ("POST", "/auth/logout"), ("POST", "/auth/rotate")})

# Lists where the world has a row of every site: each own site must show up.
OWN_DATA_LISTS = frozenset(
    {"/alarms", "/tickets", "/sites", "/notifications", "/inspections", "/incidents", "/policies"}
)


def _flat_routes(app: FastAPI) -> Iterator[tuple[str, APIRoute]]:
    """(full path, route) of every API route, through included routers of any FastAPI."""
    for route in app.routes:
        if isinstance(route, APIRoute):
            yield route.path, route
        elif hasattr(route, "effective_route_contexts"):  # FastAPI >= 0.16x include
            for ctx in route.effective_route_contexts():
                if isinstance(ctx.original_route, APIRoute):
                    yield ctx.path, ctx.original_route


def _api_routes(app: FastAPI) -> Iterator[tuple[str, str, APIRoute]]:
    """(method, path below /api/v1, route) of every route under /api/v1."""
    for path, route in _flat_routes(app):
        if path.startswith(API_PREFIX):
            for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
                yield method, path.removeprefix(API_PREFIX), route


def _param_values(world: World, site: str) -> dict[str, str]:
    """The value of each path parameter that points at ``site``'s data."""
    return {
        "alarm_id": str(world.alarm[site]),
        "ticket_id": str(world.ticket[site]),
        "sensor_id": world.sensor[site],
        "notification_id": str(world.notification[site]),
        "site_id": site,
        "username": "victim",
        "token_id": "987654321",  # no such token: revoking real ones is tested in test_auth
        "sha256": world.sha[site],
        "person_id": {"site-a1": "p-director-a1", "site-b1": "p-officer-b1"}.get(site, "p-none"),
        "index": "0",
        **{name: str(ids[site]) for name, ids in world.extra.items()},
    }


def _url(path: str, values: dict[str, str]) -> str:
    names = re.findall(r"{(\w+)}", path)
    missing = [n for n in names if n not in values]
    assert not missing, f"{path}: no test value for path parameter(s) {missing}"
    return API_PREFIX + path.format(**{n: values[n] for n in names})


def _leaks(text: str, allowed: frozenset[str], echo: tuple[str, ...] = ()) -> list[str]:
    """Out-of-scope site ids in ``text``, after removing what the caller itself sent."""
    for value in sorted(echo, key=len, reverse=True):
        text = text.replace(value, "")
    return [s for s in SITES if s not in allowed and s in text]


def _fingerprint(conn: psycopg.Connection[Any], site: str) -> tuple[Any, ...]:
    """A hash of every row of ``site`` that a write could change."""
    row = conn.execute(
        """SELECT (SELECT md5(coalesce(string_agg(a::text, '|' ORDER BY a.id), ''))
                   FROM alarms a WHERE a.site_id = %(s)s),
                  (SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t.id), ''))
                   FROM tickets t WHERE t.site_id = %(s)s),
                  (SELECT count(*) FROM ticket_events e JOIN tickets t ON t.id = e.ticket_id
                   WHERE t.site_id = %(s)s),
                  (SELECT count(*) FROM findings f WHERE f.site_id = %(s)s)""",
        {"s": site},
    ).fetchone()
    assert row is not None
    return tuple(row)


@pytest.fixture
def app(db_url: str, settings: ApiSettings) -> FastAPI:
    return create_app(settings, common=CommonSettings(database_url=db_url))


def test_every_api_route_is_classified_and_documents_its_errors(app: FastAPI) -> None:
    seen = set()
    spec_doc = app.openapi()["paths"]
    assert len(list(_api_routes(app))) >= len(ROUTES) // 2  # the walk finds routes at all
    for method, path, route in _api_routes(app):
        key = (method, path)
        seen.add(key)
        assert key in ROUTES, f"route {method} {path} is not in the authorisation matrix"
        spec = ROUTES[key]
        responses = spec_doc[API_PREFIX + path][method.lower()]["responses"]
        if spec.kind not in ("public", "signed", "login"):
            assert {"401", "403"} <= set(responses), f"{method} {path} must document 401/403"
        if "{" in path and spec.kind != "signed":
            assert "404" in responses, f"{method} {path} must document 404"
        assert route.description, f"{method} {path} needs a docstring"
    stale = set(ROUTES) - seen
    assert not stale, f"classified routes that no longer exist: {stale}"


def test_unauthenticated_and_bad_tokens_get_401(app: FastAPI, world: World) -> None:
    with TestClient(app) as client:
        for method, path, _route in _api_routes(app):
            spec = ROUTES.get((method, path))
            if spec is None:
                continue  # reported by the classification test
            url = _url(path, {**_param_values(world, "site-a1"), "token": "bk-forged-link"})
            body = spec.body() if spec.body else None
            if spec.kind == "public":
                assert client.request(method, url).status_code == 200, url
                continue
            if spec.kind == "signed":  # its own signed token instead of a login
                r = client.request(method, url)
                assert 400 <= r.status_code < 500, (method, url, r.status_code)
                assert not _leaks(r.text, frozenset(), ("site-a1",))
                continue
            if spec.kind == "login":
                continue
            for headers in ({}, {"Authorization": "Bearer bk_not-a-token"}):
                r = client.request(method, url, json=body, params=spec.query, headers=headers)
                assert r.status_code == 401, (method, url, headers, r.text)
                assert r.headers["www-authenticate"] == "Bearer"
                assert not _leaks(r.text, frozenset())
            r = client.request(method, url, json=body, cookies={"bk_session": "bk_bogus"})
            assert r.status_code == 401


@pytest.mark.parametrize("role", ROLES)
def test_matrix(role: str, app: FastAPI, world: World, conn: psycopg.Connection[Any]) -> None:
    scope = EXPECTED_SCOPE[role]
    failures: list[str] = []
    before = {s: _fingerprint(conn, s) for s in SITES}
    calls = 0

    def check(cond: bool, what: str) -> None:
        if not cond:
            failures.append(what)

    with TestClient(app, headers=world.headers(role)) as client:
        for method, path, route in _api_routes(app):
            spec = ROUTES.get((method, path))
            if spec is None:
                failures.append(f"{method} {path} is not classified")
                continue
            if spec.kind in ("public", "signed", "login", "logout"):
                continue  # public; sign-in and sign-out have their own tests
            if role == "device" and (method, path) not in DEVICE_ROUTES:
                # refused before the route runs, whatever the site: one call per route
                url = _url(path, _param_values(world, "site-a1"))
                body = spec.body() if spec.body else None
                r = client.request(method, url, json=body, params=spec.query)
                calls += 1
                got = f"device {method} {url} -> {r.status_code} {r.text[:200]}"
                check(r.status_code == 403, f"device not refused: {got}")
                check(not _leaks(r.text, frozenset()), f"LEAK: {got}")
                continue
            query_names = {p.alias for p in route.dependant.query_params}
            for site in SITES:
                values = _param_values(world, site)
                url = _url(path, values)
                body = spec.body() if spec.body else None
                query = {**spec.query, **({"site_id": site} if spec.site_query else {})}
                r = client.request(method, url, json=body, params=query)
                calls += 1
                got = f"{role} {method} {url} ({site}) -> {r.status_code} {r.text[:200]}"
                sent = tuple(v for k, v in values.items() if "{" + k + "}" in path)
                echo = sent + ((site,) if spec.site_query else ()) if r.status_code >= 400 else ()
                leaks = _leaks(r.text, scope, echo)
                if spec.kind == "admin":
                    check(r.status_code in (spec.ok if role == "admin" else {403}), got)
                elif spec.kind == "users":
                    want = {"admin": spec.ok, "regulator": spec.regulator_ok}.get(role, {403})
                    check(r.status_code in want, got)
                    check(not leaks, f"LEAK {leaks}: {got}")
                elif spec.kind == "gated":  # a read for some roles; each sees its own part
                    check(r.status_code in (spec.ok if role in spec.roles else {403}), got)
                    check(not leaks, f"LEAK {leaks}: {got}")
                elif spec.kind in ("self", "list"):
                    check(r.status_code == 200, got)
                    check(not leaks, f"LEAK {leaks}: {got}")
                elif spec.kind == "read" and spec.strict:
                    check(r.status_code == (200 if site in scope else 404), got)
                    check(not leaks, f"LEAK {leaks}: {got}")
                elif spec.kind == "read":
                    ok = r.status_code < 500 and r.status_code not in (401, 403)
                    check(ok if site in scope else r.status_code == 404, got)
                    check(not leaks, f"LEAK {leaks}: {got}")
                elif spec.kind == "write":
                    hidden = site not in scope and "{" in path
                    if role not in spec.roles:
                        # read-only roles are refused by their role, before any state
                        # check; outside their sites 404 says no more. A writer outside
                        # a loose write's roles may meet a lifecycle 409 first (the
                        # fingerprint below proves nothing changed).
                        refused = {403, 404} if hidden else {403}
                        if not spec.strict and role in WRITERS:
                            refused |= {409}
                        check(r.status_code in refused, got)
                    elif spec.strict:
                        check(r.status_code in (spec.ok if site in scope else {404}), got)
                    elif hidden:  # no body built: any refusal, and nothing may change
                        check(400 <= r.status_code < 500 and r.status_code != 401, got)
                    else:
                        check(r.status_code < 500, got)
                    check(not leaks, f"LEAK {leaks}: {got}")
                if spec.kind == "list" and "site_id" in query_names:
                    # asking for another site by filter must not open a door
                    f = client.request(method, url, params={**spec.query, "site_id": site})
                    calls += 1
                    check(f.status_code == 200, f"{got} filtered -> {f.status_code}")
                    check(not _leaks(f.text, scope), f"LEAK by filter {site}: {got}")
                if spec.kind in ("self", "list") or ("{" not in path and not spec.site_query):
                    break  # same URL for every site
            if spec.kind == "list" and path in OWN_DATA_LISTS:
                r = client.request(method, API_PREFIX + path, params=spec.query)
                missing = [s for s in scope if s not in r.text]
                check(not missing, f"{role} {method} {path}: own sites missing {missing}")

        me = client.get(f"{API_PREFIX}/auth/me").json()
        check(me["role"] == role, f"me: {me}")
        check(me["all_sites"] == (role == "admin"), f"me: {me}")
        if role != "admin":
            check(set(me["site_ids"]) == scope, f"me scope {me['site_ids']} != {sorted(scope)}")
        check(me["read_only"] == (role not in ANY_WRITERS), f"me: {me}")

    after = {s: _fingerprint(conn, s) for s in SITES}
    for site in SITES:
        if site not in scope or role not in ANY_WRITERS:
            check(after[site] == before[site], f"{role} changed {site}, outside what it may write")
    assert calls > 0
    assert not failures, "\n".join(failures)


def test_regulator_of_the_province_sees_every_district(
    app: FastAPI, world: World, conn: psycopg.Connection[Any]
) -> None:
    from tests.api.conftest import make_user_token

    token = make_user_token(conn, username="reg-prov", role="regulator", region_id="prov")
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
        sites = client.get(f"{API_PREFIX}/sites").json()
        assert [s["id"] for s in sites["data"]] == sorted(SITES)
        tickets = client.get(f"{API_PREFIX}/tickets").json()
        assert tickets["count"] == len(SITES)


def test_policies_add_insured_sites_when_the_table_exists(
    app: FastAPI, world: World, conn: psycopg.Connection[Any]
) -> None:
    """Insurer scope = explicit grants plus the sites its policies cover."""
    conn.execute(
        """INSERT INTO policies (site_id, insurer, policy_no, cover_cny, premium_cny,
                                 starts_on, ends_on)
           VALUES ('site-b1', 'PICC', 'P-extra-b1', 5000000, 3000, '2026-01-01', '2026-12-31')"""
    )
    with TestClient(app, headers=world.headers("insurer")) as client:
        me = client.get(f"{API_PREFIX}/auth/me").json()
        assert me["site_ids"] == ["site-a2", "site-b1"]
        alarms = client.get(f"{API_PREFIX}/alarms").json()
        assert sorted(a["site_id"] for a in alarms["data"]) == ["site-a2", "site-b1"]


def test_regulator_manages_the_users_of_its_region_only(
    app: FastAPI, world: World, conn: psycopg.Connection[Any]
) -> None:
    """reg-a (dist-a) creates, edits, resets and disables users of dist-a and nothing more."""
    from tests.api.conftest import make_user_token

    users = f"{API_PREFIX}/users"
    new = {"password": "long enough password"}
    with TestClient(app, headers=world.headers("regulator")) as client:
        listed = {u["username"] for u in client.get(users).json()["data"]}
        # not victim (dist-b), root, insurer, box
        assert listed == {"reg-a", "insp-a", "off-a1", "dir-a1"}
        options = client.get(f"{users}/options").json()
        assert options["roles"] == ["regulator", "inspector", "officer", "director"]
        assert {s["id"] for s in options["sites"]} == {"site-a1", "site-a2", "site-a3"}
        assert {r["id"] for r in options["regions"]} == {"dist-a", "town-a3"}

        made = client.post(
            users, json={**new, "username": "off-a2", "role": "officer", "site_ids": ["site-a2"]}
        )
        assert made.status_code == 201, made.text
        town = client.post(
            users, json={**new, "username": "reg-town", "role": "regulator", "region_id": "town-a3"}
        )
        assert town.status_code == 201, town.text
        inspector = client.post(
            users, json={**new, "username": "insp-t", "role": "inspector", "region_id": "town-a3"}
        )
        assert inspector.status_code == 201, inspector.text
        assert inspector.json()["role"] == "inspector"

        def refused(body: dict[str, Any], reason: str, path: str = users) -> None:
            r = client.request("PATCH" if path != users else "POST", path, json=body)
            assert r.status_code == 403, (body, r.status_code, r.text)
            assert r.headers["x-bk-reason"] == reason, r.headers
            assert not _leaks(r.text, EXPECTED_SCOPE["regulator"], ("site-b1",))

        refused({**new, "username": "x1", "role": "admin"}, "users_grant_admin")
        refused({**new, "username": "x2", "role": "insurer", "insurer": "PICC"}, "users_grant_role")
        refused(
            {**new, "username": "x3", "role": "regulator", "region_id": "dist-b"},
            "users_other_region",
        )
        refused(
            {**new, "username": "x3", "role": "regulator", "region_id": "prov"},
            "users_other_region",
        )
        refused(
            {**new, "username": "x3", "role": "inspector", "region_id": "dist-b"},
            "users_other_region",
        )
        refused({**new, "username": "x7", "role": "inspector"}, "users_other_region")
        refused(
            {**new, "username": "x4", "role": "officer", "site_ids": ["site-a1", "site-b1"]},
            "users_site_outside",
        )
        refused(
            {**new, "username": "x5", "role": "director", "person_id": "p-officer-b1"},
            "users_person_outside",
        )
        no_site = client.post(users, json={**new, "username": "x6", "role": "officer"})
        assert no_site.status_code == 422
        assert conn.execute("SELECT count(*) FROM users WHERE username LIKE 'x_'").fetchone() == (
            0,
        )

        # edit roles and canteens of its own users, never beyond the region
        r = client.patch(
            f"{users}/off-a2", json={"role": "director", "site_ids": ["site-a2", "site-a3"]}
        )
        assert r.status_code == 200, r.text
        assert (r.json()["role"], r.json()["site_ids"]) == ("director", ["site-a2", "site-a3"])
        refused({"site_ids": ["site-b1"]}, "users_site_outside", f"{users}/off-a2")
        refused({"role": "admin"}, "users_grant_admin", f"{users}/off-a2")
        refused(
            {"role": "regulator", "region_id": "dist-b"}, "users_other_region", f"{users}/off-a2"
        )
        refused({"role": "officer"}, "users_self", f"{users}/reg-a")

        # another region's user is not found, whatever is asked of it
        for method, path, body in (
            ("PATCH", "victim", {"site_ids": ["site-a1"]}),
            ("POST", "victim/password", {"password": "taken over now"}),
            ("POST", "victim/disable", None),
            ("POST", "victim/enable", None),
            ("POST", "victim/tokens/revoke", None),
            ("POST", "root/disable", None),
            ("POST", "ins-a2/disable", None),
            ("POST", "box-a1/disable", None),
        ):
            r = client.request(method, f"{users}/{path}", json=body)
            assert r.status_code == 404, (method, path, r.status_code, r.text)
        assert client.get(f"{users}/tokens").status_code == 403
        assert (
            client.post(f"{users}/devices", json={"name": "b", "site_ids": ["site-a1"]}).status_code
            == 403
        )

        # reset credentials: the old session ends, the new password signs in
        old = make_user_token(conn, username="off-a3", role="officer", site_ids=("site-a3",))
        officer = {"Authorization": f"Bearer {old}"}
        assert client.get(f"{API_PREFIX}/auth/me", headers=officer).status_code == 200
        reset = client.post(f"{users}/off-a3/password", json={"password": "a fresh password"})
        assert reset.status_code == 200, reset.text
        assert reset.json()["revoked"] == 1
        assert client.get(f"{API_PREFIX}/auth/me", headers=officer).status_code == 401
        login = {"username": "off-a3", "password": "a fresh password"}
        sign_in = f"{API_PREFIX}/auth/login"
        assert client.post(sign_in, json=login, headers=officer).status_code == 200
        assert client.post(f"{users}/off-a3/disable").json()["active"] is False
        assert client.post(sign_in, json=login, headers=officer).status_code == 401
        assert client.post(f"{users}/off-a3/enable").json()["active"] is True
        assert client.post(sign_in, json=login, headers=officer).status_code == 200
        assert client.post(f"{users}/reg-a/disable").headers["x-bk-reason"] == "users_self"

    # a regulator of the town below manages none of dist-a's users, nor its own superior
    town_token = make_user_token(conn, username="reg-t", role="regulator", region_id="town-a3")
    with TestClient(app, headers={"Authorization": f"Bearer {town_token}"}) as client:
        listed = {u["username"] for u in client.get(users).json()["data"]}
        assert listed == {"reg-town", "insp-t", "reg-t", "off-a3"}  # site-a3 lies in the town
        assert client.post(f"{users}/reg-a/disable").status_code == 404
        assert client.post(f"{users}/off-a1/disable").status_code == 404
    actions = [
        r[0]
        for r in conn.execute(
            "SELECT action FROM audit_log WHERE actor = 'reg-a' ORDER BY id"
        ).fetchall()
    ]
    assert {"user.create", "user.update", "user.password_reset", "user.disable"} <= set(actions)


def test_inspector_works_the_inspection_workflow_and_nothing_else(
    app: FastAPI, world: World, conn: psycopg.Connection[Any]
) -> None:
    """insp-a (dist-a) plans, records and signs inspections and checks rectifications in its
    region; the canteen's own steps and every administration are refused with a reason."""
    api = API_PREFIX
    record = {
        "site_id": "site-a2",
        "kind": "routine",
        "inspectors": ["insp-a"],
        "started_at": "2026-03-02T09:00:00+08:00",
        "items": [
            {"code": "m1", "result": "fail", "note": "no mask", "tier": 2, "rule": "no_mask"}
        ],
    }
    with TestClient(app, headers=world.headers("inspector")) as client:
        planned = client.post(f"{api}/inspections/plan", json={"n": 5, "seed": 7})
        assert planned.status_code == 200, planned.text
        assert {s["site_id"] for s in planned.json()["sites"]} <= EXPECTED_SCOPE["inspector"]
        made = client.post(f"{api}/inspections", json=record)
        assert made.status_code == 201, made.text
        signed = client.post(f"{api}/inspections/{made.json()['id']}/sign", json={})
        assert signed.status_code < 300, signed.text
        other = client.post(f"{api}/inspections", json={**record, "site_id": "site-b1"})
        assert other.status_code == 404, other.text  # another region's canteen

        # a rectified ticket of its region: the inspector may verify it, not the canteen's steps
        tid = world.ticket["site-a1"]
        conn.execute("UPDATE tickets SET status = 'rectified' WHERE id = %s", (tid,))
        actions = client.get(f"{api}/tickets/{tid}/actions").json()
        assert sorted(actions) == ["reject", "verify"]
        closed = client.post(f"{api}/tickets/{tid}/close", json={"note": "x"})
        assert closed.status_code == 403, closed.text  # closing unrectified is the regulator's
        comment = client.post(f"{api}/tickets/{tid}/comments", json={"text": "re-checked"})
        assert comment.status_code == 201, comment.text
        verified = client.post(f"{api}/tickets/{tid}/verify", json={})
        assert verified.status_code == 200, verified.text
        assert verified.json()["status"] == "closed"
        opened = world.ticket["site-a2"]
        refused = client.post(f"{api}/tickets/{opened}/acknowledge", json={})
        assert refused.status_code == 403, refused.text
        assert "inspector" in refused.json()["detail"]

        # users, settings, channels, publication, insurance, templates, the canteen's records
        for method, path, body in (
            ("GET", "/users", None),
            ("POST", "/users", {"username": "z", "password": "long enough pw", "role": "officer"}),
            ("GET", "/settings/deadlines", None),
            ("PUT", "/settings/triage", {"region_id": "dist-a", "mode": "review"}),
            ("GET", "/alerts/channels", None),
            ("PUT", "/publication/dist-a", {}),
            ("POST", "/policies", {}),
            ("POST", "/checklist-templates", {}),
            ("POST", "/checklist-templates/standard", None),
            ("PUT", "/duties/checklists", {}),
            ("POST", "/supervision/visits", {}),
            ("POST", f"/alarms/{world.alarm['site-a1']}/acknowledge", {"note": "x"}),
            ("POST", "/tickets", {"site_id": "site-a1", "rule": "other", "note": "x"}),
        ):
            r = client.request(method, f"{api}{path}", json=body)
            assert r.status_code == 403, (method, path, r.status_code, r.text)
            assert r.json()["detail"] == "role inspector may not do this", (path, r.text)
    events = conn.execute(
        "SELECT kind, actor FROM ticket_events WHERE ticket_id = %s ORDER BY id DESC LIMIT 1",
        (world.ticket["site-a1"],),
    ).fetchone()
    assert events == ("verified", "insp-a")
