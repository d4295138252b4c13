"""The error contract: every error body is an ``ErrorPublic`` and the OpenAPI document says so.

FastAPI answers a refused request (422) with ``{"detail": [...]}`` while every other refusal
of this API is ``{"detail": "one sentence"}``, and it documents the errors of an HTML or
binary route under that route's media type. Clients (the console, a fuzzer) then read a
body the document does not describe. ``install_error_contract`` fixes both sides:

- a refused request answers ``{"detail": "query.limit: ...; body.tier: ...", "errors": [...]}``,
  naming each field; the refused values are not echoed (they can be a password); a query
  parameter that takes one value and is given twice is refused, not silently narrowed;
- the document gets 422 on every operation with inputs, 503 (database unavailable) on
  every operation, 400 on every request body (one that cannot be parsed), and every
  4xx/5xx answer built from ``ErrorPublic`` is documented as ``application/json``;
- a media type declared without a schema (a JPEG, a zip, a CSV) is documented as a string,
  binary unless it is text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from api.schemas import ErrorPublic, FieldErrorPublic

_REF = "#/components/schemas/ErrorPublic"
_METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options", "trace"})
_MAX_LISTED = 5  # fields named in ``detail``; ``errors`` has them all

INVALID_INPUT = "Invalid input: `detail` names each refused field, `errors` lists them."
UNAVAILABLE = "The database is unavailable; try again later."
UNPARSEABLE = "The body could not be parsed (not UTF-8, or broken multipart framing)."


def validation_error_body(exc: RequestValidationError) -> ErrorPublic:
    """The ``ErrorPublic`` of a refused request: one readable sentence, then each field.

    Example:
        >>> from fastapi.exceptions import RequestValidationError
        >>> err = {"loc": ("query", "limit"), "msg": "Input should be >= 1", "type": "x"}
        >>> validation_error_body(RequestValidationError([err])).detail
        'query.limit: Input should be >= 1'
    """
    errors = [
        FieldErrorPublic(
            loc=[p if isinstance(p, int) else str(p) for p in e.get("loc", ())],
            msg=str(e.get("msg", "invalid")),
            type=str(e.get("type", "value_error")),
        )
        for e in exc.errors()
    ]
    parts = [f"{'.'.join(str(p) for p in e.loc) or 'request'}: {e.msg}" for e in errors]
    more = len(parts) - _MAX_LISTED
    detail = "; ".join(parts[:_MAX_LISTED]) + (f" (and {more} more)" if more > 0 else "")
    return ErrorPublic(detail=detail or "invalid request", errors=errors)


async def _refused_request(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    body = validation_error_body(exc)
    return JSONResponse(body.model_dump(mode="json"), status_code=422)


def _json_error() -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": _REF}}}


def _document_error(response: dict[str, Any]) -> None:
    """Document an error answer as JSON ``ErrorPublic`` unless it declares its own content."""
    content: dict[str, Any] | None = response.get("content")
    if not content:
        response["content"] = _json_error()
        return
    moved = [media for media, spec in content.items() if spec.get("schema") == {"$ref": _REF}]
    for media in moved:
        del content[media]
    if moved:
        content.update(_json_error())


def _document_operation(operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    body = operation.get("requestBody", {}).get("content", {})
    if operation.get("parameters") or body:
        declared = responses.get("422", {}).get("description")
        responses["422"] = {
            "description": INVALID_INPUT if declared in {None, "Validation Error"} else declared,
            "content": _json_error(),  # replaces FastAPI's HTTPValidationError
        }
    responses.setdefault("503", {"description": UNAVAILABLE})
    if body:
        responses.setdefault("400", {"description": UNPARSEABLE})
    for code, response in responses.items():
        if code[:1] in {"4", "5"}:
            _document_error(response)
        for media, spec in response.get("content", {}).items():
            if not spec.get("schema"):  # e.g. image/jpeg, application/zip, text/csv: say so
                spec["schema"] = {"type": "string"} | _binary(media)


def _binary(media: str) -> dict[str, str]:
    text = media.startswith("text/") or media.endswith(("json", "xml"))
    return {} if text else {"format": "binary"}


def document_errors(doc: dict[str, Any]) -> dict[str, Any]:
    """Rewrite an OpenAPI document (in place) so its error answers are what the app sends."""
    schemas: dict[str, Any] = doc.setdefault("components", {}).setdefault("schemas", {})
    own = ErrorPublic.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(own.pop("$defs", {}))
    schemas["ErrorPublic"] = own
    for path_item in doc.get("paths", {}).values():
        for method, operation in path_item.items():
            if method in _METHODS:
                _document_operation(operation)
    text = json.dumps(doc.get("paths", {}))
    for unused in ("HTTPValidationError", "ValidationError"):
        if f"#/components/schemas/{unused}" not in text:
            schemas.pop(unused, None)
    return doc


def _allows_array(schema: dict[str, Any]) -> bool:
    options = [schema, *schema.get("anyOf", []), *schema.get("oneOf", [])]
    return any(o.get("type") == "array" for o in options)


def _scalar_queries(app: FastAPI, path: str, method: str) -> frozenset[str]:
    """Query parameters of the operation serving ``path`` that take one value (the document's).

    Routes of an included router know their path without its prefix, so the operation is
    found by matching the request path against the document's templates, fixed ones first.
    """
    cache: dict[tuple[str, str], frozenset[str]] = app.state.scalar_queries
    key = (path, method.lower())
    if key not in cache:
        paths: dict[str, Any] = app.openapi()["paths"]
        templates = sorted(paths, key=lambda t: (t.count("{"), t))
        operation: dict[str, Any] = {}
        for template in templates:
            pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
            if key[1] in paths[template] and re.fullmatch(pattern, path):
                operation = paths[template][key[1]]
                break
        names = frozenset(
            p["name"]
            for p in operation.get("parameters", [])
            if p.get("in") == "query" and not _allows_array(p.get("schema", {}))
        )
        if len(cache) < 10_000:  # keyed by concrete paths: bounded
            cache[key] = names
        return names
    return cache[key]


async def one_value_each(request: Request) -> None:
    """Refuse a query parameter given twice where the document says it takes one value.

    FastAPI would silently keep the last of ``?site_id=a&site_id=b``; a filter the caller
    did not mean is worse than a 422 that names it.
    """
    if not request.query_params:
        return
    scalar = _scalar_queries(request.app, request.url.path, request.method)
    repeated = sorted(k for k in set(request.query_params) if k in scalar
                      and len(request.query_params.getlist(k)) > 1)  # fmt: skip
    if repeated:
        raise RequestValidationError(
            [
                {
                    "loc": ("query", k),
                    "msg": "given more than once; it takes one value",
                    "type": "repeated_value",
                }
                for k in repeated
            ]
        )


def install_error_contract(app: FastAPI) -> None:
    """Answer refused requests with ``ErrorPublic`` and document every error answer.

    Call before routers are included: the repeated-query check is an app dependency.
    """
    app.add_exception_handler(RequestValidationError, _refused_request)
    app.state.scalar_queries = {}
    app.router.dependencies.append(Depends(one_value_each))
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_errors(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
