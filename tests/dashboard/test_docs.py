"""The API's documentation page (/docs) as a browser loads it: public, every operation
and schema of /openapi.json shown, and nothing the Content-Security-Policy refuses."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
from playwright.sync_api import Page

from tests.dashboard.browser import Recorder

#: Records what the policy refuses (inline script or style, eval), before any page script.
VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__violations.push(`${e.violatedDirective} ${e.blockedURI}`));
"""


def open_docs(page: Page, base_url: str) -> None:
    page.add_init_script(VIOLATIONS)
    page.goto(base_url + "/docs")
    page.wait_for_selector("body[data-ready]")


def test_the_docs_page_lists_every_operation_and_schema_without_signing_in(
    embedded_server, page: Page, recorder: Recorder
):
    spec = httpx.get(embedded_server.url + "/openapi.json").json()

    open_docs(page, embedded_server.url)

    shown = {(s.get_attribute("data-method"), s.get_attribute("data-path"))
             for s in page.query_selector_all("section.op")}
    documented = {(method, path) for path, methods in spec["paths"].items() for method in methods}
    assert shown == documented
    schemas = {s.get_attribute("data-schema") for s in page.query_selector_all("section.schema")}
    assert schemas == set(spec["components"]["schemas"])
    assert page.is_hidden("#status")
    submit = page.locator("section.op[data-path='/v1/applications'][data-method='post']")
    assert "scope submit" in submit.inner_text()
    assert "/problems/idempotency-key-reused" in submit.inner_text()
    assert "crm-000123" in submit.locator("pre").inner_text()  # the example body


def test_the_docs_page_breaks_no_content_security_policy(
    embedded_server, page: Page, recorder: Recorder
):
    open_docs(page, embedded_server.url)
    page.click("a[href='#schema-Application']")
    page.fill("#filter", "dead-letters")

    assert page.evaluate("window.__violations") == []
    assert recorder.page_errors == []
    assert recorder.unexpected_failures() == []
    assert all(urlsplit(url).netloc == urlsplit(embedded_server.url).netloc
               for url in recorder.requests if url.startswith("http"))
    visible = [s.get_attribute("data-path") for s in page.query_selector_all("section.op")
               if s.is_visible()]
    assert visible and all("dead-letters" in path for path in visible)
