"""The live page in headless Chromium while the seed scenario plays through a real worker.

A risk lead's view: open the page (with the API token), watch the Google conflict appear as
critical when Meta's 49 % is announced, click it to read why, then see it turn resolved
when Google terminates the contract. The last screenshot is kept as a test artefact.
"""

from __future__ import annotations

import hashlib
import shutil
import uuid
from pathlib import Path

import pytest

from streams.api.auth import Access
from streams.api.tokens import parse_tokens
from streams.kafka.topics import TopicNames
from tests.integration.browser import Chromium, chromium_path
from tests.integration.webapp import serving
from tests.integration.workers import publish, running_worker, wait_for

pytestmark = pytest.mark.integration

SEED = Path(__file__).parents[1] / "fixtures" / "scale-ai-2025.ndjson"
ARTIFACTS = Path(__file__).parents[2] / "test-artifacts"
GOOGLE = "google|scale-ai|meta"
TOKEN = "page-token-" + uuid.uuid4().hex[:8]


def row_status(browser: Chromium):
    """[status, severity, has a drawn graph] of the Google row, or None when not shown."""
    return browser.evaluate(
        f"(() => {{ const r = document.querySelector('article[data-key=\"{GOOGLE}\"]');"
        " return r ? [r.dataset.status, r.dataset.severity, !!r.querySelector('svg')] : null; })()"
    )


async def test_google_row_appears_critical_then_turns_resolved(broker, tmp_path):
    assert chromium_path(), "Debian's chromium is required (make debian-deps)"
    lines = [line for line in SEED.read_bytes().splitlines() if line.strip()]
    stake = next(i for i, raw in enumerate(lines) if b'"ownership.stake"' in raw)
    names = TopicNames(f"page{uuid.uuid4().hex[:8]}")
    async with (
        running_worker(broker.bootstrap, names) as worker,
        serving(worker, api_token=TOKEN) as base,
        Chromium(tmp_path) as browser,
    ):
        await publish(broker.bootstrap, names, lines[:stake])
        await wait_for(worker.ready.is_set, 30, "worker caught up")
        await browser.open(f"{base}/#token={TOKEN}")
        mode = "document.getElementById('mode')?.textContent ?? ''"

        async def connected():
            return await browser.evaluate(mode) in ("live", "polling")

        await wait_for(connected, 10, "page connected")
        assert await row_status(browser) is None  # nothing open before the announcement

        await publish(broker.bootstrap, names, lines[stake : stake + 1])
        firing = await wait_for(lambda: row_status(browser), 15, "google row on the page")
        assert firing == ["firing", "critical", True]
        assert await browser.evaluate(mode) == "live"

        # click it: why it fired, and neutral vendors to move the work to
        await browser.evaluate(f"document.querySelector('article[data-key=\"{GOOGLE}\"]').click()")
        rule = await wait_for(
            lambda: browser.evaluate(
                "document.getElementById('matched-rule')?.textContent ?? null"
            ),
            10,
            "explanation",
        )
        assert rule.startswith("critical: stake>=25 & sensitive")
        vendors = await wait_for(
            lambda: browser.evaluate(
                "[...document.querySelectorAll('li[data-vendor]')].map(li => li.dataset.vendor)"
            ),
            10,
            "alternatives",
        )
        assert "labelbox" in vendors and "scale-ai" not in vendors
        await browser.screenshot(tmp_path / "page-firing.png")

        await publish(broker.bootstrap, names, lines[stake + 1 :])

        async def resolved():
            status = await row_status(browser)
            return status if status and status[0] == "resolved" else None

        assert (await wait_for(resolved, 15, "google row resolved"))[0] == "resolved"
        shot = await browser.screenshot(tmp_path / "page-resolved.png")
    ARTIFACTS.mkdir(exist_ok=True)
    for name in ("page-firing.png", "page-resolved.png"):
        shutil.copy(tmp_path / name, ARTIFACTS / name)
    print(f"screenshots: {ARTIFACTS / 'page-firing.png'}, {ARTIFACTS / 'page-resolved.png'}")
    assert shot.stat().st_size > 10_000


async def test_a_scoped_token_sees_only_its_clients_world_on_the_page(broker, tmp_path):
    """Two tokens from a tokens file, one for OpenAI and one for Google: each page lists
    only its client's conflict and neutral vendors, and Google's page sees its conflict
    resolve while xAI's resolution (same vendor, same rival) never shows."""
    tokens = {client: f"{client}-{uuid.uuid4().hex}" for client in ("openai", "google")}
    access = Access.of(
        None,
        parse_tokens(
            "".join(
                f'[[token]]\nsha256 = "{hashlib.sha256(t.encode()).hexdigest()}"\n'
                f'clients = ["{client}"]\n'
                for client, t in tokens.items()
            )
        ),
    )
    lines = [line for line in SEED.read_bytes().splitlines() if line.strip()]
    stake = next(i for i, raw in enumerate(lines) if b'"ownership.stake"' in raw)
    names = TopicNames(f"scoped{uuid.uuid4().hex[:8]}")
    async with (
        running_worker(broker.bootstrap, names) as worker,
        serving(worker, access=access) as base,
        Chromium(tmp_path) as browser,
    ):
        await publish(broker.bootstrap, names, lines[: stake + 1])
        await wait_for(lambda: len(worker.latest) == 4, 30, "four conflicts open")

        async def rows():
            return await browser.attributes("article[data-key]", "key") or None

        await browser.fresh(f"{base}/#token={tokens['openai']}")
        assert await wait_for(rows, 15, "openai's rows") == ["openai|scale-ai|meta"]
        await browser.evaluate("document.querySelector('article[data-key]').click()")
        vendors = await wait_for(
            lambda: browser.attributes("li[data-vendor]", "vendor"), 10, "alternatives"
        )
        assert vendors == ["labelbox"]
        text = await browser.text()
        assert "OpenAI" in text
        for other in ("Google", "google", "Microsoft", "xAI", "c-google"):
            assert other not in text, other
        await browser.screenshot(tmp_path / "page-scoped-openai.png")

        await browser.fresh(f"{base}/#token={tokens['google']}")
        assert await wait_for(rows, 15, "google's rows") == ["google|scale-ai|meta"]
        await publish(broker.bootstrap, names, lines[stake + 1 :])  # Google and xAI leave

        async def google_resolved():
            status = await browser.attributes("article[data-key]", "status")
            return status == ["resolved"]

        await wait_for(google_resolved, 15, "google's row resolved")
        await wait_for(lambda: "xai|scale-ai|meta" not in worker.latest, 15, "xai resolved")
        assert await rows() == ["google|scale-ai|meta"]
        text = await browser.text()
        for other in ("OpenAI", "Microsoft", "xAI", "c-xai", "c-openai"):
            assert other not in text, other
        await browser.screenshot(tmp_path / "page-scoped-google.png")
    ARTIFACTS.mkdir(exist_ok=True)
    for name in ("page-scoped-openai.png", "page-scoped-google.png"):
        shutil.copy(tmp_path / name, ARTIFACTS / name)


async def test_a_deal_recorded_on_the_page_opens_the_conflict_on_the_page(broker, tmp_path):
    """The "record a deal" form posts an ownership.stake event (POST /v1/events, with the
    page's token); the worker applies it from the topic and the conflict appears."""
    assert chromium_path(), "Debian's chromium is required (make debian-deps)"
    lines = [line for line in SEED.read_bytes().splitlines() if line.strip()]
    stake = next(i for i, raw in enumerate(lines) if b'"ownership.stake"' in raw)
    names = TopicNames(f"deal{uuid.uuid4().hex[:8]}")
    async with (
        running_worker(broker.bootstrap, names) as worker,
        serving(worker, api_token=TOKEN) as base,
        Chromium(tmp_path) as browser,
    ):
        await publish(broker.bootstrap, names, lines[:stake])
        await wait_for(worker.ready.is_set, 30, "worker caught up")
        await browser.open(f"{base}/#token={TOKEN}")
        await wait_for(
            lambda: browser.evaluate("document.getElementById('mode')?.textContent === 'live'"),
            10,
            "page live",
        )
        assert await row_status(browser) is None
        await browser.fill(
            "#deal", {"owner": "meta", "asset": "scale-ai", "percent": 49, "status": "announced"}
        )
        result = await wait_for(
            lambda: browser.evaluate(
                "(() => { const r = document.getElementById('deal-result');"
                " return r.dataset.id ? r.textContent : null; })()"
            ),
            10,
            "the deal recorded",
        )
        assert result.startswith("recorded deal-")
        firing = await wait_for(lambda: row_status(browser), 15, "google row on the page")
        assert firing == ["firing", "critical", True]
        await browser.screenshot(tmp_path / "page-deal.png")
        assert worker.engine.graph.holdings[("meta", "scale-ai")].pending == 49
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(tmp_path / "page-deal.png", ARTIFACTS / "page-deal.png")
