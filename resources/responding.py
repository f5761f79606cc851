"""Answering with the shape the OpenAPI document declares.

Each operation declares its success bodies (``Operation.responses`` in
``resources/openapi.py``); :func:`respond` looks up the schema declared for the current
method and status and dumps the answer with it. The document and the answer are one
declaration, so a field cannot be in one and missing from the other
(:class:`schemas.common.ResponseSchema` refuses both ways).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from flask import Response, current_app, request
from marshmallow import Schema
from sqlalchemy import Select

from resources.common import etag_for, keyset_page
from resources.openapi import ResponseBody, declarations_for, media_types
from security.errors import NotAcceptable
from security.modules.headers import SELF_CONTAINED_PAGE_POLICY, use_page_policy

Answer = tuple[Any, int, dict[str, str]]


@functools.cache
def _schema(schema_class: type[Schema]) -> Schema:
    """One instance per schema class: building one walks its fields, dumping does not."""
    return schema_class()


def declared_schema(status: int) -> Schema:
    """The response schema the current operation declares for ``status``."""
    body = _declared_body(status)
    alternatives = body if isinstance(body, tuple) else (body,)
    for schema_class in alternatives:
        if isinstance(schema_class, type):
            return _schema(schema_class)
    raise TypeError(f"{request.method} {request.url_rule} {status} has no JSON schema")


def _declared_body(status: int) -> ResponseBody:
    method = "get" if request.method == "HEAD" else request.method.lower()
    rule = request.url_rule
    assert rule is not None, "respond() answers a routed request"
    return declarations_for(current_app, rule)[method].responses[status]


def negotiate(status: int = 200) -> str:
    """The media type to answer in: the declared one the request's ``Accept`` prefers
    (the first declared when it names none), or :class:`NotAcceptable` (406)."""
    offered = media_types(_declared_body(status))
    if not request.accept_mimetypes:
        return offered[0]
    chosen = request.accept_mimetypes.best_match(offered)
    if chosen is None:
        raise NotAcceptable(f"This resource answers in {', '.join(offered)}.")
    return chosen


def respond_document(
    body: str,
    media_type: str,
    status: int = 200,
    *,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """A non-JSON answer (CSV, Markdown, HTML) of a media type the operation declares; an
    HTML page is self-contained and says so in its own Content-Security-Policy."""
    assert media_type in media_types(_declared_body(status)), media_type
    if media_type == "text/html":
        use_page_policy(SELF_CONTAINED_PAGE_POLICY)
    return Response(
        body, status, headers=dict(headers or {}), content_type=f"{media_type}; charset=utf-8"
    )


def respond(
    obj: Any,
    status: int = 200,
    *,
    etag: int | None = None,
    headers: Mapping[str, str] | None = None,
) -> Answer:
    """A Flask-RESTful answer: ``obj`` dumped with the declared schema for ``status``;
    ``etag`` is the object's version, sent as its ETag."""
    answer_headers = dict(headers or {})
    if etag is not None:
        answer_headers["ETag"] = etag_for(etag)
    return declared_schema(status).dump(obj), status, answer_headers


def page_response(statement: Select, created_column: Any, id_column: Any, query: dict) -> Answer:
    """A list endpoint's answer: one keyset page of ``statement`` (``limit`` and ``cursor``
    from the validated query), dumped with the operation's page schema."""
    rows, next_cursor = keyset_page(
        statement, created_column, id_column, query["limit"], query.get("cursor")
    )
    return respond({"items": rows, "next_cursor": next_cursor})
