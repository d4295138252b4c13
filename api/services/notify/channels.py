"""Build the channel senders the dispatcher uses, from the API settings."""

from __future__ import annotations

from api.services.notify.base import Channel
from api.services.notify.dingtalk import DingTalkChannel
from api.services.notify.email import EmailChannel
from api.services.notify.sms import SmsChannel
from api.services.notify.webhook import WebhookChannel
from api.services.notify.wecom import WeComChannel
from api.settings import ApiSettings


def build_channels(settings: ApiSettings) -> dict[str, Channel]:
    """Channel kind → sender; sms only with a gateway (``BK_API_SMS_URL_TEMPLATE``), else
    its notices are marked dead when met."""
    pw = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    channels: dict[str, Channel] = {
        "webhook": WebhookChannel(timeout_s=settings.webhook_timeout_s),
        "email": EmailChannel(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.smtp_from,
            timeout_s=settings.smtp_timeout_s,
            starttls=settings.smtp_starttls,
            user=settings.smtp_user,
            password=pw,
        ),
        "wecom": WeComChannel(timeout_s=settings.webhook_timeout_s),
        "dingtalk": DingTalkChannel(timeout_s=settings.webhook_timeout_s),
    }
    if settings.sms_url_template:
        channels["sms"] = SmsChannel(
            url_template=settings.sms_url_template,
            method=settings.sms_method,
            body_template=settings.sms_body_template,
            content_type=settings.sms_content_type,
            timeout_s=settings.webhook_timeout_s,
        )
    return channels


def close_channels(channels: dict[str, Channel]) -> None:
    """Close every sender's connections."""
    for ch in channels.values():
        ch.close()
