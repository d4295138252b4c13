"""Security headers on every answer of the console and the API, errors included.

The console's routes add theirs (``api.console.routes.ConsoleRoute``), but routers it
includes and answers made outside a route (a 422 of request validation, a 404) did not
carry them. This ASGI middleware sets what a response lacks; a route's own value (the
acknowledge page's CSP, a public page's headers) is kept.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.console.routes import SECURITY_HEADERS as CONSOLE_HEADERS

API_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


class SecurityHeaders:
    """Add the console's headers under ``/console``, nosniff and no-referrer under ``/api``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        extra = (
            CONSOLE_HEADERS
            if path == "/console" or path.startswith("/console/")
            else API_HEADERS
            if path.startswith("/api/")
            else None
        )
        if extra is None:
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in extra.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
