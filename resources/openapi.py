"""``/openapi.json``: the OpenAPI 3.1 document, built from what every endpoint declares.

How to declare an endpoint
--------------------------
Give the Resource class (or a plain Flask view function) an ``openapi`` mapping from the
lower-case HTTP method to an :class:`Operation`::

    class IncidentItem(Resource):
        openapi = {
            "patch": Operation(
                "Edit an incident",
                permission="incidents:write",
                body=IncidentUpdateSchema,
                responses={200: IncidentSchema},
                headers=("ETag",),
                if_match=True,
                errors=(422,),
            ),
        }

- ``responses``: success status -> a marshmallow *response* schema (the exact shape the
  method answers: ``resources.responding.respond`` dumps with it), ``None`` for no body,
  :class:`Content` for another media type, or a tuple of these when the answer's media
  type follows the request's ``Accept`` (``resources.responding.negotiate``; the first
  is the default).
- ``body`` / ``query``: the request schemas the method loads (``load_json``/``load_query``);
  a :class:`Content` (or a tuple of them) for a non-JSON body.
- ``permission``: the ``area:action`` passed to ``authorize()``; :data:`AUTHENTICATED` when
  the method only calls ``authenticate()``; ``None`` for a public endpoint.
- Error statuses implied by the declaration are added for you: 400/413/415 for a body,
  400 for a query (422 too when it takes a paging ``cursor`` or ``next``), 401 (and
  403) for credentials (and a permission), 404 for path parameters, 400/412 for
  ``if_match``, 400/409/422 for ``idempotent``; 429 everywhere, and 414/431 (the
  server's limits on the request line and the headers).
  List any other error the method can answer (409, 422, 503, ...) in ``errors``; errors
  are problem+json unless ``error_media_type`` says otherwise (TAXII).

Every string field refuses NUL characters (PostgreSQL cannot store them) and a field that
must not be blank needs a non-space character: both become a ``pattern`` here, so the
document refuses what the schemas refuse. A request schema's ``openapi_extra`` (JSON
Schema keywords for rules across fields, e.g. ``minProperties``) goes into its component.

Path parameters come from the route's converters (``<int:incident_id>``). A route without
a declaration is left out of the document, and ``tests/test_openapi.py`` fails for it;
``tests/test_postman.py`` fails for a documented operation no Postman request exercises.
``scripts/fuzz_api.sh`` checks every live answer against this document.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask, current_app
from flask_restful import Resource
from marshmallow import Schema, fields
from werkzeug.routing import IntegerConverter, Rule, UUIDConverter

from resources.common import IF_MATCH_MAX_LENGTH
from schemas.common import FullMatch, ProblemSchema, StrictSchema, not_blank

JSON = "application/json"
PROBLEM_JSON = "application/problem+json"
AUTHENTICATED = "authenticated"
UNDOCUMENTED_METHODS = frozenset({"HEAD", "OPTIONS"})
UNDOCUMENTED_ENDPOINTS = frozenset({"static"})
OPENAPI_VERSION = "3.1.0"
PROJECT_FILE = Path(__file__).resolve().parent.parent / "pyproject.toml"
_RULE_VARIABLE = re.compile(r"<(?:[^:<>]+:)?([A-Za-z_][A-Za-z0-9_]*)>")


@dataclass(frozen=True)
class Content:
    """A body of another media type than JSON; ``schema`` is a schema class or JSON Schema."""

    media_type: str
    schema: type[Schema] | Mapping[str, Any] | None = None


ResponseBody = type[Schema] | Content | None | tuple[type[Schema] | Content, ...]
RequestBody = type[Schema] | Content | tuple[type[Schema] | Content, ...]


@dataclass(frozen=True)
class Operation:
    """What one method of one route accepts and answers; see the module docstring."""

    summary: str
    responses: Mapping[int, ResponseBody]
    permission: str | None = None
    body: RequestBody | None = None
    query: type[Schema] | None = None
    errors: tuple[int, ...] = ()
    headers: tuple[str, ...] = ()
    if_match: bool = False
    idempotent: bool = False
    description: str = ""
    error_media_type: str = PROBLEM_JSON


RESPONSE_HEADERS: dict[str, dict[str, Any]] = {
    "ETag": {
        "description": 'the object\'s version, e.g. "3"; send it back as If-Match',
        "schema": {"type": "string"},
    },
    "Location": {"description": "where the created object lives", "schema": {"type": "string"}},
    "Idempotent-Replayed": {
        "description": "true when this is the stored answer to an earlier request",
        "schema": {"type": "string", "enum": ["true"]},
    },
    "Retry-After": {"description": "seconds to wait", "schema": {"type": "string"}},
    "WWW-Authenticate": {"description": "the scheme to use", "schema": {"type": "string"}},
}
IF_MATCH_PARAMETER = {
    "in": "header",
    "name": "If-Match",
    "required": False,
    "description": (
        "the ETag last read (RFC 9110 syntax); a stale one, or one this server did not "
        "issue, answers 412"
    ),
    "schema": {
        "type": "string",
        "maxLength": IF_MATCH_MAX_LENGTH,
        "pattern": '^[ \\t]*(\\*|(W/)?"[!#-~]*"([ \\t]*,[ \\t]*(W/)?"[!#-~]*")*)[ \\t]*$',
    },
}
IDEMPOTENCY_PARAMETER = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": False,
    "description": (
        "a retry with the same key, path and body returns the first answer (marked "
        "Idempotent-Replayed) instead of creating again; the same key with another request "
        "is 422; 409 when the object it created has been deleted since. Keys are kept 24 h."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
}


def documented_methods(rule: Rule) -> list[str]:
    return sorted(method.lower() for method in (rule.methods or set()) - UNDOCUMENTED_METHODS)


def declarations_for(app: Flask, rule: Rule) -> Mapping[str, Operation]:
    """The ``openapi`` mapping of the view behind ``rule`` (its Resource class, or itself)."""
    view = app.view_functions[rule.endpoint]
    owner = getattr(view, "view_class", view)
    return getattr(owner, "openapi", {})


def documented_rules(app: Flask) -> Iterator[Rule]:
    for rule in sorted(app.url_map.iter_rules(), key=lambda rule: rule.rule):
        if rule.endpoint not in UNDOCUMENTED_ENDPOINTS:
            yield rule


def openapi_path(rule: Rule) -> str:
    """``/incidents/<int:incident_id>`` -> ``/incidents/{incident_id}``."""
    return _RULE_VARIABLE.sub(r"{\1}", rule.rule)


def _converter_schema(converter: Any) -> dict[str, Any]:
    if isinstance(converter, IntegerConverter):
        schema: dict[str, Any] = {"type": "integer"}
        minimum = converter.min
        if not converter.signed:
            minimum = max(minimum or 0, 0)
        if minimum is not None:
            schema["minimum"] = minimum
        if converter.max is not None:
            schema["maximum"] = converter.max
        return schema
    if isinstance(converter, UUIDConverter):
        return {"type": "string", "format": "uuid"}
    return {"type": "string", "minLength": 1, "pattern": "^[^/]+$"}


def _path_parameters(rule: Rule) -> list[dict[str, Any]]:
    # Werkzeug keeps each variable's converter (with its min/max) only in this attribute.
    converters = rule._converters
    return [
        {"in": "path", "name": name, "required": True, "schema": _converter_schema(converter)}
        for name, converter in converters.items()
    ]


def _response(status: int, body: ResponseBody, media_type: str = JSON) -> dict[str, Any]:
    response: dict[str, Any] = {"description": HTTPStatus(status).phrase}
    if body is not None:
        alternatives = body if isinstance(body, tuple) else (body,)
        response["content"] = dict(_content(item, media_type) for item in alternatives)
    return response


def _content(body: type[Schema] | Content, media_type: str) -> tuple[str, dict[str, Any]]:
    if not isinstance(body, Content):
        return media_type, {"schema": body}
    return body.media_type, {"schema": body.schema} if body.schema is not None else {}


def media_types(body: ResponseBody) -> list[str]:
    """The media types of a declared answer, the default first."""
    alternatives = body if isinstance(body, tuple) else (body,)
    return [item.media_type if isinstance(item, Content) else JSON for item in alternatives]


def _request_body(body: RequestBody) -> dict[str, Any]:
    contents = body if isinstance(body, tuple) else (body,)
    content = {}
    for item in contents:
        if isinstance(item, Content):
            content[item.media_type] = {"schema": item.schema} if item.schema is not None else {}
        else:
            content[JSON] = {"schema": item}
    return {"required": True, "content": content}


def implied_errors(operation: Operation, has_path_parameters: bool) -> set[int]:
    """The error statuses the shared helpers give, from what the operation declares."""
    statuses = {414, 429, 431, *operation.errors}
    if operation.permission is not None:
        statuses.add(401)
    if operation.permission not in (None, AUTHENTICATED):
        statuses.add(403)
    if operation.body is not None:
        statuses.update({400, 413, 415})
    if operation.query is not None:
        statuses.add(400)
        if {"cursor", "next"} & set(operation.query._declared_fields):
            statuses.add(422)
    if operation.if_match:
        statuses.add(400)
    if has_path_parameters:
        statuses.add(404)
    if operation.if_match:
        statuses.add(412)
    if operation.idempotent:
        statuses.update({400, 409, 422})
    return statuses


_ERROR_HEADERS = {
    401: {"WWW-Authenticate": "WWW-Authenticate"},
    429: {"Retry-After": "Retry-After"},
}
# Answered by the server before the request reaches the app: a request line (method, path
# and percent-encoded query) over 4094 bytes, or a header over 8190 bytes. The query's
# maxLength values count characters, and one character can take up to 12 bytes encoded,
# so a long enough schema-valid query can still meet the limit. The server (server_answers.py)
# answers these as problem details on every path, TAXII's included.
_SERVER_LIMITS = {414, 431}


def _error_response(status: int, media_type: str) -> dict[str, Any]:
    if status in _SERVER_LIMITS:
        return _response(status, ProblemSchema, PROBLEM_JSON)
    body = ProblemSchema if media_type == PROBLEM_JSON else Content(media_type, {"type": "object"})
    response = _response(status, body, media_type)
    if status in _ERROR_HEADERS:
        response["headers"] = dict(_ERROR_HEADERS[status])
    return response


def operation_object(operation: Operation, rule: Rule, method: str) -> dict[str, Any]:
    """The OpenAPI operation object (schema classes still unresolved; apispec does that)."""
    path_parameters = _path_parameters(rule)
    parameters = list(path_parameters)
    if operation.query is not None:
        parameters.append({"in": "query", "schema": operation.query})
    if operation.if_match:
        parameters.append(IF_MATCH_PARAMETER)
    if operation.idempotent:
        parameters.append(IDEMPOTENCY_PARAMETER)
    responses: dict[int, dict[str, Any]] = {}
    for status, body in operation.responses.items():
        responses[status] = _response(status, body)
        if operation.headers:
            responses[status]["headers"] = {name: name for name in operation.headers}
    for status in sorted(implied_errors(operation, bool(path_parameters))):
        responses[status] = _error_response(status, operation.error_media_type)
    document: dict[str, Any] = {
        "operationId": f"{method}_{rule.endpoint}",
        "summary": operation.summary,
        "tags": [rule.rule.strip("/").split("/")[0] or "root"],
        "parameters": parameters,
        "responses": responses,
        "security": [] if operation.permission is None else [{"bearerAuth": []}],
    }
    if operation.description:
        document["description"] = operation.description
    if operation.permission not in (None, AUTHENTICATED):
        document["x-permission"] = operation.permission
    if operation.body is not None:
        document["requestBody"] = _request_body(operation.body)
    return document


NO_NUL = "^[^\\u0000]*$"
# A character that is neither NUL nor what Python's str.strip() removes, spelled out: ECMA
# and Python read \\s differently.
_VISIBLE = (
    "[^\\u0000\\t-\\r\\u001c-\\u0020\\u0085\\u00a0\\u1680\\u2000-\\u200a"
    "\\u2028\\u2029\\u202f\\u205f\\u3000]"
)
NOT_BLANK_NO_NUL = f"^[^\\u0000]*{_VISIBLE}[^\\u0000]*$"
STORABLE_JSON = "StorableJson"
STORABLE_JSON_REF = {"$ref": f"#/components/schemas/{STORABLE_JSON}"}
# Any JSON value whose strings (keys included) PostgreSQL can store: what a free-form
# object in a request body (an event, a STIX object, a bulk item) may hold.
STORABLE_JSON_SCHEMA = {
    "anyOf": [
        {"type": ["number", "boolean", "null"]},
        {"type": "string", "pattern": NO_NUL},
        {"type": "array", "items": STORABLE_JSON_REF},
        {
            "type": "object",
            "propertyNames": {"pattern": NO_NUL},
            "additionalProperties": STORABLE_JSON_REF,
        },
    ]
}


def _anchored(pattern: str) -> str:
    """``pattern`` as a whole-value match: JSON Schema patterns match anywhere."""
    if pattern.startswith("^") and pattern.endswith("$"):
        return pattern
    return f"^(?:{pattern})$"


def storable_text_pattern(self, field: fields.Field, ret: dict, **kwargs: Any) -> dict:
    """An apispec attribute function: what every string and free-form object obeys.

    A :class:`FullMatch` pattern is anchored as it is applied; any other string refuses
    NUL (and needs a non-space character when blank is refused); an object's keys refuse
    NUL, and a free-form object holds storable JSON.
    """
    if isinstance(field, fields.Dict):
        free_form = field.key_field is None and field.value_field is None
        # A request refuses NUL in keys too, whether or not the field names their type; an
        # answer may echo what a request named (a problem's errors by parameter).
        refused = free_form or isinstance(field.root, StrictSchema)
        names = {"propertyNames": {"pattern": NO_NUL}} if refused else {}
        return {**names, "additionalProperties": STORABLE_JSON_REF} if free_form else names
    if type(field) is fields.Raw:
        return dict(STORABLE_JSON_REF)
    if not isinstance(field, fields.String) or "enum" in ret:
        return {}
    full = [validator for validator in field.validators if isinstance(validator, FullMatch)]
    if full:
        return {"pattern": _anchored(full[0].regex.pattern)}
    if "pattern" in ret:
        return {}
    blank_refused = any(validator is not_blank for validator in field.validators)
    return {"pattern": NOT_BLANK_NO_NUL if blank_refused else NO_NUL}


def _register_extras(spec: APISpec, plugin: MarshmallowPlugin, app: Flask) -> None:
    """Give each request schema with ``openapi_extra`` its component first, extras merged."""
    seen: set[type[Schema]] = set()
    for rule in documented_rules(app):
        for operation in declarations_for(app, rule).values():
            bodies = operation.body if isinstance(operation.body, tuple) else (operation.body,)
            for body in bodies:
                if isinstance(body, type) and body not in seen and hasattr(body, "openapi_extra"):
                    seen.add(body)
                    name = plugin.schema_name_resolver(body)
                    spec.components.schema(name, dict(body.openapi_extra), schema=body)


def _project_version() -> str:
    with PROJECT_FILE.open("rb") as handle:
        return tomllib.load(handle)["project"]["version"]


def build_document(app: Flask) -> dict[str, Any]:
    """The whole OpenAPI document for ``app``'s routes as they are registered now."""
    plugin = MarshmallowPlugin()
    spec = APISpec(
        title="SOC Incident API",
        version=_project_version(),
        openapi_version=OPENAPI_VERSION,
        plugins=[plugin],
        info={
            "description": (
                "Errors are RFC 9457 problem details (application/problem+json). Every "
                "response carries X-Request-ID. Lists are keyset-paged: "
                '{"items": [...], "next_cursor": ...}.'
            )
        },
    )
    spec.components.security_scheme(
        "bearerAuth",
        {"type": "http", "scheme": "bearer", "description": "a login token or an API key"},
    )
    for name, header in RESPONSE_HEADERS.items():
        spec.components.header(name, header)
    spec.components.schema(STORABLE_JSON, STORABLE_JSON_SCHEMA)
    assert plugin.converter is not None  # the plugin made it when the spec registered it
    plugin.converter.add_attribute_function(storable_text_pattern)
    _register_extras(spec, plugin, app)
    for rule in documented_rules(app):
        declared = declarations_for(app, rule)
        operations = {
            method: operation_object(declared[method], rule, method)
            for method in documented_methods(rule)
            if method in declared
        }
        if operations:
            spec.path(path=openapi_path(rule), operations=operations)
    return spec.to_dict()


def document_for(app: Flask) -> dict[str, Any]:
    """The document, built on first use and kept: routes do not change after startup."""
    cached = app.extensions.get("openapi_document")
    if cached is None:
        cached = app.extensions["openapi_document"] = build_document(app)
    return cached


class OpenApiDocument(Resource):
    openapi: Mapping[str, Operation] = {
        "get": Operation(
            "This OpenAPI document",
            responses={200: Content(JSON, {"type": "object", "required": ["openapi", "paths"]})},
        )
    }

    def get(self):
        return document_for(current_app), 200


def register(api) -> None:
    api.add_resource(OpenApiDocument, "/openapi.json")
