"""/docs and /redoc with the network off: Swagger UI's and ReDoc's bundles come from the package,
not a CDN, and both render the whole API document (its schemas all under components/schemas)."""

from __future__ import annotations

from urllib.parse import urlparse

import pytest

pytestmark = pytest.mark.browser


def _offline_context(browser, console_url: str):
    """A browser context where every request to a host other than the server's is refused."""
    context = browser.new_context(base_url=console_url)
    local = urlparse(console_url).netloc
    refused: list[str] = []

    def route(r) -> None:
        if urlparse(r.request.url).netloc in (local, "") or r.request.url.startswith("data:"):
            r.continue_()
        else:
            refused.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    return context, refused


def test_swagger_ui_renders_offline(browser, console_url):
    context, refused = _offline_context(browser, console_url)
    tab = context.new_page()
    tab.goto("/docs")
    # the Swagger UI element appears and lists the API's operations from /openapi.json
    # generous: /openapi.json of the whole API is built on first request, on a busy machine
    tab.locator(".swagger-ui .opblock").first.wait_for(state="visible", timeout=120_000)
    assert tab.locator(".swagger-ui .info .title").inner_text().startswith("liebian")
    assert not refused, f"/docs asked the internet for {refused}"
    context.close()


def test_redoc_renders_offline(browser, console_url):
    context, refused = _offline_context(browser, console_url)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    tab.goto("/redoc")
    # ReDoc shows its menu of operations once it has resolved every reference of /openapi.json
    tab.locator("li[data-item-id^='tag/']").first.wait_for(state="visible", timeout=120_000)
    assert tab.locator("h1").first.inner_text().startswith("liebian")
    assert tab.get_by_text("Something went wrong").count() == 0
    assert (
        tab.locator(
            "[data-section-id='tag/campaigns/operation/order_callback_api_v1_orders_callback_post']"
        ).count()
        == 1
    )
    # ReDoc's footer credit is an <img> from its CDN that it hides when it does not load (bundled
    # code, no option to turn it off): the only request the page makes off the server
    assert [u for u in refused if u != "https://cdn.redoc.ly/redoc/logo-mini.svg"] == [], refused
    assert [e for e in errors if "logo-mini.svg" not in e and "ERR_FAILED" not in e] == [], errors
    context.close()
