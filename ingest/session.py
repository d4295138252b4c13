"""The MQTT client of an ingest session: persistent (QoS 1, no clean start, long session
expiry), manual acknowledgement, and the lean receive path where paho allows it.

Both the worker's shared-subscription client and the gap guard's plain-subscription
client are made here, so their session settings cannot drift apart.
"""

from __future__ import annotations

from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bkcommon.settings import CommonSettings, parse_mqtt_url
from bkcommon.topics import INGEST_MARKER_SEGMENT
from ingest.mqtt_fast import FastClient, RawHandler, fast_path_supported
from ingest.settings import IngestSettings

MARKER_SEGMENT = INGEST_MARKER_SEGMENT
"""Topic level under the prefix where workers and the guard publish their markers."""


def marker_topic(prefix: str, group: str) -> str:
    """Topic on which the workers of ``group`` announce that their shared subscription is
    in place, and on which the guard sends its own probe (see :mod:`ingest.guard`)."""
    return f"{prefix.rstrip('/')}/{MARKER_SEGMENT}/{group}/marker"


def make_client(
    common: CommonSettings,
    settings: IngestSettings,
    client_id: str,
    raw_handler: RawHandler,
) -> mqtt.Client:
    """A client with a persistent session under ``client_id`` that hands every QoS 0/1
    PUBLISH to ``raw_handler(topic, payload, mid, qos, retained)`` and acknowledges only when
    told.

    The caller sets the callbacks and calls :func:`connect_session` then ``loop_start``.
    """
    v5 = settings.mqtt_protocol == "5"
    kwargs: dict[str, Any] = {"client_id": client_id, "manual_ack": True}
    if v5:
        kwargs["protocol"] = mqtt.MQTTv5
    else:
        kwargs.update(protocol=mqtt.MQTTv311, clean_session=False)
    client: mqtt.Client
    if fast_path_supported():
        client = FastClient(CallbackAPIVersion.VERSION2, raw_handler=raw_handler, **kwargs)
    else:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, **kwargs)

    def _on_message(c: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        # paho's own path: QoS 2, topic aliases, or a paho without the fast client
        raw_handler(msg._topic, bytes(msg.payload), msg.mid, msg.qos, bool(msg.retain))

    client.on_message = _on_message
    ep = parse_mqtt_url(common.mqtt_url)
    if ep.username:
        client.username_pw_set(ep.username, ep.password)
    if ep.tls:
        client.tls_set(ca_certs=ep.ca_file)  # BK_MQTT_CA_FILE, else the system's CAs
    client.reconnect_delay_set(
        settings.broker_backoff_min_s,
        max(settings.broker_backoff_min_s, settings.broker_backoff_max_s),
    )
    return client


def connect_session(client: mqtt.Client, common: CommonSettings, settings: IngestSettings) -> None:
    """Start connecting (asynchronously) without clean start and with the session expiry
    of the settings, so the broker keeps the session and its queue while we are away."""
    ep = parse_mqtt_url(common.mqtt_url)
    v5 = settings.mqtt_protocol == "5"
    props = None
    if v5:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = settings.session_expiry_s
        props.ReceiveMaximum = settings.receive_maximum
    client.connect_async(
        ep.host,
        ep.port,
        keepalive=settings.keepalive_s,
        clean_start=False if v5 else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
        properties=props,
    )


def granted(reason_codes: list[Any]) -> bool:
    """True when every subscription of a SUBACK was granted (no failure reason code)."""
    return all(not getattr(rc, "is_failure", False) for rc in reason_codes)
