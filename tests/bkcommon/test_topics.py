"""Topic builders and parsers round-trip; foreign topics are rejected with a reason."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import pytest

from bkcommon import topics
from bkcommon.errors import TopicError
from bkcommon.topics import ParsedTopic, TopicKind, parse_topic


@pytest.mark.parametrize(
    ("topic", "expected", "raises"),
    [
        ("bk/v1/s1/sensor/f1/reading", ParsedTopic(TopicKind.READING, "s1", "f1"), nullcontext()),
        ("bk/v1/s1/sensor/f1/readings", ParsedTopic(TopicKind.READINGS, "s1", "f1"), nullcontext()),
        ("bk/v1/s1/edge/b1/violation", ParsedTopic(TopicKind.VIOLATION, "s1", "b1"), nullcontext()),
        ("bk/v1/s1/edge/b1/status", ParsedTopic(TopicKind.STATUS, "s1", "b1"), nullcontext()),
        ("bk/v1/s1/alert", ParsedTopic(TopicKind.ALERT, "s1", None), nullcontext()),
        ("zigbee2mqtt/fridge2", ParsedTopic(TopicKind.ZIGBEE, None, "fridge2"), nullcontext()),
        ("zigbee2mqtt/bridge/state", None, pytest.raises(TopicError)),
        ("other/v1/s1/sensor/f1/reading", None, pytest.raises(TopicError)),
        ("bk/v1/s1/sensor/f1", None, pytest.raises(TopicError)),
        ("bk/v1/s 1/sensor/f1/reading", None, pytest.raises(TopicError)),
        ("bk/v1/s1/sensor/f1/unknown", None, pytest.raises(TopicError)),
    ],
)
def test_parse_topic(
    topic: str, expected: ParsedTopic | None, raises: AbstractContextManager[object]
) -> None:
    with raises:
        assert parse_topic(topic) == expected


def test_builders_round_trip_with_custom_prefix() -> None:
    pre = "bktest/abc"
    for build, kind in (
        (topics.reading_topic, TopicKind.READING),
        (topics.readings_topic, TopicKind.READINGS),
    ):
        t = build("site-1", "sensor.A_1", pre)
        assert parse_topic(t, pre) == ParsedTopic(kind, "site-1", "sensor.A_1")
    t = topics.violation_topic("s", "box", pre)
    assert parse_topic(t, pre).kind is TopicKind.VIOLATION


def test_builders_reject_wildcards() -> None:
    with pytest.raises(TopicError, match="sensor"):
        topics.reading_topic("s1", "f/#")


def test_shared_subscriptions() -> None:
    subs = topics.ingest_subscriptions("bk/v1", "g1", zigbee_base="zigbee2mqtt")
    assert all(s.startswith("$share/g1/") for s in subs)
    assert "$share/g1/zigbee2mqtt/+" in subs
    assert topics.ingest_subscriptions(group=None)[0] == "bk/v1/+/sensor/+/reading"
