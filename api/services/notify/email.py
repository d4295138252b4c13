"""E-mail channel over SMTP (optionally STARTTLS and login), text body in Chinese and English."""

from __future__ import annotations

import re
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from api.services.notify.base import OutgoingMessage
from bkcommon.errors import DeliveryError

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def header_text(value: str) -> str:
    r"""``value`` on one line, fit for a header: a CR or LF (an inspection item pasted over
    two lines, a device name) made ``EmailMessage`` refuse the whole e-mail, retried until
    dead; control characters become one space.

    >>> header_text("冷藏柜温度\r\n记录不全")
    '冷藏柜温度 记录不全'
    """
    return _CONTROL.sub(" ", value).strip()


class EmailChannel:
    """Sends one plain-text UTF-8 e-mail per notification through an SMTP relay."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        timeout_s: float,
        starttls: bool = False,
        user: str | None = None,
        password: str | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self._sender = sender
        self._timeout_s = timeout_s
        self._starttls = starttls
        self._user = user
        self._password = password

    def build(self, msg: OutgoingMessage) -> EmailMessage:
        """The e-mail for ``msg`` (also used by tests and previews)."""
        mail = EmailMessage()
        mail["From"] = self._sender
        mail["To"] = msg.address
        mail["Subject"] = header_text(msg.subject)
        mail["Date"] = formatdate(localtime=False)
        mail["Message-ID"] = make_msgid(idstring=f"bk-notification-{msg.notification_id}")
        mail.set_content(msg.body, charset="utf-8")
        return mail

    def send(self, msg: OutgoingMessage) -> None:
        """Connect, optionally STARTTLS and log in, send; raise DeliveryError on any failure."""
        mail = self.build(msg)
        try:
            with smtplib.SMTP(self._host, self._port, timeout=self._timeout_s) as smtp:
                if self._starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self._user:
                    smtp.login(self._user, self._password or "")
                refused = smtp.send_message(mail)
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"SMTP {self._host}:{self._port}: {exc}") from exc
        if refused:
            raise DeliveryError(f"SMTP refused recipients: {refused}")

    def close(self) -> None:
        """Nothing to release: each message opens its own SMTP session."""
