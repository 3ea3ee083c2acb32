"""The search page in a real headless Chromium (Debian's), driven by Playwright: drop a file,
see it in the live feed and in the results without reloading; a screenshot is kept."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from ingest_worker import api_keys
from ingest_worker.database import connect
from ingest_worker.embedding import Embedder
from ingest_worker.pipeline import Pipeline
from tests.fix_services import RunningWorker, serve_api
from tests.integration.helpers import upsert, write

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            "Debian's chromium is not installed: `make test` installs it (apt-get install "
            "chromium); running pytest alone, install it first"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


def test_a_dropped_file_appears_live_in_feed_and_results(
    browser: Browser, api: httpx.Client, folder_worker: RunningWorker
) -> None:
    write(folder_worker.root / "birds.md", "# Birds\n\nSwallows migrate south in autumn.\n")
    page = browser.new_page(viewport={"width": 1200, "height": 800})
    page.goto(str(api.base_url))
    expect(page.locator("[data-stat=documents]")).to_have_text("1", timeout=20_000)
    expect(page.locator("#key-form")).to_be_hidden()  # this API requires no key

    page.keyboard.type("penguins in antarctica")  # the search box has focus
    page.keyboard.press("Enter")
    expect(page.locator("#search-status")).to_contain_text("result(s)")

    write(
        folder_worker.root / "penguins.md",
        "# Penguins\n\nEmperor penguins breed in the Antarctic winter.\n",
    )
    feed_item = page.locator("#feed li", has_text="upsert penguins.md v1")
    expect(feed_item).to_be_visible(timeout=20_000)
    first_hit = page.locator("#results li").first
    expect(first_hit).to_contain_text("Penguins", timeout=20_000)
    expect(first_hit.locator("mark").first).to_have_text("penguins", ignore_case=True)
    expect(first_hit).to_contain_text("version 1")
    expect(page.locator("[data-stat=documents]")).to_have_text("2", timeout=20_000)

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "search-page.png"), full_page=True)
    page.close()


def test_the_page_asks_for_a_key_when_the_api_requires_one(
    browser: Browser, db_url: str, embedder: Embedder, pipeline: Pipeline
) -> None:
    pipeline.process([upsert("owls.md", "Owls hunt at night.", tenant="zoo")])
    with connect(db_url) as conn:
        key, _ = api_keys.create(conn, "zoo", "browser")
    with serve_api(db_url, embedder, require_keys=True) as api:
        page = browser.new_page()
        page.goto(str(api.base_url))
        expect(page.locator("#key-form")).to_be_visible(timeout=10_000)  # 401 → asks
        page.locator("#api-key").fill(key)
        page.locator("#api-key").press("Enter")  # stored, then the page reloads with it
        expect(page.locator("#key-form")).to_be_hidden(timeout=10_000)
        page.locator("#query").fill("night hunters")
        page.locator("#query").press("Enter")
        expect(page.locator("#results li").first).to_contain_text("owls.md", timeout=20_000)
        expect(page.locator("[data-stat=documents]")).to_have_text("needs an admin key")
        page.close()
