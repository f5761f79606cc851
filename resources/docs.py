"""``/docs``: the OpenAPI document as an interactive page (Swagger UI), for people.

The page and its assets are served by the app itself: Swagger UI's files from the pinned
``swagger-ui-py`` package (``requirements.txt``), the page and its initializer from
``resources/docs_page/``. Nothing is loaded from another origin, so the page works offline
and its Content-Security-Policy (:data:`PAGE_POLICY`, this page only; every other answer
keeps ``default-src 'none'``) allows the app's own scripts, styles and requests and nothing
else. "Authorize" takes a login token or an API key as the bearer credential, and "Try it
out" sends requests to this server with it.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from flask import Response, request, send_file
from flask_restful import Resource

from resources.openapi import Content, Operation
from security.modules.headers import use_page_policy

PAGE_DIRECTORY = Path(__file__).resolve().parent / "docs_page"
SWAGGER_UI_DIRECTORY = Path(str(files("swagger_ui"))) / "static"
# Swagger UI sets inline style attributes and shows its icons as data: images.
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
ASSET_MAX_AGE = 3600
HTML = "text/html"
CSS = "text/css"
JAVASCRIPT = "text/javascript"
TEXT = {"type": "string"}


def _asset(path: Path, mimetype: str) -> Response:
    """A file of the page, cacheable for an hour (it changes only with a release)."""
    response = send_file(path, mimetype=mimetype, max_age=ASSET_MAX_AGE)
    response.headers["Cache-Control"] = f"public, max-age={ASSET_MAX_AGE}"
    return response


class DocsPage(Resource):
    openapi = {
        "get": Operation(
            "This API's reference as an interactive page (Swagger UI)",
            responses={200: Content(HTML, TEXT)},
        )
    }

    def get(self) -> Response:
        use_page_policy(PAGE_POLICY)
        return send_file(PAGE_DIRECTORY / "index.html", mimetype=HTML)


class DocsStylesheet(Resource):
    openapi = {"get": Operation("Swagger UI's stylesheet", responses={200: Content(CSS, TEXT)})}

    def get(self) -> Response:
        return _asset(SWAGGER_UI_DIRECTORY / "swagger-ui.css", CSS)


class DocsScript(Resource):
    openapi = {
        "get": Operation(
            "A script of the reference page (Swagger UI, its initializer)",
            responses={200: Content(JAVASCRIPT, TEXT)},
        )
    }
    SCRIPTS = {
        "/docs/swagger-ui-bundle.js": SWAGGER_UI_DIRECTORY / "swagger-ui-bundle.js",
        "/docs/swagger-initializer.js": PAGE_DIRECTORY / "swagger-initializer.js",
    }

    def get(self) -> Response:
        return _asset(self.SCRIPTS[request.path], JAVASCRIPT)


def register(api) -> None:
    api.add_resource(DocsPage, "/docs")
    api.add_resource(DocsStylesheet, "/docs/swagger-ui.css")
    api.add_resource(DocsScript, *DocsScript.SCRIPTS)
