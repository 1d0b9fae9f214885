"""/docs (Swagger UI) and /redoc served from the package's own static files, not a CDN.

Intranet installs have no internet, and FastAPI's default pages load their bundles from
cdn.jsdelivr.net (a blank page offline). The three files are vendored in static/vendor with their
licences (Swagger UI 5, Apache-2.0; ReDoc 2, MIT) rather than adding a package that replaces the
FastAPI class (fastapi-offline) or ships only one of the two (swagger-ui-bundle)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse

VENDOR = "/static/vendor"


def add_docs_routes(app: FastAPI) -> None:
    """GET /docs, /docs/oauth2-redirect and /redoc, their assets from /static/vendor."""
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} — API",
            oauth2_redirect_url="/docs/oauth2-redirect",
            swagger_js_url=f"{VENDOR}/swagger-ui-bundle.js",
            swagger_css_url=f"{VENDOR}/swagger-ui.css",
            swagger_favicon_url="data:,",
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{app.title} — API",
            redoc_js_url=f"{VENDOR}/redoc.standalone.js",
            redoc_favicon_url="data:,",
            with_google_fonts=False,
        )
