"""A paho client with a lean receive path for many small QoS 0/1 PUBLISH packets.

Stock paho 2.x reads each packet with three ``recv`` calls and one ``select``, builds an
:class:`~paho.mqtt.properties.Properties` object for every MQTT v5 PUBLISH, matches the
topic against per-filter callbacks, and sends each PUBACK with its own ``send``. At tens
of thousands of messages per second that is most of a worker's CPU. This subclass

* reads the socket in 64 KiB chunks and parses whole PUBLISH packets straight from the
  buffer, skipping v5 properties (ingest uses none) and handing ``(topic, payload, mid,
  qos)`` to one callback, without an ``MQTTMessage``;
* keeps reading while data is buffered instead of returning to ``select`` per packet;
* acknowledges a whole batch of message ids with one queued write (:meth:`ack_many`).

Everything else (connect, subscribe, keepalive, reconnect, QoS 2, partial packets) is
stock paho: a packet that is not a complete QoS 0/1 PUBLISH in the buffer goes through
paho's own reader, which reads from the same buffer.
"""

from __future__ import annotations

import logging
import struct
import time
from collections.abc import Callable, Iterable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

logger = logging.getLogger(__name__)

RawHandler = Callable[[bytes, bytes, int, int, bool], None]
"""``handler(topic, payload, mid, qos, retained)`` called on paho's network thread for each
PUBLISH. ``retained`` is its RETAIN bit, set only on a retained message sent because a
subscription was (re)made, never on live traffic to an established subscription (MQTT 3.1.1
3.3.1.3; v5 without Retain As Published)."""

_RECV_BYTES = 65536
_BURST_PACKETS = 2000  # then return to paho's loop (writes, keepalive) once the buffer is empty
_PUBLISH = 0x30
_PUBACK = 0x40
_PUBACK_PACKET = struct.Struct("!BBH")


def _varint(buf: bytes, p: int, end: int) -> tuple[int, int] | None:
    """Decode an MQTT variable byte integer at ``p``: (value, next position), None if cut."""
    value = 0
    mult = 1
    for _ in range(4):
        if p >= end:
            return None
        b = buf[p]
        p += 1
        value += (b & 127) * mult
        if b < 128:
            return value, p
        mult *= 128
    return None


def fast_path_supported() -> bool:
    """True when the installed paho has the internals this client relies on (paho 2.x)."""
    c = mqtt.Client
    return (
        all(
            hasattr(c, name)
            for name in (
                "_packet_read",
                "_sock_recv",
                "_sock_close",
                "_packet_queue",
                "_loop_rc_handle",
            )
        )
        and mqtt.__name__ == "paho.mqtt.client"
    )


class FastClient(mqtt.Client):
    """paho ``Client`` whose PUBLISH packets go to ``raw_handler`` on a short path."""

    def __init__(self, *args: Any, raw_handler: RawHandler, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._raw_handler = raw_handler
        self._rbuf = b""
        self._rpos = 0
        self._v5 = self._protocol == mqtt.MQTTv5

    # -------------------------------------------------------------- buffered socket
    def _reset_rbuf(self) -> None:
        self._rbuf = b""
        self._rpos = 0

    def _sock_recv(self, bufsize: int) -> bytes:
        """Serve paho's reads from the buffer, refilling it with one large ``recv``."""
        avail = len(self._rbuf) - self._rpos
        if avail <= 0:
            data = super()._sock_recv(_RECV_BYTES)  # BlockingIOError when nothing waits
            if not data:
                return data
            self._rbuf, self._rpos, avail = data, 0, len(data)
            with self._msgtime_mutex:
                self._last_bytes_received = time.monotonic()
        n = bufsize if bufsize < avail else avail
        pos = self._rpos
        self._rpos = pos + n
        return self._rbuf[pos : pos + n]

    def _sock_close(self) -> None:
        self._reset_rbuf()
        super()._sock_close()

    def reconnect(self) -> MQTTErrorCode:
        """Reconnect with an empty receive buffer (bytes of the old socket are void)."""
        self._reset_rbuf()
        return super().reconnect()

    # -------------------------------------------------------------- reading
    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        """Read packets until the socket would block (at least while data is buffered)."""
        n = 0
        while True:
            if self._sock is None:
                return MQTTErrorCode.MQTT_ERR_NO_CONN
            rc = self._packet_read()
            if rc > 0:
                return self._loop_rc_handle(rc)
            if rc == MQTTErrorCode.MQTT_ERR_AGAIN:
                return MQTTErrorCode.MQTT_ERR_SUCCESS
            n += 1
            if n >= _BURST_PACKETS and self._rpos >= len(self._rbuf):
                return MQTTErrorCode.MQTT_ERR_SUCCESS  # select() sees what the kernel holds

    def _packet_read(self) -> MQTTErrorCode:
        if self._in_packet["command"] == 0:
            if self._rpos >= len(self._rbuf):
                try:
                    data = super()._sock_recv(_RECV_BYTES)
                except BlockingIOError:
                    return MQTTErrorCode.MQTT_ERR_AGAIN
                except OSError as err:
                    logger.debug("failed to receive on socket: %s", err)
                    return MQTTErrorCode.MQTT_ERR_CONN_LOST
                if not data:
                    return MQTTErrorCode.MQTT_ERR_CONN_LOST
                self._rbuf, self._rpos = data, 0
                with self._msgtime_mutex:
                    self._last_bytes_received = time.monotonic()
            if self._fast_publish():
                return MQTTErrorCode.MQTT_ERR_SUCCESS
        return super()._packet_read()

    def _fast_publish(self) -> bool:
        """Handle one complete QoS 0/1 PUBLISH at the buffer position; False to let paho."""
        buf = self._rbuf
        pos = self._rpos
        end = len(buf)
        cmd = buf[pos]
        if cmd & 0xF0 != _PUBLISH:
            return False
        qos = (cmd >> 1) & 3
        if qos > 1:
            return False
        vb = _varint(buf, pos + 1, end)
        if vb is None:
            return False
        length, p = vb
        stop = p + length
        if stop > end or length < 2:
            return False
        parsed = self._variable_header(buf, p, stop, qos)
        if parsed is None:
            return False
        self._rpos = stop
        retained = bool(cmd & 1)
        self._deliver(buf[parsed[0] : parsed[1]], buf[parsed[3] : stop], parsed[2], qos, retained)
        return True

    def _variable_header(
        self, buf: bytes, p: int, stop: int, qos: int
    ) -> tuple[int, int, int, int] | None:
        """Return (topic start, topic end, mid, payload start) of a PUBLISH body, or None."""
        if p + 2 > stop:
            return None
        slen = (buf[p] << 8) | buf[p + 1]
        p += 2
        if slen == 0 or p + slen > stop:
            return None  # v5 topic alias (or malformed): paho's path
        t0 = p
        p += slen
        mid = 0
        if qos:
            if p + 2 > stop:
                return None
            mid = (buf[p] << 8) | buf[p + 1]
            p += 2
        if self._v5:  # skip the properties: ingest uses none of them
            vb = _varint(buf, p, stop)
            if vb is None or vb[1] + vb[0] > stop:
                return None
            p = vb[1] + vb[0]
        return t0, t0 + slen, mid, p

    def _deliver(self, topic: bytes, payload: bytes, mid: int, qos: int, retained: bool) -> None:
        try:
            self._raw_handler(topic, payload, mid, qos, retained)
        except Exception:
            logger.exception("message handler failed (message left unacknowledged)")

    def _handle_publish(self) -> MQTTErrorCode:
        """A PUBLISH that paho's reader assembled (it straddled reads): same short path."""
        cmd = self._in_packet["command"]
        qos = (cmd >> 1) & 3
        body = bytes(self._in_packet["packet"])
        parsed = self._variable_header(body, 0, len(body), qos) if qos < 2 else None
        if parsed is None:
            return super()._handle_publish()
        retained = bool(cmd & 1)
        self._deliver(body[parsed[0] : parsed[1]], body[parsed[3] :], parsed[2], qos, retained)
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    # -------------------------------------------------------------- acknowledging
    def ack_many(self, mids: Iterable[int]) -> None:
        """Queue PUBACKs for QoS 1 message ids as one write (thread-safe, like ``ack``)."""
        pack = _PUBACK_PACKET.pack
        packet = b"".join([pack(_PUBACK, 2, mid) for mid in mids])
        if packet:
            self._packet_queue(_PUBACK, packet, 0, 1)
