"""FastAPI dependencies: settings and a database connection per request."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import psycopg
from fastapi import Depends, Request

from api.schemas import ErrorPublic
from api.settings import ApiSettings

Conn = psycopg.Connection[Any]


def get_settings(request: Request) -> ApiSettings:
    """The settings the app was created with (tests pass their own to ``create_app``)."""
    settings: ApiSettings = request.app.state.settings
    return settings


def get_conn(request: Request) -> Iterator[Conn]:
    """An autocommit connection from the app's pool, returned after the request."""
    with request.app.state.pool.connection() as conn:
        yield conn


SettingsDep = Annotated[ApiSettings, Depends(get_settings)]
ConnDep = Annotated[Conn, Depends(get_conn)]


def not_found(what: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI description of a 404 answer for ``what``."""
    return {404: {"model": ErrorPublic, "description": f"No such {what}."}}
