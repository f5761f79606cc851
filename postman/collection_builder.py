"""Building blocks for the Postman collections: requests, folders and the pm.test snippets.

The collections themselves are listed in ``functional.py`` and ``owasp.py`` beside this
file; ``build_collections.py`` writes them as Postman Collection v2.1 JSON. Snippets are
JavaScript run by Postman/newman after each response (``pm.test``); they are written once
here so every request asserts the same way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

SCHEMA_URL = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"
# scripts/run_newman.sh starts the server with this in CORS_ORIGINS unless told otherwise.
CORS_ALLOWED_ORIGIN = "https://console.soc.example"
NO_AUTH = {"type": "noauth"}


def bearer(variable: str) -> dict[str, Any]:
    """Postman's bearer auth with the token held in ``{{variable}}``."""
    return {
        "type": "bearer",
        "bearer": [{"key": "token", "value": f"{{{{{variable}}}}}", "type": "string"}],
    }


def _url(path: str) -> dict[str, Any]:
    raw = "{{baseUrl}}" + path
    route, _, query = path.partition("?")
    # A trailing slash is an empty last segment (TAXII paths end with one).
    segments = route.lstrip("/").split("/")
    url: dict[str, Any] = {"raw": raw, "host": ["{{baseUrl}}"], "path": segments}
    if query:
        url["query"] = [
            {"key": key, "value": value}
            for key, _, value in (pair.partition("=") for pair in query.split("&"))
        ]
    return url


def request(
    name: str,
    method: str,
    path: str,
    tests: Iterable[str],
    *,
    auth: str | None = "adminToken",
    body: Any = None,
    raw_body: str | None = None,
    headers: dict[str, str] | None = None,
    prerequest: Iterable[str] = (),
) -> dict[str, Any]:
    """One request item. ``auth`` names the variable holding the bearer token (None: no
    auth); ``body`` is sent as JSON, ``raw_body`` as given (with the headers you pass)."""
    header_list = [{"key": key, "value": value} for key, value in (headers or {}).items()]
    item_request: dict[str, Any] = {
        "method": method,
        "header": header_list,
        "url": _url(path),
        "auth": bearer(auth) if auth else NO_AUTH,
    }
    if body is not None:
        raw_body = _NUMBER_PLACEHOLDER.sub(r"{{\1}}", json.dumps(body, indent=2))
        if not any(h["key"].lower() == "content-type" for h in header_list):
            header_list.append({"key": "Content-Type", "value": "application/json"})
    if raw_body is not None:
        item_request["body"] = {
            "mode": "raw",
            "raw": raw_body,
            "options": {"raw": {"language": "json"}},
        }
    events = [_event("test", tests)]
    if prerequest:
        events.insert(0, _event("prerequest", prerequest))
    return {"name": name, "event": events, "request": item_request}


def number(variable: str) -> str:
    """A JSON number from ``{{variable}}`` in a body (``"{{variable}}"`` would be a string)."""
    return f"#number:{variable}"


_NUMBER_PLACEHOLDER = re.compile(r'"#number:(\w+)"')


def folder(name: str, description: str, items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {"name": name, "description": description, "item": list(items)}


def _event(listen: str, lines: Iterable[str]) -> dict[str, Any]:
    exec_lines: list[str] = []
    for snippet in lines:
        exec_lines.extend(snippet.splitlines())
    return {"listen": listen, "script": {"type": "text/javascript", "exec": exec_lines}}


def collection(
    name: str,
    description: str,
    folders: Sequence[dict[str, Any]],
    variables: dict[str, str],
    every_response: Iterable[str] = (),
    before_every_request: Iterable[str] = (),
) -> dict[str, Any]:
    """The v2.1 document; ``every_response`` runs after each request of the collection."""
    return {
        "info": {"name": name, "description": description, "schema": SCHEMA_URL},
        "item": list(folders),
        "event": [
            _event("prerequest", before_every_request),
            _event("test", every_response),
        ],
        "variable": [{"key": key, "value": value} for key, value in variables.items()],
    }


# ---- pm.test snippets ---------------------------------------------------------------------


def _js(value: Any) -> str:
    return json.dumps(value)


def check(title: str, expression: str) -> str:
    """A one-line ``pm.test``; ``expression`` is a JS expression using ``pm``."""
    return f"pm.test({_js(title)}, () => {expression});"


def status(code: int) -> str:
    return f'pm.test("status is {code}", () => pm.response.to.have.status({code}));'


def json_body(*keys: str) -> str:
    """The body is JSON and has at least these top-level keys."""
    return (
        f'pm.test("JSON body with {", ".join(keys)}", () => {{\n'
        f'    pm.expect(pm.response.headers.get("Content-Type")).to.match(/^application\\/json/);\n'
        f"    pm.expect(pm.response.json()).to.include.all.keys({_js(list(keys))});\n"
        "});"
    )


def problem(code: int) -> str:
    """An RFC 9457 problem body with this status, a request id and no stack trace."""
    return (
        status(code) + "\n"
        f'pm.test("problem+json {code} without internals", () => {{\n'
        '    const type = pm.response.headers.get("Content-Type");\n'
        "    pm.expect(type).to.match(/^application\\/problem\\+json/);\n"
        "    const body = pm.response.json();\n"
        f"    pm.expect(body.status).to.eql({code});\n"
        '    pm.expect(body).to.include.all.keys("type", "title", "detail", "request_id");\n'
        '    const internals = /Traceback|File \\"|psycopg2|sqlalchemy/i;\n'
        "    pm.expect(pm.response.text()).to.not.match(internals);\n"
        "});"
    )


def header(name: str, pattern: str | None = None) -> str:
    assertion = (
        f"pm.expect(pm.response.headers.get({_js(name)})).to.match(new RegExp({_js(pattern)}));"
        if pattern
        else f"pm.response.to.have.header({_js(name)});"
    )
    return f'pm.test("header {name}", () => {{ {assertion} }});'


def no_header(name: str) -> str:
    return f'pm.test("no {name} header", () => pm.response.to.not.have.header({_js(name)}));'


def expect(title: str, *lines: str) -> str:
    """A free-form assertion; ``lines`` may use ``body`` (the parsed JSON)."""
    inner = "\n".join(f"    {line}" for line in lines)
    return f"pm.test({_js(title)}, () => {{\n    const body = pm.response.json();\n{inner}\n}});"


def save(variable: str, expression: str, *, on_success_only: bool = True) -> str:
    """Store ``expression`` (JS, may use ``body``) for later requests; by default only from
    a 2xx answer, so a failed step does not hand a wrong id to the next ones."""
    condition = "pm.response.code < 300" if on_success_only else "true"
    return (
        f"if ({condition}) {{\n"
        "    const body = pm.response.json();\n"
        f"    pm.collectionVariables.set({_js(variable)}, {expression});\n"
        "}"
    )


def repeat_until(status_code: int, counter: str, limit_variable: str) -> str:
    """Re-send this request until it answers ``status_code``, at most ``{{limit}}`` + 1 times.

    Used where a threshold is the thing under test (lockout, rate limit): the run does not
    need to know how many requests earlier folders already spent.
    """
    return (
        f"const attempt = Number(pm.collectionVariables.get({_js(counter)}) || 0) + 1;\n"
        f"pm.collectionVariables.set({_js(counter)}, attempt);\n"
        f"const limit = Number(pm.collectionVariables.get({_js(limit_variable)})"
        f" || pm.environment.get({_js(limit_variable)}));\n"
        f"if (pm.response.code !== {status_code} && attempt <= limit) {{\n"
        "    postman.setNextRequest(pm.info.requestName);\n"
        "} else {\n"
        f'    pm.test("answers {status_code} within " + (limit + 1) + " attempts", () => {{\n'
        f"        pm.expect(pm.response.code).to.eql({status_code});\n"
        "    });\n"
        f"    pm.collectionVariables.set({_js(counter)}, 0);\n"
        "}"
    )


def environment() -> dict[str, Any]:
    """``local.postman_environment.json``: where the server is and who the admin is.

    ``adminPassword`` is left empty: type it in Postman, or pass
    ``--env-var adminPassword=...`` to newman. The loop caps allow for two gunicorn workers
    with per-process rate-limit counters (memory storage). ``corsAllowedOrigin`` must be
    one of the server's ``CORS_ORIGINS``: the OWASP collection checks it gets a CORS grant.
    """
    values = {
        "baseUrl": "http://127.0.0.1:8000",
        "adminUsername": "admin",
        "adminPassword": "",
        "corsAllowedOrigin": CORS_ALLOWED_ORIGIN,
        "lockoutMaxAttempts": "6",
        "rateLimitMaxAttempts": "210",
    }
    return {
        "name": "SOC Incident API - local",
        "values": [
            {
                "key": key,
                "value": value,
                "type": "secret" if key == "adminPassword" else "default",
                "enabled": True,
            }
            for key, value in values.items()
        ],
        "_postman_variable_scope": "environment",
    }


# ---- shared requests -----------------------------------------------------------------------

USER_PASSWORD = "Analyst-Passw0rd!2026"  # noqa: S105 - test users the collection creates

BEFORE_EVERY_REQUEST = [
    'if (!pm.collectionVariables.get("runId")) {',
    '    pm.collectionVariables.set("runId", Date.now().toString(36));',
    "}",
]


def login(name: str, username: str, password: str, variable: str) -> dict:
    return request(
        name,
        "POST",
        "/auth/login",
        [
            status(200),
            json_body("access_token", "token_type", "expires_at", "user"),
            expect("token is a bearer token", 'pm.expect(body.token_type).to.eql("Bearer");'),
            save(variable, "body.access_token"),
        ],
        auth=None,
        body={"username": username, "password": password},
    )
