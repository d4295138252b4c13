"""The broker ACL of a site's gateway covers its disinfection cabinets' smart plugs: the
own ``…/power`` topic of its sensors and the Zigbee2MQTT state topic of each plug."""

from __future__ import annotations

import psycopg

from bkcommon.sitefile import parse_site_file
from brightkitchen.mqtt_accounts import registry_view
from brightkitchen.mqtt_auth import Account, AccountKind, account_topics
from brightkitchen.registry import sync_registry


def test_gateway_may_publish_its_plugs(db_url: str) -> None:
    data = {
        "regions": [{"id": "d", "name": "D"}],
        "sites": [
            {
                "id": "s1",
                "name": "S",
                "region": "d",
                "sensors": [
                    {"id": "f1", "profile": "fridge", "zigbee_name": "probe-f1"},
                    {
                        "id": "cab-1",
                        "profile": "disinfection",
                        "cabinet": {"plug": {"zigbee_name": "plug-cab-1"}},
                    },
                ],
            },
            {"id": "s2", "name": "T", "region": "d"},
        ],
    }
    with psycopg.connect(db_url, autocommit=True) as conn:
        sync_registry(conn, parse_site_file(data))
        view = registry_view(conn)
    assert view.site_zigbee == {"s1": ("probe-f1", "plug-cab-1")}
    lines = account_topics(Account("gw.s1", AccountKind.GATEWAY, "s1", "x"), view)
    assert lines is not None
    assert ("write", "bk/v1/s1/sensor/+/power") in lines
    assert ("write", "zigbee2mqtt/plug-cab-1") in lines
    other = account_topics(Account("gw.s2", AccountKind.GATEWAY, "s2", "x"), view)
    assert other is not None
    assert not [t for _a, t in other if "plug-cab-1" in t]
    ingest = account_topics(Account("svc.ingest", AccountKind.SERVICE, "ingest", "x"), view)
    assert ingest is not None
    assert ("read", "bk/v1/+/sensor/+/power") in ingest
